"""The leaderboard API on SQLite and PostgreSQL: every route x role, 404s, validation (422 with line numbers),
the daily limit (429), background scoring equal to ``score_submission`` on the public images, private scores
hidden until the benchmark is closed, rankings, label replacement, and the scoring worker (atomic claims, a
submission left in ``scoring`` by a killed server is scored after the restart).

The app runs with its lifespan (``with TestClient(...)``), so its scoring worker thread is live; tests wait for
a state by polling the API, never by sleeping a fixed time.
"""

from __future__ import annotations

import gzip
import io
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from cxrlab import benchmark as lb
from cxrlab.annotate.users import create_user
from cxrlab.benchmark.errors import DailyLimitError
from cxrlab.catalog import Settings, init_workspace
from cxrlab.catalog.models import Benchmark, BenchmarkImage, Submission, SubmissionState, User
from cxrlab.catalog.workspace import Workspace
from cxrlab.evaluate import score_submission
from cxrlab.web.app import create_app
from tests.support.leaderboard_data import csv_bytes, make_gt, make_submission
from tests.support.pg import BACKENDS
from tests.support.server import start_server
from tests.support.users import PASSWORD
from tests.web.conftest import Site

FINAL = {"scored", "failed", "invalid"}
WAIT_SECONDS = 120.0


GT = make_gt(24)
SIZES = csv_bytes(pd.DataFrame({"image_id": GT["image_id"].unique(), "width": 1200, "height": 1100}))
GOOD = csv_bytes(make_submission(GT, seed=1, noise=2.0))
BAD = csv_bytes(make_submission(GT, seed=2, noise=60.0, keep=0.5))


# --- the API with its scoring worker ----------------------------------------------------------------------------


@dataclass
class Lb:
    """The site's workspace behind an app whose lifespan (and scoring worker) runs."""

    site: Site
    client: TestClient

    def req(self, method: str, url: str, who: str | None, **kw):  # noqa: ANN201 - httpx.Response
        return self.client.request(method, url, headers={**self.site.h(who), **kw.pop("headers", {})}, **kw)

    def create(self, who: str = "admin", **fields) -> dict:
        body = {"name": f"b-{uuid.uuid4().hex[:10]}", "seed": 7, **fields}
        r = self.req("POST", "/api/benchmarks", who, json=body)
        assert r.status_code == 201, r.text
        return r.json()

    def benchmark(self, gt: pd.DataFrame = GT, **fields) -> int:
        """A new benchmark with *gt* as its hidden labels; its id."""
        bid = self.create(**fields)["id"]
        r = self.req("PUT", f"/api/benchmarks/{bid}/labels", "admin", content=csv_bytes(gt),
                     params={"filename": "annotations_test.csv"})
        assert r.status_code == 200, r.text
        return bid

    def submit(self, bid: int, who: str, data: bytes, filename: str = "submission.csv"):  # noqa: ANN201
        return self.req("POST", f"/api/benchmarks/{bid}/submissions", who, content=data,
                        params={"filename": filename})

    def wait(self, bid: int, sid: int, who: str) -> dict:
        """Poll the submission until its state is final (scored, failed or invalid)."""
        deadline = time.monotonic() + WAIT_SECONDS
        while True:
            sub = self.req("GET", f"/api/benchmarks/{bid}/submissions/{sid}", who).json()
            if sub["state"] in FINAL:
                return sub
            assert time.monotonic() < deadline, f"submission {sid} still {sub['state']} after {WAIT_SECONDS:.0f} s"
            time.sleep(0.05)

    def scored(self, bid: int, who: str, data: bytes) -> dict:
        r = self.submit(bid, who, data)
        assert r.status_code == 202, r.text
        sub = self.wait(bid, r.json()["id"], who)
        assert sub["state"] == "scored", sub
        return sub

    def parts(self, bid: int) -> dict[str, list[str]]:
        with self.site.workspace.sessions() as session:
            return lb.image_parts(session, session.get(Benchmark, bid))

    def stored(self, sid: int) -> Submission:
        with self.site.workspace.sessions() as session:
            return session.get(Submission, sid)


@pytest.fixture(scope="module")
def _lifespans() -> Iterator[tuple[ExitStack, dict]]:
    with ExitStack() as stack:
        yield stack, {}


@pytest.fixture
def lbs(site: Site, _lifespans: tuple[ExitStack, dict]) -> Lb:
    """One app with a running scoring worker per backend for the module."""
    stack, cache = _lifespans
    if site.backend not in cache:
        cache[site.backend] = Lb(site, stack.enter_context(TestClient(create_app(site.workspace))))
    return cache[site.backend]


# --- roles and 404s ------------------------------------------------------------------------------------------------

