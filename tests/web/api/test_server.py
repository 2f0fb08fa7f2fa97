"""Against a real ``cxrlab serve`` process: concurrent saves from real threads never lose an update, and a
submission acknowledged before a SIGKILL of the server is in the catalog afterwards."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import select

from cxrlab.catalog.models import Event, Image, ImageState, Reading, Task, TaskState
from tests.support.server import start_server
from tests.web.conftest import Site

pytestmark = pytest.mark.slow  # real cxrlab serve processes, one killed


@pytest.fixture
def server(site: Site) -> Iterator[str]:
    with start_server(site.workspace) as running:
        yield running.url


class TestConcurrentSaves:
    def test_no_update_is_lost(self, site: Site, server: str) -> None:
        p = site.project(train=1)
        tid = p.tasks[("reader1", p.images[0])]
        headers = site.h("reader1")
        n_threads, per_thread = 8, 4
        conflicts = []
        errors = []

        def worker(k: int) -> None:
            with httpx.Client(base_url=server, headers=headers, timeout=30) as client:
                for j in range(per_thread):
                    while True:
                        task = client.get(f"/api/tasks/{tid}").json()
                        boxes = task["marks"]["boxes"] + [
                            {"class_name": "Nodule/Mass", "x_min": k, "y_min": j, "x_max": k + 10, "y_max": j + 10}]
                        r = client.put(f"/api/tasks/{tid}/draft", json={"version": task["version"], "labels": [],
                                                                          "boxes": boxes})
                        if r.status_code == 409:
                            conflicts.append(1)
                            continue
                        if r.status_code != 200:
                            errors.append(r.text)
                        break

        threads = [threading.Thread(target=worker, args=(k,)) for k in range(n_threads)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert not errors
        final = httpx.get(f"{server}/api/tasks/{tid}", headers=headers).json()
        got = sorted((b["x_min"], b["y_min"]) for b in final["marks"]["boxes"])
        assert got == sorted((float(k), float(j)) for k in range(n_threads) for j in range(per_thread))
        assert final["version"] == n_threads * per_thread  # every accepted save is one version


    def test_last_readers_submitting_together_open_the_review_once(self, site: Site, server: str) -> None:
        p = site.project(train=0, test=1)
        image = p.test[0]
        results: dict[str, int] = {}

        def submit(who: str) -> None:
            with httpx.Client(base_url=server, headers=site.h(who), timeout=30) as client:
                r = client.post(f"/api/tasks/{p.tasks[(who, image)]}/submit",
                                json={"version": 0, "labels": ["Pneumonia"]})
                results[who] = r.status_code

        threads = [threading.Thread(target=submit, args=(who,)) for who in ("reader1", "reader2", "reader3")]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert results == {"reader1": 200, "reader2": 200, "reader3": 200}
        with site.workspace.sessions() as session:
            pk = session.scalar(select(Image.id).where(Image.image_id == image))
            opened = session.scalars(select(Event).where(Event.image_pk == pk, Event.action == "review.open")).all()
            assert len(opened) == 1
            assert session.scalar(select(Image.state).where(Image.id == pk)) is ImageState.LABELED
        view = httpx.get(f"{server}/api/reviews/{p.reviews[('reviewer1', image)]}", headers=site.h("reviewer1")).json()
        assert view["review_state"] == "open" and len(view["readers"]) == 3
        assert view["proposal"]["labels"] == ["Pneumonia"]


class TestKill:
    def test_acknowledged_submit_survives_sigkill(self, site: Site) -> None:
        p = site.project(train=1)
        image = p.images[0]
        tid = p.tasks[("reader2", image)]
        with start_server(site.workspace) as server:
            r = httpx.post(f"{server.url}/api/tasks/{tid}/submit", headers=site.h("reader2"),
                           json={"version": 0, "labels": ["Pneumonia"]}, timeout=30)
            assert r.status_code == 200
            server.stop(signal.SIGKILL)
        with site.workspace.sessions() as session:
            assert session.scalar(select(Task.state).where(Task.id == tid)) is TaskState.SUBMITTED
            pk = session.scalar(select(Image.id).where(Image.image_id == image))
            assert session.scalar(select(Reading.id).where(Reading.image_pk == pk)) is not None
        with start_server(site.workspace) as server:  # and a restarted server serves it
            got = httpx.get(f"{server.url}/api/tasks/{tid}", headers=site.h("reader2"), timeout=30).json()
            assert got["state"] == "submitted" and got["marks"]["labels"] == ["Pneumonia"]
