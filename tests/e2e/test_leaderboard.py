"""End-to-end: the leaderboard page in Debian's Chromium (headless, through Playwright) against a real
``cxrlab serve`` (the shared fixtures of ``tests/e2e/conftest.py``).

An admin creates a benchmark and uploads its hidden labels through the API; a reader logs in, opens the
leaderboard from the header, uploads a malformed submission and sees the validator's messages with their line
numbers, then uploads a good one and sees it scored — by the server's background worker — on the public board,
with the score the API reports.
"""

from __future__ import annotations

import io
import uuid
from contextlib import closing

import pandas as pd
import pytest

from tests.e2e.conftest import E2ESite
from tests.e2e.test_viewer import admin_client, login, screenshot
from tests.support.leaderboard_data import csv_bytes, make_gt, make_submission

pytestmark = pytest.mark.slow


def test_upload_a_submission_and_see_it_scored_on_the_public_board(playwright_browser, e2e_site: E2ESite) -> None:
    gt = make_gt(16, seed=3)
    good = csv_bytes(make_submission(gt, seed=4, noise=3.0))
    bad = pd.read_csv(io.BytesIO(good))
    bad.loc[1, "PredictionString"] = "3 0.9 10 20 abc 40"  # line 3
    name = f"e2e-{uuid.uuid4().hex[:6]}"
    with closing(admin_client(e2e_site)) as admin:
        r = admin.post("/api/benchmarks", json={"name": name, "daily_limit": 3})
        assert r.status_code == 201, r.text
        bid = r.json()["id"]
        r = admin.put(f"/api/benchmarks/{bid}/labels", content=csv_bytes(gt), params={"filename": "gt.csv"})
        assert r.status_code == 200, r.text

    page = login(playwright_browser, e2e_site, "reader2")
    page.get_by_role("link", name="Leaderboard").click()
    page.get_by_role("link", name=name).click()
    page.wait_for_url(f"{e2e_site.url}/benchmarks/{bid}")
    upload = page.get_by_label("Submission (image_id,PredictionString; CSV or CSV.gz)")

    upload.set_input_files({"name": "bad.csv", "mimeType": "text/csv", "buffer": csv_bytes(bad)})
    page.get_by_role("button", name="Submit").click()
    problems = page.get_by_role("list", name="Problems")
    problems.get_by_text("bad.csv:3: error:").wait_for()
    assert "not a number" in problems.text_content()
    assert "not accepted" in page.locator("#submit-status").text_content()

    upload.set_input_files({"name": "good.csv", "mimeType": "text/csv", "buffer": good})
    page.get_by_role("button", name="Submit").click()
    page.get_by_text("scored: public score").wait_for(timeout=60_000)
    board = page.get_by_role("table", name="Public leaderboard")
    row = board.get_by_role("row").filter(has_text="reader2")
    row.wait_for()
    with closing(admin_client(e2e_site)) as client:
        entry = next(e for e in client.get(f"/api/benchmarks/{bid}/leaderboard").json()["public"]
                     if e["username"] == "reader2")
    assert f"{entry['public_score']:.4f}" in row.text_content() and entry["private_score"] is None
    mine = page.get_by_role("table", name="Your submissions")
    assert mine.get_by_text("scored", exact=True).count() == 1 and mine.get_by_text("invalid", exact=True).count() == 1
    assert "1 of 3 submissions today" in page.locator("#quota").text_content()
    screenshot(page, "leaderboard")
    assert page.js_errors == []