WHO = [None, "reader1", "reviewer1", "admin"]
ROUTES = {
    # name: (method, path, upload, expected code for None, reader1, reviewer1, admin)
    "list": ("GET", "", None, (401, 200, 200, 200)),
    "create": ("POST", "", "json", (401, 403, 403, 201)),
    "get": ("GET", "/{id}", None, (401, 200, 200, 200)),
    "labels": ("PUT", "/{id}/labels", "labels", (401, 403, 403, 200)),
    "sizes": ("PUT", "/{id}/sizes", "sizes", (401, 403, 403, 200)),
    "remove-sizes": ("DELETE", "/{id}/sizes", None, (401, 403, 403, 204)),
    "close": ("POST", "/{id}/close", None, (401, 403, 403, 200)),
    "reopen": ("POST", "/{id}/reopen", None, (401, 403, 403, 200)),
    "submit": ("POST", "/{id}/submissions", "submission", (401, 202, 202, 202)),
    "submissions": ("GET", "/{id}/submissions", None, (401, 200, 200, 200)),
    "leaderboard": ("GET", "/{id}/leaderboard", None, (401, 200, 200, 200)),
}


def _call(lbs: Lb, route: str, bid: int, who: str | None):  # noqa: ANN202 - httpx.Response
    method, path, upload, _ = ROUTES[route]
    url = "/api/benchmarks" + path.format(id=bid)
    if upload == "json":
        return lbs.req(method, url, who, json={"name": f"b-{uuid.uuid4().hex[:10]}"})
    if upload:
        return lbs.req(method, url, who, content={"labels": csv_bytes(GT), "sizes": SIZES}.get(upload, GOOD))
    return lbs.req(method, url, who)


class TestRoles:
    @pytest.mark.parametrize("route", list(ROUTES))
    def test_each_route_for_each_role(self, lbs: Lb, route: str) -> None:
        bid = lbs.benchmark()
        codes = {who: _call(lbs, route, bid, who).status_code for who in WHO}
        assert codes == dict(zip(WHO, ROUTES[route][3], strict=True))

    @pytest.mark.parametrize("route", [r for r in ROUTES if "{id}" in ROUTES[r][1]])
    def test_unknown_benchmark_is_404(self, lbs: Lb, route: str) -> None:
        assert _call(lbs, route, 999999, "admin").status_code == 404

    def test_someone_elses_submission_is_404(self, lbs: Lb) -> None:
        bid = lbs.benchmark()
        sid = lbs.submit(bid, "reader1", GOOD).json()["id"]
        assert lbs.req("GET", f"/api/benchmarks/{bid}/submissions/{sid}", "reader1").status_code == 200
        for who in ("reader2", "reviewer1", "admin"):
            assert lbs.req("GET", f"/api/benchmarks/{bid}/submissions/{sid}", who).status_code == 404
            assert lbs.req("GET", f"/api/benchmarks/{bid}/submissions", who).json() == []
        assert lbs.req("GET", f"/api/benchmarks/{bid}/submissions/{sid}", None).status_code == 401

    def test_seed_shown_to_admins_only(self, lbs: Lb) -> None:
        bid = lbs.benchmark(seed=1234)
        assert lbs.req("GET", f"/api/benchmarks/{bid}", "admin").json()["seed"] == 1234
        assert lbs.req("GET", f"/api/benchmarks/{bid}", "reader1").json()["seed"] is None

    def test_bad_benchmark_fields_are_refused(self, lbs: Lb) -> None:
        name = lbs.create()["name"]
        assert lbs.req("POST", "/api/benchmarks", "admin", json={"name": name}).status_code == 400  # taken
        assert lbs.req("POST", "/api/benchmarks", "admin", json={"name": "x", "classes": "nope"}).status_code == 400
        assert lbs.req("POST", "/api/benchmarks", "admin", json={"name": "x", "metric": "f1"}).status_code == 422
        assert lbs.req("POST", "/api/benchmarks", "admin",
                       json={"name": "x", "public_fraction": 1.0}).status_code == 422


# --- scoring and hidden private scores -------------------------------------------------------------------------------


