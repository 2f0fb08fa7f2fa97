"""One phantom: a header, an image, optional burned-in text, and the truth record that lists them."""

from __future__ import annotations

from collections.abc import Sequence
from types import EllipsisType

import numpy as np
from pydicom.dataset import FileDataset

from cxrlab.dicom.phantom.anatomy import _image_size, _synthesize, _to_stored
from cxrlab.dicom.phantom.burned_text import _burn_text
from cxrlab.dicom.phantom.header import _add_voi, _build_dataset, _fmt_ds
from cxrlab.dicom.phantom.outliers import _OTHER_PARTS, _resolve_outlier
from cxrlab.dicom.phantom.people import _new_patient, _new_study, _Patient, _pick, _random_date, _Study
from cxrlab.dicom.phantom.truth import PhantomTruth

__all__ = ["generate_phantom"]


def _generate(
    rng: np.random.Generator,
    index: int,
    *,
    size_range: tuple[int, int],
    text_prob: float,
    outlier: str | None,
    burned_text: bool | None,
    patient: _Patient | None,
    study: _Study | None,
    findings: list[str] | None = None,
    finding_rng: np.random.Generator | None = None,
) -> tuple[FileDataset, PhantomTruth, _Patient, _Study]:
    """Generate one phantom for a given outlier class, optionally reusing a patient and study; *findings* are
    planted (adult frontal chests only) from *finding_rng*."""
    u_text = rng.random()
    burn = (u_text < text_prob) if burned_text is None else bool(burned_text)
    other_part = _pick(rng, _OTHER_PARTS)
    facing = 1 if rng.random() < 0.5 else -1
    if patient is None:
        date = _random_date(rng)
        patient = _new_patient(rng, outlier == "pediatric", date)
        study = _new_study(rng, patient.material, date)
    elif study is None:
        raise ValueError("a reused patient needs a study")
    ds, phi, age_years = _build_dataset(
        rng, patient, study, outlier=outlier, other_part=other_part, facing=facing
    )

    rows, cols = _image_size(rng, size_range)
    bits = int(rng.integers(10, 17))
    mono1 = bool(rng.random() < 0.4)
    planted: list[dict] = []
    disp = _synthesize(rng, rows, cols, outlier, other_part, facing,
                       findings=findings if outlier is None else None, finding_rng=finding_rng, boxes=planted)
    pixels = _to_stored(rng, disp, bits, mono1, outlier == "low_quality")
    del disp
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME1" if mono1 else "MONOCHROME2"
    ds.Rows, ds.Columns = rows, cols
    ds.BitsAllocated = 16
    ds.BitsStored = bits
    ds.HighBit = bits - 1
    ds.PixelRepresentation = 0
    u = rng.random()
    slope, intercept = 1.0, 0.0
    if u < 0.45:
        slope = 2.0 if rng.random() < 0.3 else 1.0
        intercept = -1024.0 if (bits >= 12 and rng.random() < 0.4) else 0.0
        ds.RescaleSlope = _fmt_ds(slope)
        ds.RescaleIntercept = _fmt_ds(intercept)
        ds.RescaleType = "US"
    _add_voi(rng, ds, pixels, slope, intercept, mono1)

    boxes: list[tuple[int, int, int, int]] = []
    if burn:
        cands = [
            patient.name.display,
            patient.patient_id,
            f"ID: {patient.patient_id}",
            study.date.strftime("%Y%m%d"),
            study.date.strftime("%d/%m/%Y"),
            study.accession,
            f"{ds.PatientAge} {patient.sex}".strip(),
            f"{ds.ViewPosition or 'PA'} ERECT",
        ]
        if patient.material == "ascii":
            cands.append(study.institution)
        boxes = _burn_text(rng, pixels, bits, mono1, cands)
    v = rng.random()
    if boxes:
        if v < 0.5:
            ds.BurnedInAnnotation = "YES"
        elif v < 0.7:
            ds.BurnedInAnnotation = "NO"
    elif v < 0.5:
        ds.BurnedInAnnotation = "NO"
    elif v < 0.55:
        ds.BurnedInAnnotation = "YES"
    ds.PixelData = pixels.astype("<u2", copy=False).tobytes()
    ds["PixelData"].VR = "OW"

    truth = PhantomTruth(
        file=f"phantom_{index:05d}.dcm",
        sop_instance_uid=str(ds.SOPInstanceUID),
        phi=phi,
        text_boxes=boxes,
        outlier=outlier,
        sex=patient.sex,
        age_years=age_years,
        rows=rows,
        columns=cols,
        photometric=str(ds.PhotometricInterpretation),
        modality=study.modality,
        patient_id=patient.patient_id,
        findings=planted,
    )
    ds.filename = truth.file
    return ds, truth, patient, study


def generate_phantom(
    rng: np.random.Generator,
    index: int,
    *,
    size_range: tuple[int, int] = (1024, 3000),
    text_prob: float = 0.3,
    outlier_prob: float = 0.15,
    outlier: str | None | EllipsisType = ...,
    burned_text: bool | None = None,
    findings: Sequence[str] = (),
) -> tuple[FileDataset, PhantomTruth]:
    """Generate one synthetic chest X-ray DICOM dataset with its ground truth.

    Parameters
    ----------
    rng : numpy.random.Generator
        Source of all randomness (UIDs, dates, names, geometry, noise); the same state gives the same result.
    index : int
        Index used for the default file name ``phantom_<index>.dcm`` in the truth record.
    size_range : tuple of int, optional
        Inclusive range of the image side lengths in pixels.
    text_prob : float, optional
        Probability of burned-in text when *burned_text* is None.
    outlier_prob : float, optional
        Probability of an outlier (uniform over :data:`OUTLIER_CLASSES`) when *outlier* is ``...``.
    outlier : str, None or Ellipsis, optional
        ``...`` draws at random, ``None`` forces a normal adult frontal chest image, a class name forces it.
    burned_text : bool or None, optional
        Force burned-in text on or off; None draws with *text_prob*. The random stream consumed does not
        depend on this, so the same seed with and without text differs only inside the text boxes (and in
        BurnedInAnnotation).
    findings : sequence of str, optional
        Findings to plant (:data:`~cxrlab.dicom.phantom.findings.FINDINGS`) on an adult frontal chest (ignored
        on an outlier); their boxes are in ``truth.findings``. Drawn from a child of *rng*'s seed sequence, so the
        rest of the image is the one drawn without them.

    Returns
    -------
    dataset : pydicom.dataset.FileDataset
        Explicit VR Little Endian dataset with file meta; write it with
        ``save_as(path, enforce_file_format=True)``.
    truth : PhantomTruth
        Its ground truth.

    Raises
    ------
    ValueError
        On an unknown outlier class or an invalid *size_range*.
    """
    resolved = _resolve_outlier(rng, outlier, outlier_prob)
    ds, truth, _, _ = _generate(
        rng,
        index,
        size_range=size_range,
        text_prob=text_prob,
        outlier=resolved,
        burned_text=burned_text,
        patient=None,
        study=None,
        findings=list(findings),
        finding_rng=np.random.default_rng(rng.bit_generator.seed_seq.spawn(1)[0]) if findings else None,
    )
    return ds, truth
