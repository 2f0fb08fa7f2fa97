"""``/api/reviews``: a test image's review opens after its readers, shows readers' marks and a suggested
consensus to its two reviewers only, takes versioned edits, and is final when both approve the same version."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from cxrlab.catalog.models import ConsensusBox, ConsensusLabel, Image, ImageState
from tests.web.conftest import Proj, Site

NODULE = {"class_name": "Nodule/Mass", "x_min": 10, "y_min": 10, "x_max": 30, "y_max": 30}


def _read_all(site: Site, p: Proj, image: str) -> None:
    reads = {
        "reader1": {"labels": ["Lung tumor"], "boxes": [NODULE]},
        "reader2": {"labels": ["Lung tumor"], "boxes": [{**NODULE, "x_max": 31, "y_max": 29}]},
        "reader3": {"labels": ["Pneumonia"], "boxes": []},
    }
    for who, marks in reads.items():
        r = site.post(f"/api/tasks/{p.tasks[(who, image)]}/submit", who, {"version": 0, **marks})
        assert r.status_code == 200, r.text


class TestReviewFlow:
    def test_waiting_until_readers_are_done(self, site: Site) -> None:
        p = site.project(train=0, test=1)
        image = p.test[0]
        rid = p.reviews[("reviewer1", image)]
        r = site.get(f"/api/reviews/{rid}", "reviewer1")
        assert r.status_code == 200 and r.json()["review_state"] == "waiting" and r.json()["readers"] == []
        assert site.get("/api/tasks/next", "reviewer1", params={"project_id": p.id}).json()["tasks"] == []
        r = site.post(f"/api/reviews/{rid}/approve", "reviewer1", {"version": 0})
        assert r.status_code == 409 and "every reader" in r.json()["detail"]

    def test_suggestion_edit_and_two_reviewer_finalize(self, site: Site) -> None:
        p = site.project(train=0, test=1)
        image = p.test[0]
        _read_all(site, p, image)
        r1, r2 = p.reviews[("reviewer1", image)], p.reviews[("reviewer2", image)]
        nxt = site.get("/api/tasks/next", "reviewer1", params={"project_id": p.id, "kind": "review"}).json()
        assert [t["id"] for t in nxt["tasks"]] == [r1]
        view = site.get(f"/api/reviews/{r1}", "reviewer1").json()
        assert view["review_state"] == "open" and len(view["readers"]) == 3
        assert sorted(view["reviewers"]) == ["reviewer1", "reviewer2"]
        sug = view["suggestion"]
        assert sug["labels"] == ["Nodule/Mass", "Lung tumor"]  # 2 of 3 readers; one fused box kept
        assert len(sug["boxes"]) == 1 and sug["boxes"][0]["class_name"] == "Nodule/Mass"
        assert view["proposal"]["labels"] == sug["labels"]
        version = view["version"]
        # reviewer1 approves, then reviewer2 edits: the approval is cleared and reviewer1 must approve again
        assert site.post(f"/api/reviews/{r1}/approve", "reviewer1", {"version": version}).json()["approvals"] == {
            "reviewer1": version}
        edited = {"labels": ["Nodule/Mass", "Lung tumor", "Pneumonia"], "boxes": view["proposal"]["boxes"]}
        r = site.put(f"/api/reviews/{r2}/proposal", "reviewer2", {"version": version, **edited})
        assert r.status_code == 200 and r.json()["approvals"] == {} and r.json()["version"] == version + 1
        stale = site.put(f"/api/reviews/{r1}/proposal", "reviewer1", {"version": version, "labels": ["COPD"]})
        assert stale.status_code == 409 and stale.json()["current_version"] == version + 1
        assert site.post(f"/api/reviews/{r1}/approve", "reviewer1", {"version": version}).status_code == 409
        site.post(f"/api/reviews/{r2}/comments", "reviewer2", {"text": "added pneumonia: consolidation at left base"})
        assert site.post(f"/api/reviews/{r1}/approve", "reviewer1", {"version": version + 1}).status_code == 200
        with site.workspace.sessions() as session:
            assert session.scalar(select(Image.state).where(Image.image_id == image)) is not ImageState.REVIEWED
        final = site.post(f"/api/reviews/{r2}/approve", "reviewer2", {"version": version + 1}).json()
        assert final["review_state"] == "finalized"
        assert [c["username"] for c in final["comments"]] == ["reviewer2"]
        with site.workspace.sessions() as session:
            img = session.scalar(select(Image).where(Image.image_id == image))
            assert img.state is ImageState.REVIEWED
            positives = set(session.scalars(select(ConsensusLabel.label).where(
                ConsensusLabel.image_pk == img.id, ConsensusLabel.positive == 1, ConsensusLabel.method == "review")))
            assert positives == {"Nodule/Mass", "Lung tumor", "Pneumonia"}
            boxes = session.scalars(select(ConsensusBox).where(ConsensusBox.image_pk == img.id)).all()
            assert [(b.class_name, b.method, b.author) for b in boxes] == [
                ("Nodule/Mass", "review", "reviewer1+reviewer2")]
        assert site.put(f"/api/reviews/{r1}/proposal", "reviewer1",
                        {"version": version + 1, **edited}).status_code == 409
        csv = site.get(f"/api/projects/{p.id}/export/annotations_test.csv", "admin").text.splitlines()
        assert csv[0] == "image_id,rad_id,class_name,x_min,y_min,x_max,y_max,class_id"
        assert csv[1].startswith(f"{image},,Nodule/Mass,")

    def test_approve_refuses_a_proposal_that_breaks_qc(self, site: Site) -> None:
        p = site.project(train=0, test=1)
        image = p.test[0]
        _read_all(site, p, image)
        r1 = p.reviews[("reviewer1", image)]
        v = site.get(f"/api/reviews/{r1}", "reviewer1").json()["version"]
        v = site.put(f"/api/reviews/{r1}/proposal", "reviewer1", {"version": v, "labels": []}).json()["version"]
        r = site.post(f"/api/reviews/{r1}/approve", "reviewer1", {"version": v})
        assert r.status_code == 422 and r.json()["rule"] == "global_label_required"


class TestReviewAccess:
    @pytest.mark.parametrize(("who", "code"), [(None, 401), ("reader1", 403), ("reviewer2", 404), ("admin", 404)])
    def test_only_the_task_reviewer_sees_readers_marks(self, site: Site, who: str | None, code: int) -> None:
        p = site.project(train=0, test=1)
        image = p.test[0]
        _read_all(site, p, image)
        rid = p.reviews[("reviewer1", image)]
        assert site.get(f"/api/reviews/{rid}", who).status_code == code
        assert site.post(f"/api/reviews/{rid}/comments", who, {"text": "x"}).status_code == code
        assert site.post(f"/api/reviews/{rid}/approve", who, {"version": 1}).status_code == code
        assert site.put(f"/api/reviews/{rid}/proposal", who, {"version": 1}).status_code == code

    def test_unknown_review_is_404(self, site: Site) -> None:
        assert site.get("/api/reviews/99999999", "reviewer1").status_code == 404

    def test_reviewer_lists_own_review_tasks(self, site: Site) -> None:
        p = site.project(train=0, test=2)
        listed = {t["id"] for t in site.get("/api/reviews", "reviewer1", params={"project_id": p.id}).json()}
        assert listed == {p.reviews[("reviewer1", i)] for i in p.test}
        assert site.get("/api/reviews", "reader1").status_code == 403