class TestScoring:
    def test_public_score_equals_score_submission_on_public_images(self, lbs: Lb) -> None:
        bid = lbs.benchmark(metric="kaggle", public_fraction=0.5, seed=11)
        r = lbs.submit(bid, "reader1", GOOD)
        assert r.status_code == 202 and r.json()["state"] == "queued"  # scored later, never in the request
        sub = lbs.wait(bid, r.json()["id"], "reader1")
        assert sub["state"] == "scored" and sub["scored_at"] is not None
        parts = lbs.parts(bid)
        ids = sorted(GT["image_id"].unique())
        assert sorted(parts["public"] + parts["private"]) == ids and len(parts["public"]) == len(ids) // 2
        expected = {part: score_submission(GT, pd.read_csv(io.BytesIO(GOOD)), metric="kaggle", image_ids=parts[part])
                    for part in ("public", "private")}
        assert sub["public_score"] == pytest.approx(expected["public"].mAP, abs=1e-12)
        assert 0.0 < sub["public_score"] < 1.0
        stored = lbs.stored(sub["id"])  # computed and stored, but not sent
        assert stored.private_score == pytest.approx(expected["private"].mAP, abs=1e-12)
        assert sub["private_score"] is None and set(sub["per_class"]) == {"public"}
        for name, ap in expected["public"].per_class.items():
            got = sub["per_class"]["public"][name]
            assert (got is None) == (ap is None) and (ap is None or got == pytest.approx(ap, abs=1e-12)), name

    def test_split_is_the_seeded_split(self, lbs: Lb) -> None:
        bid = lbs.benchmark(public_fraction=0.25, seed=5)
        parts = lbs.parts(bid)
        split = lb.split_parts(GT["image_id"].unique().tolist(), seed=5, fraction=0.25)
        assert {i: p for p, ids in parts.items() for i in ids} == split
        assert len(parts["public"]) == round(0.25 * GT["image_id"].nunique())
        info = lbs.req("GET", f"/api/benchmarks/{bid}", "reader1").json()
        assert (info["public_images"], info["private_images"]) == (len(parts["public"]), len(parts["private"]))

    def test_private_scores_hidden_until_closed_then_visible(self, lbs: Lb) -> None:
        bid = lbs.benchmark()
        good = lbs.scored(bid, "reader1", GOOD)
        bad = lbs.scored(bid, "reader2", BAD)
        private = {s["id"]: lbs.stored(s["id"]).private_score for s in (good, bad)}
        assert all(v is not None for v in private.values())
        urls = [f"/api/benchmarks/{bid}/leaderboard", f"/api/benchmarks/{bid}/submissions",
                f"/api/benchmarks/{bid}/submissions/{good['id']}", f"/benchmarks/{bid}"]
        for who in ("reader1", "reader2", "reviewer1", "admin"):
            for url in urls:
                text = lbs.req("GET", url, who).text
                assert all(repr(v) not in text and f"{v:.4f}" not in text for v in private.values()), (who, url)
        board = lbs.req("GET", f"/api/benchmarks/{bid}/leaderboard", "admin").json()
        assert board["private"] is None and all(e["private_score"] is None for e in board["public"])
        assert [e["username"] for e in board["public"]] == ["reader1", "reader2"]

        assert lbs.req("POST", f"/api/benchmarks/{bid}/close", "admin").json()["state"] == "closed"
        board = lbs.req("GET", f"/api/benchmarks/{bid}/leaderboard", "reviewer1").json()
        assert {e["username"]: e["private_score"] for e in board["private"]} == {
            "reader1": pytest.approx(private[good["id"]]), "reader2": pytest.approx(private[bad["id"]])}
        assert [e["rank"] for e in board["private"]] == [1, 2]
        mine = lbs.req("GET", f"/api/benchmarks/{bid}/submissions/{good['id']}", "reader1").json()
        assert mine["private_score"] == pytest.approx(private[good["id"]]) and set(mine["per_class"]) == {
            "public", "private"}
        assert f"{private[good['id']]:.4f}" in lbs.req("GET", f"/benchmarks/{bid}", "reader2").text
        r = lbs.submit(bid, "reader1", GOOD)
        assert r.status_code == 409 and "closed" in r.json()["detail"]

        lbs.req("POST", f"/api/benchmarks/{bid}/reopen", "admin")
        board = lbs.req("GET", f"/api/benchmarks/{bid}/leaderboard", "reader1").json()
        assert board["private"] is None and all(e["private_score"] is None for e in board["public"])

    def test_best_public_score_per_user_ties_to_the_earlier_submission(self, lbs: Lb) -> None:
        bid = lbs.benchmark()
        lbs.scored(bid, "reader1", BAD)
        best = lbs.scored(bid, "reader1", GOOD)
        lbs.scored(bid, "reader2", GOOD)  # the same score, later
        lbs.scored(bid, "reviewer1", BAD)
        board = lbs.req("GET", f"/api/benchmarks/{bid}/leaderboard", "reader3").json()["public"]
        assert [(e["rank"], e["username"], e["entries"]) for e in board] == [
            (1, "reader1", 2), (2, "reader2", 1), (3, "reviewer1", 1)]
        assert board[0]["public_score"] == board[1]["public_score"] == best["public_score"]
        assert board[2]["public_score"] < board[0]["public_score"]

    def test_gzip_submission_scores_like_the_csv(self, lbs: Lb) -> None:
        bid = lbs.benchmark()
        plain = lbs.scored(bid, "reader1", GOOD)
        r = lbs.submit(bid, "reader2", gzip.compress(GOOD), filename="submission.csv.gz")
        zipped = lbs.wait(bid, r.json()["id"], "reader2")
        assert zipped["state"] == "scored" and zipped["public_score"] == plain["public_score"]
        assert zipped["filename"] == "submission.csv.gz"

    def test_new_labels_keep_the_split_and_rescore(self, lbs: Lb) -> None:
        bid = lbs.benchmark()
        before = lbs.parts(bid)
        sub = lbs.scored(bid, "reader1", GOOD)
        extra = make_gt(3, seed=9)
        r = lbs.req("PUT", f"/api/benchmarks/{bid}/labels", "admin", content=csv_bytes(pd.concat([GT, extra])))
        assert r.status_code == 200 and r.json()["rescored"] == 1 and r.json()["images"] == 27
        after = lbs.parts(bid)
        assert set(before["public"]) <= set(after["public"]) and set(before["private"]) <= set(after["private"])
        assert len(after["public"]) == round(0.5 * 27)
        again = lbs.wait(bid, sub["id"], "reader1")
        expected = score_submission(pd.concat([GT, extra]), pd.read_csv(io.BytesIO(GOOD)), image_ids=after["public"])
        assert again["state"] == "scored" and again["public_score"] == pytest.approx(expected.mAP, abs=1e-12)
        assert len(list(lbs.site.workspace.path("benchmarks", str(bid)).glob("gt-*.csv"))) == 1

    def test_scoring_error_is_failed_with_a_path_free_message(self, lbs: Lb) -> None:
        bid = lbs.benchmark()
        with lbs.site.workspace.sessions() as session:
            gt_path = lbs.site.workspace.path(session.get(Benchmark, bid).gt_path)
        gt_path.unlink()
        lb.scoring._ground_truth.cache_clear()
        r = lbs.submit(bid, "reader1", GOOD)
        sub = lbs.wait(bid, r.json()["id"], "reader1")
        assert sub["state"] == "failed" and sub["public_score"] is None
        assert "scoring failed on the server (EvaluationError)" in sub["messages"][-1]
        assert str(lbs.site.workspace.root) not in str(sub["messages"])


