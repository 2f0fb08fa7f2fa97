"""A reader's history (``GET /api/tasks?state=submitted&mine=1``), reopening a submitted read, the freeze rule
(409 naming it once the image's review is open or finished or a release holds it), every version kept in
``events``, the release taking the last one, and undo/redo as new versions."""

from __future__ import annotations

import pytest
from sqlalchemy import select, update

from cxrlab.annotate.history import FROZEN_RULE, read_versions
from cxrlab.catalog.models import INT_MAX, Event, Image, ImageState, Reading, Task
from tests.web.conftest import Proj, Site

BOX = {"class_name": "Nodule/Mass", "x_min": 10, "y_min": 10, "x_max": 30, "y_max": 30}
FIRST = {"labels": ["Lung tumor", "Nodule/Mass"], "boxes": [BOX]}
SECOND = {"labels": ["Pneumonia"], "boxes": []}
NO_FINDING = {"labels": ["No finding"], "boxes": []}


def _submit(site: Site, who: str, tid: int, marks: dict, version: int = 0) -> dict:
    r = site.post(f"/api/tasks/{tid}/submit", who, {"version": version, **marks})
    assert r.status_code == 200, r.text
    return r.json()


def _history(site: Site, who: str, **params) -> list[dict]:
    r = site.get("/api/tasks", who, params={"state": "submitted", "mine": 1, **params})
    assert r.status_code == 200, r.text
    return r.json()


def _image_state(site: Site, image_id: str) -> ImageState:
    with site.workspace.sessions() as session:
        return session.scalar(select(Image.state).where(Image.image_id == image_id))


def _read_all(site: Site, p: Proj, image: str) -> None:
    for who in ("reader1", "reader2", "reader3"):
        _submit(site, who, p.tasks[(who, image)], NO_FINDING)


class TestHistoryList:
    def test_lists_own_submitted_reads_newest_first_paged(self, site: Site) -> None:
        p = site.project(train=3)
        order = [p.tasks[("reader1", image)] for image in p.images]
        for tid in order:
            _submit(site, "reader1", tid, NO_FINDING)
        mine = [t for t in _history(site, "reader1", project_id=p.id)]
        assert [t["id"] for t in mine] == order[::-1]
        assert all(t["state"] == "submitted" and t["frozen"] is None for t in mine)
        page = site.get("/api/tasks", "reader1", params={"state": "submitted", "mine": 1, "project_id": p.id,
                                                      "limit": 1, "offset": 1})
        assert [t["id"] for t in page.json()] == [order[1]] and page.headers["x-total-count"] == "3"
        # blinding: another reader's history holds none of these
        assert not {t["id"] for t in _history(site, "reader2", project_id=p.id)} & set(order)

    @pytest.mark.parametrize("params", [{"limit": 0}, {"limit": 1001}, {"offset": -1}, {"offset": INT_MAX + 1},
                                        {"project_id": INT_MAX + 1}, {"mine": "maybe"}])
    def test_bounded_parameters_raises(self, site: Site, params: dict) -> None:
        r = site.get("/api/tasks", "reader1", params={"state": "submitted", "mine": 1, **params})
        assert r.status_code == 422

    def test_unauthenticated_is_401(self, site: Site) -> None:
        assert site.get("/api/tasks", None, params={"state": "submitted", "mine": 1}).status_code == 401


