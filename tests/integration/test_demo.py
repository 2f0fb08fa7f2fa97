"""`cxrlab demo`: phantoms through every stage, then the web app answering on a real port."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pandas as pd
import pytest

from tests.support.server import start_server

pytestmark = pytest.mark.slow  # cxrlab demo builds a workspace and serves it


class TestDemo:
    def test_demo_builds_release_and_serves(self, tmp_path: Path) -> None:
        ws = tmp_path / "demo"
        with start_server(ws, "-n", "12", command="demo", timeout=300) as server:
            health = httpx.get(f"{server.url}/health", timeout=2).json()
            # Images held back for burned-in text review are not served; every other one is.
            assert health["status"] == "ok" and 6 <= health["images"] <= 12
            lines = server.output().splitlines(keepends=True)
            # The demo users and their passwords are printed at start.
            text = "".join(lines)
            passwords = dict(re.findall(r"demo user (\S+) \(\w+\): password (\S+)", text))
            assert set(passwords) == {"admin", "reader1", "reader2", "reader3", "reviewer1", "reviewer2",
                                      "verifier1"}, text
            # The triage page: the verifier sees every queue's count; reader1 set two images aside.
            verifier = httpx.Client(base_url=server.url, timeout=10)
            r = verifier.post("/api/auth/login", json={"username": "verifier1", "password": passwords["verifier1"]})
            assert r.status_code == 200
            assert verifier.get("/triage").status_code == 200
            counts = verifier.get("/api/triage/counts").json()
            assert counts["unusable"] == 2 and set(counts) == {"filter", "text", "unusable"}
            verifier.close()
            client = httpx.Client(base_url=server.url, timeout=10)
            r = client.post("/api/auth/login", json={"username": "admin", "password": passwords["admin"]})
            assert r.status_code == 200
            page = client.get("/").text
            images = client.get("/api/images").json()
            assert images and all(img["image_id"] in page for img in images[:5])
            png = client.get(f"/api/images/{images[0]['image_id']}/render?max_size=128")
            assert png.status_code == 200 and png.content[:4] == b"\x89PNG"
            # The demo project: 3 readers per image, a test split with 2 reviewers, work left in the queues.
            project = client.get("/api/projects").json()[0]
            progress = client.get(f"/api/projects/{project['id']}/progress").json()
            assert set(progress["splits"]) == {"train", "test"}
            assert {r["role"] for r in progress["readers"]} == {"annotator", "reviewer"}
            token = client.post("/api/auth/token", json={"username": "reader1", "password": passwords["reader1"]})
            queue = client.get("/api/tasks/next", headers={"Authorization": f"Bearer {token.json()['access_token']}"})
            assert queue.json()["remaining"] > 0
        release = ws / "exports" / "demo"
        ann = pd.read_csv(release / "annotations_train.csv")
        labels = pd.read_csv(release / "image_labels_train.csv")
        assert list(ann.columns) == ["image_id", "rad_id", "class_name", "x_min", "y_min", "x_max", "y_max", "class_id"]
        assert labels.groupby("image_id").size().eq(3).all()
        # A split release: consensus rows (empty rad_id) for the test images, their files under test/.
        test_labels = pd.read_csv(release / "image_labels_test.csv", keep_default_na=False)
        assert len(test_labels) >= 1 and (test_labels["rad_id"] == "").all()
        assert len(list((release / "test").glob("*.dicom"))) == len(test_labels)
        assert (release / "coco" / "train.json").exists() and (release / "manifest.json").exists()
        # The summary names every file the release holds: each top-level file, each folder with its count.
        text = "".join(lines)
        summary = next(line for line in text.splitlines() if line.startswith("release written to"))
        top = sorted(p.name for p in release.iterdir() if p.is_file())
        assert all(name in summary for name in top), summary
        for folder in (p for p in release.iterdir() if p.is_dir()):
            assert f"{folder.name}/ {sum(1 for f in folder.rglob('*') if f.is_file())} file" in summary, summary
        # Only readers get reader ids: the admin and the reviewers have none, reader1 is R1.
        ids = {r["username"]: r["rad_id"] for r in progress["readers"]}
        assert ids["reader1"] == "R1" and ids["reader2"] == "R2" and ids["reader3"] == "R3", ids
        assert ids["reviewer1"] is None and ids["reviewer2"] is None, ids
        assert "Number of scans" in (release / "table2.md").read_text()
        # Nothing planted in the phantoms' headers reaches the release.
        import json

        truth = json.loads((ws / "incoming" / "truth.json").read_text())
        blob = b"".join(p.read_bytes() for p in release.rglob("*") if p.is_file())
        for entry in truth:
            for phi in entry["phi"]:
                assert phi.encode("utf-8") not in blob