# --- uploads: validation, limits ----------------------------------------------------------------------------------


class TestUploads:
    def test_malformed_submission_is_422_with_line_numbers_and_recorded_invalid(self, lbs: Lb) -> None:
        bid = lbs.benchmark()
        frame = pd.read_csv(io.BytesIO(GOOD))
        frame.loc[1, "PredictionString"] = "3 0.9 10 20 abc 40"  # line 3
        frame.loc[2, "PredictionString"] = "77 0.9 10 20 30 40"  # line 4
        for data, name in ((csv_bytes(frame), "mine.csv"), (gzip.compress(csv_bytes(frame)), "mine.csv.gz")):
            r = lbs.submit(bid, "reader1", data, filename=name)
            assert r.status_code == 422, r.text
            body = r.json()
            assert any(p.startswith(f"{name}:3: error:") and "not a number" in p for p in body["problems"])
            assert any(p.startswith(f"{name}:4: error:") and "class" in p for p in body["problems"])
            assert body["submission_id"] is not None and "not accepted" in body["detail"]
        mine = lbs.req("GET", f"/api/benchmarks/{bid}/submissions", "reader1").json()
        assert [s["state"] for s in mine] == ["invalid", "invalid"]
        assert any(":3: error:" in m for m in mine[0]["messages"])
        assert lbs.stored(mine[0]["id"]).path is None  # the file of an invalid submission is not kept
        assert lbs.req("GET", f"/api/benchmarks/{bid}", "reader1").json()["submissions_today"] == 0

    @pytest.mark.parametrize(("data", "needle"), [
        (b"", "empty"),
        (b"\x1f\x8b\x08\x00broken", "gzip"),
        (b"image_id,score\nimg0000,1\n", "missing column"),
    ])
    def test_unreadable_upload_is_422(self, lbs: Lb, data: bytes, needle: str) -> None:
        bid = lbs.benchmark()
        r = lbs.submit(bid, "reader1", data)
        assert r.status_code == 422 and any(needle in p for p in r.json()["problems"]), r.text

    def test_missing_test_images_are_reported(self, lbs: Lb) -> None:
        bid = lbs.benchmark()
        frame = pd.read_csv(io.BytesIO(GOOD)).iloc[:-2]
        r = lbs.submit(bid, "reader1", csv_bytes(frame))
        assert r.status_code == 422 and any("2 test image(s) have no row" in p for p in r.json()["problems"])

    def test_daily_limit_per_user_and_utc_day(self, lbs: Lb) -> None:
        bid = lbs.benchmark(daily_limit=2)
        assert lbs.submit(bid, "reader1", GOOD).status_code == 202
        assert lbs.submit(bid, "reader1", b"image_id,PredictionString\nnope,1 2\n").status_code == 422  # not counted
        assert lbs.submit(bid, "reader1", BAD).status_code == 202
        r = lbs.submit(bid, "reader1", GOOD)
        assert r.status_code == 429 and "daily limit reached: 2 of 2" in r.json()["detail"]
        assert 0 < int(r.headers["Retry-After"]) <= 86400
        assert lbs.submit(bid, "reader2", GOOD).status_code == 202  # per user
        other = lbs.benchmark(daily_limit=2)
        assert lbs.submit(other, "reader1", GOOD).status_code == 202  # per benchmark
        with lbs.site.workspace.sessions() as session, session.begin():  # yesterday's submissions do not count
            uid = session.scalar(select(User.id).where(User.username == "reader1"))
            session.execute(update(Submission).where(Submission.benchmark_id == bid, Submission.user_id == uid)
                            .values(created_at=datetime.now(UTC) - timedelta(days=1, minutes=1)))
        assert lbs.submit(bid, "reader1", GOOD).status_code == 202

    def test_too_large_upload_is_413_and_not_recorded(self, lbs: Lb, monkeypatch: pytest.MonkeyPatch) -> None:
        bid = lbs.benchmark()
        monkeypatch.setattr(lb.benchmarks, "MAX_UPLOAD_BYTES", len(GOOD) - 1)
        assert lbs.submit(bid, "reader1", GOOD).status_code == 413
        assert lbs.req("PUT", f"/api/benchmarks/{bid}/labels", "admin", content=csv_bytes(GT)).status_code == 413
        assert lbs.req("GET", f"/api/benchmarks/{bid}/submissions", "reader1").json() == []

    def test_gzip_bomb_is_413_naming_the_file(self, lbs: Lb, monkeypatch: pytest.MonkeyPatch) -> None:
        bid = lbs.benchmark()
        monkeypatch.setattr(lb.benchmarks, "MAX_CSV_BYTES", 2**20)
        bomb = gzip.compress(b"image_id,PredictionString\n" + b"0" * 50 * 2**20, compresslevel=9)
        assert len(bomb) < 100_000
        r = lbs.submit(bid, "reader1", bomb, filename="bomb.csv.gz")
        assert r.status_code == 413 and r.json()["detail"] == "bomb.csv.gz: the submission unpacks to more than 1 MiB"
        r = lbs.req("PUT", f"/api/benchmarks/{bid}/labels", "admin", content=bomb, params={"filename": "gt.csv.gz"})
        assert r.status_code == 413 and r.json()["detail"] == "gt.csv.gz: the label file unpacks to more than 1 MiB"
        assert lbs.req("GET", f"/api/benchmarks/{bid}/submissions", "reader1").json() == []

    def test_no_labels_yet_is_409(self, lbs: Lb) -> None:
        bid = lbs.create()["id"]
        r = lbs.submit(bid, "reader1", GOOD)
        assert r.status_code == 409 and "no test labels" in r.json()["detail"]

    def test_malformed_labels_are_422_and_not_stored(self, lbs: Lb) -> None:
        bid = lbs.create()["id"]
        gt = GT.astype({"x_min": object})
        row = int(np.flatnonzero(gt["class_name"] != "No finding")[3])
        gt.loc[row, "x_min"] = "left"
        line = row + 2  # header on line 1
        r = lbs.req("PUT", f"/api/benchmarks/{bid}/labels", "admin", content=csv_bytes(gt),
                    params={"filename": "annotations_test.csv"})
        assert r.status_code == 422 and f"annotations_test.csv:{line}:" in r.json()["detail"], r.text
        assert lbs.req("GET", f"/api/benchmarks/{bid}", "admin").json()["has_labels"] is False
        assert not lbs.site.workspace.path("benchmarks", str(bid)).exists()

    def test_closed_benchmark_labels_are_409(self, lbs: Lb) -> None:
        bid = lbs.benchmark()
        lbs.req("POST", f"/api/benchmarks/{bid}/close", "admin")
        assert lbs.req("PUT", f"/api/benchmarks/{bid}/labels", "admin", content=csv_bytes(GT)).status_code == 409

    def test_pages(self, lbs: Lb) -> None:
        bid = lbs.benchmark()
        lbs.scored(bid, "reader1", GOOD)
        page = lbs.req("GET", f"/benchmarks/{bid}", "reader2")
        assert page.status_code == 200 and "Public leaderboard" in page.text and "reader1" in page.text
        assert 'id="submit-form"' in page.text and 'id="labels-form"' not in page.text
        assert 'id="labels-form"' in lbs.req("GET", f"/benchmarks/{bid}", "admin").text
        assert "New benchmark" in lbs.req("GET", "/benchmarks", "admin").text
        assert "New benchmark" not in lbs.req("GET", "/benchmarks", "reviewer1").text
        r = lbs.req("GET", f"/benchmarks/{bid}", None, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].startswith("/login")