class TestReopen:
    def test_reopen_change_resubmit_keeps_every_version(self, site: Site) -> None:
        p = site.project(train=1)
        image = p.images[0]
        tid = p.tasks[("reader1", image)]
        first = _submit(site, "reader1", tid, FIRST)
        r = site.post(f"/api/tasks/{tid}/reopen", "reader1", {"version": first["version"]})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["state"] == "draft" and body["version"] == first["version"] + 1
        assert body["marks"]["labels"] == FIRST["labels"]  # the read to change, as it was
        second = _submit(site, "reader1", tid, SECOND, version=body["version"])
        assert second["state"] == "submitted"
        rad_id = site.get("/api/auth/me", "reader1").json()["rad_id"]
        with site.workspace.sessions() as session:
            pk = session.scalar(select(Image.id).where(Image.image_id == image))
            reading = session.scalar(select(Reading).where(Reading.image_pk == pk, Reading.rad_id == rad_id))
            # the readings row (what consensus and release take) is the last version
            assert [lb.label for lb in reading.labels] == ["Pneumonia"] and reading.boxes == []
            versions = read_versions(session, task_id=tid)
            reopened = session.scalars(select(Event).where(Event.image_pk == pk, Event.action == "reading.reopen"))
            assert [(e.author, e.detail["task_id"]) for e in reopened] == [("reader1", tid)]
        assert [v["labels"] for v in versions] == [FIRST["labels"], SECOND["labels"]]
        assert [len(v["boxes"]) for v in versions] == [1, 0]
        assert [v["version"] for v in versions] == [first["version"], second["version"]]

    def test_reopened_read_takes_its_image_out_of_labeled_until_resubmitted(self, site: Site) -> None:
        p = site.project(train=1)
        image = p.images[0]
        _read_all(site, p, image)
        assert _image_state(site, image) is ImageState.LABELED
        tid = p.tasks[("reader2", image)]
        version = site.get(f"/api/tasks/{tid}", "reader2").json()["version"]
        r = site.post(f"/api/tasks/{tid}/reopen", "reader2", {"version": version})
        assert r.status_code == 200
        assert _image_state(site, image) is ImageState.ASSIGNED  # no consensus or release takes it meanwhile
        _submit(site, "reader2", tid, SECOND, version=r.json()["version"])
        assert _image_state(site, image) is ImageState.LABELED

    def test_review_waits_for_a_reopened_read(self, site: Site) -> None:
        p = site.project(train=0, test=1)
        image = p.test[0]
        t1 = p.tasks[("reader1", image)]
        done = _submit(site, "reader1", t1, FIRST)
        reopened = site.post(f"/api/tasks/{t1}/reopen", "reader1", {"version": done["version"]}).json()
        for who in ("reader2", "reader3"):
            _submit(site, who, p.tasks[(who, image)], NO_FINDING)
        review = site.get(f"/api/reviews/{p.reviews[('reviewer1', image)]}", "reviewer1").json()
        assert review["review_state"] == "waiting"  # reader1's read is open again
        _submit(site, "reader1", t1, SECOND, version=reopened["version"])
        review = site.get(f"/api/reviews/{p.reviews[('reviewer1', image)]}", "reviewer1").json()
        assert review["review_state"] == "open"
        assert {r["rad_id"]: r["marks"]["labels"] for r in review["readers"]}[
            site.get("/api/auth/me", "reader1").json()["rad_id"]] == ["Pneumonia"]


class TestFreezeRule:
    def _frozen(self, site: Site, who: str, tid: int, why: str) -> None:
        task = site.get(f"/api/tasks/{tid}", who).json()
        r = site.post(f"/api/tasks/{tid}/reopen", who, {"version": task["version"]})
        assert r.status_code == 409, r.text
        body = r.json()
        assert body["rule"] == FROZEN_RULE and why in body["detail"]
        assert "no open or finished review and no release" in body["detail"]  # the rule, in words
        assert task["frozen"] == body["detail"]
        listed = {t["id"]: t for t in _history(site, who)}
        assert listed[tid]["frozen"] == body["detail"]
        assert site.get(f"/api/tasks/{tid}", who).json()["state"] == "submitted"

    def test_open_review_freezes_the_read(self, site: Site) -> None:
        p = site.project(train=0, test=1)
        image = p.test[0]
        _read_all(site, p, image)
        self._frozen(site, "reader1", p.tasks[("reader1", image)], "review has opened")

    def test_finished_review_freezes_the_read(self, site: Site) -> None:
        p = site.project(train=0, test=1)
        image = p.test[0]
        _read_all(site, p, image)
        for who in ("reviewer1", "reviewer2"):
            rid = p.reviews[(who, image)]
            version = site.get(f"/api/reviews/{rid}", who).json()["version"]
            assert site.post(f"/api/reviews/{rid}/approve", who, {"version": version}).status_code == 200
        assert _image_state(site, image) is ImageState.REVIEWED
        self._frozen(site, "reader2", p.tasks[("reader2", image)], "review is finished")

    def test_release_freezes_the_read(self, site: Site) -> None:
        p = site.project(train=1)
        image = p.images[0]
        _read_all(site, p, image)
        with site.workspace.transaction() as session:
            session.execute(update(Image).where(Image.image_id == image).values(state=ImageState.RELEASED))
        self._frozen(site, "reader3", p.tasks[("reader3", image)], "a release holds its image")

    def test_unsubmitted_task_is_409_not_submitted(self, site: Site) -> None:
        p = site.project(train=1)
        tid = p.tasks[("reader1", p.images[0])]
        r = site.post(f"/api/tasks/{tid}/reopen", "reader1", {"version": 0})
        assert r.status_code == 409 and r.json()["rule"] == "not_submitted"

    def test_stale_version_is_409(self, site: Site) -> None:
        p = site.project(train=1)
        tid = p.tasks[("reader1", p.images[0])]
        done = _submit(site, "reader1", tid, NO_FINDING)
        r = site.post(f"/api/tasks/{tid}/reopen", "reader1", {"version": done["version"] - 1})
        assert r.status_code == 409 and r.json()["current_version"] == done["version"]
        assert site.get(f"/api/tasks/{tid}", "reader1").json()["state"] == "submitted"

    @pytest.mark.parametrize(("who", "code"), [(None, 401), ("reader2", 404), ("reader4", 404), ("reviewer1", 404),
                                               ("admin", 404)])
    def test_another_users_read_cannot_be_reopened(self, site: Site, who: str | None, code: int) -> None:
        p = site.project(train=1)
        tid = p.tasks[("reader1", p.images[0])]
        done = _submit(site, "reader1", tid, NO_FINDING)
        assert site.post(f"/api/tasks/{tid}/reopen", who, {"version": done["version"]}).status_code == code
        assert site.get(f"/api/tasks/{tid}", "reader1").json()["state"] == "submitted"

    def test_a_review_task_cannot_be_reopened(self, site: Site) -> None:
        p = site.project(train=0, test=1)
        rid = p.reviews[("reviewer1", p.test[0])]
        assert site.post(f"/api/tasks/{rid}/reopen", "reviewer1", {"version": 0}).status_code == 404


