"""Submission validation: the vectorised ``validate_submission`` against the row-by-row reference it replaced.

Both read the same in-memory CSV upload (what the leaderboard's ``POST .../submissions`` validates) of
``bench/metrics.py``'s set: 3,000 and 30,000 images with ``--preds`` predictions each (a 3,000-row upload is
about 5 MB). Three submissions per size: a clean one, the clean one with image sizes (``meta``, the 1 px border
check), and a bad one (every tenth row damaged: a garbage token, a missing number, a NaN confidence, a flipped
box, an unknown class, a duplicate image id) which reports thousands of problems. Each time is the best of
``--repeat`` runs; the script also checks that both report the same problems.

Usage: ``python bench/validate.py [--rows 3000 30000] [--preds 50] [--repeat 3]``
The machine may be shared with other work: say so when reporting the figures.
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT.parent))
from tests.support.validate_reference import reference_validate  # noqa: E402

from cxrlab.evaluate import validate_submission  # noqa: E402
from metrics import make_set  # noqa: E402

DAMAGE = ["{} 1 0.5 1 abc 2 2", "{} 1 0.5 1 1 2", "{} 3 nan 1 1 2 2", "{} 3 0.5 9 9 2 2", "{} 22 0.5 1 1 2 2"]


def damaged(sub: pd.DataFrame) -> pd.DataFrame:
    """Every tenth row damaged in one of several ways, and one duplicate image id per hundred rows."""
    out = sub.copy()
    strings = out["PredictionString"].to_numpy(dtype=object)
    for k, i in enumerate(range(0, len(out), 10)):
        strings[i] = DAMAGE[k % len(DAMAGE)].format(strings[i])
    out["PredictionString"] = strings
    ids = out["image_id"].to_numpy(dtype=object)
    ids[5::100] = ids[4::100][: len(ids[5::100])]
    out["image_id"] = ids
    return out


def best(fn, repeat: int) -> tuple[float, list]:  # noqa: ANN001 - a callable
    times, result = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t)
    return min(times), result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, nargs="+", default=[3000, 30000])
    ap.add_argument("--preds", type=int, default=50, help="predictions per image")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    print(f"{'rows':>6} {'submission':<10} {'MB':>6} {'problems':>8} {'reference s':>12} {'vectorised s':>13} "
          f"{'speed-up':>9}")
    same = True
    for n in args.rows:
        gt, sub = make_set(n, args.preds, seed=0, boxes=5 * n)
        ids = gt["image_id"].unique().tolist()
        meta = pd.DataFrame({"image_id": ids, "width": 3500, "height": 3500})
        for label, frame, sizes in (("clean", sub, None), ("+ sizes", sub, meta), ("bad", damaged(sub), None)):
            data = frame.to_csv(index=False).encode()

            def run(fn, data=data, sizes=sizes, ids=ids):  # noqa: ANN001, ANN202
                return fn(io.BytesIO(data), gt_image_ids=ids, meta=sizes)

            t_ref, ref = best(lambda run=run: run(reference_validate), args.repeat)
            t_new, new = best(lambda run=run: run(validate_submission), args.repeat)
            same &= ref == new
            print(f"{n:>6} {label:<10} {len(data) / 1e6:>6.1f} {len(new):>8} {t_ref:>12.3f} {t_new:>13.3f} "
                  f"{t_ref / t_new:>8.1f}x")
    print("same problems from both:", "yes" if same else "NO")
    sys.exit(0 if same else 1)


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
