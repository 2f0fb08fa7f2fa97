"""``/api/projects/{id}/suggest`` and ``/api/tasks/{id}/suggestions`` (model-assisted reading): admins set and
clear the detector run (validated), a reader gets the model's boxes of their own read task only, a project
without the setting answers 404, ids out of range are 404/422 (never 500), an accepted suggestion is kept as such
and exported with its source."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from cxrlab.catalog.models import Image, Project, Suggestion
from tests.web.conftest import Site

BOXES = [{"class_name": "Nodule/Mass", "score": 0.61, "x_min": 10.0, "y_min": 12.0, "x_max": 30.0, "y_max": 28.0},
         {"class_name": "Cardiomegaly", "score": 0.2, "x_min": 20.0, "y_min": 30.0, "x_max": 50.0, "y_max": 55.0}]
CUSTOM = "name: mini\nno_finding: Normal\nlabels:\n  - {name: Nodule, kind: local}\n  - {name: Normal, kind: global}\n"


def _store(site: Site, project_id: int, image_id: str, boxes: list[dict] = BOXES) -> None:
    """What the background worker stores for the image (the prediction itself is tested in tests/unit/models)."""
    with site.workspace.sessions() as session, session.begin():
        model = session.get(Project, project_id).suggest_model_sha256
        pk = session.scalar(select(Image.id).where(Image.image_id == image_id))
        session.add(Suggestion(image_pk=pk, model_sha256=model, boxes=boxes))


def _on(site: Site, project_id: int, run: Path) -> dict:
    r = site.client.put(f"/api/projects/{project_id}/suggest", headers=site.h("admin"), json={"run": str(run)})
    assert r.status_code == 200, r.text
    return r.json()


class TestSetting:
    def test_off_by_default_set_and_cleared_by_an_admin(self, site: Site, tiny_detector: Path) -> None:
        p = site.project(train=2)
        assert site.get(f"/api/projects/{p.id}", "admin").json()["suggestions"] is False
        assert site.get(f"/api/projects/{p.id}/suggest", "admin").json() == {
            "run": None, "model": None, "images": 2, "predicted": 0, "failed": 0, "pending": 0}
        on = _on(site, p.id, tiny_detector)
        assert on["run"] == str(tiny_detector.resolve()) and len(on["model"]) == 64 and on["pending"] == 2
        assert site.get(f"/api/projects/{p.id}", "reader1").json()["suggestions"] is True
        off = site.client.put(f"/api/projects/{p.id}/suggest", headers=site.h("admin"), json={"run": None})
        assert off.status_code == 200 and off.json()["run"] is None

    def test_only_admins(self, site: Site, tiny_detector: Path) -> None:
        p = site.project(train=1)
        for who in ("reader1", "reviewer1"):
            r = site.client.put(f"/api/projects/{p.id}/suggest", headers=site.h(who), json={"run": str(tiny_detector)})
            assert r.status_code == 403
            assert site.get(f"/api/projects/{p.id}/suggest", who).status_code == 403

    def test_refused_runs_are_400_naming_the_folder_and_the_reason(self, site: Site, tiny_detector: Path,
                                                                  tmp_path: Path) -> None:
        p = site.project(train=1)
        custom = site.project(train=1, schema_yaml=CUSTOM)
        cases = [(p.id, str(tmp_path / "none"), "no such run folder"), (p.id, str(tmp_path), "no model here"),
                 (p.id, "a\x00b", "no such run folder"),
                 (custom.id, str(tiny_detector), "are not local labels of its schema mini")]
        for pid, run, why in cases:
            r = site.client.put(f"/api/projects/{pid}/suggest", headers=site.h("admin"), json={"run": run})
            assert r.status_code == 400 and why in r.json()["detail"], r.text
        assert site.get(f"/api/projects/{custom.id}/suggest", "admin").json()["run"] is None
        empty = site.client.put(f"/api/projects/{p.id}/suggest", headers=site.h("admin"), json={"run": ""})
        assert empty.status_code == 422  # not a way to turn suggestions off: that is null


class TestTaskSuggestions:
    def test_pending_then_ready_for_the_readers_own_task(self, site: Site, tiny_detector: Path) -> None:
        p = site.project(train=1)
        task = p.tasks[("reader1", p.train[0])]
        model = _on(site, p.id, tiny_detector)["model"]
        r = site.get(f"/api/tasks/{task}/suggestions", "reader1")
        assert r.status_code == 200 and r.json() == {"status": "pending", "model": model, "boxes": []}
        _store(site, p.id, p.train[0])
        body = site.get(f"/api/tasks/{task}/suggestions", "reader1").json()
        assert body["status"] == "ready" and [b["id"] for b in body["boxes"]] == ["sug-0", "sug-1"]
        assert body["boxes"][0] == {"id": "sug-0", **BOXES[0]}

    def test_nobody_else_gets_them_and_a_project_without_the_setting_is_404(self, site: Site,
                                                                           tiny_detector: Path) -> None:
        plain = site.project(train=1, test=1)
        task = plain.tasks[("reader1", plain.train[0])]
        r = site.get(f"/api/tasks/{task}/suggestions", "reader1")
        assert r.status_code == 404 and "no model suggestions" in r.json()["detail"]
        p = site.project(train=1, test=1)
        _on(site, p.id, tiny_detector)
        _store(site, p.id, p.train[0])
        task = p.tasks[("reader1", p.train[0])]
        for who in ("reader2", "reader4", "reviewer1", "admin"):  # another reader's task: not found, whatever role
            assert site.get(f"/api/tasks/{task}/suggestions", who).status_code == 404
        assert site.get(f"/api/tasks/{task}/suggestions", None).status_code == 401
        review = p.reviews[("reviewer1", p.test[0])]
        assert site.get(f"/api/tasks/{review}/suggestions", "reviewer1").status_code == 404  # none in reviews

    @pytest.mark.parametrize("value", [0, 2**31, 2**63, 2**64])
    def test_ids_out_of_range_are_404_or_422(self, site: Site, value: int) -> None:
        client = TestClient(site.client.app, raise_server_exceptions=False)
        for method, url in (("GET", f"/api/tasks/{value}/suggestions"), ("GET", f"/api/projects/{value}/suggest"),
                            ("PUT", f"/api/projects/{value}/suggest")):
            r = client.request(method, url, headers=site.h("admin"), json={"run": None})
            assert r.status_code in (404, 422), (url, r.status_code)


class TestAccepted:
    def test_an_accepted_suggestion_is_saved_and_exported_as_one(self, site: Site, tiny_detector: Path) -> None:
        p = site.project(train=1)
        image = p.train[0]
        task = p.tasks[("reader1", image)]
        model = _on(site, p.id, tiny_detector)["model"]
        _store(site, p.id, image)
        s = {k: BOXES[0][k] for k in ("class_name", "x_min", "y_min", "x_max", "y_max")}
        r = site.put(f"/api/tasks/{task}/draft", "reader1", {"version": 0, "labels": [], "boxes": [
            {"id": "sug-0", **s, "source": "suggestion", "score": 1.0},
            {"id": "d1", **s, "x_max": 40.0}]})
        assert r.status_code == 200, r.text
        got = {b["id"]: b for b in r.json()["marks"]["boxes"]}
        assert (got["sug-0"]["source"], got["sug-0"]["model"], got["sug-0"]["score"]) == ("suggestion", model, 0.61)
        assert got["d1"]["source"] is None
        bad = site.put(f"/api/tasks/{task}/draft", "reader1", {"version": 1, "labels": [], "boxes": [
            {"id": "sug-5", **s, "source": "suggestion"}]})
        assert bad.status_code == 422 and bad.json()["rule"] == "unknown_suggestion"
        sub = site.post(f"/api/tasks/{task}/submit", "reader1", {"version": 1, "labels": ["Other diseases"], "boxes": [
            {"id": "sug-0", **s, "x_min": 11.0}, {"id": "d1", **s, "x_max": 40.0}]})
        assert sub.status_code == 200, sub.text
        exported = site.get(f"/api/projects/{p.id}/export.json", "admin").json()
        assert exported["suggest"]["model"] == model
        read = next(t for i in exported["images"] for t in i["tasks"] if t["task_id"] == task)
        assert {b["id"]: b["source"] for b in read["marks"]["boxes"]} == {"sug-0": "suggestion", "d1": "reader"}
