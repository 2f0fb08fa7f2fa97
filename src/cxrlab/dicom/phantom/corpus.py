"""A phantom corpus on disk: patients with several studies, one file per image, and ``truth.json``.

Every file is written atomically (:func:`cxrlab.runtime.files.atomic_write_bytes`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import FileDataset

from cxrlab.dicom.phantom.findings import draw_findings
from cxrlab.dicom.phantom.generate import _generate
from cxrlab.dicom.phantom.outliers import _resolve_outlier, mislabel_header
from cxrlab.dicom.phantom.people import _new_study, _Patient, _Study
from cxrlab.dicom.phantom.truth import PhantomTruth
from cxrlab.runtime.files import atomic_write_bytes

__all__ = ["generate_phantoms"]


def _encode(ds: FileDataset) -> bytes:
    """Serialise *ds* as a DICOM Part 10 file."""
    buf = io.BytesIO()
    pydicom.dcmwrite(buf, ds, enforce_file_format=True)
    return buf.getvalue()


def generate_phantoms(
    out_dir: Path,
    n: int,
    *,
    seed: int = 0,
    size_range: tuple[int, int] = (1024, 3000),
    text_prob: float = 0.3,
    outlier_prob: float = 0.15,
    mislabel_prob: float = 0.0,
    finding_prob: float = 0.0,
    on_progress: Callable[[int, int], None] | None = None,
) -> list[PhantomTruth]:
    """Write *n* phantoms under *out_dir* plus ``truth.json``; deterministic in *seed*.

    Files are laid out as ``P<patient>/S<study>/<index>.dcm``. About a third of the files reuse an earlier
    adult patient (a new study on a later date, or another series of the same study), so tests can group by
    patient and study; pediatric patients are never reused. All files are written atomically.

    Parameters
    ----------
    out_dir : pathlib.Path
        Output directory (created if missing).
    n : int
        Number of files.
    seed : int, optional
        Seed; the same seed gives byte-identical output.
    size_range, text_prob, outlier_prob
        As for :func:`generate_phantom`.
    mislabel_prob : float, optional
        Probability that an outlier's header looks like an adult frontal chest film's
        (:func:`~cxrlab.dicom.phantom.outliers.mislabel_header`), drawn from a stream of its own: 0 leaves every
        file as without this option.
    finding_prob : float, optional
        Probability of each planted finding (:data:`~cxrlab.dicom.phantom.findings.FINDINGS`: a nodule, an
        enlarged heart, a pleural effusion, drawn independently) on each adult frontal chest (not on outliers),
        with their boxes in ``truth.findings``. Drawn from a stream of their own: 0 leaves every file as without
        this option.
    on_progress : callable, optional
        Called as ``on_progress(done, n)`` after each file.

    Returns
    -------
    list of PhantomTruth
        One record per file, in index order (also written to ``out_dir/truth.json``).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    master = np.random.default_rng(seed)
    width = max(4, len(str(n)))
    patients: list[tuple[_Patient, list[_Study], int]] = []
    truths: list[PhantomTruth] = []
    for i in range(n):
        rng = np.random.default_rng([seed, i])
        resolved = _resolve_outlier(rng, ..., outlier_prob)
        reuse, same_study, pick = master.random(), master.random(), master.random()
        gap = int(master.integers(1, 900))
        adults = [k for k, (p, _, _) in enumerate(patients) if not p.pediatric]
        patient = study = None
        pnum = len(patients) + 1
        if resolved != "pediatric" and adults and reuse < 0.35:
            k = adults[int(pick * len(adults))]
            patient, studies, pnum = patients[k]
            if same_study < 0.5:
                study = studies[-1]
            else:
                study = _new_study(rng, patient.material, studies[-1].date + dt.timedelta(days=gap))
                studies.append(study)
        finding_rng = np.random.default_rng([seed, i, 2])
        findings = draw_findings(finding_rng, finding_prob) if resolved is None else []
        ds, truth, patient, study = _generate(
            rng,
            i,
            size_range=size_range,
            text_prob=text_prob,
            outlier=resolved,
            burned_text=None,
            patient=patient,
            study=study,
            findings=findings,
            finding_rng=finding_rng,
        )
        if pnum == len(patients) + 1:
            patients.append((patient, [study], pnum))
        snum = next(s for s, st in enumerate(patients[pnum - 1][1], 1) if st is study)
        rel = f"P{pnum:0{width}d}/S{snum:02d}/{i + 1:0{width}d}.dcm"
        mislabel = bool(
            truth.outlier and mislabel_prob > 0 and np.random.default_rng([seed, i, 1]).random() < mislabel_prob
        )
        if mislabel:
            mislabel_header(ds, truth.outlier)
        truth = dataclasses.replace(truth, file=rel, header_mislabelled=mislabel)
        ds.filename = rel
        atomic_write_bytes(out_dir / rel, _encode(ds))
        truths.append(truth)
        if on_progress is not None:
            on_progress(i + 1, n)
    text = json.dumps([t.to_dict() for t in truths], indent=2, ensure_ascii=False) + "\n"
    atomic_write_bytes(out_dir / "truth.json", text.encode("utf-8"))
    return truths