# --- image sizes: boxes beyond the image ----------------------------------------------------------------------------


def _with_box(box: str, line: int = 3) -> bytes:
    """GOOD with one more group ``3 0.5 <box>`` on the given line."""
    frame = pd.read_csv(io.BytesIO(GOOD))
    frame.loc[line - 2, "PredictionString"] += f" 3 0.5 {box}"
    return csv_bytes(frame)


class TestSizes:
    def test_boxes_beyond_the_image_are_errors_once_sizes_are_given(self, lbs: Lb) -> None:
        bid = lbs.benchmark()
        beyond, edge = _with_box("10 10 1201.5 50"), _with_box("-1 -1 1201 1101")  # 1 px tolerance
        assert lbs.submit(bid, "reader1", beyond).status_code == 202  # no sizes: only negatives are checked
        r = lbs.req("PUT", f"/api/benchmarks/{bid}/sizes", "admin", content=gzip.compress(SIZES),
                    params={"filename": "sizes.csv.gz"})
        assert r.status_code == 200, r.text
        assert r.json() == {"images": 24, "test_images_without_size": 0, "not_test_images": 0, "notes": []}
        r = lbs.submit(bid, "reader1", beyond, filename="mine.csv")
        assert r.status_code == 422, r.text
        assert r.json()["problems"] == [
            "mine.csv:3: error: 1 group outside the image (0 <= x <= width, 0 <= y <= height, 1 px tolerance) "
            f"(first: group {len(pd.read_csv(io.BytesIO(GOOD)).loc[1, 'PredictionString'].split()) // 6 + 1})"]
        assert lbs.submit(bid, "reader1", edge).status_code == 202
        assert lbs.req("DELETE", f"/api/benchmarks/{bid}/sizes", "admin").status_code == 204
        assert lbs.submit(bid, "reader1", beyond).status_code == 202

    def test_labels_with_a_box_beyond_the_given_sizes_are_422(self, lbs: Lb) -> None:
        bid = lbs.benchmark()
        r = lbs.req("PUT", f"/api/benchmarks/{bid}/sizes", "admin", content=SIZES)
        assert r.status_code == 200, r.text
        gt = GT.copy()
        box = gt.index[gt["class_name"] != "No finding"][0]
        gt.loc[box, "x_max"] = 1300.0  # the image is 1200 px wide
        r = lbs.req("PUT", f"/api/benchmarks/{bid}/labels", "admin", content=csv_bytes(gt),
                    params={"filename": "gt.csv"})
        assert r.status_code == 422, r.text
        assert r.json()["problems"] == [f"gt.csv:{box + 2}: coordinate beyond the image (its width or height) "
                                        "(1 such row(s))"]
        gt.loc[box, "x_max"] = 1e9  # without sizes: beyond DICOM's largest image
        assert lbs.req("DELETE", f"/api/benchmarks/{bid}/sizes", "admin").status_code == 204
        r = lbs.req("PUT", f"/api/benchmarks/{bid}/labels", "admin", content=csv_bytes(gt))
        assert r.status_code == 422 and "coordinate beyond 65,535" in r.json()["problems"][0], r.text

    def test_images_without_a_size_and_sizes_of_other_images(self, lbs: Lb) -> None:
        bid = lbs.benchmark()
        ids = GT["image_id"].unique()
        sizes = pd.DataFrame({"image_id": [*ids[1:], "elsewhere"], "Columns": 1200, "Rows": 1100})
        r = lbs.req("PUT", f"/api/benchmarks/{bid}/sizes", "admin", content=csv_bytes(sizes))
        assert r.status_code == 200 and r.json()["test_images_without_size"] == 1 and r.json()["not_test_images"] == 1
        assert len(r.json()["notes"]) == 2
        first = pd.read_csv(io.BytesIO(GOOD))["image_id"].tolist().index(ids[0]) + 2
        r = lbs.submit(bid, "reader1", _with_box("10 10 5000 50", line=first))
        assert r.status_code == 202  # no size for that image: a warning for each of its groups, no error
        assert any(f":{first}: warning:" in m and "without a size" in m for m in r.json()["messages"])

    @pytest.mark.parametrize(("data", "needle"), [
        (b"image_id,width\na,1\n", "need columns image_id,width,height"),
        (b"image_id,width,height\nimg000000,100,0\n", "sizes.csv:2: width and height must be positive"),
        (b"image_id,width,height\nnot-a-test-image,100,100\n", "none of the 24 test images"),
        (b"", "empty"),
    ])
    def test_bad_size_files_are_422_and_not_stored(self, lbs: Lb, data: bytes, needle: str) -> None:
        bid = lbs.benchmark()
        r = lbs.req("PUT", f"/api/benchmarks/{bid}/sizes", "admin", content=data, params={"filename": "sizes.csv"})
        assert r.status_code == 422 and any(needle in p for p in r.json()["problems"]), r.text
        assert lbs.submit(bid, "reader1", _with_box("10 10 5000 50")).status_code == 202  # still no sizes


