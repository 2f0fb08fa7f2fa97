"""Free text typed by users (unusable notes, read comments, review comments) never leaves the labeling tool
unless an export asks for it: not in ``images.state_reason``, audit events, the dashboard or a default export;
with ``?free_text=true`` the JSON carries it and a warning."""

from __future__ import annotations

import json

from sqlalchemy import select

from cxrlab.catalog.models import Event, Image, Task
from cxrlab.export.project import CSV_NAMES, FREE_TEXT_WARNING
from tests.web.conftest import Proj, Site

PHI = "DOE^JOHN 1234567"
READ = {"labels": ["No finding"], "boxes": []}


def _planted(site: Site) -> Proj:
    """A project with *PHI* in an unusable note, in a submitted read's comment and in a review comment."""
    p = site.project(train=2, test=1)
    gone, read = p.train
    r = site.post(f"/api/tasks/{p.tasks[('reader1', gone)]}/unusable", "reader1",
                  {"version": 0, "reason": "burned_in_text", "note": f"name on the film: {PHI}"})
    assert r.status_code == 200, r.text
    r = site.post(f"/api/tasks/{p.tasks[('reader2', read)]}/submit", "reader2",
                  {"version": 0, **READ, "comment": f"old film of {PHI}"})
    assert r.status_code == 200, r.text
    test = p.test[0]
    for who in ("reader1", "reader2", "reader3"):
        r = site.post(f"/api/tasks/{p.tasks[(who, test)]}/submit", who, {"version": 0, **READ})
        assert r.status_code == 200, r.text
    r = site.post(f"/api/reviews/{p.reviews[('reviewer1', test)]}/comments", "reviewer1", {"text": f"patient {PHI}?"})
    assert r.status_code == 200, r.text
    return p


def _dashboard_bytes(site: Site, p: Proj) -> bytes:
    out = b""
    for url in (f"/api/projects/{p.id}/progress", f"/projects/{p.id}/dashboard"):
        r = site.get(url, "admin")
        assert r.status_code == 200
        out += r.content
    return out


class TestFreeTextStaysInside:
    def test_default_exports_dashboard_and_catalog_carry_codes_only(self, site: Site) -> None:
        p = _planted(site)
        data = site.get(f"/api/projects/{p.id}/export.json", "admin")
        assert data.status_code == 200 and PHI.encode() not in data.content
        body = data.json()
        assert body["free_text"] is False and "warning" not in body
        reasons = [t["reason"] for img in body["images"] for t in img["tasks"] if t["state"] == "unusable"]
        assert reasons == ["burned_in_text"]
        review = next(img["review"] for img in body["images"] if img["image_id"] == p.test[0])
        assert [c["username"] for c in review["comments"]] == ["reviewer1"] and "text" not in review["comments"][0]
        for name in CSV_NAMES:
            r = site.get(f"/api/projects/{p.id}/export/{name}", "admin")
            assert r.status_code == 200 and PHI.encode() not in r.content
        dash = _dashboard_bytes(site, p)
        assert PHI.encode() not in dash and b"burned-in text / PHI visible" in dash
        with site.workspace.sessions() as session:
            image = session.scalars(select(Image).where(Image.image_id == p.train[0])).one()
            assert image.state_reason.endswith("): burned_in_text") and "DOE" not in image.state_reason
            details = [json.dumps(e.detail) for e in session.scalars(select(Event).where(Event.image_pk == image.id))]
            assert details and not any("DOE" in d for d in details)

    def test_opt_in_export_carries_free_text_and_a_warning(self, site: Site) -> None:
        p = _planted(site)
        r = site.get(f"/api/projects/{p.id}/export.json", "admin", params={"free_text": "true"})
        assert r.status_code == 200
        body = r.json()
        assert body["free_text"] is True and body["warning"] == FREE_TEXT_WARNING
        assert "not de-identified" in body["warning"]
        tasks = {t["task_id"]: t for img in body["images"] for t in img["tasks"]}
        gone = tasks[p.tasks[("reader1", p.train[0])]]
        assert gone["reason"] == "burned_in_text" and gone["note"] == f"name on the film: {PHI}"
        assert tasks[p.tasks[("reader2", p.train[1])]]["marks"]["comment"] == f"old film of {PHI}"
        review = next(img["review"] for img in body["images"] if img["image_id"] == p.test[0])
        assert review["comments"][0]["text"] == f"patient {PHI}?"

    def test_the_note_stays_readable_by_its_reader_only(self, site: Site) -> None:
        p = _planted(site)
        mine = site.get(f"/api/tasks/{p.tasks[('reader1', p.train[0])]}", "reader1").json()
        assert mine["note"] == f"name on the film: {PHI}" and mine["reason"] == "burned_in_text"
        other = site.get(f"/api/tasks/{p.tasks[('reader2', p.train[0])]}", "reader2")
        assert other.status_code == 200 and other.json()["state"] == "cancelled" and PHI not in other.text

    def test_a_legacy_free_text_reason_reads_as_other(self, site: Site) -> None:
        """A task set aside before reasons became codes keeps the reader's text in ``tasks.reason``."""
        p = site.project(train=1)
        tid = p.tasks[("reader1", p.images[0])]
        assert site.post(f"/api/tasks/{tid}/unusable", "reader1", {"version": 0, "reason": "other"}).status_code == 200
        with site.workspace.sessions() as session, session.begin():
            session.get(Task, tid).reason = f"film of {PHI}"
        assert PHI.encode() not in _dashboard_bytes(site, p)
        default = site.get(f"/api/projects/{p.id}/export.json", "admin")
        assert PHI.encode() not in default.content
        assert [t["reason"] for t in default.json()["images"][0]["tasks"] if t["task_id"] == tid] == ["other"]
        opted = site.get(f"/api/projects/{p.id}/export.json", "admin", params={"free_text": True}).json()
        assert [t["note"] for t in opted["images"][0]["tasks"] if t["task_id"] == tid] == [f"film of {PHI}"]
