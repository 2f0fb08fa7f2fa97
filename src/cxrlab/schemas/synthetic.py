"""Synthetic releases for tests, benchmarks and demos: several readers per image, boxes, labels, metadata.

The generator draws a latent truth per image (30% abnormal; findings with geometrically decreasing
prevalence; one or two boxes per finding; a disease), then lets each reader see each latent box with
probability 0.85 (corners jittered by 3% of the box size), add a false box with probability 0.03, and report
the latent diseases with probability 0.9. A reader who marks nothing reports "No finding" (the seeds' QC rule).
With 15,000 images and 3 readers it gives about 68,000 ``annotations_train.csv`` rows, the size of VinDr-CXR.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cxrlab.schemas.labels import get_schema
from cxrlab.schemas.release import BOX_COLUMNS, ReleaseTables

__all__ = ["synthetic_release"]


def synthetic_release(
    n_images: int = 1000,
    *,
    readers: int = 3,
    reader_pool: int = 17,
    schema: str = "vindr-cxr",
    seed: int = 0,
    abnormal: float = 0.3,
) -> ReleaseTables:
    """A seeded synthetic release (all images in ``train``, one row per reader per image).

    Parameters
    ----------
    n_images : int
        Images.
    readers : int
        Readers per image, drawn from *reader_pool* readers ``R1..R<pool>``.
    """
    sch = get_schema(schema)
    rng = np.random.default_rng(seed)
    local = [lb.name for lb in sch.local]
    diseases = [lb.name for lb in sch.global_ if lb.name != sch.no_finding]
    names = sch.names
    col = {n: i for i, n in enumerate(names)}
    lw = np.geomspace(1.0, 0.005, len(local))
    lw /= lw.sum()
    dw = np.geomspace(1.0, 0.02, len(diseases))
    dw /= dw.sum()
    ids = [f"{h:032x}" for h in rng.integers(0, 2**63, size=n_images, dtype=np.int64)]
    rows = rng.integers(2000, 3200, n_images)
    cols = (rows * rng.uniform(0.8, 1.0, n_images)).astype(int)
    images = pd.DataFrame(
        {
            "image_id": ids,
            "split": "train",
            "rows": rows,
            "columns": cols,
            "sex": rng.choice(["M", "F"], n_images, p=[0.52, 0.48]),
            "age_years": np.round(rng.uniform(18, 90, n_images), 2),
            "study_year": rng.integers(2018, 2021, n_images),
            "file_size": rng.integers(5_000_000, 15_000_000, n_images),
            "patient_id": [f"P{p:06d}" for p in rng.integers(0, max(1, int(n_images * 0.7)), n_images)],
        }
    )
    box_rows: list[tuple] = []
    label_rows: list[list] = []
    pool = [f"R{i + 1}" for i in range(reader_pool)]
    for i, iid in enumerate(ids):
        h, w = rows[i], cols[i]
        truth: list[tuple] = []
        truth_dis: list[str] = []
        if rng.random() < abnormal:
            for k in rng.choice(len(local), size=min(len(local), 1 + rng.poisson(1.2)), replace=False, p=lw):
                for _ in range(1 + int(rng.random() < 0.25)):
                    bw, bh = rng.uniform(0.05, 0.3) * w, rng.uniform(0.05, 0.3) * h
                    x0, y0 = rng.uniform(0, w - bw), rng.uniform(0, h - bh)
                    truth.append((local[k], x0, y0, x0 + bw, y0 + bh))
            truth_dis = list(rng.choice(diseases, size=1 + int(rng.random() < 0.2), replace=False, p=dw))
        for rad in rng.choice(pool, size=readers, replace=False):
            vec = [0] * len(names)
            seen = [b for b in truth if rng.random() < 0.85]
            if rng.random() < 0.03:
                k = rng.choice(len(local), p=lw)
                bw, bh = rng.uniform(0.05, 0.2) * w, rng.uniform(0.05, 0.2) * h
                x0, y0 = rng.uniform(0, w - bw), rng.uniform(0, h - bh)
                seen.append((local[k], x0, y0, x0 + bw, y0 + bh))
            for name, x0, y0, x1, y1 in seen:
                dx, dy = 0.03 * (x1 - x0), 0.03 * (y1 - y0)
                jx0, jx1 = max(0.0, x0 + rng.normal(0, dx)), min(w, x1 + rng.normal(0, dx))
                jy0, jy1 = max(0.0, y0 + rng.normal(0, dy)), min(h, y1 + rng.normal(0, dy))
                if jx1 - jx0 < 4 or jy1 - jy0 < 4:
                    continue
                box_rows.append((iid, rad, name, round(jx0, 1), round(jy0, 1), round(jx1, 1), round(jy1, 1)))
                vec[col[name]] = 1
            for d in truth_dis:
                if rng.random() < 0.9:
                    vec[col[d]] = 1
            if not any(vec):
                vec[col[sch.no_finding]] = 1
            elif seen and not any(vec[col[d]] for d in diseases):
                vec[col["Other diseases" if "Other diseases" in col else diseases[0]]] = 1  # QC: a global label
            label_rows.append([iid, rad, *vec])
    boxes = pd.DataFrame(box_rows, columns=["image_id", "rad_id", "class_name", *BOX_COLUMNS])
    labels = pd.DataFrame(label_rows, columns=["image_id", "rad_id", *names])
    # A box row whose reader marked its class keeps labels and boxes consistent (QC).
    return ReleaseTables(schema=sch, images=images, reader_boxes=boxes, reader_labels=labels, source="synthetic")
