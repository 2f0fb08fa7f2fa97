"""Benchmark the filter model (:mod:`cxrlab.filter`): throughput on 2 cores, accuracy on held-out phantoms, and
the decisions on the real images of the shared test data.

Sections:

1. **Throughput.** ``--n`` phantoms of ``--size`` px (default 500 of 2,000-3,000 px, the default outlier mix) are
   written once to ``--workdir`` (kept for the next run; not timed) and read warm from the page cache. Timed, with
   ``--workers`` processes (the executor ``cxrlab filter run`` uses, each worker running onnxruntime on one thread):
   decode + render (:func:`cxrlab.filter.render.load_input`), then decode + render + model
   (:func:`cxrlab.filter.stage.score_file`, the per-image work of ``filter run``; the catalog writes are not
   included). The model's share is the difference. Then model only: the 256 px renders in memory, one image per
   run of the network (as decisions are made) on ``--workers`` onnxruntime threads, and batches of 64.
   Goals (issue 15): the model adds <= 20 % to decode + render; >= 100 images/s model only.
2. **Accuracy on held-out phantoms**: ``--holdout`` phantoms drawn with another seed than the training's
   (:func:`cxrlab.filter.train.phantom_examples`), confusion matrix of the decided class and the decisions.
3. **Real images**: every NIH PNG and DICOM file of the shared test data (``$CXRLAB_TEST_DATA``, default
   ``../shared/data``): the decisions as they are (all are frontal chests except ``RG3_UNCI.dcm``, an extremity).

4. **Triage speed** (``--triage``, alone: no model needed): a scripted verifier in Debian's Chromium (Playwright,
   ``$CXRLAB_CHROMIUM``) clears ``--triage-n`` images (default 480, the throughput section's phantoms of
   2,000-3,000 px, so the thumbnails are rendered from full-size files, cold) in pages of ``--page-size`` (48) on
   the grid triage page of a real ``cxrlab serve``: per page it moves with the arrow keys, marks two images
   lateral and presses Enter, then waits until the next page's thumbnails are all on screen. Timed from the page
   load to the empty queue (key presses and page loads only: no thinking). Goal (issue 15): >= 5 images/s.

The model is ``--model``, or a bootstrap model trained first by ``cxrlab filter train --phantoms --train-n``
(timed, ``--train-width``; kept in ``--workdir``).

Usage::

    python bench/filter.py --n 500 --workers 2
    python bench/filter.py --triage
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

from cxrlab.dicom.phantom import generate_phantoms
from cxrlab.filter import FilterModel, decide
from cxrlab.filter.predict import find_inputs
from cxrlab.filter.render import load_input
from cxrlab.filter.stage import score_file
from cxrlab.filter.train import phantom_examples
from cxrlab.runtime import Executor

CLASSES = ("frontal_chest", "lateral", "other_body_part", "low_quality", "pediatric")


def _data_dir() -> Path:
    return Path(os.environ.get("CXRLAB_TEST_DATA") or Path(__file__).resolve().parents[1].parent / "shared" / "data")


def _phantoms(folder: Path, n: int, size: tuple[int, int]) -> list[Path]:
    marker = folder / f"phantoms-{n}-{size[0]}-{size[1]}.done"
    if not marker.exists():
        generate_phantoms(folder / "phantoms", n, seed=2026, size_range=size)
        marker.write_text("ok\n")
    return sorted((folder / "phantoms").rglob("*.dcm"))


def _model(a: argparse.Namespace) -> Path:
    if a.model:
        return a.model
    out = a.workdir / f"bootstrap-{a.train_width}-{a.train_n}-{a.epochs}.onnx"
    if not out.exists():
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "cxrlab.cli.main", "filter", "train", "--phantoms", str(a.train_n),
                        "--epochs", str(a.epochs), "--width", a.train_width, "-o", str(out), "-j", str(a.workers)],
                       check=True)
        print(f"trained {out.name} in {time.perf_counter() - t0:.0f} s")
    return out


def _timed(fn, items: list, workers: int, *args) -> float:  # noqa: ANN001
    t0 = time.perf_counter()
    for _ in Executor(workers).map(fn, items, *args, chunksize=2):
        pass
    return time.perf_counter() - t0


def throughput(model: Path, files: list[Path], workers: int) -> None:
    _timed(load_input, files[: 2 * workers], workers)  # fork and import once before timing
    t_render = _timed(load_input, files, workers)
    t_full = _timed(score_file, files, workers, str(model), 1)
    n = len(files)
    print(f"decode + render: {n / t_render:.1f} images/s; decode + render + model: {n / t_full:.1f} images/s "
          f"({workers} workers); the model adds {100 * (t_full - t_render) / t_render:.1f} % to decode + render")
    x = np.stack([load_input(f) for f in files[:200]])
    m = FilterModel(model, threads=workers)
    for i in range(5):
        m.predict(x[i])
    t0 = time.perf_counter()
    for xi in x:
        m.predict(xi)
    one = len(x) / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    for b in range(0, len(x), 64):
        m.predict_batch(x[b : b + 64])
    batched = len(x) / (time.perf_counter() - t0)
    print(f"model only (256 px renders in memory, onnxruntime {workers} threads): {one:.0f} images/s one at a time "
          f"(as decisions are made), {batched:.0f} images/s in batches of 64")
    m1 = FilterModel(model, threads=1)
    t0 = time.perf_counter()
    for xi in x:
        m1.predict(xi)
    per_model = (time.perf_counter() - t0) / len(x)
    per_render = t_render * workers / n
    print(f"per image in one worker (what filter run does): decode + render {per_render * 1000:.0f} ms, model "
          f"{per_model * 1000:.1f} ms on one onnxruntime thread: the model adds {100 * per_model / per_render:.1f} %")


def holdout(model: Path, n: int, seed: int, workers: int, threshold: float) -> None:
    x, truth = phantom_examples(n, seed=seed, executor=Executor(workers))
    m = FilterModel(model, threads=workers)
    cm = np.zeros((len(CLASSES), len(CLASSES)), dtype=int)
    decisions: Counter = Counter()
    for xi, t in zip(x, truth, strict=True):
        d = decide(m.predict(xi), population="adult", threshold=threshold)
        cm[CLASSES.index(t), CLASSES.index(d.klass)] += 1
        decisions[(t, d.decision)] += 1
    print(f"held-out phantoms (seed {seed}, {n}): class accuracy {np.trace(cm) / cm.sum():.4f}; "
          "confusion matrix (rows true, columns decided):")
    print("  " + " ".join(f"{c[:12]:>12}" for c in ("", *CLASSES)))
    for c, row in zip(CLASSES, cm, strict=True):
        print("  " + f"{c[:12]:>12} " + " ".join(f"{v:>12}" for v in row))
    for c in CLASSES:
        parts = ", ".join(f"{d} {decisions[(c, d)]}" for d in ("accepted", "filtered_out", "needs_verification")
                          if decisions[(c, d)])
        print(f"  {c}: {parts}")


def real(model: Path, threshold: float) -> None:
    data = _data_dir()
    if not data.is_dir():
        print(f"real images left out: {data} not found (set CXRLAB_TEST_DATA)")
        return
    files, _ = find_inputs([data / "nih", data / "dicom"])
    m = FilterModel(model)
    tally: Counter = Counter()
    for f in files:
        name = os.path.relpath(f, data)
        try:
            pred = m.predict(load_input(f))
        except Exception as exc:  # noqa: BLE001 - report and go on
            print(f"  {name}: not readable ({type(exc).__name__})")
            continue
        d = decide(pred, population="adult", threshold=threshold)
        tally[d.decision] += 1
        probs = " ".join(f"{k}={v:.2f}" for k, v in pred.probabilities().items())
        print(f"  {name}: {d.klass} {d.confidence:.2f} -> {d.decision}  ({probs})")
    print(f"real images: {dict(tally)}")


ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
PAGE_SHOWN = """(n) => { const g = document.getElementById('triage-grid');
  if (Number(g.dataset.page) !== n) return false;
  return [...g.querySelectorAll('img')].every((i) => i.complete && i.naturalWidth > 0); }"""


def _triage_workspace(root: Path, files: list[Path]):  # noqa: ANN202 - (Workspace, password)
    """A fresh workspace whose catalog lists *files* as images waiting for verification (no ingest: the triage
    page reads only pixels), and the user ``verifier1``."""
    import hashlib
    import shutil

    from cxrlab.catalog import init_workspace
    from cxrlab.catalog.models import Image, ImageState

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/support: users
    from tests.support.users import PASSWORD, create_users

    shutil.rmtree(root, ignore_errors=True)
    ws = init_workspace(root)
    with ws.sessions() as session:
        with session.begin():
            for k, path in enumerate(files):
                image_id = hashlib.sha256(str(path).encode()).hexdigest()[:32]
                session.add(Image(sop_instance_uid=f"2.25.{k + 1}", image_id=image_id, raw_sha256=image_id * 2,
                                  raw_path=str(path), deid_path=str(path), state=ImageState.NEEDS_VERIFICATION,
                                  state_reason="uncertain", modality="DX"))
        create_users(session, {"verifier1": "verifier"})
    return ws, PASSWORD


def triage(files: list[Path], page_size: int) -> None:
    """Section 4: a scripted verifier clears *files* from the filter queue in pages of *page_size*."""
    from playwright.sync_api import sync_playwright

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.support.browser import form_login
    from tests.support.server import start_server

    ws, password = _triage_workspace(Path(tempfile.mkdtemp(prefix="cxrlab-bench-triage-")) / "ws", files)
    pages = -(-len(files) // page_size)
    with start_server(ws, timeout=300) as server, sync_playwright() as p:  # a loaded machine starts slowly
        browser = p.chromium.launch(executable_path=os.environ.get("CXRLAB_CHROMIUM", "/usr/bin/chromium"),
                                    headless=True, args=ARGS)
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        form_login(page, server.url, "verifier1", password)
        t0 = time.perf_counter()
        page.goto(f"{server.url}/triage?queue=filter&size={page_size}")
        for n in range(1, pages + 1):
            page.wait_for_function(PAGE_SHOWN, arg=n, timeout=600_000)
            for key in ("ArrowRight", "ArrowRight", "l", "ArrowDown", "2", "ArrowRight", "Enter"):
                page.keyboard.press(key)
        page.wait_for_selector("#triage-empty:not([hidden])", timeout=600_000)
        seconds = time.perf_counter() - t0
        browser.close()
    with ws.sessions() as session:
        from sqlalchemy import func, select

        from cxrlab.catalog.models import Event

        decided = session.scalar(select(func.count(Event.id)).where(Event.action.like("verify.%")))
    ws.engine.dispose()
    print(f"triage: {decided} images decided in {pages} pages of {page_size} in {seconds:.1f} s: "
          f"{decided / seconds:.1f} images/s (goal >= 5)")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=500, help="phantoms for the throughput section")
    p.add_argument("--size", type=int, nargs=2, default=(2000, 3000), metavar=("MIN", "MAX"))
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--model", type=Path, default=None, help="a trained model (default: train a bootstrap one)")
    p.add_argument("--train-n", type=int, default=600, help="phantoms for the bootstrap model")
    p.add_argument("--train-width", default="small", choices=("small", "tiny"))
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--holdout", type=int, default=600, help="held-out phantoms for the accuracy section")
    p.add_argument("--holdout-seed", type=int, default=777)
    p.add_argument("--threshold", type=float, default=0.8)
    p.add_argument("--workdir", type=Path, default=Path("/tmp/cxrlab-bench-filter"))
    p.add_argument("--skip-throughput", action="store_true")
    p.add_argument("--triage", action="store_true", help="only the triage speed section (Chromium, no model)")
    p.add_argument("--triage-n", type=int, default=480, help="images the scripted verifier clears")
    p.add_argument("--page-size", type=int, default=48)
    a = p.parse_args(argv)
    a.workdir.mkdir(parents=True, exist_ok=True)
    if a.triage:
        files = _phantoms(a.workdir, max(a.n, a.triage_n), tuple(a.size))[:a.triage_n]
        triage(files, a.page_size)
        return
    model = _model(a)
    side = json.loads(model.with_suffix(".json").read_text())
    print(f"model {model.name}: {side['network']}, trained on {side['training']['examples']} "
          f"{side['training']['source']} in {side['training']['seconds']} s")
    if not a.skip_throughput:
        files = _phantoms(a.workdir, a.n, tuple(a.size))
        throughput(model, files, a.workers)
    holdout(model, a.holdout, a.holdout_seed, a.workers, a.threshold)
    real(model, a.threshold)


if __name__ == "__main__":
    main()
