"""The DICOM header of a phantom: CR/DX attributes with planted PHI, private tags, nested sequences, VOI.

The header is deliberately messy, as real archives are: multi-byte character sets, private blocks holding
PHI, sequences nested three deep, and several VOI encodings (none, one or several windows, a VOI LUT
Sequence; PS3.3 C.11.2).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, ExplicitVRLittleEndian

from cxrlab.dicom.phantom.people import _age, _Patient, _pick, _Study, _uid

__all__ = ["CR_IMAGE_STORAGE", "DX_PRESENTATION_STORAGE"]

#: SOP Class UID of Computed Radiography Image Storage (PS3.4 Annex B.5).
CR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.1"
#: SOP Class UID of Digital X-Ray Image Storage - For Presentation (PS3.4 Annex B.5).
DX_PRESENTATION_STORAGE = "1.2.840.10008.5.1.4.1.1.1.1"


def _fmt_ds(v: float) -> str:
    """Format a float as a short DICOM DS string."""
    s = f"{v:.6g}"
    return s if len(s) <= 16 else f"{v:.4e}"


def _add_voi(
    rng: np.random.Generator, ds: Dataset, pixels: np.ndarray, slope: float, intercept: float, mono1: bool
) -> None:
    """Add no VOI, a (possibly multi-valued) window, or a VOI LUT Sequence computed from the pixels."""
    sample = pixels[:: max(1, pixels.shape[0] // 128), :: max(1, pixels.shape[1] // 128)]
    p1, p99 = (float(v) for v in np.percentile(sample, [2, 98]))
    m1, m99 = p1 * slope + intercept, p99 * slope + intercept
    u = rng.random()
    if u < 0.25:
        return
    if u < 0.75 or slope != 1 or intercept != 0:
        c, w = (m1 + m99) / 2, max(2.0, m99 - m1)
        if rng.random() < 0.35:
            ds.WindowCenter = [_fmt_ds(round(c, 1)), _fmt_ds(round(c + 0.1 * w, 1))]
            ds.WindowWidth = [_fmt_ds(round(w, 1)), _fmt_ds(round(0.7 * w, 1))]
            ds.WindowCenterWidthExplanation = ["NORMAL", "HARDER"]
        else:
            ds.WindowCenter = _fmt_ds(round(c, 1))
            ds.WindowWidth = _fmt_ds(round(w, 1))
        if rng.random() < 0.3:
            ds.VOILUTFunction = "SIGMOID" if rng.random() < 0.5 else "LINEAR"
        return
    first = int(p1)
    n = int(min(65535, max(2, int(p99) - first + 1)))
    x = np.linspace(-4.0, 4.0, n)
    lut = np.round(65535.0 / (1.0 + np.exp(-x))).astype("<u2")
    item = Dataset()
    item.add(DataElement(0x00283002, "US", [n, first, 16]))
    item.LUTExplanation = "SIGMOID CXR"
    item.add(DataElement(0x00283006, "OW", lut.tobytes()))
    ds.VOILUTSequence = [item]


def _private_creator_item(ds: Dataset, creator: str, offset: int, vr: str, value: Any) -> None:
    """Add a private element at ``(0009, xx<offset>)`` of *ds* under *creator*."""
    ds.private_block(0x0009, creator, create=True).add_new(offset, vr, value)


def _build_dataset(
    rng: np.random.Generator,
    patient: _Patient,
    study: _Study,
    *,
    outlier: str | None,
    other_part: str,
    facing: int,
) -> tuple[FileDataset, list[str], float]:
    """Build the header (no pixels yet); return it, the planted PHI strings and the age in years."""
    phi: list[str] = []

    def plant(value: str) -> str:
        phi.append(value)
        if "=" in value:  # multi-group PN: the single-byte alphabetic group is greppable on its own
            alphabetic = value.split("=", 1)[0]
            if len(alphabetic) >= 6:
                phi.append(alphabetic)
        return value

    sop_class = CR_IMAGE_STORAGE if study.modality == "CR" else DX_PRESENTATION_STORAGE
    sop_uid = _uid(rng)
    series_uid = _uid(rng)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    meta.ImplementationVersionName = "CXRLAB_PHANTOM"
    ds = FileDataset("phantom.dcm", {}, file_meta=meta, preamble=b"\0" * 128)
    if patient.charset is not None:
        ds.SpecificCharacterSet = patient.charset
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = sop_uid
    ds.StudyInstanceUID = study.uid
    ds.SeriesInstanceUID = series_uid
    ds.Modality = study.modality
    study.series_count += 1
    study.instance_count += 1
    ds.SeriesNumber = study.series_count
    ds.InstanceNumber = 1
    ds.ImageType = ["ORIGINAL", "PRIMARY"] if rng.random() < 0.8 else ["DERIVED", "PRIMARY"]
    if study.modality == "DX":
        ds.PresentationIntentType = "FOR PRESENTATION"
    # Patient module.
    ds.PatientName = plant(patient.name.pn)
    ds.PatientID = plant(patient.patient_id)
    ds.PatientBirthDate = plant(patient.birth_date.strftime("%Y%m%d"))
    ds.PatientSex = patient.sex
    age_str, age_years = _age(patient.birth_date, study.date)
    ds.PatientAge = age_str
    if patient.height_m is not None and patient.weight_kg is not None:
        ds.PatientSize = _fmt_ds(patient.height_m)
        ds.PatientWeight = _fmt_ds(patient.weight_kg)
    if patient.address:
        ds.PatientAddress = plant(patient.address)
    if patient.phone:
        ds.PatientTelephoneNumbers = plant(patient.phone)
    if patient.other_name is not None:
        ds.OtherPatientNames = plant(patient.other_name.pn)
    if patient.other_ids:
        items = []
        for oid in patient.other_ids:
            it = Dataset()
            it.PatientID = plant(oid)
            it.IssuerOfPatientID = "REGIONAL MPI"
            it.TypeOfPatientID = "TEXT"
            items.append(it)
        ds.OtherPatientIDsSequence = items
    # Study / series / equipment.
    date = plant(study.date.strftime("%Y%m%d"))
    ds.StudyDate = ds.SeriesDate = ds.AcquisitionDate = ds.ContentDate = date
    ds.StudyTime = study.time
    ds.SeriesTime = ds.AcquisitionTime = ds.ContentTime = study.time
    ds.AccessionNumber = plant(study.accession)
    ds.StudyID = plant(study.study_id)
    ds.StudyDescription = "XR CHEST" if outlier != "other_body_part" else f"XR {other_part}"
    ds.InstitutionName = plant(study.institution)
    ds.InstitutionAddress = plant(study.institution_address)
    ds.ReferringPhysicianName = plant(study.referring.pn)
    ds.OperatorsName = plant(study.operator.pn)
    ds.StationName = plant(study.station)
    ds.DeviceSerialNumber = plant(study.serial)
    ds.Manufacturer = study.manufacturer
    ds.ManufacturerModelName = study.model
    ds.KVP = _fmt_ds(float(rng.integers(60, 126)))
    # Anatomy.
    if outlier == "other_body_part":
        ds.BodyPartExamined = other_part
        ds.ViewPosition = _pick(rng, ("AP", "PA", ""))
    else:
        ds.BodyPartExamined = "CHEST" if rng.random() < 0.85 else ""
        if outlier == "lateral":
            ds.ViewPosition = "LL" if facing > 0 else "RL"
        else:
            ds.ViewPosition = "PA" if rng.random() < 0.65 else "AP"
    ds.PatientOrientation = ["A", "F"] if outlier == "lateral" else ["L", "F"]
    spacing = round(float(rng.uniform(0.139, 0.2)), 3)
    ds.ImagerPixelSpacing = [_fmt_ds(spacing), _fmt_ds(spacing)]
    if rng.random() < 0.5:
        ds.PixelSpacing = [_fmt_ds(spacing), _fmt_ds(spacing)]
    # Free text with the name (a classic de-identification trap).
    if rng.random() < 0.3:
        ds.ImageComments = f"Follow-up for {plant(patient.name.display)}"
    # Private block with PHI.
    creator = "ACME_PRIVATE"
    _private_creator_item(ds, creator, 0x10, "LO", plant(f"PT {patient.name.display} {patient.patient_id}"))
    _private_creator_item(ds, creator, 0x11, "DS", "1.5")
    # Nested sequences up to depth 3.
    req = Dataset()
    req.RequestedProcedureID = plant(study.requested_id)
    req.ScheduledProcedureStepID = plant(study.sps_id)
    req.RequestedProcedureDescription = "XR CHEST 2 VIEWS"
    lvl2 = Dataset()
    ordered = plant(f"ORDERED BY {study.referring.display}")
    lvl2.private_block(0x0009, creator, create=True).add_new(0x21, "LO", ordered)
    lvl3 = Dataset()
    lvl3.ReferencedSOPClassUID = "1.2.840.10008.3.1.2.1.1"
    lvl3.ReferencedSOPInstanceUID = _uid(rng)
    lvl3.PatientName = patient.name.pn
    lvl3.PatientID = patient.patient_id
    lvl2.ReferencedPatientSequence = [lvl3]
    req.private_block(0x0009, creator, create=True).add_new(0x20, "SQ", [lvl2])
    ds.RequestAttributesSequence = [req]
    if rng.random() < 0.5:
        ref = Dataset()
        ref.ReferencedSOPClassUID = "1.2.840.10008.3.1.2.1.1"
        ref.ReferencedSOPInstanceUID = _uid(rng)
        ds.ReferencedPatientSequence = [ref]
    seen: set[str] = set()
    uniq = [p for p in phi if not (p in seen or seen.add(p))]
    return ds, uniq, age_years
