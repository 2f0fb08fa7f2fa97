"""Dashboard data and exports: progress per split/reader, throughput, agreement, JSON and seed CSVs (admins)."""

from __future__ import annotations

import io

import pandas as pd
import pytest

from tests.web.conftest import Site

BOX = {"class_name": "Cardiomegaly", "x_min": 5, "y_min": 5, "x_max": 50, "y_max": 40}


def _submit(site: Site, p, who: str, image: str, marks: dict) -> None:
    r = site.post(f"/api/tasks/{p.tasks[(who, image)]}/submit", who, {"version": 0, **marks})
    assert r.status_code == 200, r.text


class TestDashboard:
    @pytest.mark.parametrize("path", ["progress", "agreement", "export.json", "export/annotations_train.csv"])
    @pytest.mark.parametrize(("who", "code"), [(None, 401), ("reader1", 403), ("reviewer1", 403)])
    def test_admin_only(self, site: Site, path: str, who: str | None, code: int) -> None:
        p = site.project(train=1)
        assert site.get(f"/api/projects/{p.id}/{path}", who).status_code == code

    def test_unknown_project_or_export_is_404(self, site: Site) -> None:
        assert site.get("/api/projects/999999/progress", "admin").status_code == 404
        p = site.project(train=1)
        assert site.get(f"/api/projects/{p.id}/export/secrets.csv", "admin").status_code == 404

    def test_progress_agreement_and_exports(self, site: Site) -> None:
        p = site.project(train=2)
        a, b = p.images
        for who in ("reader1", "reader2", "reader3"):
            _submit(site, p, who, a, {"labels": ["Other diseases"], "boxes": [BOX]})
        _submit(site, p, "reader1", b, {"labels": ["No finding"]})
        _submit(site, p, "reader2", b, {"labels": ["No finding"]})
        _submit(site, p, "reader3", b, {"labels": ["COPD"]})
        prog = site.get(f"/api/projects/{p.id}/progress", "admin").json()
        assert prog["splits"]["train"]["images"] == 2 and prog["splits"]["train"]["tasks"] == {"submitted": 6}
        assert prog["throughput"]["submitted"] == 6 and prog["throughput"]["last_hour"] == 6
        assert {r["username"] for r in prog["readers"]} == {"reader1", "reader2", "reader3"}
        agr = site.get(f"/api/projects/{p.id}/agreement", "admin").json()
        assert agr["images"] == 2
        assert agr["fleiss_kappa"]["Cardiomegaly"] == 1.0
        # P_bar = (1 + 1/3) / 2, P_e = (1/3)^2 + (2/3)^2 -> kappa = (2/3 - 5/9) / (4/9) = 0.25
        assert agr["fleiss_kappa"]["No finding"] == pytest.approx(0.25)
        assert len(agr["box_agreement"]) == 3 and all(x["f1"] == 1.0 for x in agr["box_agreement"])
        ann = pd.read_csv(io.StringIO(site.get(f"/api/projects/{p.id}/export/annotations_train.csv", "admin").text))
        assert list(ann.columns) == ["image_id", "rad_id", "class_name", "x_min", "y_min", "x_max", "y_max", "class_id"]
        assert len(ann) == 5  # 3 boxes + 2 "No finding" rows, one per reader
        assert set(ann[ann["class_name"] == "Cardiomegaly"]["class_id"]) == {2}
        assert ann[ann["class_name"] == "No finding"]["x_min"].isna().all()
        labels = pd.read_csv(io.StringIO(site.get(f"/api/projects/{p.id}/export/image_labels_train.csv",
                                                  "admin").text))
        assert len(labels) == 6 and labels.groupby("image_id").size().eq(3).all()
        data = site.get(f"/api/projects/{p.id}/export.json", "admin").json()
        assert data["schema"]["name"] == "vindr-cxr" and len(data["images"]) == 2
        reads = [t for img in data["images"] for t in img["tasks"] if t["kind"] == "read"]
        assert len(reads) == 6 and all(t["marks"] for t in reads)

    def test_dashboard_page(self, site: Site) -> None:
        p = site.project(train=1)
        r = site.get(f"/projects/{p.id}/dashboard", "admin")
        assert r.status_code == 200 and "Fleiss" in r.text and "annotations_train.csv" in r.text

    def test_dashboard_page_answers_html_to_other_roles(self, site: Site) -> None:
        """Pages answer pages: a reader opening a dashboard gets the 403 page "admins only" (the project exists),
        and anyone gets the 404 page for a project that does not exist; never the API's JSON."""
        p = site.project(train=1)
        for user in ("reader1", "reviewer1"):
            r = site.get(f"/projects/{p.id}/dashboard", user)
            assert r.status_code == 403 and r.headers["content-type"].startswith("text/html")
            assert "admins only" in r.text and "<h1>Not allowed</h1>" in r.text
            assert "Fleiss" not in r.text
        for user in ("reader1", "admin"):
            r = site.get("/projects/999999/dashboard", user)
            assert r.status_code == 404 and r.headers["content-type"].startswith("text/html")
            assert "<h1>Not found</h1>" in r.text
