"""End-to-end: Debian's Chromium (headless, through Playwright) against a real ``cxrlab serve``.

A reader logs in, draws a box, picks its class, ticks a global label and submits; the next image appears and
the admin's export holds the row. Window/level by mouse drag changes the displayed pixels, and the browser's
windowing equals the server's rendering within one grey level. "No finding" plus a box is refused with a visible
message. Two reviewers merge three readers' marks and finalize. A stale save (409) reloads the viewer. The
figures (submit -> next image painted, window/level frames per second) are recorded, printed at the end of the
run and written to ``test-artifacts/e2e-metrics.json``, never asserted; screenshots go to ``test-artifacts/``.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import statistics
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image as PILImage
from sqlalchemy import select

from cxrlab.catalog.models import ConsensusBox, Image, Review, Task, TaskKind, TaskState, User
from tests.e2e.conftest import ARTIFACTS, METRICS, PASSWORD, E2ESite
from tests.support.browser import form_login

pytestmark = pytest.mark.slow


#: A page-side function turning a Uint8Array into base64 (much faster to carry than a JSON array).
B64 = """const b64 = (u8) => { let s = ""; for (let i = 0; i < u8.length; i += 32768)
    s += String.fromCharCode.apply(null, u8.subarray(i, i + 32768)); return btoa(s); };"""


def unb64(text: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), dtype=np.uint8)


def screenshot(page, name: str) -> None:  # noqa: ANN001
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"))


def login(browser, site: E2ESite, username: str, viewport: tuple[int, int] = (1400, 900)):  # noqa: ANN001, ANN201
    """A fresh browser context (a playwright Page) logged in through the login form."""
    context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]}, accept_downloads=True)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.js_errors = errors
    form_login(page, site.url, username, PASSWORD)
    return page


def open_reader(browser, site: E2ESite, username: str):  # noqa: ANN001, ANN201
    page = login(browser, site, username)
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.requests_seen = requests
    page.get_by_role("link", name="Read e2e").click()
    wait_image(page)
    return page


def wait_image(page) -> None:  # noqa: ANN001
    """Until the viewer shows the 16-bit pixels of its task (and the next images are prefetched)."""
    page.wait_for_function("() => { const v = window.cxrViewer; return v && v.state.task && v.view.image"
                           " && v.view.image.imageId === v.state.task.image.image_id; }")


def wait_moved_on(page, image_id: str) -> None:  # noqa: ANN001
    """Until the viewer shows another image than *image_id* (or says the queue is empty)."""
    page.wait_for_function(
        f"!window.cxrViewer.state.task || window.cxrViewer.state.task.image.image_id !== '{image_id}'")


def shown_image(page) -> str:  # noqa: ANN001
    return page.evaluate("window.cxrViewer.state.task.image.image_id")


def draw_box(page, fx0: float, fy0: float, fx1: float, fy1: float) -> None:  # noqa: ANN001
    """Drag a box on the canvas between two points given as fractions of the canvas size."""
    canvas = page.get_by_role("img", name="Chest X-ray")
    bb = canvas.bounding_box()
    page.mouse.move(bb["x"] + bb["width"] * fx0, bb["y"] + bb["height"] * fy0)
    page.mouse.down()
    page.mouse.move(bb["x"] + bb["width"] * fx1, bb["y"] + bb["height"] * fy1, steps=6)
    page.mouse.up()


def task_number(page) -> int:  # noqa: ANN001
    """n of "Task n of m" in the status line."""
    return int(page.get_by_role("status").text_content().split(" of ")[0].removeprefix("Task "))


def wait_saved(page) -> None:  # noqa: ANN001
    page.wait_for_function("document.getElementById('status').dataset.save === 'saved'")


def wait_prefetched(page) -> None:  # noqa: ANN001
    """Until the image of the next task in the queue is loaded (what the viewer prefetches after a paint)."""
    page.wait_for_function("() => { const v = window.cxrViewer; const n = v.state.queue[1];"
                           " return !n || v.cache.ready(n.image.image_id) !== null; }")


def review_task(site: E2ESite, username: str) -> int:
    """The id of *username*'s review task of the site's review image."""
    with site.workspace.sessions() as session:
        return session.scalar(
            select(Task.id).join(User, User.id == Task.user_id).join(Image, Image.id == Task.image_pk)
            .where(User.username == username, Image.image_id == site.review_image, Task.kind == TaskKind.REVIEW))


def admin_client(site: E2ESite) -> httpx.Client:
    client = httpx.Client(base_url=site.url, timeout=30)
    r = client.post("/api/auth/token", json={"username": "admin", "password": PASSWORD})
    client.headers["Authorization"] = f"Bearer {r.json()['access_token']}"
    return client


class TestReading:
    def test_box_class_labels_submit_next_image_and_export(self, playwright_browser, e2e_site: E2ESite) -> None:
        page = open_reader(playwright_browser, e2e_site, "reader1")
        first = shown_image(page)
        n = task_number(page)
        image = page.evaluate("window.cxrViewer.state.task.image")
        rows, columns = image["rows"], image["columns"]
        draw_box(page, 0.35, 0.35, 0.55, 0.5)
        page.get_by_role("option", name="Pleural effusion").click()
        drawn = page.evaluate("window.cxrViewer.view.editableLayer.boxes[0]")
        assert drawn["class_name"] == "Pleural effusion"
        # Move it (drag from inside), then resize it (drag the bottom-right handle).
        draw_box(page, 0.45, 0.42, 0.50, 0.46)
        moved = page.evaluate("window.cxrViewer.view.editableLayer.boxes[0]")
        assert moved["x_min"] > drawn["x_min"] and moved["y_min"] > drawn["y_min"]
        assert abs((moved["x_max"] - moved["x_min"]) - (drawn["x_max"] - drawn["x_min"])) < 1e-6
        corner = page.evaluate("(() => { const b = window.cxrViewer.view.editableLayer.boxes[0];"
                               " const p = window.cxrViewer.view.toScreen(b.x_max, b.y_max); return [p.x, p.y]; })()")
        bb = page.get_by_role("img", name="Chest X-ray").bounding_box()
        page.mouse.move(bb["x"] + corner[0], bb["y"] + corner[1])
        page.mouse.down()
        page.mouse.move(bb["x"] + corner[0] + 30, bb["y"] + corner[1] + 20, steps=4)
        page.mouse.up()
        resized = page.evaluate("window.cxrViewer.view.editableLayer.boxes[0]")
        assert resized["x_max"] > moved["x_max"] and resized["x_min"] == moved["x_min"]
        # Search the class list: typing filters it, Enter gives the selected box the first match.
        page.keyboard.press("c")
        page.keyboard.type("nodu")
        page.keyboard.press("Enter")
        page.get_by_role("checkbox", name="Pneumonia").check()
        wait_saved(page)
        box = page.evaluate("window.cxrViewer.view.editableLayer.boxes[0]")
        assert page.evaluate("window.cxrViewer.view.editableLayer.boxes.length") == 1
        assert box["class_name"] == "Nodule/Mass"
        # boxes are in pixels of the original image, inside it
        assert 0 <= box["x_min"] < box["x_max"] <= columns and 0 <= box["y_min"] < box["y_max"] <= rows
        assert page.get_by_role("button", name="Select box 1: Nodule/Mass").is_visible()
        screenshot(page, "viewer-box-drawn")
        wait_prefetched(page)
        page.get_by_role("button", name="Submit").click()
        wait_moved_on(page, first)
        wait_image(page)
        assert page.get_by_role("alert").text_content() == ""
        assert task_number(page) == n + 1
        screenshot(page, "viewer-next-image")

        # More reads from the keyboard (Shift+2 ticks the second global label, Enter submits), timing each
        # submit -> next image painted.
        for _ in range(3):
            if page.evaluate("window.cxrViewer.state.queue.length") < 2:
                break
            wait_prefetched(page)
            page.wait_for_function("!window.cxrViewer.state.busy")
            before = shown_image(page)
            page.get_by_role("img", name="Chest X-ray").focus()
            page.keyboard.press("Shift+Digit2")
            page.keyboard.press("Enter")
            wait_moved_on(page, before)
            wait_image(page)
        page.wait_for_timeout(100)
        metrics = page.evaluate("window.cxrViewer.metrics")
        assert len(metrics["submitToPaint"]) >= 2
        METRICS["submit_to_next_image_painted_ms"] = {
            "values": [round(v, 1) for v in metrics["submitToPaint"]],
            "median": round(statistics.median(metrics["submitToPaint"]), 1),
            "max": round(max(metrics["submitToPaint"]), 1),
        }
        METRICS["submit_request_ms"] = {"values": [round(v, 1) for v in metrics["submitRequest"]],
                                        "median": round(statistics.median(metrics["submitRequest"]), 1)}
        # Blinding: the reading viewer never asks for another reader's marks.
        assert not [u for u in page.requests_seen if "/api/reviews" in u or "/export" in u]
        assert page.js_errors == []

        # The admin's export holds the submitted box with the reader's rad_id and its coordinates.
        admin = login(playwright_browser, e2e_site, "admin")
        admin.get_by_role("link", name="Dashboard e2e").click()
        with admin.expect_download() as download:
            admin.get_by_role("link", name="annotations_train.csv").click()
        rows_out = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text())))
        mine = [r for r in rows_out if r["image_id"] == first and r["class_name"] == "Nodule/Mass"]
        assert len(mine) == 1
        assert abs(float(mine[0]["x_min"]) - box["x_min"]) < 0.01 and abs(float(mine[0]["y_max"]) - box["y_max"]) < 0.01
        with admin.expect_download() as download:
            admin.get_by_role("link", name="JSON (codes, no free text)").click()
        exported = json.loads(Path(download.value.path()).read_text())
        assert first in json.dumps(exported) and exported["free_text"] is False
        with admin.expect_download() as download:
            admin.get_by_role("link", name="JSON with free text (not de-identified)").click()
        exported = json.loads(Path(download.value.path()).read_text())
        assert first in json.dumps(exported) and "not de-identified" in exported["warning"]
        screenshot(admin, "dashboard")
        admin.context.close()
        page.context.close()

    def test_no_finding_with_a_box_is_refused_with_a_visible_message(self, playwright_browser,
                                                                      e2e_site: E2ESite) -> None:
        page = open_reader(playwright_browser, e2e_site, "reader2")
        wait_prefetched(page)
        first = shown_image(page)
        draw_box(page, 0.3, 0.3, 0.5, 0.45)
        page.get_by_role("img", name="Chest X-ray").focus()
        page.keyboard.press("n")
        assert page.get_by_role("checkbox", name="No finding").is_checked()
        page.get_by_role("button", name="Submit").click()
        alert = page.get_by_role("alert")
        alert.filter(has_text="excludes every box").wait_for()
        assert "'No finding' excludes every box and every other label" in alert.text_content()
        # The viewer stays on (or went back to) the refused image with the reader's marks.
        wait_image(page)
        assert shown_image(page) == first
        assert page.evaluate("window.cxrViewer.view.editableLayer.boxes.length") == 1
        assert page.get_by_role("checkbox", name="No finding").is_checked()
        screenshot(page, "viewer-qc-refused")
        # "?" opens the shortcut overlay, Esc closes it.
        page.get_by_role("img", name="Chest X-ray").focus()
        page.keyboard.press("?")
        assert page.get_by_role("dialog", name="Keyboard shortcuts").is_visible()
        screenshot(page, "viewer-help")
        page.keyboard.press("Escape")
        assert not page.get_by_role("dialog", name="Keyboard shortcuts").is_visible()
        # Removing the box makes it acceptable.
        page.get_by_role("button", name="Delete box 1").click()
        page.get_by_role("button", name="Submit").click()
        wait_moved_on(page, first)
        assert page.js_errors == []
        page.context.close()

    def test_unusable_image_leaves_the_queue_and_shows_on_the_dashboard(self, playwright_browser,
                                                                       e2e_site: E2ESite) -> None:
        page = open_reader(playwright_browser, e2e_site, "reader3")
        first = shown_image(page)
        page.get_by_role("img", name="Chest X-ray").focus()
        page.keyboard.press("u")
        # A reason is required: without one the dialog stays open.
        page.get_by_role("button", name="Set aside").click()
        assert page.get_by_role("dialog", name="Set this image aside as unusable").is_visible()
        page.get_by_label("Reason").select_option(label="poor image quality")
        page.get_by_label("Note").fill("cut off at the bases, DOE^JOHN 1234567 on the film")
        screenshot(page, "viewer-unusable")
        page.get_by_role("button", name="Set aside").click()
        wait_moved_on(page, first)
        with e2e_site.workspace.sessions() as session:
            rows = session.execute(select(Task.state, Task.reason, Image.state_reason)
                                   .join(Image, Image.id == Task.image_pk)
                                   .where(Image.image_id == first, Task.kind == TaskKind.READ)).all()
        states = [state for state, _, _ in rows]
        assert TaskState.UNUSABLE in states and TaskState.PENDING not in states and TaskState.DRAFT not in states
        assert [reason for state, reason, _ in rows if state is TaskState.UNUSABLE] == ["poor_quality"]
        assert rows[0][2].endswith(": poor_quality")
        admin = login(playwright_browser, e2e_site, "admin")
        admin.get_by_role("link", name="Dashboard e2e").click()
        section = admin.get_by_role("region", name="Set aside as unusable (1)")
        text = section.text_content()
        assert "poor image quality" in text and first in text and "DOE" not in text and "cut off" not in text
        admin.context.close()
        page.context.close()

    def test_stale_save_is_refused_and_the_viewer_reloads(self, playwright_browser, e2e_site: E2ESite) -> None:
        page = open_reader(playwright_browser, e2e_site, "reader1")
        task = page.evaluate("window.cxrViewer.state.task")
        # The same reader saves the task from elsewhere (another tab, an API client): the viewer's copy is stale.
        client = httpx.Client(base_url=e2e_site.url, timeout=30)
        login_as = {"username": "reader1", "password": PASSWORD}
        token = client.post("/api/auth/token", json=login_as).json()["access_token"]
        r = client.put(f"/api/tasks/{task['id']}/draft", headers={"Authorization": f"Bearer {token}"},
                       json={"version": task["version"], "labels": ["COPD"], "boxes": []})
        assert r.status_code == 200
        page.get_by_role("checkbox", name="Lung tumor").check()
        page.get_by_role("alert").filter(has_text="reloaded").wait_for()
        # reloaded: the server's copy is on screen
        assert page.get_by_role("checkbox", name="COPD").is_checked()
        assert not page.get_by_role("checkbox", name="Lung tumor").is_checked()
        assert page.evaluate("window.cxrViewer.state.version") == r.json()["version"]
        page.context.close()


class TestWindowing:
    def test_drag_changes_displayed_pixels_and_frame_rate(self, playwright_browser, e2e_site: E2ESite) -> None:
        page = open_reader(playwright_browser, e2e_site, "reader2")
        levels = f"(() => {{ {B64} return b64(window.cxrViewer.view.displayedLevels().levels); }})()"
        before = unb64(page.evaluate(levels))
        page.get_by_role("button", name="Window").click()
        canvas = page.get_by_role("img", name="Chest X-ray")
        bb = canvas.bounding_box()
        cx, cy = bb["x"] + bb["width"] / 2, bb["y"] + bb["height"] / 2
        page.mouse.move(cx, cy)
        page.mouse.down()
        page.mouse.move(cx - 150, cy + 80, steps=10)
        page.mouse.up()
        page.wait_for_timeout(100)
        after = unb64(page.evaluate(levels))
        assert before.shape == after.shape
        assert np.mean(before != after) > 0.2, "window/level drag did not change the displayed pixels"
        assert page.get_by_label("Window preset").input_value() == "custom"
        screenshot(page, "viewer-window-dragged")
        # Synthetic drag: one pointer move per animation frame for 2 s; count frames painted with a new window.
        fps = page.evaluate("window.cxrViewer.view.measureWindowDrag(2000)")
        fps.pop("shape")
        assert fps["frames"] > 0
        fps["max_fps_from_cost"] = 1000 / fps["window_ms_per_frame"]
        METRICS["window_level_drag"] = {k: round(v, 2) if isinstance(v, float) else v for k, v in fps.items()}
        assert page.js_errors == []
        page.context.close()

    def test_browser_windowing_equals_server_rendering(self, playwright_browser, e2e_site: E2ESite) -> None:
        """For every image: the browser's default window and a LINEAR window vs the server's JPEG-free PNG
        rendering of the same window, within 1 grey level (MONOCHROME1 images included)."""
        page = login(playwright_browser, e2e_site, "admin")
        with e2e_site.workspace.sessions() as session:
            images = session.scalars(select(Image.image_id).where(Image.deid_path.is_not(None))).all()
        photometrics = set()
        worst = 0
        for image_id in images:
            result = page.evaluate("async ([id, size]) => {" + B64 + """
                const { loadImage } = await import("/static/images.js");
                const { displayLevels, applyLevels } = await import("/static/windowing.js");
                const img = await loadImage(id, size);
                const grey = (win) => {
                    const out = new ImageData(img.width, img.height);
                    applyLevels(img.packed, displayLevels(img.meta, win, img.monochrome1), out);
                    const grey = new Uint8Array(img.width * img.height);
                    for (let i = 0; i < grey.length; i++) grey[i] = out.data[4 * i];
                    return b64(grey);
                };
                const lo = img.meta.offset, hi = img.meta.offset + img.meta.scale * 65535;
                const win = {kind: "window", center: lo + 0.4 * (hi - lo), width: 0.5 * (hi - lo), function: "LINEAR"};
                return {shape: img.meta.shape, photometric: img.meta.photometric, fn: img.defaultWindow.function,
                        initial: grey(img.defaultWindow), custom: grey(win), window: [win.center, win.width]};
            }""", [image_id, 512])
            photometrics.add(result["photometric"])
            shape = tuple(result["shape"])
            for key, query in (("initial", ""), ("custom", "&window={:.6f},{:.6f}".format(*result["window"]))):
                if key == "custom" and result["fn"] not in ("LINEAR", None):
                    continue  # the render endpoint applies an explicit window with the file's own VOI function
                r = page.request.get(f"{e2e_site.url}/api/images/{image_id}/render?format=png&max_size=512{query}")
                assert r.ok
                server = np.asarray(PILImage.open(io.BytesIO(r.body())), dtype=np.int16)
                browser = unb64(result[key]).astype(np.int16).reshape(shape)
                assert server.shape == browser.shape
                diff = int(np.abs(server - browser).max())
                worst = max(worst, diff)
                assert diff <= 1, f"{image_id} {key}: browser and server differ by {diff} grey levels"
        METRICS["browser_vs_server_max_grey_level_difference"] = {"images": len(images), "max": worst,
                                                                  "photometric": sorted(photometrics)}
        page.context.close()


class TestReview:
    def test_reviewers_merge_three_readers_and_finalize(self, playwright_browser, e2e_site: E2ESite) -> None:
        page = login(playwright_browser, e2e_site, "reviewer1")
        page.get_by_role("link", name="Review e2e").click()  # the reviewer's next open review
        page.wait_for_function("window.cxrReview && window.cxrReview.view.image && window.cxrReview.state.review")
        page.goto(f"{e2e_site.url}/reviews/{review_task(e2e_site, 'reviewer1')}")
        page.wait_for_function("window.cxrReview && window.cxrReview.view.image && window.cxrReview.state.review")
        review = page.evaluate("window.cxrReview.state.review")
        # The suggested consensus: the nodule all three readers drew (fused), not the effusion only one drew.
        assert [b["class_name"] for b in review["suggestion"]["boxes"]] == ["Nodule/Mass"]
        assert len(review["readers"]) == 3
        legend = page.get_by_role("list", name="Readers")
        for reader in review["readers"]:
            assert legend.get_by_role("checkbox", name=f"Show {reader['rad_id']}").is_checked()
        # Merge by hand: copy one reader's box into the proposal (a click on it, then "Copy reader box").
        layer = page.evaluate("window.cxrReview.view.layers.find("
                              "l => l.boxes.some(b => b.class_name === 'Pleural effusion'))")
        box = next(b for b in layer["boxes"] if b["class_name"] == "Pleural effusion")
        # hide the proposal so the click lands on the reader's box
        page.get_by_role("checkbox", name="Show proposal").uncheck()
        x, y = page.evaluate("([x, y]) => { const p = window.cxrReview.view.toScreen(x, y); return [p.x, p.y]; }",
                             [(box["x_min"] + box["x_max"]) / 2, (box["y_min"] + box["y_max"]) / 2])
        bb = page.get_by_role("img", name="Chest X-ray under review").bounding_box()
        for other in page.evaluate("window.cxrReview.view.layers.map(l => l.key)"):
            if other not in (layer["key"], "proposal"):
                page.get_by_role("checkbox", name=f"Show {other.split(':', 1)[1]}").uncheck()
        page.mouse.click(bb["x"] + x, bb["y"] + y)
        page.get_by_role("checkbox", name="Show proposal").check()
        proposal_boxes = "window.cxrReview.view.layers.find(l => l.key === 'proposal').boxes.length"
        n_before = page.evaluate(proposal_boxes)
        page.get_by_role("button", name="Copy reader box").click()
        assert page.evaluate(proposal_boxes) == n_before + 1
        page.get_by_role("checkbox", name="Other diseases").check()
        page.get_by_label("New comment").fill("kept the extra box of " + layer["label"])
        page.get_by_role("button", name="Add comment").click()
        page.get_by_role("list", name="Comments").filter(has_text="kept the extra box").wait_for()
        screenshot(page, "review-merged")
        image_id = page.evaluate("window.cxrReview.state.review.task.image.image_id")
        here = page.url
        page.get_by_role("button", name="Approve").click()
        page.wait_for_url(lambda url: url != here)  # an approval opens the reviewer's next open review
        with e2e_site.workspace.sessions() as session:
            state, approvals = session.execute(select(Review.state, Review.approvals).join(
                Image, Image.id == Review.image_pk).where(Image.image_id == image_id)).one()
        assert state == "open" and len(approvals) == 1  # one approval is not enough

        assert image_id == e2e_site.review_image
        second = login(playwright_browser, e2e_site, "reviewer2")
        second.goto(f"{e2e_site.url}/reviews/{review_task(e2e_site, 'reviewer2')}")
        second.wait_for_function("window.cxrReview && window.cxrReview.state.review && window.cxrReview.view.image")
        assert second.get_by_role("checkbox", name="Other diseases").is_checked()
        assert "kept the extra box" in second.get_by_role("list", name="Comments").text_content()
        here = second.url
        second.get_by_role("button", name="Approve").click()
        second.wait_for_url(lambda url: url != here)
        screenshot(second, "review-after-final")
        with e2e_site.workspace.sessions() as session:
            pk = session.scalar(select(Image.id).where(Image.image_id == image_id))
            final = session.scalars(select(ConsensusBox).where(ConsensusBox.image_pk == pk)).all()
        assert sorted(b.class_name for b in final) == ["Nodule/Mass", "Pleural effusion"]
        assert n_before == 1 and all(b.method == "review" for b in final)
        # The reviewed consensus is in the test export.
        client = admin_client(e2e_site)
        text = client.get(f"/api/projects/{e2e_site.project_id}/export/annotations_test.csv").text
        client.close()
        assert sum(1 for row in csv.DictReader(io.StringIO(text)) if row["image_id"] == image_id) == len(final)
        assert page.js_errors == [] and second.js_errors == []
        page.context.close()
        second.context.close()
