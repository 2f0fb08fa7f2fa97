"""Leaderboard timings against a real ``cxrlab serve``: uploads answered at once, scoring in the background.

A benchmark over a seeded test set of the challenge's shape (``bench/metrics.py``'s ``make_set``: 3,000 images,
about 15,000 boxes; the submission has ``--preds`` predictions per image) is created by an admin; then
``--users`` users each upload the submission, one after the other without waiting, while a reader polls the
public leaderboard. The script prints:

- the label upload (parse, split, store);
- ``POST /submissions``: what a user waits for (body upload, validation of every row, file write, commit);
- queued -> scored per submission (public and private parts from one parse), as seen by polling;
- ``GET /leaderboard`` while the worker scores (request threads are not held up by the scoring thread beyond
  sharing the CPU).

Usage: ``python bench/leaderboard.py [--users 5] [--images 3000] [--preds 50] [--workers 1]``
The machine may be shared with other work: say so when reporting the figures.
"""

from __future__ import annotations

import argparse
import gzip
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT.parent))  # tests/support: the users
from tests.support.users import PASSWORD  # noqa: E402

from cxrlab.annotate.users import create_user  # noqa: E402
from cxrlab.catalog import init_workspace  # noqa: E402
from metrics import make_set  # noqa: E402
from server_load import server  # noqa: E402


def ms(values: list[float]) -> str:
    values = sorted(values)
    return f"median {1000 * statistics.median(values):.0f} ms, max {1000 * values[-1]:.0f} ms (n={len(values)})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--users", type=int, default=5)
    ap.add_argument("--images", type=int, default=3000)
    ap.add_argument("--preds", type=int, default=50, help="predictions per image")
    ap.add_argument("--workers", type=int, default=1, help="server processes (each runs a scoring thread)")
    ap.add_argument("--gzip", action="store_true", help="upload the submission gzipped")
    args = ap.parse_args()

    gt, sub = make_set(args.images, args.preds, seed=0)
    gt_csv, sub_csv = gt.to_csv(index=False).encode(), sub.to_csv(index=False).encode()
    body = gzip.compress(sub_csv) if args.gzip else sub_csv
    print(f"test set: {args.images} images, {len(gt)} ground-truth rows; submission {len(sub_csv) / 2**20:.1f} MiB"
          f" ({len(body) / 2**20:.1f} MiB sent), about {args.images * args.preds} predictions")
    with tempfile.TemporaryDirectory(prefix="cxrlab-lb-") as tmp:
        ws = init_workspace(Path(tmp) / "ws")
        users = [f"user{k}" for k in range(args.users)]
        with ws.sessions() as session:
            for name in ["admin", *users]:
                create_user(session, username=name, password=PASSWORD, role="admin" if name == "admin" else
                            "annotator")
        with server(ws.root, workers=args.workers) as (url, _), httpx.Client(base_url=url, timeout=300) as http:
            tokens = {n: http.post("/api/auth/token", json={"username": n, "password": PASSWORD}).json()
                      ["access_token"] for n in ["admin", *users]}

            def h(n: str) -> dict:
                return {"Authorization": f"Bearer {tokens[n]}"}

            r = http.post("/api/benchmarks", json={"name": "bench", "daily_limit": 10}, headers=h("admin"))
            bid = r.json()["id"]
            t = time.perf_counter()
            r = http.put(f"/api/benchmarks/{bid}/labels", content=gt_csv, headers=h("admin"))
            r.raise_for_status()
            print(f"label upload: {time.perf_counter() - t:.2f} s ({r.json()['images']} images, "
                  f"{r.json()['boxes']} boxes)")

            board_times: list[float] = []
            stop = threading.Event()

            def poll_board() -> None:
                with httpx.Client(base_url=url, timeout=60) as c:
                    while not stop.is_set():
                        t0 = time.perf_counter()
                        c.get(f"/api/benchmarks/{bid}/leaderboard", headers=h("admin")).raise_for_status()
                        board_times.append(time.perf_counter() - t0)
                        time.sleep(0.05)

            poller = threading.Thread(target=poll_board)
            poller.start()
            posted: dict[int, tuple[str, float]] = {}
            post_times = []
            for name in users:
                t0 = time.perf_counter()
                r = http.post(f"/api/benchmarks/{bid}/submissions", content=body, headers=h(name),
                              params={"filename": "submission.csv.gz" if args.gzip else "submission.csv"})
                post_times.append(time.perf_counter() - t0)
                r.raise_for_status()
                posted[r.json()["id"]] = (name, time.perf_counter())
            done: dict[int, float] = {}
            while len(done) < len(posted):
                for sid, (name, t0) in posted.items():
                    if sid not in done:
                        s = http.get(f"/api/benchmarks/{bid}/submissions/{sid}", headers=h(name)).json()
                        if s["state"] in ("scored", "failed"):
                            done[sid] = time.perf_counter() - t0
                            assert s["state"] == "scored", s
                time.sleep(0.05)
            stop.set()
            poller.join()
            print(f"POST submission (validate + store): {ms(post_times)}")
            print(f"queued -> scored after the POST returned: {ms(list(done.values()))}")
            print(f"GET leaderboard while scoring: {ms(board_times)}")


if __name__ == "__main__":
    main()
