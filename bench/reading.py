"""Reading comfort, measured in headless Debian Chromium (Playwright) against ``cxrlab serve``: actions per image
for a scripted reader, undo of the last of 50 edits, and reopening a read from the history.

    python bench/reading.py --n 16 --size 1500 --repeat 5

Builds a demo workspace (``cxrlab.demo.build_demo``), serves it and logs in as ``reader1``. A scripted reader
then reads three kinds of image and counts its actions (each key press, click and drag is one; the goals of
issue 12 are <= 2, <= 5 and <= 9): a normal image ("No finding", submit); one box with its class and a global
label; three boxes of three classes and a global label. Each read is checked on the server afterwards. Then, on
the next image, it makes 50 edits (box drags and label toggles), presses Ctrl+Z ``--repeat`` times and records
the time from the key's handler to the next painted frame (``window.cxrViewer.metrics.undoToPaint``); from the
history page it reopens its newest read ``--repeat`` times, timing the click to the read's image painted in the
viewer (a page navigation: HTML, modules, the task and the cached image); and in the viewer it submits, opens
"My recent reads" (H) and reopens the newest with Enter ``--repeat`` times, timing Enter to the image painted in
place (``metrics.reopenToPaint``). Figures are printed; timings on a shared machine are noisy, and nothing is
asserted.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/support: the server launcher
from tests.support.browser import form_login  # noqa: E402
from tests.support.server import start_server  # noqa: E402

CHROMIUM = os.environ.get("CXRLAB_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
GOALS = {"normal image": 2, "one box + class + global label": 5, "three boxes + classes + global label": 9}
SHOWN = """(id) => { const v = window.cxrViewer; return v && v.state.task && v.state.task.id === id && v.view.image
    && v.view.image.imageId === v.state.task.image.image_id; }"""


class Reader:
    """A scripted reader that counts its actions (key presses, clicks, drags)."""

    def __init__(self, page) -> None:  # noqa: ANN001
        self.page = page
        self.actions = 0

    def key(self, key: str) -> None:
        self.page.keyboard.press(key)
        self.actions += 1

    def drag(self, fx0: float, fy0: float, fx1: float, fy1: float) -> None:
        bb = self.page.get_by_role("img", name="Chest X-ray").bounding_box()
        self.page.mouse.move(bb["x"] + bb["width"] * fx0, bb["y"] + bb["height"] * fy0)
        self.page.mouse.down()
        self.page.mouse.move(bb["x"] + bb["width"] * fx1, bb["y"] + bb["height"] * fy1, steps=5)
        self.page.mouse.up()
        self.actions += 1

    def ready(self) -> int:
        """Wait until the shown task's image is on screen and no submission runs; the shown task's id."""
        page = self.page
        page.wait_for_function("() => { const v = window.cxrViewer; return v.state.task && !v.state.busy &&"
                               " v.view.image && v.view.image.imageId === v.state.task.image.image_id; }")
        page.get_by_role("img", name="Chest X-ray").focus()
        self.actions = 0
        return page.evaluate("window.cxrViewer.state.task.id")

    def submitted(self, task_id: int) -> dict:
        self.page.wait_for_function(f"window.cxrViewer.state.task?.id !== {task_id} && !window.cxrViewer.state.busy")
        return self.page.request.get(f"{self.page.url.split('/projects')[0]}/api/tasks/{task_id}").json()


def read_images(reader: Reader) -> list[tuple[str, int, str]]:
    """The three scripted reads; ``[(case, actions, what the server stored)]``."""
    out = []
    tid = reader.ready()
    reader.key("n")                      # "No finding"
    reader.key("Enter")                  # submit
    task = reader.submitted(tid)
    out.append(("normal image", reader.actions, f"{task['state']}: {task['marks']['labels']}"))

    tid = reader.ready()
    reader.drag(0.30, 0.30, 0.45, 0.42)  # a box (of the current class)
    reader.key("Digit6")                 # its class: the 6th local label
    reader.key("Shift+Digit2")           # a global label
    reader.key("Enter")
    task = reader.submitted(tid)
    out.append(("one box + class + global label", reader.actions,
                f"{task['state']}: {[b['class_name'] for b in task['marks']['boxes']]} {task['marks']['labels']}"))

    tid = reader.ready()
    for i, (digit, frac) in enumerate([("Digit3", 0.25), ("Digit6", 0.45), ("Digit0", 0.62)]):
        reader.drag(frac, 0.30 + 0.05 * i, frac + 0.12, 0.40 + 0.05 * i)
        reader.key(digit)
    reader.key("Shift+Digit1")
    reader.key("Enter")
    task = reader.submitted(tid)
    out.append(("three boxes + classes + global label", reader.actions,
                f"{task['state']}: {[b['class_name'] for b in task['marks']['boxes']]} {task['marks']['labels']}"))
    return out


def undo_figures(reader: Reader, repeat: int) -> list[float]:
    """Ms from Ctrl+Z to the next painted frame, after 50 edits (each undo undoes the newest edit left)."""
    page = reader.page
    reader.ready()
    for i in range(50):
        if i % 2:
            reader.key(f"Shift+Digit{1 + (i // 2) % 5}")
        else:
            fx = 0.15 + 0.012 * (i % 40)
            reader.drag(fx, 0.2 + 0.01 * (i % 30), fx + 0.08, 0.3 + 0.01 * (i % 30))
    page.wait_for_function("document.getElementById('status').dataset.save === 'saved'")
    for _ in range(repeat):
        page.keyboard.press("Control+z")
    page.wait_for_function(f"window.cxrViewer.metrics.undoToPaint.length >= {repeat}")
    page.wait_for_function("document.getElementById('status').dataset.save === 'saved'")
    return page.evaluate("window.cxrViewer.metrics.undoToPaint")


def reopen_figures(page, url: str, repeat: int) -> list[float]:  # noqa: ANN001
    """Ms from the click on "Reopen" (history page) to the read's image painted in the viewer."""
    times = []
    for _ in range(repeat):
        page.goto(f"{url}/history")
        button = page.get_by_role("button", name="Reopen").first
        task_id = int(button.get_attribute("data-reopen"))
        t0 = time.perf_counter()
        button.click()
        page.wait_for_function(SHOWN, arg=task_id, polling="raf")
        times.append(1000 * (time.perf_counter() - t0))
        page.get_by_role("img", name="Chest X-ray").focus()
        page.keyboard.press("Enter")  # submit it again, unchanged (the read is not frozen)
        page.wait_for_function(f"window.cxrViewer.state.task?.id !== {task_id} && !window.cxrViewer.state.busy")
    return times


