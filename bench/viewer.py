"""Browser figures of the reading viewer on large images: window/level frames per second during a drag and
"submit -> next image painted", measured in headless Debian Chromium (Playwright) against ``cxrlab serve``.

    python bench/viewer.py --n 30 --size 2500 --max-size 1024 2048 --submits 5

Builds a demo workspace of phantoms of about ``--size`` pixels a side (``cxrlab.demo.build_demo``), serves it,
logs in as ``reader1`` and, for each ``--max-size`` (the long side of the 16-bit array the viewer windows):
drags the window for 2 s with one pointer move per animation frame (headless Chromium paints at most 60 frames
a second, so the cost per frame is printed too), then submits ``--submits`` reads from the keyboard. Figures
are printed as a Markdown table; timings on a shared machine are noisy.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/support: the server launcher
from tests.support.server import start_server  # noqa: E402

CHROMIUM = os.environ.get("CXRLAB_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]

DRAG = """async () => {
    const m = await window.cxrViewer.view.measureWindowDrag(2000);
    return {fps: m.fps, ms: m.window_ms_per_frame, shape: m.shape};
}"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=30, help="phantoms")
    parser.add_argument("--size", type=int, default=2500, help="approximate side of the phantoms in pixels")
    parser.add_argument("--max-size", type=int, nargs="+", default=[1024, 2048])
    parser.add_argument("--submits", type=int, default=5)
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright

    from cxrlab.demo import build_demo, demo_users

    root = Path(tempfile.mkdtemp(prefix="cxrlab-bench-viewer-"))
    print(f"building {args.n} phantoms of ~{args.size} px in {root} ...", file=sys.stderr)
    ws, _ = build_demo(root, n=args.n, size_range=(args.size - 100, args.size + 100))
    password = demo_users(ws)["reader1"]
    rows = []
    try:
        with start_server(ws) as server, sync_playwright() as p:
            url = server.url
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
            for max_size in args.max_size:
                page = browser.new_page(viewport={"width": 1600, "height": 1000})
                page.goto(f"{url}/login")
                page.get_by_label("User name").fill("reader1")
                page.get_by_label("Password").fill(password)
                page.get_by_role("button", name="Log in").click()
                page.wait_for_url(f"{url}/")
                page.goto(f"{url}/projects/1/read?max_size={max_size}")
                page.wait_for_function("window.cxrViewer && window.cxrViewer.view.image")
                drag = page.evaluate(DRAG)
                for _ in range(args.submits):
                    if page.evaluate("window.cxrViewer.state.queue.length") < 2:
                        break
                    page.wait_for_function("(() => { const v = window.cxrViewer; return !v.state.busy &&"
                                           " v.cache.ready(v.state.queue[1].image.image_id) !== null; })()")
                    before = page.evaluate("window.cxrViewer.state.task.image.image_id")
                    page.get_by_role("img", name="Chest X-ray").focus()
                    page.keyboard.press("Shift+Digit5")  # COPD: any global label will do
                    page.keyboard.press("Enter")
                    page.wait_for_function(f"window.cxrViewer.state.task.image.image_id !== '{before}'")
                page.wait_for_timeout(200)
                m = page.evaluate("window.cxrViewer.metrics")
                paint, request = m["submitToPaint"], m["submitRequest"]
                rows.append((max_size, drag, paint, request))
                page.close()
            browser.close()
    finally:
        ws.engine.dispose()
        shutil.rmtree(root, ignore_errors=True)
    print("| array long side | array shape | W/L frames/s (drag, rAF-capped) | W/L ms/frame | submit -> next image "
          "painted ms (median, max) | submit request ms (median) |")
    print("|---:|---|---:|---:|---:|---:|")
    for max_size, drag, paint, request in rows:
        p = f"{statistics.median(paint):.1f}, {max(paint):.1f} (n={len(paint)})" if paint else "–"
        q = f"{statistics.median(request):.1f}" if request else "–"
        shape = f"{drag['shape'][0]}×{drag['shape'][1]}"
        print(f"| {max_size} | {shape} | {drag['fps']:.1f} | {drag['ms']:.2f} | {p} | {q} |")


if __name__ == "__main__":
    main()