# --- the worker: atomic claims, restart after a kill -------------------------------------------------------------


@pytest.fixture(params=BACKENDS)
def fresh(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Workspace, int, int]]:
    """A workspace no server runs on (so no worker claims behind the test's back): one user and a benchmark
    with labels; yields (workspace, benchmark id, user id)."""
    url = "" if request.param == "sqlite" else request.getfixturevalue("pg_database_url")
    ws = init_workspace(tmp_path / "ws", settings=Settings(project="worker", database_url=url))
    with ws.sessions() as session:
        user = create_user(session, username="researcher", password=PASSWORD, role="annotator")
        bench = lb.create_benchmark(session, name="w", seed=3, daily_limit=100)
        lb.upload_labels(session, ws, benchmark=bench, data=csv_bytes(GT))
        ids = bench.id, user.id
    yield ws, *ids
    ws.engine.dispose()


def _queue(ws: Workspace, bid: int, uid: int, n: int) -> list[int]:
    with ws.sessions() as session:
        bench, user = session.get(Benchmark, bid), session.get(User, uid)
        return [lb.submit(session, ws, benchmark=bench, user=user, data=GOOD if k % 2 else BAD).id for k in range(n)]


def _states(ws: Workspace, ids: list[int]) -> dict[int, str]:
    with ws.sessions() as session:
        return {i: s.value for i, s in session.execute(select(Submission.id, Submission.state)
                                                        .where(Submission.id.in_(ids)))}


