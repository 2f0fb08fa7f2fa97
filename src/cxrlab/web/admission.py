"""Admission control of the web app: a few requests are computed at once, and writes go before reads.

The handlers are plain ``def`` functions that run in the thread pool (40 threads), and Python runs one thread at
a time (the GIL). With 50 requests in flight, 40 threads take turns on it: a thread that gives the GIL up for a
database call waits up to the switch interval (5 ms) to get it back, once per statement, so a save that holds the
catalog's writer lock (:func:`cxrlab.catalog.db.writer_lock`) for 2 ms of work keeps it for tens of ms, and every
other save queues behind it (issue 10: p99 of save and submit 1.5-1.9 s at 97 requests/s). Computing at most
:data:`SLOTS` requests at once keeps the threads that compete for the GIL few; the others wait in the event loop,
where waiting costs nothing. When a slot frees, a waiting write (any method but GET, HEAD, OPTIONS) gets it
before any waiting read: writes are short, they hold locks that other writes wait for, and a reader waits for
their answer (an autosave or a submit), while the viewer prefetches the next images ahead of time.

A slot is held until the response starts, so a slow client reading a large body does not hold one.
"""

from __future__ import annotations

import asyncio
import os
import weakref
from collections import deque

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["SLOTS", "Admission", "Slots"]

#: Requests computed at once per server process: one per core, at least 2. A handler spends part of its time
#: outside the GIL (SQLite, PostgreSQL round trips, JPEG encoding, sockets), so two overlap usefully; more only
#: contend (bench/server_load.py on 2 cores: 2 slots served more requests/s than 4 on PostgreSQL, as many on SQLite).
SLOTS = max(2, os.cpu_count() or 1)
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class Slots:
    """A counting semaphore of one event loop whose waiting writes are served before its waiting reads."""

    def __init__(self, n: int) -> None:
        self.free = n
        self._waiting: tuple[deque[asyncio.Future], deque[asyncio.Future]] = (deque(), deque())  # writes, reads

    async def acquire(self, write: bool) -> None:
        if self.free > 0 and not any(self._waiting):
            self.free -= 1
            return
        future = asyncio.get_running_loop().create_future()
        queue = self._waiting[0 if write else 1]
        queue.append(future)
        try:
            await future  # release() handed its slot over
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self.release()  # the slot came with the cancellation: pass it on
            elif future in queue:
                queue.remove(future)
            raise

    def release(self) -> None:
        for queue in self._waiting:
            while queue:
                future = queue.popleft()
                if not future.done():
                    future.set_result(None)
                    return
        self.free += 1


class Admission:
    """ASGI middleware: at most *slots* HTTP requests are computed at once, writes first (see the module)."""

    def __init__(self, app: ASGIApp, slots: int = SLOTS) -> None:
        self.app = app
        self.slots = slots
        # One Slots per event loop: the server has one, a test client may run each request in a new one.
        self._per_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Slots] = weakref.WeakKeyDictionary()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        loop = asyncio.get_running_loop()
        slots = self._per_loop.get(loop)
        if slots is None:
            slots = self._per_loop[loop] = Slots(self.slots)
        await slots.acquire(write=scope["method"] not in SAFE_METHODS)
        held = True

        async def send_releasing(message: Message) -> None:
            nonlocal held
            if held and message["type"] == "http.response.start":
                held = False
                slots.release()
            await send(message)

        try:
            await self.app(scope, receive, send_releasing)
        finally:
            if held:
                slots.release()
