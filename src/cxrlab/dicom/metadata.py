"""Non-identifying metadata extracted from a DICOM header for the catalog.

Only values that the release statistics need (VinDr-CXR data descriptor, Table 2: image size, age, sex,
years, data size) and the filter rules use (modality, body part, view position). Ages come from
(0010,1010) *Patient's Age* (an AS value, PS3.5 Table 6.2-1: ``nnnD|W|M|Y``), or are computed from
(0010,0030) *Patient's Birth Date* and the study date when the AS value is missing; the birth date itself is
never stored. The Accession Number and the Study Instance UID, which link an image to its radiology report, are
kept only as keyed hashes (:func:`identifier_key`).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import asdict, dataclass
from datetime import date

from pydicom.dataset import Dataset

__all__ = ["IDENTIFIER_KINDS", "ImageMeta", "extract_metadata", "identifier_key", "keyed_hex", "measurement_spacing",
           "parse_age_string"]

_AGE_UNITS = {"D": 1 / 365.25, "W": 7 / 365.25, "M": 1 / 12, "Y": 1.0}


@dataclass
class ImageMeta:
    """Metadata kept in the catalog (all optional except the UID)."""

    sop_instance_uid: str
    patient_key: str | None
    sex: str | None
    age_years: float | None
    study_year: int | None
    rows: int | None
    columns: int | None
    pixel_spacing_row: float | None
    pixel_spacing_col: float | None
    modality: str | None
    body_part: str | None
    view_position: str | None
    manufacturer: str | None
    photometric: str | None
    transfer_syntax: str | None
    accession_key: str | None = None
    study_key: str | None = None

    def as_dict(self) -> dict:
        """The fields as a plain dict."""
        return asdict(self)


def parse_age_string(value: str | None) -> float | None:
    """Convert a DICOM AS value (``"045Y"``, ``"018M"``, ``"003W"``, ``"010D"``) to years.

    Returns None for empty or malformed values (PS3.5 Table 6.2-1, VR AS).
    """
    if not value:
        return None
    value = str(value).strip().upper()
    if len(value) < 2 or value[-1] not in _AGE_UNITS or not value[:-1].isdigit():
        return None
    return round(int(value[:-1]) * _AGE_UNITS[value[-1]], 4)


def _parse_da(value: object) -> date | None:
    text = str(value or "").strip()
    if len(text) < 8 or not text[:8].isdigit():
        return None
    try:
        return date(int(text[:4]), int(text[4:6]), int(text[6:8]))
    except ValueError:
        return None


def _text(ds: Dataset, keyword: str, limit: int = 64) -> str | None:
    value = ds.get(keyword)
    if value is None or value == "":
        return None
    if not isinstance(value, str) and hasattr(value, "__iter__"):  # multi-valued
        value = "\\".join(str(v) for v in value)
    return str(value).strip()[:limit] or None


def _int(ds: Dataset, keyword: str) -> int | None:
    try:
        value = ds.get(keyword)
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def keyed_hex(key: bytes, purpose: str, value: str) -> str:
    """HMAC-SHA256 of ``purpose:value`` under *key*, as 64 hex characters (the one keyed hash of cxrlab: patient
    keys here, date offsets and hashed values in :mod:`cxrlab.deid`)."""
    return hmac.new(key, f"{purpose}:{value}".encode("utf-8", "surrogateescape"), hashlib.sha256).hexdigest()


#: What :func:`identifier_key` hashes: (0008,0050) *Accession Number*, (0020,000D) *Study Instance UID*, and a
#: report's own id.
IDENTIFIER_KINDS = ("accession", "study", "report")


def identifier_key(key: bytes, kind: str, value: object) -> str | None:
    """The keyed hash that stands for an identifier in the catalog: 32 hex characters of :func:`keyed_hex`
    under the purpose *kind*, or None for an empty value.

    The value is compared as written, without the padding DICOM adds (spaces, and the NUL that pads a UID to an
    even length, PS3.5 6.2): the Accession Number ``"ACC123 "`` of a header and ``ACC123`` in a report table
    give the same key. Case is kept (an SH value is case-sensitive).

    Raises
    ------
    ValueError
        *kind* is not one of :data:`IDENTIFIER_KINDS`.
    """
    if kind not in IDENTIFIER_KINDS:
        raise ValueError(f"unknown identifier kind {kind!r} (one of {', '.join(IDENTIFIER_KINDS)})")
    text = str(value if value is not None else "").strip(" \t\r\n\x00")
    return keyed_hex(key, kind, text)[:32] if text else None


def extract_metadata(ds: Dataset, *, key: bytes) -> ImageMeta:
    """Extract :class:`ImageMeta` from a header.

    Parameters
    ----------
    ds : Dataset
        A header read with pydicom.
    key : bytes
        Workspace secret; (0010,0020) *Patient ID* is stored only as an HMAC under it (for patient-level
        splits), never in clear, and so are the Accession Number and the Study Instance UID (to find the
        images of a report).
    """
    study = (
        _parse_da(ds.get("StudyDate"))
        or _parse_da(ds.get("AcquisitionDate"))
        or _parse_da(ds.get("ContentDate"))
    )
    age = parse_age_string(ds.get("PatientAge"))
    if age is None:
        birth = _parse_da(ds.get("PatientBirthDate"))
        if birth and study and birth <= study:
            age = round((study - birth).days / 365.25, 4)
    sex = (_text(ds, "PatientSex") or "").upper()[:1] or None
    if sex not in (None, "M", "F", "O"):
        sex = None
    spacing = ds.get("PixelSpacing") or ds.get("ImagerPixelSpacing")
    try:
        row_sp, col_sp = (
            (float(spacing[0]), float(spacing[1])) if spacing and len(spacing) >= 2 else (None, None)
        )
    except (TypeError, ValueError):
        row_sp, col_sp = None, None
    patient_id = str(ds.get("PatientID") or "").strip()
    meta = getattr(ds, "file_meta", None)
    return ImageMeta(
        sop_instance_uid=str(
            ds.get("SOPInstanceUID") or getattr(meta, "MediaStorageSOPInstanceUID", "") or ""
        ),
        patient_key=keyed_hex(key, "patient", patient_id)[:32] if patient_id else None,
        sex=sex,
        age_years=age,
        study_year=study.year if study else None,
        rows=_int(ds, "Rows"),
        columns=_int(ds, "Columns"),
        pixel_spacing_row=row_sp,
        pixel_spacing_col=col_sp,
        modality=_text(ds, "Modality", 16),
        body_part=(_text(ds, "BodyPartExamined") or "").upper() or None,
        view_position=(_text(ds, "ViewPosition", 16) or "").upper() or None,
        manufacturer=_text(ds, "Manufacturer"),
        photometric=_text(ds, "PhotometricInterpretation", 16),
        transfer_syntax=str(meta.TransferSyntaxUID)
        if meta is not None and "TransferSyntaxUID" in meta
        else None,
        accession_key=identifier_key(key, "accession", ds.get("AccessionNumber")),
        study_key=identifier_key(key, "study", ds.get("StudyInstanceUID")),
    )


def _pair(value: object) -> tuple[float, float] | None:
    try:
        row, col = float(value[0]), float(value[1])  # type: ignore[index]
    except (TypeError, ValueError, IndexError, KeyError):
        return None
    return (row, col) if row > 0 and col > 0 else None


def measurement_spacing(ds: Dataset) -> dict | None:
    """The spacing a ruler measures with: ``{row, column, source, note}`` in mm, or None without one.

    (0028,0030) *Pixel Spacing* is the physical distance in the patient between pixel centres (PS3.3 10.7.1.1):
    the ruler uses it when present. Otherwise (0018,1164) *Imager Pixel Spacing* is the spacing at the front
    plane of the detector (PS3.3 C.8.11.4, DX Detector Module): a distance measured with it is at the detector,
    magnified by the beam's divergence (typically about 10 % in a PA chest film), and the note says so. Both
    give the row spacing (between the centres of adjacent rows, i.e. vertical) first, then the column spacing
    (PS3.3 10.7.1.3): a vertical step of ``dy`` pixels is ``dy * row`` mm, a horizontal one ``dx * column`` mm.

    References
    ----------
    DICOM PS3.3, 10.7.1.1 "Pixel Spacing", 10.7.1.3 "Pixel Spacing Value Order and Valid Values", C.8.11.4
    "DX Detector Module".
    """
    pixel = _pair(ds.get("PixelSpacing"))
    if pixel is not None:
        kind = str(ds.get("PixelSpacingCalibrationType") or "").strip()
        note = "in the patient (Pixel Spacing)" + (f", calibrated: {kind.lower()}" if kind else "")
        return {"row": pixel[0], "column": pixel[1], "source": "PixelSpacing", "note": note}
    imager = _pair(ds.get("ImagerPixelSpacing"))
    if imager is not None:
        note = "at the detector (Imager Pixel Spacing): the anatomy is magnified by the beam's divergence"
        try:
            factor = float(ds.get("EstimatedRadiographicMagnificationFactor") or 0)
        except (TypeError, ValueError):
            factor = 0.0
        if factor > 0:
            note += f"; divide by the estimated magnification {factor:g} for the patient"
        return {"row": imager[0], "column": imager[1], "source": "ImagerPixelSpacing", "note": note}
    return None
