"""End-to-end: the review page (issue 11, section 4) in Debian's Chromium against a real ``cxrlab serve``.

The readers' name tags never overlap, even where three readers drew nearly the same box (the tags' rectangles
do not intersect, and each one shows its reader's colour on the canvas); "Next review" and Approve are on
screen without scrolling at 1600 x 1000; approving opens the reviewer's next open review — two reviewers, two
images: reviewer1 approves image A and lands on another open review, reviewer2's approval finalizes A and moves
on too.

The approvals use a test image other than the site's ``review_image`` (which ``test_viewer.py`` reviews).
"""

from __future__ import annotations

import re
from contextlib import closing
from itertools import combinations

import httpx
import pytest
from sqlalchemy import select

from cxrlab.catalog.models import ConsensusBox, Image, Review, Task, TaskKind, TaskState, User
from tests.e2e.conftest import PASSWORD, E2ESite
from tests.e2e.test_viewer import login, review_task, screenshot

pytestmark = pytest.mark.slow

VIEWPORT = (1600, 1000)
LOADED = "window.cxrReview && window.cxrReview.state.review && window.cxrReview.view.image"


def open_reviews(site: E2ESite, username: str) -> list[tuple[int, str]]:
    """*username*'s open review tasks in queue order (as ``/projects/{id}/review`` takes them): (task id,
    image id)."""
    with site.workspace.sessions() as session:
        rows = session.execute(
            select(Task.id, Image.image_id).join(User, User.id == Task.user_id).join(Image, Image.id == Task.image_pk)
            .join(Review, (Review.project_id == Task.project_id) & (Review.image_pk == Task.image_pk))
            .where(User.username == username, Task.kind == TaskKind.REVIEW, Review.state == "open",
                   Task.state.in_((TaskState.PENDING, TaskState.DRAFT)))
            .order_by(Task.project_id, Task.order_key, Task.id)
        ).all()
    return [(task_id, image_id) for task_id, image_id in rows]


def review_state(site: E2ESite, image_id: str) -> tuple[str, dict]:
    with site.workspace.sessions() as session:
        review = session.scalars(select(Review).join(Image, Image.id == Review.image_pk)
                                 .where(Image.image_id == image_id)).one()
        return review.state, dict(review.approvals or {})


def finalize_review(site: E2ESite, image_id: str) -> None:
    """Both reviewers approve the review of *image_id* through the API (a global label is ticked first when the
    suggested proposal has none: a final reading needs one)."""
    with site.workspace.sessions() as session:
        tasks = dict(session.execute(
            select(User.username, Task.id).join(User, User.id == Task.user_id).join(Image, Image.id == Task.image_pk)
            .where(Image.image_id == image_id, Task.kind == TaskKind.REVIEW)).all())
    with closing(httpx.Client(base_url=site.url, timeout=30)) as client:
        def auth(username: str) -> dict[str, str]:
            login_as = {"username": username, "password": PASSWORD}
            return {"Authorization": f"Bearer {client.post('/api/auth/token', json=login_as).json()['access_token']}"}

        first, second = sorted(tasks)
        review = client.get(f"/api/reviews/{tasks[first]}", headers=auth(first)).json()
        schema = client.get(f"/api/projects/{site.project_id}/schema", headers=auth(first)).json()
        if not set(review["proposal"]["labels"]) & {g["name"] for g in schema["global"]}:
            body = {**review["proposal"], "version": review["version"],
                    "labels": [*review["proposal"]["labels"], "Other diseases"]}
            r = client.put(f"/api/reviews/{tasks[first]}/proposal", json=body, headers=auth(first))
            assert r.status_code == 200, r.text
            review = r.json()
        for username in (first, second):
            r = client.post(f"/api/reviews/{tasks[username]}/approve", json={"version": review["version"]},
                            headers=auth(username))
            assert r.status_code == 200, r.text
        assert r.json()["review_state"] == "finalized"


def intersect(a: dict, b: dict) -> bool:
    return (a["x"] < b["x"] + b["w"] and b["x"] < a["x"] + a["w"]
            and a["y"] < b["y"] + b["h"] and b["y"] < a["y"] + a["h"])


