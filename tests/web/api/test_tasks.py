"""``/api/tasks``: queue, blinding, draft autosave, QC rules (422 with a message), optimistic versions (409),
idempotent submit, unusable images, audit rows, and that submitted reads land in the readings tables."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import select

from cxrlab.annotate.reasons import UNUSABLE_CODES
from cxrlab.catalog.models import Event, Image, ImageState, Reading
from tests.web.conftest import Site

BOX = {"class_name": "Nodule/Mass", "x_min": 10, "y_min": 10, "x_max": 30, "y_max": 30}
GOOD = {"labels": ["Lung tumor", "Nodule/Mass"], "boxes": [BOX]}


def _task(site: Site, who: str, pid: int) -> dict:
    return site.get("/api/tasks/next", who, params={"project_id": pid, "limit": 1}).json()["tasks"][0]


class TestQueue:
    def test_next_returns_own_tasks_for_prefetch(self, site: Site) -> None:
        p = site.project(train=3)
        r = site.get("/api/tasks/next", "reader1", params={"project_id": p.id, "limit": 2})
        assert r.status_code == 200
        body = r.json()
        assert len(body["tasks"]) == 2 and body["remaining"] == 3 and body["counts"] == {"pending": 3}
        assert {t["image"]["image_id"] for t in body["tasks"]} <= set(p.images)

    def test_unassigned_user_has_an_empty_queue(self, site: Site) -> None:
        p = site.project(train=1)
        assert site.get("/api/tasks/next", "reader4", params={"project_id": p.id}).json()["tasks"] == []

    @pytest.mark.parametrize(("who", "code"), [(None, 401), ("reader2", 404), ("reader4", 404), ("reviewer1", 404),
                                               ("admin", 404)])
    def test_another_users_task_is_hidden(self, site: Site, who: str | None, code: int) -> None:
        p = site.project(train=1)
        tid = p.tasks[("reader1", p.images[0])]
        site.put(f"/api/tasks/{tid}/draft", "reader1", {"version": 0, **GOOD})
        assert site.get(f"/api/tasks/{tid}", who).status_code == code
        assert site.put(f"/api/tasks/{tid}/draft", who, {"version": 1, **GOOD}).status_code == code
        assert site.post(f"/api/tasks/{tid}/submit", who, {"version": 1, **GOOD}).status_code == code
        assert site.post(f"/api/tasks/{tid}/unusable", who, {"version": 1, "reason": "lateral"}).status_code == code

    def test_unknown_task_is_404(self, site: Site) -> None:
        assert site.get("/api/tasks/99999999", "reader1").status_code == 404


class TestBlinding:
    def test_a_reader_never_sees_another_readers_marks(self, site: Site) -> None:
        p = site.project(train=1)
        image = p.images[0]
        t1 = p.tasks[("reader1", image)]
        secret = {"labels": ["Pneumonia", "Consolidation"], "comment": "reader1 private",
                  "boxes": [{"class_name": "Consolidation", "x_min": 1, "y_min": 2, "x_max": 33, "y_max": 44}]}
        assert site.post(f"/api/tasks/{t1}/submit", "reader1", {"version": 0, **secret}).status_code == 200
        t2 = p.tasks[("reader2", image)]
        for url in (f"/api/tasks/{t2}", "/api/tasks", "/api/tasks/next", f"/api/images/{image}"):
            r = site.get(url, "reader2")
            assert r.status_code == 200
            assert "reader1 private" not in r.text and "Consolidation" not in r.text
            # The box by its coordinates (not as text: "44.0" also occurs in a timestamp's seconds).
            assert (1, 2, 33, 44) not in set(_boxes_in(r.json())), url
        assert site.get(f"/api/tasks/{t2}", "reader2").json()["marks"] == {"labels": [], "boxes": [], "comment": None}
        # readers' marks are no part of any reader-facing route, and reviews are for reviewers only
        assert site.get(f"/api/reviews/{t1}", "reader2").status_code == 403


def _boxes_in(value: object) -> Iterator[tuple]:
    """Every ``(x_min, y_min, x_max, y_max)`` of a box anywhere in a JSON answer."""
    if isinstance(value, dict):
        if {"x_min", "y_min", "x_max", "y_max"} <= value.keys():
            yield tuple(value[k] for k in ("x_min", "y_min", "x_max", "y_max"))
        for item in value.values():
            yield from _boxes_in(item)
    elif isinstance(value, list):
        for item in value:
            yield from _boxes_in(item)


class TestDraftAndSubmit:
    def test_draft_autosave_versions_and_audit(self, site: Site) -> None:
        p = site.project(train=1)
        tid = p.tasks[("reader1", p.images[0])]
        r = site.put(f"/api/tasks/{tid}/draft", "reader1", {"version": 0, "labels": [], "boxes": [BOX]})
        assert r.status_code == 200
        body = r.json()
        assert body["state"] == "draft" and body["version"] == 1
        box_id = body["marks"]["boxes"][0]["id"]
        assert box_id
        moved = {**BOX, "id": box_id, "x_max": 40}
        r = site.put(f"/api/tasks/{tid}/draft", "reader1", {"version": 1, "labels": ["Nodule/Mass"], "boxes": [moved]})
        assert r.json()["version"] == 2 and r.json()["marks"]["boxes"][0]["x_max"] == 40
        r = site.put(f"/api/tasks/{tid}/draft", "reader1", {"version": 2, "labels": ["Nodule/Mass"], "boxes": []})
        assert r.json()["marks"]["boxes"] == []
        with site.workspace.sessions() as session:
            actions = [e.action for e in session.scalars(select(Event).where(Event.author == "reader1")
                                                         .order_by(Event.id)) if e.detail.get("task_id") == tid]
        assert actions == ["annotation.create", "annotation.update", "label.create", "annotation.delete"]

    def test_stale_save_is_409(self, site: Site) -> None:
        p = site.project(train=1)
        tid = p.tasks[("reader1", p.images[0])]
        assert site.put(f"/api/tasks/{tid}/draft", "reader1", {"version": 0, **GOOD}).status_code == 200
        r = site.put(f"/api/tasks/{tid}/draft", "reader1", {"version": 0, "labels": ["COPD"]})
        assert r.status_code == 409 and r.json()["current_version"] == 1
        r = site.post(f"/api/tasks/{tid}/submit", "reader1", {"version": 0, **GOOD})
        assert r.status_code == 409

    def test_submit_lands_in_readings_and_is_idempotent(self, site: Site) -> None:
        p = site.project(train=1)
        image = p.images[0]
        tid = p.tasks[("reader1", image)]
        r = site.post(f"/api/tasks/{tid}/submit", "reader1", {"version": 0, **GOOD})
        assert r.status_code == 200 and r.json()["state"] == "submitted"
        again = site.post(f"/api/tasks/{tid}/submit", "reader1", {"version": 0, **GOOD})
        assert again.status_code == 200 and again.json()["version"] == r.json()["version"]
        changed = site.post(f"/api/tasks/{tid}/submit", "reader1", {"version": 1, "labels": ["COPD"]})
        assert changed.status_code == 409 and "already submitted" in changed.json()["detail"]
        assert site.put(f"/api/tasks/{tid}/draft", "reader1", {"version": 1, **GOOD}).status_code == 409
        rad_id = site.get("/api/auth/me", "reader1").json()["rad_id"]
        with site.workspace.sessions() as session:
            img = session.scalar(select(Image).where(Image.image_id == image))
            readings = session.scalars(select(Reading).where(Reading.image_pk == img.id)).all()
            assert [(x.rad_id, sorted(lb.label for lb in x.labels), len(x.boxes)) for x in readings] == [
                (rad_id, ["Lung tumor", "Nodule/Mass"], 1)]
            assert img.state is ImageState.ASSIGNED  # two readers still to go
        for who in ("reader2", "reader3"):
            t = p.tasks[(who, image)]
            assert site.post(f"/api/tasks/{t}/submit", who, {"version": 0, "labels": ["No finding"]}).status_code == 200
        with site.workspace.sessions() as session:
            assert session.scalar(select(Image.state).where(Image.image_id == image)) is ImageState.LABELED
        assert site.get("/api/tasks/next", "reader1", params={"project_id": p.id}).json()["remaining"] == 0


class TestQC:
    @pytest.mark.parametrize(("marks", "rule", "message"), [
        ({"labels": [], "boxes": []}, "global_label_required", "at least one global label"),
        ({"labels": ["Nodule/Mass"], "boxes": [BOX]}, "global_label_required", "at least one global label"),
        ({"labels": ["No finding", "Pneumonia"]}, "no_finding_exclusive", "excludes every box"),
        ({"labels": ["No finding"], "boxes": [BOX]}, "no_finding_exclusive", "excludes every box"),
        ({"labels": ["Pneumonia", "Flu"]}, "unknown_label", "'Flu' is not in schema"),
        ({"labels": ["Pneumonia"], "boxes": [{**BOX, "class_name": "Pneumonia"}]}, "unknown_box_class",
         "not a local label"),
        ({"labels": ["Pneumonia"], "boxes": [{**BOX, "x_max": 12}]}, "box_too_small", "smaller than 4 pixels"),
        ({"labels": ["Pneumonia"], "boxes": [{**BOX, "x_max": 65}]}, "box_outside", "outside the image"),
        ({"labels": ["Pneumonia"], "boxes": [{**BOX, "x_min": -1}]}, "box_outside", "outside the image"),
    ])
    def test_submit_qc_rules_are_422_with_a_message(self, site: Site, marks: dict, rule: str, message: str) -> None:
        p = site.project(train=1)
        tid = p.tasks[("reader1", p.images[0])]
        r = site.post(f"/api/tasks/{tid}/submit", "reader1", {"version": 0, **marks})
        assert r.status_code == 422, r.text
        assert r.json()["rule"] == rule and message in r.json()["detail"]
        assert site.get(f"/api/tasks/{tid}", "reader1").json()["state"] == "pending"

    def test_draft_allows_unfinished_work_but_not_bad_boxes(self, site: Site) -> None:
        p = site.project(train=1)
        tid = p.tasks[("reader1", p.images[0])]
        assert site.put(f"/api/tasks/{tid}/draft", "reader1", {"version": 0, "labels": []}).status_code == 200
        r = site.put(f"/api/tasks/{tid}/draft", "reader1", {"version": 1, "boxes": [{**BOX, "y_max": 999}]})
        assert r.status_code == 422 and r.json()["rule"] == "box_outside"

    def test_custom_schema_class_names(self, site: Site) -> None:
        from tests.web.api.test_projects import CUSTOM

        p = site.project(train=1, schema_yaml=CUSTOM)
        tid = p.tasks[("reader1", p.images[0])]
        r = site.post(f"/api/tasks/{tid}/submit", "reader1", {"version": 0, **GOOD})
        assert r.status_code == 422 and "site-mini" in r.json()["detail"]
        ok = {"labels": ["Pneumonia"], "boxes": [{**BOX, "class_name": "Effusion"}]}
        assert site.post(f"/api/tasks/{tid}/submit", "reader1", {"version": 0, **ok}).status_code == 200


class TestUnusable:
    def test_unusable_leaves_every_queue_and_shows_in_dashboard(self, site: Site) -> None:
        p = site.project(train=1)
        image = p.images[0]
        t1 = p.tasks[("reader1", image)]
        site.put(f"/api/tasks/{p.tasks[('reader2', image)]}/draft", "reader2", {"version": 0, **GOOD})
        r = site.post(f"/api/tasks/{t1}/unusable", "reader1", {"version": 0, "reason": "lateral", "note": "PA missing"})
        assert r.status_code == 200
        assert r.json()["state"] == "unusable" and r.json()["reason"] == "lateral"
        assert r.json()["reason_title"] == "lateral view" and r.json()["note"] == "PA missing"  # its own reader
        for who in ("reader2", "reader3"):
            assert site.get("/api/tasks/next", who, params={"project_id": p.id}).json()["tasks"] == []
            t = p.tasks[(who, image)]
            assert site.get(f"/api/tasks/{t}", who).json()["state"] == "cancelled"
            r = site.post(f"/api/tasks/{t}/submit", who, {"version": 1, **GOOD})
            assert r.status_code in (404, 409)
        progress = site.get(f"/api/projects/{p.id}/progress", "admin").json()
        assert [u["image_id"] for u in progress["unusable"]] == [image]
        assert progress["unusable"][0]["reason"] == "lateral"
        assert progress["unusable"][0]["reason_title"] == "lateral view" and "PA missing" not in str(progress)

    @pytest.mark.parametrize("reason", ["  ", "lateral view, not a PA", "LATERAL"])
    def test_unusable_needs_a_known_reason_code_raises(self, site: Site, reason: str) -> None:
        p = site.project(train=1)
        tid = p.tasks[("reader1", p.images[0])]
        r = site.post(f"/api/tasks/{tid}/unusable", "reader1", {"version": 0, "reason": reason})
        assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "reason"]  # the schema's enum
        assert all(code in r.text for code in UNUSABLE_CODES) and (reason.strip() or "@@") not in r.text
        assert site.get(f"/api/tasks/{tid}", "reader1").json()["state"] == "pending"

    def test_too_long_note_raises_without_echoing_it(self, site: Site) -> None:
        p = site.project(train=1)
        tid = p.tasks[("reader1", p.images[0])]
        note = "DOE^JOHN " * 60
        r = site.post(f"/api/tasks/{tid}/unusable", "reader1", {"version": 0, "reason": "other", "note": note})
        assert r.status_code == 422 and "DOE" not in r.text and "note" in r.text
        assert site.get(f"/api/tasks/{tid}", "reader1").json()["state"] == "pending"