def _poll(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while not check():
        assert time.monotonic() < deadline, f"still waiting for {what} after {WAIT_SECONDS:.0f} s"
        time.sleep(0.05)


KILLED_CLAIM = """
import os, signal, sys
from cxrlab import benchmark as lb
from cxrlab.catalog import open_workspace
ws = open_workspace(sys.argv[1])
with ws.sessions() as session:
    print(lb.claim_next(session, worker=lb.worker_name()), flush=True)
os.kill(os.getpid(), signal.SIGKILL)  # a server killed while scoring
"""


class TestWorker:
    def test_two_workers_never_score_one_submission_twice(self, fresh, monkeypatch: pytest.MonkeyPatch) -> None:
        ws, bid, uid = fresh
        ids = _queue(ws, bid, uid, 8)
        scored: list[tuple[str, int]] = []
        real = lb.score_claimed

        def spy(session, workspace, *, submission_id: int, worker: str):  # noqa: ANN001, ANN202
            scored.append((worker, submission_id))
            return real(session, workspace, submission_id=submission_id, worker=worker)

        monkeypatch.setattr(lb.scoring, "score_claimed", spy)
        start = threading.Barrier(2)

        def run(name: str) -> None:
            start.wait()
            with ws.sessions() as session:
                lb.score_pending(session, ws, worker=name)

        threads = [threading.Thread(target=run, args=(f"host:1:{k}",)) for k in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        mine = sorted(sid for who, sid in scored if who.startswith("host:1:"))  # not the module's live workers
        assert mine == sorted(ids)  # each claimed and scored exactly once
        assert set(_states(ws, ids).values()) == {"scored"}

    @pytest.mark.slow  # a process killed with SIGKILL
    def test_restart_requeues_what_a_killed_server_was_scoring(self, fresh) -> None:
        ws, bid, uid = fresh
        killed, live = _queue(ws, bid, uid, 2)
        proc = subprocess.run([sys.executable, "-c", KILLED_CLAIM, str(ws.root)], capture_output=True, text=True,
                              timeout=120, check=False)
        assert proc.returncode == -9 and proc.stdout.strip() == str(killed), proc.stderr
        with ws.sessions() as session, session.begin():  # another live server process holds this one
            session.execute(update(Submission).where(Submission.id == live).values(
                state=SubmissionState.SCORING, claimed_by=f"{lb.worker_name()}", claimed_at=datetime.now(UTC)))
        assert _states(ws, [killed, live]) == {killed: "scoring", live: "scoring"}
        with TestClient(create_app(ws)):  # the server starts again: its worker takes the dead claim back
            _poll(lambda: _states(ws, [killed])[killed] == "scored", "the killed server's submission")
            assert _states(ws, [live])[live] == "scoring"  # a live worker's claim is left alone
        with ws.sessions() as session:
            sub = session.get(Submission, killed)
            assert sub.public_score is not None and sub.claimed_by is None

    @pytest.mark.slow  # a real cxrlab serve process
    def test_upload_answered_by_one_process_is_scored_by_another(self, fresh) -> None:
        """The scorer lives in a real ``cxrlab serve`` process; the upload is answered by an app in this process
        whose scoring thread never runs (no lifespan), as with another process of ``--workers N``. The serving
        process sees the queued submission by its own 1 s look at the queue, long before its 30 s pass."""
        ws, bid, _ = fresh
        with start_server(ws):
            client = TestClient(create_app(ws))  # not entered: no lifespan, so no scoring thread here
            token = client.post("/api/auth/token", json={"username": "researcher",
                                                         "password": PASSWORD}).json()["access_token"]
            time.sleep(1.0)  # let the server's first pass (at start) go by: what follows is found by the 1 s look
            r = client.post(f"/api/benchmarks/{bid}/submissions", content=GOOD,
                            headers={"Authorization": f"Bearer {token}"})
            assert r.status_code == 202, r.text
            sid, queued = r.json()["id"], time.monotonic()
            deadline = queued + 20.0  # well under the 30 s pass; the look comes within about 1 s
            while _states(ws, [sid])[sid] != "scored":
                assert time.monotonic() < deadline, "the other process did not pick the submission up"
                time.sleep(0.1)
            with ws.sessions() as session:
                assert session.get(Submission, sid).public_score is not None

    def test_parallel_uploads_cannot_pass_the_daily_limit(self, fresh) -> None:
        ws, _, uid = fresh
        with ws.sessions() as session:
            bid = lb.create_benchmark(session, name="limited", daily_limit=2).id
            lb.upload_labels(session, ws, benchmark=session.get(Benchmark, bid), data=csv_bytes(GT))
        start = threading.Barrier(6)
        outcomes: list[str] = []

        def upload() -> None:
            with ws.sessions() as session:
                bench, user = session.get(Benchmark, bid), session.get(User, uid)
                start.wait()
                try:
                    lb.submit(session, ws, benchmark=bench, user=user, data=GOOD)
                    outcomes.append("accepted")
                except DailyLimitError:
                    outcomes.append("limited")

        threads = [threading.Thread(target=upload) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(outcomes) == ["accepted"] * 2 + ["limited"] * 4
        stored = list(ws.path("benchmarks", str(bid), "submissions").iterdir())
        assert len(stored) == 2  # the refused uploads' files are removed

    def test_stale_claim_of_another_host_is_requeued_after_the_lease(self, fresh) -> None:
        ws, bid, uid = fresh
        (sid,) = _queue(ws, bid, uid, 1)
        with ws.sessions() as session:
            assert lb.claim_next(session, worker="elsewhere:123:abc") == sid
            assert lb.requeue_stale(session) == 0  # another host, fresh claim: maybe alive
            later = datetime.now(UTC) + lb.LEASE + timedelta(seconds=1)
            assert lb.requeue_stale(session, now=later) == 1
            assert session.scalar(select(Submission.state).where(Submission.id == sid)) is SubmissionState.QUEUED


class TestSplitParts:
    def test_same_inputs_same_split_and_exact_size(self) -> None:
        ids = [f"i{k}" for k in range(101)]
        a = lb.split_parts(ids, seed=1, fraction=0.3)
        assert a == lb.split_parts(list(reversed(ids)), seed=1, fraction=0.3)
        assert sum(p == "public" for p in a.values()) == 30
        assert a != lb.split_parts(ids, seed=2, fraction=0.3)

    def test_existing_parts_are_kept(self) -> None:
        ids = [f"i{k}" for k in range(40)]
        first = lb.split_parts(ids, seed=1, fraction=0.5)
        grown = lb.split_parts([*ids, *(f"n{k}" for k in range(10))], seed=1, fraction=0.5, existing=first)
        assert all(grown[i] == p for i, p in first.items())
        assert sum(p == "public" for p in grown.values()) == 25

    def test_both_parts_never_empty(self) -> None:
        assert sorted(lb.split_parts(["a", "b"], seed=0, fraction=0.01).values()) == ["private", "public"]
        assert sorted(lb.split_parts(["a", "b"], seed=0, fraction=0.99).values()) == ["private", "public"]


def test_image_parts_are_never_in_a_response(lbs: Lb) -> None:
    """The split itself (which images are private) stays on the server."""
    bid = lbs.benchmark()
    lbs.scored(bid, "reader1", GOOD)
    private = lbs.parts(bid)["private"]
    with lbs.site.workspace.sessions() as session:
        assert session.scalar(select(BenchmarkImage.part).where(BenchmarkImage.image_id == private[0])) == "private"
    for url in (f"/api/benchmarks/{bid}", f"/api/benchmarks/{bid}/leaderboard", f"/api/benchmarks/{bid}/submissions",
                f"/benchmarks/{bid}"):
        assert private[0] not in lbs.req("GET", url, "admin").text
