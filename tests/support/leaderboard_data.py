"""Synthetic test labels and submissions for the leaderboard tests (API and browser)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from cxrlab.evaluate import CHALLENGE

__all__ = ["csv_bytes", "make_gt", "make_submission"]


def make_gt(n_images: int, seed: int = 0) -> pd.DataFrame:
    """Test labels in the ``annotations_test.csv`` layout: 0-3 boxes of the challenge's classes per image, a
    "No finding" row (empty coordinates) for an image without boxes."""
    rng = np.random.default_rng(seed)
    rows = []
    for k in range(n_images):
        image_id = f"img{seed:02d}{k:04d}"
        n = int(rng.integers(0, 4))
        if n == 0:
            rows.append((image_id, "", "No finding", None, None, None, None, 14))
        for _ in range(n):
            c = int(rng.integers(0, 14))
            x, y = rng.uniform(0, 800, 2)
            w, h = rng.uniform(40, 300, 2)
            rows.append((image_id, "", CHALLENGE.names[c], x, y, x + w, y + h, c))
    return pd.DataFrame(rows, columns=["image_id", "rad_id", "class_name", "x_min", "y_min", "x_max", "y_max",
                                       "class_id"])


def make_submission(gt: pd.DataFrame, *, seed: int, noise: float, keep: float = 0.9) -> pd.DataFrame:
    """Predictions near the ground truth (jitter *noise* px, a share *keep* of the boxes found) plus one false
    positive per image; "No finding" images get ``14 <conf> 0 0 1 1``."""
    rng = np.random.default_rng(seed)
    out = []
    for image_id, boxes in gt.groupby("image_id", sort=False):
        groups = []
        for r in boxes.itertuples():
            if r.class_name == "No finding":
                groups.append(f"14 {rng.uniform(0.5, 1):.4f} 0 0 1 1")
            elif rng.random() < keep:
                dx, dy = rng.normal(0, noise, 2)
                x0, y0, x1, y1 = np.maximum([r.x_min + dx, r.y_min + dy, r.x_max + dx, r.y_max + dy], 0.0)
                groups.append(f"{r.class_id} {rng.uniform(0.3, 1):.4f} {x0:.1f} {y0:.1f} {x1:.1f} {y1:.1f}")
        x, y = rng.uniform(0, 800, 2)
        groups.append(f"{int(rng.integers(0, 14))} {rng.uniform(0, 0.5):.4f} {x:.1f} {y:.1f} {x + 50:.1f} {y + 50:.1f}")
        out.append((image_id, " ".join(groups)))
    return pd.DataFrame(out, columns=["image_id", "PredictionString"])


def csv_bytes(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False).encode()