def test_reader_tags_do_not_overlap_and_next_review_is_on_screen(playwright_browser, e2e_site: E2ESite) -> None:
    page = login(playwright_browser, e2e_site, "reviewer1", viewport=VIEWPORT)
    task = review_task(e2e_site, "reviewer1")
    page.goto(f"{e2e_site.url}/reviews/{task}")
    page.wait_for_function(LOADED)
    # every visible box has its tag (the readers drew three nodules a few pixels apart, see conftest._build)
    page.wait_for_function("(() => { const v = window.cxrReview.view; return v.tags.length"
                           " === v.layers.filter(l => l.visible).reduce((n, l) => n + l.boxes.length, 0); })()")
    tags = page.evaluate("window.cxrReview.view.tags")
    readers = [t for t in tags if t["layer"].startswith("reader:")]
    assert len({t["layer"] for t in readers}) == 3 and len(readers) >= 4
    overlapping = [(a["text"], b["text"]) for a, b in combinations(tags, 2) if intersect(a, b)]
    assert overlapping == [], f"name tags overlap: {overlapping}"
    # The rectangles are where the tags are painted: each shows its layer's colour (the text) on the canvas.
    colours = page.evaluate("""() => { const v = window.cxrReview.view, out = [];
        const hex = (c) => [1, 3, 5].map(i => parseInt(c.slice(i, i + 2), 16));
        for (const t of v.tags) {
            const x = Math.max(0, Math.round(t.x * v.dpr)), y = Math.max(0, Math.round(t.y * v.dpr));
            const w = Math.round(t.w * v.dpr), h = Math.round(t.h * v.dpr);
            if (x + w > v.canvas.width || y + h > v.canvas.height) continue;  // (off the canvas)
            const [r, g, b] = hex(v.layers.find(l => l.key === t.layer).color);
            const d = v.ctx.getImageData(x, y, w, h).data;
            let n = 0;
            for (let i = 0; i < d.length; i += 4)
                if (Math.abs(d[i] - r) + Math.abs(d[i + 1] - g) + Math.abs(d[i + 2] - b) < 60) n++;
            out.push([t.text, n]);
        } return out; }""")
    assert len(colours) >= 4 and all(n > 0 for _, n in colours), colours
    # "Next review" and Approve are on screen at 1600 x 1000, without scrolling anything.
    for control in (page.get_by_role("link", name="Next review"), page.get_by_role("button", name="Approve")):
        bb = control.bounding_box()
        assert bb and bb["y"] >= 0 and bb["y"] + bb["height"] <= VIEWPORT[1] and bb["x"] + bb["width"] <= VIEWPORT[0]
    assert page.evaluate("window.scrollY") == 0
    assert page.get_by_role("link", name="Next review").get_attribute("href").endswith(f"?skip={task}")
    screenshot(page, "review-tags-1600x1000")
    assert page.js_errors == []
    page.context.close()


def test_approving_opens_the_next_open_review(playwright_browser, e2e_site: E2ESite) -> None:
    """Two reviewers, two images: each approval of image A moves its reviewer on to another open review."""
    task_a, image_a = next((t, i) for t, i in open_reviews(e2e_site, "reviewer1") if i != e2e_site.review_image)
    assert len(open_reviews(e2e_site, "reviewer1")) >= 2, "the test needs another open review to move on to"
    moved_to = re.compile(r"/reviews/(\d+)$")

    first = login(playwright_browser, e2e_site, "reviewer1", viewport=VIEWPORT)
    first.goto(f"{e2e_site.url}/reviews/{task_a}")
    first.wait_for_function(LOADED)
    globals_ = first.evaluate("window.cxrReview.state.schema.global.map(l => l.name)")
    if not any(first.get_by_role("checkbox", name=g, exact=True).is_checked() for g in globals_):
        first.get_by_role("checkbox", name="Other diseases").check()  # a final reading needs a global label
    first.get_by_role("button", name="Approve").click()
    first.wait_for_url(lambda url: bool(moved_to.search(url)) and not url.endswith(f"/reviews/{task_a}"))
    first.wait_for_function(LOADED)
    shown = first.evaluate("window.cxrReview.state.review")
    assert shown["review_state"] == "open" and shown["task"]["image"]["image_id"] != image_a
    state, approvals = review_state(e2e_site, image_a)
    assert state == "open" and len(approvals) == 1  # one approval is not enough
    screenshot(first, "review-next-after-approval")

    second = login(playwright_browser, e2e_site, "reviewer2", viewport=VIEWPORT)
    task_a2 = next(t for t, i in open_reviews(e2e_site, "reviewer2") if i == image_a)
    second.goto(f"{e2e_site.url}/reviews/{task_a2}")
    second.wait_for_function(LOADED)
    second.get_by_role("button", name="Approve").click()
    second.wait_for_url(lambda url: bool(moved_to.search(url)) and not url.endswith(f"/reviews/{task_a2}"))
    second.wait_for_function(LOADED)
    assert second.evaluate("window.cxrReview.state.review.task.image.image_id") != image_a
    assert review_state(e2e_site, image_a)[0] == "finalized"
    with e2e_site.workspace.sessions() as session:
        pk = session.scalar(select(Image.id).where(Image.image_id == image_a))
        assert session.scalar(select(Image.state).where(Image.id == pk)).value == "reviewed"
        boxes = session.scalars(select(ConsensusBox).where(ConsensusBox.image_pk == pk)).all()
        assert all(b.method == "review" for b in boxes)
    # "Next review" passes over the review on screen when another one is open.
    here = int(moved_to.search(second.url).group(1))
    others = [t for t, _ in open_reviews(e2e_site, "reviewer2") if t != here]
    with second.expect_navigation(url=moved_to):
        second.get_by_role("link", name="Next review").click()
    assert int(moved_to.search(second.url).group(1)) == (others[0] if others else here)
    assert first.js_errors == [] and second.js_errors == []
    first.context.close()
    second.context.close()