def reopen_here_figures(page, repeat: int) -> list[float]:  # noqa: ANN001
    """Ms from Enter on the newest read in the viewer's "My recent reads" (H) to its image painted in place."""
    for i in range(repeat):
        page.wait_for_function("() => { const v = window.cxrViewer; return v.state.task && !v.state.busy &&"
                               " v.view.image && v.view.image.imageId === v.state.task.image.image_id; }")
        task_id = page.evaluate("window.cxrViewer.state.task.id")
        page.get_by_role("img", name="Chest X-ray").focus()
        page.keyboard.press("Shift+Digit5")
        page.keyboard.press("Enter")
        page.wait_for_function(f"window.cxrViewer.state.task?.id !== {task_id} && !window.cxrViewer.state.busy")
        page.get_by_role("img", name="Chest X-ray").focus()
        page.keyboard.press("h")
        page.get_by_role("list", name="My recent reads").get_by_role("button").first.wait_for()
        page.keyboard.press("Enter")
        page.wait_for_function(f"window.cxrViewer.metrics.reopenToPaint.length > {i}")
    return page.evaluate("window.cxrViewer.metrics.reopenToPaint")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=16, help="phantoms")
    parser.add_argument("--size", type=int, default=1500, help="approximate side of the phantoms in pixels")
    parser.add_argument("--repeat", type=int, default=5, help="undos and reopens timed")
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright

    from cxrlab.demo import build_demo, demo_users

    root = Path(tempfile.mkdtemp(prefix="cxrlab-bench-reading-"))
    print(f"building {args.n} phantoms of ~{args.size} px in {root} ...", file=sys.stderr)
    ws, _ = build_demo(root, n=args.n, size_range=(args.size - 100, args.size + 100))
    password = demo_users(ws)["reader1"]
    try:
        with start_server(ws) as server, sync_playwright() as p:
            url = server.url
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            form_login(page, url, "reader1", password)
            page.goto(f"{url}/projects/1/read")
            reader = Reader(page)
            reads = read_images(reader)
            undo = undo_figures(reader, args.repeat)
            reopen = reopen_figures(page, url, args.repeat)
            here = reopen_here_figures(page, args.repeat)
            browser.close()
    finally:
        ws.engine.dispose()
        shutil.rmtree(root, ignore_errors=True)
    print("| read | actions (keys + clicks + drags) | goal | stored on the server |")
    print("|---|---:|---:|---|")
    for case, actions, stored in reads:
        print(f"| {case} | {actions} | <= {GOALS[case]} | {stored} |")
    print()
    print("| timing | median ms | max ms | n | goal |")
    print("|---|---:|---:|---:|---:|")
    print(f"| undo of the last of 50 edits -> painted | {statistics.median(undo):.1f} | {max(undo):.1f} | {len(undo)} "
          "| <= 100 |")
    print(f"| reopen from the My reads page -> image painted in the viewer (a page load; H is the in-place path) | "
          f"{statistics.median(reopen):.1f} | {max(reopen):.1f} | {len(reopen)} | <= 100 |")
    print(f"| reopen in the viewer (H, Enter) -> image painted | {statistics.median(here):.1f} | {max(here):.1f} | "
          f"{len(here)} | <= 100 |")


if __name__ == "__main__":
    main()
