"""A phantom release: phantoms with planted findings, written in the VinDr layout with simulated readers.

For training and testing models and the dataset API without real data: ``train/<image_id>.dicom`` and
``test/<image_id>.dicom`` (adult frontal chests from :func:`cxrlab.dicom.phantom.generate_phantoms`, findings
planted with known boxes), ``annotations_{train,test}.csv`` and ``image_labels_{train,test}.csv`` in the VinDr-CXR
layout (VinDr-CXR data descriptor, "Data Records": three readers per training image, the test set's consensus)
and ``truth.json`` (the planted truth, with each image's ``file`` under its split).

The training set's readers are simulated like :func:`cxrlab.schemas.synthetic_release`'s: each of *readers*
readers (drawn from ``R1`` .. ``R<reader_pool>``) marks each planted finding with probability ``1 - miss_prob``,
corners jittered by *jitter* of the box size, and adds a false nodule with probability *false_prob*; a reader who
marks nothing reports "No finding". The test set's consensus is the truth itself.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from cxrlab.deid.identifiers import image_id_for
from cxrlab.dicom.phantom import FINDINGS, generate_phantoms
from cxrlab.errors import CxrlabError
from cxrlab.export.vindr import write_vindr_csvs
from cxrlab.runtime.files import atomic_write_text
from cxrlab.schemas import BOX_COLUMNS, ReleaseTables, get_schema

__all__ = ["write_phantom_release"]


def write_phantom_release(
    out: str | os.PathLike[str],
    n: int,
    *,
    seed: int = 0,
    size_range: tuple[int, int] = (1024, 3000),
    finding_prob: float = 0.35,
    test_share: float = 0.2,
    readers: int = 3,
    reader_pool: int = 17,
    miss_prob: float = 0.15,
    false_prob: float = 0.03,
    jitter: float = 0.03,
    overwrite: bool = False,
    on_progress: Callable[[int, int], None] | None = None,
) -> pd.DataFrame:
    """Write a phantom release of *n* images to *out* (built beside it, then renamed: complete or absent).

    Parameters
    ----------
    out : path
        The release folder.
    n : int
        Images (all adult frontal chests: no outliers, no burned-in text).
    seed : int
        Seed; the same seed gives the same release.
    size_range : (int, int)
        Image side range in pixels.
    finding_prob : float
        Probability of each planted finding per image (:data:`cxrlab.dicom.phantom.FINDINGS`).
    test_share : float
        Share of images in ``test/``.
    readers, reader_pool, miss_prob, false_prob, jitter
        The simulated readers of the training set (module docstring).
    overwrite : bool
        Replace an existing folder.
    on_progress : callable, optional
        ``on_progress(done, n)`` while the phantoms are written.

    Returns
    -------
    DataFrame
        The truth per image: ``image_id, split, rows, columns`` and one 0/1 column per planted finding.

    Raises
    ------
    CxrlabError
        *out* exists (without *overwrite*), or a parameter is out of range.
    """
    out = Path(out)
    if out.exists() and not overwrite:
        raise CxrlabError(f"{out}: already exists (choose another folder, or overwrite)")
    if not 1 <= readers <= reader_pool:
        raise CxrlabError(f"readers must be between 1 and the pool size {reader_pool}, got {readers}")
    if not 0.0 <= test_share <= 1.0:
        raise CxrlabError(f"test_share must be in [0, 1], got {test_share}")
    schema = get_schema("vindr-cxr")
    names = schema.names
    col = {name: i for i, name in enumerate(names)}
    work = out.parent / f".{out.name}.partial"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    try:
        truths = generate_phantoms(work / "phantoms", n, seed=seed, size_range=size_range, text_prob=0.0,
                                   outlier_prob=0.0, finding_prob=finding_prob, on_progress=on_progress)
        rng = np.random.default_rng([seed, 3])
        pool = [f"R{i + 1}" for i in range(reader_pool)]
        images, rb, rl, cb, cl, records = [], [], [], [], [], []
        for truth in truths:
            iid = image_id_for(truth.sop_instance_uid, b"", scheme="md5")  # the VinDr-CXR public form
            split = "test" if rng.random() < test_share else "train"
            dest = work / split / f"{iid}.dicom"
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(work / "phantoms" / truth.file, dest)
            truth.file = f"{split}/{iid}.dicom"
            records.append(truth.to_dict())
            images.append({"image_id": iid, "split": split, "path": str(dest), "rows": truth.rows,
                           "columns": truth.columns, "sex": truth.sex or None, "age_years": truth.age_years,
                           "patient_id": truth.patient_id})
            found = {f["label"] for f in truth.findings}
            if split == "test":
                vec = [0] * len(names)
                for f in truth.findings:
                    cb.append((iid, f["label"], *f["box"]))
                    vec[col[f["label"]]] = 1
                if not found:
                    vec[col[schema.no_finding]] = 1
                cl.append([iid, *vec])
                continue
            for rad in sorted(rng.choice(pool, size=readers, replace=False)):
                vec = [0] * len(names)
                marks = [f for f in truth.findings if rng.random() >= miss_prob]
                boxes = []
                for f in marks:
                    x0, y0, x1, y1 = f["box"]
                    dx, dy = jitter * (x1 - x0), jitter * (y1 - y0)
                    jx0, jx1 = max(0.0, x0 + rng.normal(0, dx)), min(truth.columns, x1 + rng.normal(0, dx))
                    jy0, jy1 = max(0.0, y0 + rng.normal(0, dy)), min(truth.rows, y1 + rng.normal(0, dy))
                    boxes.append((f["label"], jx0, jy0, jx1, jy1))
                if rng.random() < false_prob:
                    side = 0.04 * min(truth.rows, truth.columns)
                    x0 = float(rng.uniform(0.2, 0.75)) * truth.columns
                    y0 = float(rng.uniform(0.25, 0.55)) * truth.rows
                    boxes.append(("Nodule/Mass", x0, y0, x0 + side, y0 + side))
                for label, *coords in boxes:
                    rb.append((iid, rad, label, *(round(float(v), 1) for v in coords)))
                    vec[col[label]] = 1
                if not boxes:
                    vec[col[schema.no_finding]] = 1
                rl.append([iid, rad, *vec])
        shutil.rmtree(work / "phantoms")
        tables = ReleaseTables(
            schema=schema,
            images=pd.DataFrame(images),
            reader_boxes=pd.DataFrame(rb, columns=["image_id", "rad_id", "class_name", *BOX_COLUMNS]),
            reader_labels=pd.DataFrame(rl, columns=["image_id", "rad_id", *names]),
            consensus_boxes=pd.DataFrame(cb, columns=["image_id", "class_name", *BOX_COLUMNS]),
            consensus_labels=pd.DataFrame(cl, columns=["image_id", *names]),
            source="phantom",
        )
        write_vindr_csvs(tables, work, splits=tuple(tables.splits))
        atomic_write_text(work / "truth.json", json.dumps(records, indent=2, ensure_ascii=False) + "\n")
        if out.exists():
            shutil.rmtree(out)
        os.replace(work, out)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    frame = pd.DataFrame([{k: v for k, v in img.items() if k in ("image_id", "split", "rows", "columns")}
                          for img in images])
    for name in FINDINGS:
        frame[name] = [int(any(f["label"] == name for f in r["findings"])) for r in records]
    return frame