class TestUndoIsANewVersion:
    def test_undo_and_redo_are_saves_with_their_cause(self, site: Site) -> None:
        p = site.project(train=1)
        tid = p.tasks[("reader1", p.images[0])]
        one = site.put(f"/api/tasks/{tid}/draft", "reader1", {"version": 0, "labels": [], "boxes": [BOX]}).json()
        undo = site.put(f"/api/tasks/{tid}/draft", "reader1",
                        {"version": 1, "labels": [], "boxes": [], "cause": "undo"})
        assert undo.status_code == 200 and undo.json()["version"] == 2 and undo.json()["marks"]["boxes"] == []
        redo = site.put(f"/api/tasks/{tid}/draft", "reader1",
                        {"version": 2, "labels": [], "boxes": one["marks"]["boxes"], "cause": "redo"})
        assert redo.json()["version"] == 3 and redo.json()["marks"]["boxes"] == one["marks"]["boxes"]
        with site.workspace.sessions() as session:
            rows = [(e.action, e.detail.get("cause")) for e in session.scalars(
                select(Event).where(Event.author == "reader1").order_by(Event.id)) if e.detail.get("task_id") == tid]
            assert session.scalar(select(Task.version).where(Task.id == tid)) == 3
        # nothing rewritten: the box was created, deleted by the undo and created again by the redo
        assert rows == [("annotation.create", None), ("annotation.delete", "undo"), ("annotation.create", "redo")]

    def test_unknown_cause_raises(self, site: Site) -> None:
        p = site.project(train=1)
        tid = p.tasks[("reader1", p.images[0])]
        r = site.put(f"/api/tasks/{tid}/draft", "reader1", {"version": 0, "labels": [], "cause": "rewrite"})
        assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "cause"]

    def test_review_undo_is_a_new_proposal_version(self, site: Site) -> None:
        p = site.project(train=0, test=1)
        image = p.test[0]
        _read_all(site, p, image)
        rid = p.reviews[("reviewer1", image)]
        view = site.get(f"/api/reviews/{rid}", "reviewer1").json()
        edited = site.put(f"/api/reviews/{rid}/proposal", "reviewer1",
                          {"version": view["version"], "labels": ["Pneumonia"]}).json()
        undone = site.put(f"/api/reviews/{rid}/proposal", "reviewer1",
                          {"version": edited["version"], **view["proposal"], "cause": "undo"})
        assert undone.status_code == 200 and undone.json()["version"] == edited["version"] + 1
        assert undone.json()["proposal"]["labels"] == view["proposal"]["labels"]
        with site.workspace.sessions() as session:
            causes = [e.detail.get("cause") for e in session.scalars(
                select(Event).where(Event.author == "reviewer1", Event.stage == "review").order_by(Event.id))
                if e.detail.get("task_id") == rid]
        assert "undo" in causes and causes[0] is None
