"""End-to-end: a benchmark made with the form's defaults in a vindr-cxr workspace takes the project's own labels
(issue 11, section 4).

The e2e workspace's schema is ``vindr-cxr``, so the project's ``annotations_test.csv`` numbers classes 0-21 and
"No finding" 22. The creation form must default to that numbering (it defaulted to the VinBigData challenge's,
0-14, which refused such a submission); the benchmark's page names its numbering, and the validator's message
about a class id outside it says which numbering it checked against.
"""

from __future__ import annotations

import io
import re
import uuid
from contextlib import closing

import pandas as pd
import pytest

from tests.e2e.conftest import E2ESite
from tests.e2e.test_review_page import finalize_review, open_reviews
from tests.e2e.test_viewer import admin_client, login, screenshot

pytestmark = pytest.mark.slow


def project_test_labels(site: E2ESite) -> str:
    """The project's ``annotations_test.csv`` (the reviewed consensus) with at least two images (a benchmark's
    public and private parts): while fewer reviews are final, the last open review other than the site's
    ``review_image`` is finalized through the API (the review page's test takes the first ones)."""
    path = f"/api/projects/{site.project_id}/export/annotations_test.csv"
    with closing(admin_client(site)) as admin:
        text = admin.get(path).text
        while pd.read_csv(io.StringIO(text))["image_id"].nunique() < 2:
            finalize_review(site, [i for _, i in open_reviews(site, "reviewer1") if i != site.review_image][-1])
            text = admin.get(path).text
    return text


def submission_from(labels: pd.DataFrame) -> bytes:
    """A submission that predicts exactly the boxes of *labels* (``annotations_test.csv`` layout), with their
    class ids."""
    rows = []
    for image_id, group in labels.groupby("image_id", sort=True):
        groups = [f"{int(r.class_id)} 1 0 0 1 1" if r.class_name == "No finding"
                  else f"{int(r.class_id)} 1 {r.x_min:.2f} {r.y_min:.2f} {r.x_max:.2f} {r.y_max:.2f}"
                  for r in group.itertuples()]
        rows.append((image_id, " ".join(groups)))
    return pd.DataFrame(rows, columns=["image_id", "PredictionString"]).to_csv(index=False).encode()


def test_form_defaults_take_a_submission_made_from_the_projects_labels(playwright_browser, e2e_site: E2ESite) -> None:
    text = project_test_labels(e2e_site)
    labels = pd.read_csv(io.StringIO(text))
    assert len(labels) and labels["class_id"].max() <= 22
    good = submission_from(labels)

    page = login(playwright_browser, e2e_site, "admin")
    page.get_by_role("link", name="Leaderboard").click()
    classes = page.get_by_label("Class ids")
    assert classes.input_value() == "vindr-cxr", "the form does not default to the workspace's schema"
    assert "vindr-cxr (0-22, 22 = No finding)" in classes.locator("option:checked").text_content()
    name = f"classes-{uuid.uuid4().hex[:6]}"
    page.get_by_label("Name").fill(name)
    page.get_by_role("button", name="Create").click()
    page.wait_for_url(re.compile(r"/benchmarks/\d+$"))
    bid = int(page.url.rsplit("/", 1)[1])
    assert "the vindr-cxr numbering (0-22, 22 = No finding)" in page.locator("#class-ids").text_content()
    with closing(admin_client(e2e_site)) as admin:
        assert admin.get(f"/api/benchmarks/{bid}").json()["classes"] == "vindr-cxr"
        r = admin.put(f"/api/benchmarks/{bid}/labels", content=text.encode(),
                      params={"filename": "annotations_test.csv"})
        assert r.status_code == 200, r.text
    page.reload()
    upload = page.get_by_label("Submission (image_id,PredictionString; CSV or CSV.gz)")

    # A class id beyond the numbering: the message names the id and the benchmark's numbering.
    bad = pd.read_csv(io.BytesIO(good))
    bad.loc[0, "PredictionString"] = "23 0.5 0 0 1 1"
    upload.set_input_files({"name": "bad.csv", "mimeType": "text/csv",
                            "buffer": bad.to_csv(index=False).encode()})
    page.get_by_role("button", name="Submit").click()
    problems = page.get_by_role("list", name="Problems")
    problems.get_by_text("bad.csv:2: error:").wait_for()
    assert "class_id 23 not in the vindr-cxr class list (0-22, 22 = No finding)" in problems.text_content()

    # The submission made from the project's own labels is accepted and scored, without a message.
    upload.set_input_files({"name": "from-annotations_test.csv", "mimeType": "text/csv", "buffer": good})
    page.get_by_role("button", name="Submit").click()
    page.get_by_text("scored: public score").wait_for(timeout=60_000)
    assert problems.text_content() == ""
    with closing(admin_client(e2e_site)) as admin:
        mine = admin.get(f"/api/benchmarks/{bid}/submissions").json()
    assert [(s["filename"], s["state"], s["messages"]) for s in mine if s["state"] != "invalid"] == [
        ("from-annotations_test.csv", "scored", [])]
    screenshot(page, "leaderboard-vindr-cxr-classes")
    assert page.js_errors == []
    page.context.close()
