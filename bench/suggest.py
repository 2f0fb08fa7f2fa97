"""Benchmark model-assisted reading (:mod:`cxrlab.models.suggest`): seconds per image of a background prediction,
and what the viewer waits for while the server's worker predicts.

A phantom release of ``--n`` images of ``--px`` px (default 12 of 2,000-2,500 px, the size of real chest films)
is written to a temporary folder, a detector is trained on it for one epoch at ``--size`` px (default 512, the
training default; its weights do not matter here, only its shapes), and the release's images become a labeling
project of a fresh workspace, read by three readers. Then a real ``cxrlab serve`` runs, the admin turns
suggestions on (``PUT /api/projects/{id}/suggest``), and one reader asks for the suggestions of each of the reader's
tasks in a loop (what the viewer does, without its 1.5 s pause) until every image is ready. Printed:

- **per image** (the ``suggestions.seconds`` the worker stored): read + render at the model's size + onnxruntime
  (one thread) + decoding, median and max;
- **answer time** of ``GET /api/tasks/{id}/suggestions`` while the worker predicts (``pending``) and after
  (``ready``): median, p95, max — the request never waits for a prediction;
- **asked -> ready**: from the first request for an image to the first ``ready`` answer.

Usage::

    python bench/suggest.py                 # about 2 minutes on 2 shared cores
    python bench/suggest.py --n 6 --px 1024,1200 --size 256
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent))  # tests/support: users and the server
from tests.support.server import start_server  # noqa: E402
from tests.support.users import PASSWORD, READERS, create_users  # noqa: E402


def _pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=12, help="images")
    ap.add_argument("--px", default="2000,2500", help="image side range (min,max)")
    ap.add_argument("--size", type=int, default=512, help="the detector's input size")
    args = ap.parse_args()
    lo, hi = (int(v) for v in args.px.split(","))

    import pydicom
    import torch

    from cxrlab.annotate.assignment import assign_images
    from cxrlab.annotate.projects import create_project
    from cxrlab.catalog import init_workspace
    from cxrlab.catalog.models import Image, ImageState, Suggestion
    from cxrlab.datasets import write_phantom_release
    from cxrlab.models import train_detector

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        write_phantom_release(root / "rel", args.n, seed=1, size_range=(lo, hi), finding_prob=0.6, test_share=0.0)
        print(f"release: {args.n} images of {lo}-{hi} px in {time.perf_counter() - t0:.1f} s")
        t0 = time.perf_counter()
        train_detector(root / "rel", root / "det", size=args.size, epochs=1, batch_size=4, threads=1)
        print(f"detector: 1 epoch at {args.size} px in {time.perf_counter() - t0:.1f} s")
        ws = init_workspace(root / "ws")
        files = sorted((root / "rel").rglob("*.dicom"))
        with ws.sessions() as session:
            create_users(session)
            with session.begin():
                for k, path in enumerate(files):
                    ds = pydicom.dcmread(path, stop_before_pixels=True)
                    session.add(Image(sop_instance_uid=f"1.2.826.0.1.{k}", image_id=path.stem,
                                      raw_sha256=path.stem * 2, raw_path="raw/x.dcm", deid_path=str(path),
                                      state=ImageState.ACCEPTED, rows=int(ds.Rows), columns=int(ds.Columns)))
            project = create_project(session, name="bench")
            assign_images(session, project=project, readers=READERS)
            pid = project.id
        with start_server(ws) as server, httpx.Client(base_url=server.url, timeout=60) as client:
            def token(name: str) -> dict[str, str]:
                r = client.post("/api/auth/token", json={"username": name, "password": PASSWORD})
                return {"Authorization": f"Bearer {r.json()['access_token']}"}

            admin, reader = token("admin"), token("reader1")
            tasks = [t["id"] for t in client.get(f"/api/tasks?project_id={pid}&limit=1000", headers=reader).json()]
            r = client.put(f"/api/projects/{pid}/suggest", headers=admin, json={"run": str(root / "det")})
            r.raise_for_status()
            lat: dict[str, list[float]] = {"pending": [], "ready": []}
            asked: dict[int, float] = {}
            ready: dict[int, float] = {}
            while len(ready) < len(tasks):
                for task in tasks:
                    if task in ready:
                        continue
                    t1 = time.perf_counter()
                    body = client.get(f"/api/tasks/{task}/suggestions", headers=reader).json()
                    dt = time.perf_counter() - t1
                    asked.setdefault(task, t1)
                    lat["ready" if body["status"] != "pending" else "pending"].append(dt * 1000)
                    if body["status"] != "pending":
                        ready[task] = time.perf_counter() - asked[task]
            for task in tasks:  # answers once everything is stored
                t1 = time.perf_counter()
                client.get(f"/api/tasks/{task}/suggestions", headers=reader).raise_for_status()
                lat["ready"].append((time.perf_counter() - t1) * 1000)
        with ws.sessions() as session:
            seconds = [s for (s,) in session.execute(Suggestion.__table__.select().with_only_columns(
                Suggestion.seconds))]
        ws.engine.dispose()
    print(f"per image (worker, one onnxruntime thread): median {statistics.median(seconds):.3f} s, "
          f"max {max(seconds):.3f} s over {len(seconds)} images")
    for status, values in lat.items():
        print(f"GET /suggestions answering {status}: median {statistics.median(values):.1f} ms, "
              f"p95 {_pct(values, 0.95):.1f} ms, max {max(values):.1f} ms ({len(values)} requests)")
    waits = list(ready.values())
    print(f"asked -> ready: median {statistics.median(waits):.2f} s, max {max(waits):.2f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
