"""The admission middleware: a bounded number of requests computed at once, waiting writes before waiting reads,
a slot given back when the response starts; and the app installs it."""

from __future__ import annotations

import asyncio

from cxrlab.web.admission import Admission, Slots
from tests.web.conftest import Site


def _app(started: list[str], gates: dict[str, asyncio.Event], *, stream: bool = False):  # noqa: ANN202
    """An ASGI app that records which request started and waits for the request's gate before answering."""

    async def app(scope, receive, send) -> None:  # noqa: ANN001
        name = scope["path"].strip("/")
        started.append(name)
        if stream:
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await gates[name].wait()
            await send({"type": "http.response.body", "body": b"done"})
            return
        await gates[name].wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"done"})

    return app


def _scope(method: str, name: str) -> dict:
    return {"type": "http", "method": method, "path": f"/{name}", "headers": []}


async def _noop_receive() -> dict:
    return {"type": "http.request", "body": b""}


async def _noop_send(message: dict) -> None:
    return None


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


class TestAdmission:
    def test_waiting_writes_go_before_waiting_reads(self) -> None:
        async def scenario() -> list[str]:
            started: list[str] = []
            gates = {name: asyncio.Event() for name in ("r1", "r2", "r3", "w1", "w2")}
            mw = Admission(_app(started, gates), slots=1)
            calls = [asyncio.create_task(mw(_scope("GET", "r1"), _noop_receive, _noop_send))]
            await _settle()
            for method, name in (("GET", "r2"), ("PUT", "w1"), ("GET", "r3"), ("POST", "w2")):
                calls.append(asyncio.create_task(mw(_scope(method, name), _noop_receive, _noop_send)))
                await _settle()
            assert started == ["r1"]  # one slot: the others wait
            for name in ("r1", "w1", "w2", "r2", "r3"):
                gates[name].set()
                await _settle()
            await asyncio.gather(*calls)
            return started

        assert asyncio.run(scenario()) == ["r1", "w1", "w2", "r2", "r3"]

    def test_slot_is_given_back_when_the_response_starts(self) -> None:
        async def scenario() -> list[str]:
            started: list[str] = []
            gates = {"slow": asyncio.Event(), "next": asyncio.Event()}
            gates["next"].set()
            mw = Admission(_app(started, gates, stream=True), slots=1)
            slow = asyncio.create_task(mw(_scope("GET", "slow"), _noop_receive, _noop_send))
            await _settle()
            # the slow response has started (its body is still on its way): the next request is computed
            await asyncio.wait_for(mw(_scope("GET", "next"), _noop_receive, _noop_send), timeout=5)
            gates["slow"].set()
            await slow
            return started

        assert asyncio.run(scenario()) == ["slow", "next"]

    def test_a_cancelled_waiter_passes_its_slot_on(self) -> None:
        async def scenario() -> int:
            slots = Slots(1)
            await slots.acquire(write=False)
            waiter = asyncio.create_task(slots.acquire(write=True))
            await _settle()
            slots.release()  # handed to the waiter ...
            waiter.cancel()  # ... which is cancelled before it runs
            await asyncio.gather(waiter, return_exceptions=True)
            await asyncio.wait_for(slots.acquire(write=False), timeout=5)  # the slot was not lost
            return slots.free

        assert asyncio.run(scenario()) == 0

    def test_the_app_admits_requests(self, site: Site) -> None:
        assert any(m.cls is Admission for m in site.client.app.user_middleware)
        assert site.get("/api/auth/me", "reader1").status_code == 200
