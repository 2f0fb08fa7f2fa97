"""End-to-end: the reading viewer tells the truth and keeps still (issue 11, section 4).

The status line shows the zoom the canvas really has after the wheel, ``+`` and ``F``; the Submit button does
not move when a three-line QC message appears or when boxes are added; after a refused submit the status says
so and the marks on screen are saved as the draft ("all changes saved", nothing pending); the class list scrolls
to every class, and a class picked by search is selected and scrolled into view.

The tests use reader3's first task and put its draft back as it was (empty) at the end, so the other browser
tests see the queue they expect.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest

from tests.e2e.conftest import PASSWORD, E2ESite
from tests.e2e.test_viewer import open_reader, screenshot, shown_image, wait_image, wait_saved

pytestmark = pytest.mark.slow

READER = "reader3"


@pytest.fixture
def reader(playwright_browser, e2e_site: E2ESite) -> Iterator:  # noqa: ANN001
    """reader3's viewer on its first task; afterwards the task's draft is emptied again through the API."""
    page = open_reader(playwright_browser, e2e_site, READER)
    task_id = page.evaluate("window.cxrViewer.state.task.id")
    yield page
    page.context.close()
    with httpx.Client(base_url=e2e_site.url, timeout=30) as client:
        token = client.post("/api/auth/token", json={"username": READER, "password": PASSWORD}).json()["access_token"]
        client.headers["Authorization"] = f"Bearer {token}"
        task = client.get(f"/api/tasks/{task_id}").json()
        if task["state"] in ("pending", "draft") and (task["marks"]["labels"] or task["marks"]["boxes"]):
            r = client.put(f"/api/tasks/{task_id}/draft", json={"version": task["version"], "labels": [], "boxes": []})
            assert r.status_code == 200, r.text


def draw_box(page, fx0: float, fy0: float, fx1: float, fy1: float) -> None:  # noqa: ANN001
    """Drag a box between two points given as fractions of the IMAGE (inside it, whatever its aspect ratio:
    a drag starting beside a letterboxed image would make a box clamped to the image's edge)."""
    (x0, y0), (x1, y1) = page.evaluate("""([a, b]) => { const v = window.cxrViewer.view, s = v.size;
        return [a, b].map(([fx, fy]) => v.toScreen(fx * s.columns, fy * s.rows)).map(p => [p.x, p.y]); }""",
                                       [[fx0, fy0], [fx1, fy1]])
    bb = page.get_by_role("img", name="Chest X-ray").bounding_box()
    page.mouse.move(bb["x"] + x0, bb["y"] + y0)
    page.mouse.down()
    page.mouse.move(bb["x"] + x1, bb["y"] + y1, steps=6)
    page.mouse.up()


def status_zoom(page) -> int:  # noqa: ANN001
    """The percentage after "zoom" in the status line."""
    return int(re.search(r"zoom (\d+)%", page.get_by_role("status").text_content()).group(1))


def real_zoom(page) -> int:  # noqa: ANN001
    return page.evaluate("Math.round(window.cxrViewer.view.zoom * 100)")


def test_status_line_shows_the_zoom_after_wheel_plus_and_fit(reader) -> None:  # noqa: ANN001
    page = reader
    fit = real_zoom(page)
    assert status_zoom(page) == fit
    canvas = page.get_by_role("img", name="Chest X-ray")
    canvas.focus()
    page.keyboard.press("+")
    assert real_zoom(page) > fit and status_zoom(page) == real_zoom(page)
    bb = canvas.bounding_box()
    page.mouse.move(bb["x"] + bb["width"] / 2, bb["y"] + bb["height"] / 2)
    before = real_zoom(page)
    page.mouse.wheel(0, -300)
    page.wait_for_function(f"Math.round(window.cxrViewer.view.zoom * 100) !== {before}")
    assert real_zoom(page) > before and status_zoom(page) == real_zoom(page)
    page.keyboard.press("-")
    assert status_zoom(page) == real_zoom(page)
    page.keyboard.press("f")
    assert real_zoom(page) == fit and status_zoom(page) == fit
    page.get_by_role("button", name="Zoom in").click()
    assert status_zoom(page) == real_zoom(page) > fit
    assert page.js_errors == []


def test_submit_button_stays_put_with_a_long_message_and_many_boxes(reader) -> None:  # noqa: ANN001
    page = reader
    submit = page.get_by_role("button", name="Submit")
    where = submit.bounding_box()
    # A three-line message from the server (answered here by the test: the QC rules' own messages are shorter).
    long = ("This reading was refused: the server's message is long enough to need three lines or more in the "
            "side panel, and the Submit button below it must stay exactly where it was while it is shown, "
            "whatever its length.")
    page.route("**/api/tasks/*/submit", lambda route: route.fulfill(
        status=422, json={"detail": long, "rule": "global_label_required"}))
    submit.click()
    alert = page.get_by_role("alert")
    alert.filter(has_text="exactly where it was").wait_for()
    assert alert.evaluate("e => e.scrollHeight > 2.5 * parseFloat(getComputedStyle(e).lineHeight)")  # 3+ lines
    assert submit.bounding_box() == where
    page.unroute("**/api/tasks/*/submit")
    # Ten boxes, one after the other: the list of boxes scrolls, the button does not move.
    for k in range(10):
        x, y = 0.05 + 0.18 * (k % 5), 0.15 + 0.4 * (k // 5)
        draw_box(page, x, y, x + 0.08, y + 0.1)
        assert page.evaluate("window.cxrViewer.view.editableLayer.boxes.length") == k + 1
        assert submit.bounding_box() == where, f"Submit moved after box {k + 1}"
    assert page.get_by_role("button", name="Delete box 10").is_visible() or page.evaluate(
        "(() => { const l = document.getElementById('box-list'); return l.scrollHeight > l.clientHeight; })()")
    screenshot(page, "viewer-layout-long-message-ten-boxes")
    wait_saved(page)
    assert page.js_errors == []


def test_refused_submit_says_so_and_saves_the_draft(reader, e2e_site: E2ESite) -> None:  # noqa: ANN001
    page = reader
    first = shown_image(page)
    task_id = page.evaluate("window.cxrViewer.state.task.id")
    draw_box(page, 0.3, 0.3, 0.5, 0.45)
    page.get_by_role("img", name="Chest X-ray").focus()
    page.keyboard.press("n")  # "No finding" with a box: refused by the server (422 no_finding_exclusive)
    page.get_by_role("button", name="Submit").click()
    page.get_by_role("alert").filter(has_text="excludes every box").wait_for()
    wait_image(page)
    assert shown_image(page) == first
    status = page.get_by_role("status")
    status.filter(has_text="submit refused: no_finding_exclusive").wait_for()
    # Nothing is left pending: the marks on screen were saved as the draft, and the status says so.
    wait_saved(page)
    text = status.text_content()
    assert "submit refused: no_finding_exclusive" in text and "all changes saved" in text
    assert "unsaved" not in text
    screenshot(page, "viewer-refused-status")
    with httpx.Client(base_url=e2e_site.url, timeout=30) as client:
        token = client.post("/api/auth/token", json={"username": READER, "password": PASSWORD}).json()["access_token"]
        task = client.get(f"/api/tasks/{task_id}", headers={"Authorization": f"Bearer {token}"}).json()
    assert task["state"] == "draft"
    assert task["marks"]["labels"] == ["No finding"] and len(task["marks"]["boxes"]) == 1
    # The next change clears the refusal from the status line.
    page.get_by_role("checkbox", name="No finding").uncheck()
    assert "submit refused" not in status.text_content()
    wait_saved(page)
    assert page.js_errors == []


def test_every_class_is_reachable_and_search_scrolls_to_the_pick(reader) -> None:  # noqa: ANN001
    page = reader
    classes = page.evaluate("window.cxrViewer.state.schema.local.map(l => l.name)")
    assert len(classes) == 22
    listbox = page.get_by_role("listbox", name="Box classes")

    def in_view(name: str) -> bool:
        """The option lies inside the list's visible box (not hidden below its scrolled edge)."""
        return page.evaluate("""(name) => {
            const list = document.querySelector('[role=listbox]');
            const item = list.querySelector(`[data-name="${CSS.escape(name)}"]`);
            const l = list.getBoundingClientRect(), r = item.getBoundingClientRect();
            return r.height > 0 && r.top >= l.top - 0.5 && r.bottom <= l.bottom + 0.5; }""", name)

    assert in_view(classes[0])
    # The list is taller than the panel: it scrolls, and every class can be reached with the wheel.
    assert listbox.evaluate("l => l.scrollHeight > l.clientHeight")
    bb = listbox.bounding_box()
    page.mouse.move(bb["x"] + bb["width"] / 2, bb["y"] + bb["height"] / 2)
    scroll_top = "document.querySelector('[role=listbox]').scrollTop"
    for _ in range(20):
        if in_view(classes[-1]):
            break
        before = page.evaluate(scroll_top)
        page.mouse.wheel(0, 200)
        page.wait_for_function(f"{scroll_top} !== {before}")  # the wheel scrolls the list
    assert in_view(classes[-1])
    page.get_by_role("option", name=classes[-1]).click()
    assert page.get_by_role("option", name=classes[-1]).get_attribute("aria-selected") == "true"
    # Back at the top, search a class far down the list: Enter selects it and scrolls the list to it.
    listbox.evaluate("l => { l.scrollTop = 0; }")
    target = "Pneumothorax"
    assert target in classes[12:] and not in_view(target)
    page.get_by_role("img", name="Chest X-ray").focus()
    page.keyboard.press("c")
    page.keyboard.type("pneumoth")
    page.keyboard.press("Enter")
    assert page.get_by_role("option", name=target).get_attribute("aria-selected") == "true"
    assert page.evaluate("window.cxrViewer.view.currentClass") == target
    assert in_view(target), "the class picked by search is not scrolled into view"
    # A box drawn now gets that class.
    draw_box(page, 0.3, 0.3, 0.45, 0.42)
    assert page.evaluate("window.cxrViewer.view.editableLayer.boxes[0].class_name") == target
    screenshot(page, "viewer-class-picked-by-search")
    wait_saved(page)
    assert page.js_errors == []
