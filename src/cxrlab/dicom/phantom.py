"""Deterministic synthetic chest X-ray DICOM phantoms with planted PHI and known ground truth.

The generator builds CXR-like projection images in plain numpy (body envelope, two lung fields, heart and
mediastinum, spine, ribs, clavicles and diaphragm domes, plus noise), wraps them in realistic and
deliberately messy CR/DX headers (multi-byte character sets, private tags, nested sequences, several VOI
encodings) and optionally burns identifying text into the pixels. Every identifying string planted in the
header is listed in :attr:`PhantomTruth.phi`, every burned-in text line's bounding box in
:attr:`PhantomTruth.text_boxes`, so de-identification, filtering and OCR code can be tested against exact
ground truth.

Everything, including UIDs, dates and times, is drawn from the ``numpy.random.Generator`` passed in, so a
given seed always yields byte-identical files (on the same library versions and fonts).

Examples
--------
>>> import numpy as np
>>> ds, truth = generate_phantom(np.random.default_rng(0), 0, size_range=(256, 384))
>>> truth.rows == ds.Rows
True
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import io
import json
import os
import tempfile
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import EllipsisType
from typing import Any, TypeVar

import numpy as np
import pydicom
from PIL import Image, ImageDraw, ImageFont, features
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, ExplicitVRLittleEndian

__all__ = [
    "CR_IMAGE_STORAGE",
    "DX_PRESENTATION_STORAGE",
    "OUTLIER_CLASSES",
    "PhantomTruth",
    "chest_reference_boxes",
    "generate_phantom",
    "generate_phantoms",
]

#: SOP Class UID of Computed Radiography Image Storage (PS3.4 Annex B.5).
CR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.1"
#: SOP Class UID of Digital X-Ray Image Storage - For Presentation (PS3.4 Annex B.5).
DX_PRESENTATION_STORAGE = "1.2.840.10008.5.1.4.1.1.1.1"
#: Outlier classes :func:`generate_phantom` can produce (``None`` is a normal adult frontal chest film).
OUTLIER_CLASSES: tuple[str, ...] = ("lateral", "other_body_part", "pediatric", "low_quality")

_T = TypeVar("_T")
_F32 = np.float32

# --------------------------------------------------------------------------------------------------
# Ground truth
# --------------------------------------------------------------------------------------------------


@dataclass
class PhantomTruth:
    """JSON-serialisable ground truth for one phantom file.

    Attributes
    ----------
    file : str
        File name relative to the output directory (POSIX separators).
    sop_instance_uid : str
        SOP Instance UID of the file.
    phi : list of str
        Every identifying string planted in the header (names as written in the PN value, IDs, dates as
        ``YYYYMMDD``, institution, address, station, serial numbers, free-text comments...). Each is at least
        6 characters long and occurs in the file bytes in the file's character set encoding, except that in
        ISO 2022 IR 87 files pydicom escapes each PN component separately, so a whole multi-group Japanese
        PN is only found in the decoded values (its alphabetic group is listed too and is greppable).
        Burned-in text lines are drawn from the same identity but are not listed here.
    text_boxes : list of tuple of int
        Burned-in text line boxes ``(x_min, y_min, x_max, y_max)`` in pixel coordinates, PIL-style: the max
        coordinates are exclusive, so ``pixels[y_min:y_max, x_min:x_max]`` is exactly the tight box.
    outlier : str or None
        ``None`` or one of :data:`OUTLIER_CLASSES`.
    sex : str
        PatientSex as written (``"M"``, ``"F"``, ``"O"`` or ``""``).
    age_years : float
        Exact age at the study date in years (PatientAge holds the DICOM AS rendering of it).
    rows, columns : int
        Image size.
    photometric : str
        ``"MONOCHROME1"`` or ``"MONOCHROME2"``.
    modality : str
        ``"CR"`` or ``"DX"``.
    patient_id : str
        PatientID as planted; files of one patient share it.
    """

    file: str
    sop_instance_uid: str
    phi: list[str]
    text_boxes: list[tuple[int, int, int, int]]
    outlier: str | None
    sex: str
    age_years: float
    rows: int
    columns: int
    photometric: str
    modality: str
    patient_id: str

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict (tuples become lists).

        Returns
        -------
        dict
            The dataclass fields.
        """
        d = dataclasses.asdict(self)
        d["text_boxes"] = [list(b) for b in self.text_boxes]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PhantomTruth:
        """Build a truth record from :meth:`to_dict` output (or one entry of ``truth.json``).

        Parameters
        ----------
        d : dict
            Field values.

        Returns
        -------
        PhantomTruth
            The record, with text boxes as tuples.
        """
        kw = dict(d)
        kw["text_boxes"] = [tuple(int(v) for v in b) for b in d.get("text_boxes", [])]
        return cls(**kw)


# --------------------------------------------------------------------------------------------------
# Identity material (fictitious)
# --------------------------------------------------------------------------------------------------

_ASCII_FAMILY = (
    "HARTMANN",
    "OKONKWO",
    "FERREIRA",
    "KOWALSKI",
    "LINDQVIST",
    "DELACROIX",
    "MORIARTY",
    "VASQUEZ",
    "ABERNATHY",
    "CHAUDHRY",
    "PETROVIC",
    "OYELARAN",
    "WHITFIELD",
    "BRANDSTETTER",
    "QUISPE",
    "MACALLISTER",
)
_ASCII_GIVEN = (
    "MARGARET",
    "JONATHAN",
    "ELEANOR",
    "RAFAEL",
    "PRIYANKA",
    "TOBIAS",
    "BEATRIX",
    "OSWALD",
    "SAOIRSE",
    "DMITRI",
    "CORNELIA",
    "LEOPOLD",
    "ANASTASIA",
    "BARNABY",
)
_LATIN1_FAMILY = ("Müller", "Gonçalves", "Øberg", "Lefèvre", "Núñez", "Strauß", "Søndergård", "Brontë")
_LATIN1_GIVEN = ("Jürgen", "José", "Åsa", "Hélène", "Iñaki", "Zoë", "François", "Björn")
_VI_FAMILY = ("Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Huỳnh", "Phan", "Vũ", "Võ", "Đặng", "Bùi", "Đỗ")
_VI_MIDDLE = ("Văn", "Thị", "Hữu", "Đức", "Minh", "Ngọc", "Thanh")
_VI_GIVEN = ("Anh", "Bình", "Cường", "Dũng", "Hạnh", "Hương", "Khánh", "Linh", "Phương", "Thảo", "Tuấn")
_JA_FAMILY = (
    ("Yamada", "山田", "やまだ"),
    ("Tanaka", "田中", "たなか"),
    ("Suzuki", "鈴木", "すずき"),
    ("Takahashi", "高橋", "たかはし"),
    ("Watanabe", "渡辺", "わたなべ"),
    ("Kobayashi", "小林", "こばやし"),
)
_JA_GIVEN = (
    ("Tarou", "太郎", "たろう"),
    ("Hanako", "花子", "はなこ"),
    ("Yuki", "由紀", "ゆき"),
    ("Kenji", "健二", "けんじ"),
    ("Akira", "明", "あきら"),
    ("Sachiko", "幸子", "さちこ"),
)
_INSTITUTIONS: dict[str, tuple[str, ...]] = {
    "ascii": (
        "ST BARNABAS GENERAL HOSPITAL",
        "RIVERBEND MEDICAL CENTER",
        "NORTHGATE COMMUNITY CLINIC",
        "MERIDIAN UNIVERSITY HOSPITAL",
    ),
    "latin1": ("Klinikum Süd-Überlingen", "Hôpital Saint-Éloi", "Hospital São Tomé", "Sjukhuset i Älvsbyn"),
    "vi": ("Bệnh viện Bạch Mai", "Bệnh viện Chợ Rẫy", "Bệnh viện Nhi Trung ương", "Bệnh viện Đà Nẵng"),
    "ja": ("東京中央病院", "大阪市立総合医療センター", "横浜市民病院", "名古屋記念病院"),
}
_STREETS: dict[str, tuple[str, ...]] = {
    "ascii": ("Maple Avenue, Springfield", "Harbor Road, Port Elkin", "Juniper Street, Ashford"),
    "latin1": ("Königstraße, Überlingen", "Rue de l'Évêché, Nîmes", "Rua da Conceição, Évora"),
    "vi": ("Giải Phóng, Đống Đa, Hà Nội", "Nguyễn Chí Thanh, Quận 5, TP. Hồ Chí Minh", "Lê Lợi, Huế"),
    "ja": ("東京都新宿区西新宿", "大阪府大阪市北区", "神奈川県横浜市中区"),
}
_MANUFACTURERS = (
    ("FUJIFILM Corporation", "FCR PROFECT CS"),
    ("Carestream Health", "DRX-Evolution"),
    ("Agfa", "DX-D 600"),
    ("Philips Medical Systems", "DigitalDiagnost"),
    ("SIEMENS", "Ysio Max"),
    ("GE Healthcare", "Definium 8000"),
    ("KONICA MINOLTA", "AeroDR"),
    ("ACME Imaging", "XR-9000"),
)
_OTHER_PARTS = ("ABDOMEN", "SPINE", "HAND", "PELVIS", "KNEE", "SKULL")

# Character set styles: (style, SpecificCharacterSet value or None, identity-material key).
_CHARSETS: tuple[tuple[str, str | list[str] | None, str], ...] = (
    ("ascii", None, "ascii"),
    ("ascii_100", "ISO_IR 100", "ascii"),
    ("latin1", "ISO_IR 100", "latin1"),
    ("utf8_vi", "ISO_IR 192", "vi"),
    ("utf8_ja", "ISO_IR 192", "ja"),
    ("iso2022_ja", ["", "ISO 2022 IR 87"], "ja"),
)
_CHARSET_P = (0.30, 0.10, 0.12, 0.28, 0.08, 0.12)


def _pick(rng: np.random.Generator, seq: Sequence[_T]) -> _T:
    """Return one element of *seq* chosen by *rng*."""
    return seq[int(rng.integers(len(seq)))]


def _digits(rng: np.random.Generator, n: int) -> str:
    """Return *n* random decimal digits, the first non-zero."""
    first = str(int(rng.integers(1, 10)))
    return first + "".join(str(int(d)) for d in rng.integers(0, 10, size=n - 1))


def _uid(rng: np.random.Generator) -> str:
    """Return a ``2.25.<int>`` UID from 128 random bits (PS3.5 Annex B.2)."""
    return "2.25." + str(int.from_bytes(rng.bytes(16), "big"))


def _romanize(text: str) -> str:
    """Return an upper-case ASCII rendering of a name for burned-in text and free-text comments."""
    text = text.replace("Đ", "D").replace("đ", "d").replace("Ø", "O").replace("ø", "o").replace("ß", "ss")
    text = unicodedata.normalize("NFKD", text)
    return "".join(c for c in text if ord(c) < 128).upper()


@dataclass
class _Name:
    """A person name: the PN value to write and an ASCII display form."""

    pn: str
    display: str


def _make_name(rng: np.random.Generator, material: str) -> _Name:
    """Return a fictitious person name in the given identity material."""
    if material == "latin1":
        fam, giv = _pick(rng, _LATIN1_FAMILY), _pick(rng, _LATIN1_GIVEN)
        return _Name(f"{fam}^{giv}", _romanize(f"{fam} {giv}"))
    if material == "vi":
        fam, mid, giv = _pick(rng, _VI_FAMILY), _pick(rng, _VI_MIDDLE), _pick(rng, _VI_GIVEN)
        return _Name(f"{fam}^{mid} {giv}", _romanize(f"{fam} {mid} {giv}"))
    if material == "ja":
        fam, giv = _pick(rng, _JA_FAMILY), _pick(rng, _JA_GIVEN)
        pn = f"{fam[0]}^{giv[0]}={fam[1]}^{giv[1]}={fam[2]}^{giv[2]}"
        return _Name(pn, f"{fam[0]} {giv[0]}".upper())
    fam, giv = _pick(rng, _ASCII_FAMILY), _pick(rng, _ASCII_GIVEN)
    if rng.random() < 0.3:
        initial = chr(ord("A") + int(rng.integers(26)))
        return _Name(f"{fam}^{giv}^{initial}", f"{fam} {giv} {initial}")
    return _Name(f"{fam}^{giv}", f"{fam} {giv}")


@dataclass
class _Patient:
    """Patient-level identity shared by all files of one patient."""

    style: str
    charset: str | list[str] | None
    material: str
    name: _Name
    patient_id: str
    birth_date: dt.date
    sex: str
    pediatric: bool
    other_ids: list[str]
    other_name: _Name | None
    address: str | None
    phone: str | None
    height_m: float | None
    weight_kg: float | None


@dataclass
class _Study:
    """Study-level attributes shared by the files of one study."""

    uid: str
    date: dt.date
    time: str
    accession: str
    study_id: str
    institution: str
    institution_address: str
    referring: _Name
    operator: _Name
    station: str
    serial: str
    manufacturer: str
    model: str
    modality: str
    requested_id: str
    sps_id: str
    series_count: int = 0
    instance_count: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


def _new_patient(rng: np.random.Generator, pediatric: bool, study_date: dt.date) -> _Patient:
    """Draw a new patient whose age at *study_date* is pediatric (< 10 y) or adult."""
    k = int(rng.choice(len(_CHARSETS), p=_CHARSET_P))
    style, charset, material = _CHARSETS[k]
    name = _make_name(rng, material)
    fmt = int(rng.integers(4))
    pid = (
        f"PID{_digits(rng, 7)}",
        _digits(rng, 9),
        f"VN{_digits(rng, 8)}",
        f"{_digits(rng, 4)}-{_digits(rng, 5)}",
    )[fmt]
    age_days = int(rng.integers(183, int(8.5 * 365))) if pediatric else int(rng.integers(18 * 366, 92 * 365))
    birth = study_date - dt.timedelta(days=age_days)
    u = rng.random()
    sex = "M" if u < 0.47 else "F" if u < 0.94 else "O" if u < 0.97 else ""
    other_ids = [f"MRN-{_digits(rng, 8)}" for _ in range(int(rng.integers(0, 3)))]
    other_name = _make_name(rng, material) if rng.random() < 0.3 else None
    address = None
    if rng.random() < 0.35:
        address = f"{int(rng.integers(10, 9999))} {_pick(rng, _STREETS[material])}"
    phone = None
    if rng.random() < 0.25:
        phone = f"+{int(rng.integers(1, 99))} {_digits(rng, 3)} {_digits(rng, 4)}"
    height = weight = None
    if rng.random() < 0.4:
        if pediatric:
            height = round(float(rng.uniform(0.6, 1.35)), 2)
            weight = round(float(rng.uniform(6, 32)), 1)
        else:
            height = round(float(rng.uniform(1.45, 1.95)), 2)
            weight = round(float(rng.uniform(42, 125)), 1)
    return _Patient(
        style,
        charset,
        material,
        name,
        pid,
        birth,
        sex,
        pediatric,
        other_ids,
        other_name,
        address,
        phone,
        height,
        weight,
    )


def _new_study(rng: np.random.Generator, material: str, date: dt.date) -> _Study:
    """Draw a new study on *date* with institution strings in the patient's identity material."""
    time = f"{int(rng.integers(6, 22)):02d}{int(rng.integers(60)):02d}{int(rng.integers(60)):02d}"
    manufacturer, model = _pick(rng, _MANUFACTURERS)
    inst = _pick(rng, _INSTITUTIONS[material])
    addr = f"{int(rng.integers(10, 9999))} {_pick(rng, _STREETS[material])}"
    return _Study(
        uid=_uid(rng),
        date=date,
        time=time,
        accession=f"ACC{_digits(rng, 9)}",
        study_id=f"ST{_digits(rng, 6)}",
        institution=inst,
        institution_address=addr,
        referring=_make_name(rng, material),
        operator=_make_name(rng, "ascii" if rng.random() < 0.5 else material),
        station=f"XRROOM{_digits(rng, 4)}",
        serial=f"SN{_digits(rng, 8)}",
        manufacturer=manufacturer,
        model=model,
        modality="CR" if rng.random() < 0.5 else "DX",
        requested_id=f"RP{_digits(rng, 8)}",
        sps_id=f"SPS{_digits(rng, 7)}",
    )


def _random_date(rng: np.random.Generator) -> dt.date:
    """Return a study date between 2005-01-01 and 2024-12-31."""
    return dt.date(2005, 1, 1) + dt.timedelta(days=int(rng.integers(0, 7305)))


def _age(birth: dt.date, on: dt.date) -> tuple[str, float]:
    """Return the DICOM AS string and the exact age in years of someone born *birth* on date *on*."""
    years = on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))
    months = (on.year - birth.year) * 12 + on.month - birth.month - (on.day < birth.day)
    days = (on - birth).days
    if years >= 2:
        s = f"{years:03d}Y"
    elif months >= 1:
        s = f"{months:03d}M"
    else:
        s = f"{days:03d}D"
    return s, round(days / 365.25, 4)


# --------------------------------------------------------------------------------------------------
# Image synthesis (low-resolution anatomy, upsampled, full-resolution noise)
# --------------------------------------------------------------------------------------------------


def _smoothstep(x: np.ndarray) -> np.ndarray:
    """Cubic smoothstep of *x* clipped to [0, 1]."""
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def _ellipse(
    X: np.ndarray, Y: np.ndarray, cx: float, cy: float, rx: float, ry: float, edge: float = 0.08
) -> np.ndarray:
    """Soft-edged ellipse mask in [0, 1]."""
    r = np.sqrt(((X - cx) / rx) ** 2 + ((Y - cy) / ry) ** 2)
    return _smoothstep((1.0 - r) / edge)


def _capsule(
    X: np.ndarray,
    Y: np.ndarray,
    p0: tuple[float, float],
    p1: tuple[float, float],
    r: float,
    edge: float = 0.01,
) -> np.ndarray:
    """Soft-edged capsule (thick segment) mask in [0, 1]."""
    dx, dy = p1[0] - p0[0], p1[1] - p0[1]
    len2 = max(dx * dx + dy * dy, 1e-9)
    t = np.clip(((X - p0[0]) * dx + (Y - p0[1]) * dy) / len2, 0.0, 1.0)
    d = np.hypot(X - p0[0] - t * dx, Y - p0[1] - t * dy)
    return _smoothstep((r - d) / edge)


def _texture(rng: np.random.Generator, shape: tuple[int, int], cells: int) -> np.ndarray:
    """Smooth random texture in about [-1, 1], made by bilinear upsampling of a coarse noise grid."""
    h, w = shape
    ch = max(2, int(round(cells * h / max(h, w))))
    cw = max(2, int(round(cells * w / max(h, w))))
    coarse = rng.standard_normal((ch, cw)).astype(_F32)
    return np.asarray(Image.fromarray(coarse).resize((w, h), Image.Resampling.BICUBIC), dtype=_F32)


def _grid(h: int, w: int, scale: float, cx: float, cy: float) -> tuple[np.ndarray, np.ndarray]:
    """Return anatomy coordinates X, Y (units of the thorax size) for an ``h`` x ``w`` grid."""
    L = scale * min(h, w)
    X = ((np.arange(w, dtype=_F32) + 0.5 - w * (0.5 + cx)) / L)[None, :]
    Y = ((np.arange(h, dtype=_F32) + 0.5 - h * (0.5 + cy)) / L)[:, None]
    return np.broadcast_to(X, (h, w)), np.broadcast_to(Y, (h, w))


def _chest_frontal(rng: np.random.Generator, X: np.ndarray, Y: np.ndarray, pediatric: bool) -> np.ndarray:
    """Attenuation map (about 0..1) of a frontal (PA/AP) chest radiograph."""
    j = lambda s: float(rng.uniform(-s, s))  # noqa: E731 - tiny jitter helper
    shape = X.shape
    # Body envelope: trunk, neck, shoulders (and sometimes arms at the sides).
    trunk = _ellipse(X, Y, 0.0, 0.18 + j(0.02), 0.47 + j(0.02), 0.78, edge=0.06)
    neck = _capsule(X, Y, (0.0, -0.9), (0.0, -0.3), 0.11 + j(0.01), edge=0.03)
    shoulders = np.maximum(_ellipse(X, Y, -0.36, -0.36, 0.2, 0.11), _ellipse(X, Y, 0.36, -0.36, 0.2, 0.11))
    body = np.maximum(np.maximum(trunk, neck), shoulders)
    if rng.random() < 0.5:
        arms = np.maximum(
            _capsule(X, Y, (-0.62, -0.3), (-0.66, 0.7), 0.09, 0.03),
            _capsule(X, Y, (0.62, -0.3), (0.66, 0.7), 0.09, 0.03),
        )
        body = np.maximum(body, arms * 0.9)
    thick = np.clip(1.0 - (X / 0.5) ** 2, 0.0, 1.0)
    att = body * (0.34 + 0.12 * thick)

    # Diaphragm domes (right dome, image left, a little higher) and lung fields.
    d_r, d_l = 0.2 + j(0.02), 0.23 + j(0.02)
    dome = np.where(
        X < 0,
        d_r - 0.13 * np.clip(1 - ((X + 0.2) / 0.22) ** 2, 0, 1),
        d_l - 0.12 * np.clip(1 - ((X - 0.2) / 0.22) ** 2, 0, 1),
    )
    below = _smoothstep((Y - dome) / 0.02)
    rl = _ellipse(X, Y, -0.21 + j(0.01), -0.06, 0.16 + j(0.01), 0.36, edge=0.1)
    ll = _ellipse(X, Y, 0.21 + j(0.01), -0.06, 0.155 + j(0.01), 0.36, edge=0.1)
    heart_rx = (0.23 if pediatric else 0.2) + j(0.01)
    heart = _ellipse(X, Y, 0.05 + j(0.015), 0.06 + j(0.01), heart_rx, 0.16 + j(0.01), edge=0.15)
    lungs = np.maximum(rl, ll) * (1.0 - below) * (1.0 - heart)
    markings = _texture(rng, shape, 28)
    att = att - lungs * (0.27 + 0.03 * markings)
    att = att + 0.1 * below * trunk  # liver / abdomen below the domes
    att = att + 0.06 * heart
    # Mediastinum and aortic knob.
    medi = _capsule(X, Y, (0.0, -0.5), (0.02, 0.15), 0.06, edge=0.03)
    att = att + 0.12 * medi + 0.06 * _ellipse(X, Y, 0.06, -0.2, 0.05, 0.04)
    # Spine with vertebral bodies.
    spine = _capsule(X, Y, (0.0, -1.0), (0.0, 1.2), 0.045, edge=0.015)
    att = att + spine * (0.06 + 0.03 * (np.cos(2 * np.pi * Y / 0.075) > -0.6))
    # Posterior ribs (curved bands descending laterally) and fainter anterior ribs.
    ax = np.abs(X)
    thorax = _smoothstep((0.46 - ax) / 0.05) * _smoothstep((Y + 0.42) / 0.04) * (1.0 - below)
    spacing = (0.085 if not pediatric else 0.075) + j(0.005)
    phase = (Y - 0.32 * ax + 0.45 * X * X) / spacing + float(rng.uniform(0, 1))
    post = ((np.cos(2 * np.pi * phase) + 1) * 0.5) ** 6
    ant = ((np.cos(2 * np.pi * (Y + 0.25 * ax) / (spacing * 1.2)) + 1) * 0.5) ** 8
    att = att + thorax * (0.11 * post + 0.04 * ant) * _smoothstep((ax - 0.03) / 0.03)
    # Clavicles.
    cy = -0.37 + j(0.02)
    clav = np.maximum(
        _capsule(X, Y, (-0.05, cy + 0.02), (-0.36, cy - 0.05), 0.018, 0.008),
        _capsule(X, Y, (0.05, cy + 0.02), (0.36, cy - 0.05), 0.018, 0.008),
    )
    att = att + 0.14 * clav
    return att * body


def _chest_lateral(rng: np.random.Generator, X: np.ndarray, Y: np.ndarray, facing: int) -> np.ndarray:
    """Attenuation map of a lateral chest radiograph; *facing* is +1 (anterior to image right) or -1."""
    Xf = X * facing
    body = _ellipse(X, Y, 0.0, 0.2, 0.36 + float(rng.uniform(-0.02, 0.02)), 0.85, edge=0.05)
    arms = _ellipse(X, Y, facing * 0.05, -0.55, 0.22, 0.18, edge=0.2)
    body = np.maximum(body, arms * 0.8)
    att = body * (0.5 + 0.1 * np.clip(1 - (X / 0.36) ** 2, 0, 1))
    dome = 0.18 + 0.06 * Xf
    below = _smoothstep((Y - dome) / 0.02)
    lung = _ellipse(Xf, Y, -0.02, -0.06, 0.27, 0.33, edge=0.12) * (1 - below)
    heart = _ellipse(Xf, Y, 0.14, 0.1, 0.14, 0.13, edge=0.12)
    att = att - 0.26 * lung * (1 - heart) * (1 + 0.1 * _texture(rng, X.shape, 24))
    att = att + 0.06 * heart + 0.08 * below * body
    spine = _capsule(Xf, Y, (-0.27, -1.0), (-0.29, 1.2), 0.05, edge=0.015)
    att = att + spine * (0.12 + 0.08 * (np.cos(2 * np.pi * Y / 0.075) > -0.5))
    sternum = _capsule(Xf, Y, (0.31, -0.35), (0.33, 0.1), 0.012, edge=0.008)
    att = att + 0.1 * sternum
    ribs = ((np.cos(2 * np.pi * (Y + 0.3 * Xf) / 0.09) + 1) * 0.5) ** 6
    att = att + 0.05 * ribs * lung
    return att * body


def _other_part(rng: np.random.Generator, X: np.ndarray, Y: np.ndarray, part: str) -> np.ndarray:
    """Attenuation map of a non-chest radiograph (hand, knee, skull, abdomen/pelvis/spine)."""
    if part == "HAND":
        palm = _ellipse(X, Y, 0.0, 0.22, 0.22, 0.2, edge=0.1)
        soft = np.maximum(palm, _capsule(X, Y, (0.0, 0.3), (0.0, 0.8), 0.16, 0.03))  # wrist
        bone = np.zeros_like(X)
        for k, ang in enumerate((-0.35, -0.12, 0.06, 0.24)):
            base = (-0.15 + 0.1 * k, 0.05)
            tip = (base[0] + 0.55 * np.sin(ang) * 0.6, base[1] - 0.5 + 0.05 * abs(k - 1.5))
            soft = np.maximum(soft, _capsule(X, Y, base, tip, 0.045, 0.015))
            bone = np.maximum(bone, _capsule(X, Y, (base[0], 0.3), tip, 0.018, 0.008))
        soft = np.maximum(soft, _capsule(X, Y, (0.2, 0.2), (0.42, -0.1), 0.05, 0.015))  # thumb
        bone = np.maximum(bone, _capsule(X, Y, (0.2, 0.25), (0.41, -0.08), 0.02, 0.008))
        return 0.3 * soft + 0.4 * bone
    if part == "KNEE":
        soft = _capsule(X, Y, (0.0, -1.0), (0.0, 1.0), 0.3, 0.05)
        femur = _capsule(X, Y, (0.0, -1.0), (0.0, -0.08), 0.1, 0.01)
        condyles = _ellipse(X, Y, 0.0, -0.1, 0.19, 0.09, edge=0.1)
        tibia = _capsule(X, Y, (0.0, 0.05), (0.02, 1.0), 0.1, 0.01)
        plateau = _ellipse(X, Y, 0.0, 0.08, 0.18, 0.06, edge=0.1)
        fib = _capsule(X, Y, (0.17, 0.15), (0.18, 1.0), 0.03, 0.01)
        bone = np.maximum.reduce([femur, condyles, tibia, plateau, fib])
        return 0.3 * soft + 0.45 * bone
    if part == "SKULL":
        head = _ellipse(X, Y, 0.0, 0.0, 0.42, 0.5, edge=0.04)
        vault = head - _ellipse(X, Y, 0.0, 0.0, 0.38, 0.46, edge=0.04)
        orbits = _ellipse(X, Y, -0.13, 0.12, 0.08, 0.06) + _ellipse(X, Y, 0.13, 0.12, 0.08, 0.06)
        return 0.35 * head + 0.4 * np.clip(vault, 0, 1) - 0.12 * orbits
    # ABDOMEN / PELVIS / SPINE
    body = _ellipse(X, Y, 0.0, 0.0, 0.5, 1.2, edge=0.05)
    att = 0.5 * body
    spine = _capsule(X, Y, (0.0, -1.2), (0.0, 0.45), 0.06 if part != "SPINE" else 0.08, edge=0.015)
    att = att + spine * (0.15 + 0.1 * (np.cos(2 * np.pi * Y / 0.12) > -0.4))
    wings = np.maximum(
        _ellipse(X, Y, -0.25, 0.48, 0.2, 0.14, 0.15), _ellipse(X, Y, 0.25, 0.48, 0.2, 0.14, 0.15)
    )
    att = att + 0.15 * wings
    if part != "SPINE":
        for _ in range(int(rng.integers(8, 16))):
            cx, cy = float(rng.uniform(-0.35, 0.35)), float(rng.uniform(-0.4, 0.4))
            att = att - 0.15 * _ellipse(
                X, Y, cx, cy, float(rng.uniform(0.03, 0.09)), float(rng.uniform(0.02, 0.06)), 0.3
            )
    return att * body


def _synthesize(
    rng: np.random.Generator, rows: int, cols: int, outlier: str | None, other_part: str, facing: int
) -> np.ndarray:
    """Return the display image (float32, 0 = black, 1 = white in MONOCHROME2 sense) at full size."""
    low_quality = outlier == "low_quality"
    long_side = int(rng.integers(90, 160)) if low_quality else 448
    f = long_side / max(rows, cols)
    h, w = max(8, int(round(rows * f))), max(8, int(round(cols * f)))
    if outlier == "pediatric":
        scale = float(rng.uniform(0.5, 0.68))
    elif outlier == "other_body_part":
        scale = float(rng.uniform(0.7, 0.95))
    else:
        scale = float(rng.uniform(0.86, 0.98))
    cx, cy = float(rng.uniform(-0.015, 0.015)), float(rng.uniform(-0.015, 0.015))
    X, Y = _grid(h, w, scale, cx, cy)
    if outlier == "lateral":
        att = _chest_lateral(rng, X, Y, facing)
    elif outlier == "other_body_part":
        att = _other_part(rng, X, Y, other_part)
    else:
        att = _chest_frontal(rng, X, Y, outlier == "pediatric")
    # Optional exposure gradient along one edge (heel effect / collimator shading).
    if rng.random() < 0.35:
        ramp_axis = int(rng.integers(2))
        n = h if ramp_axis == 0 else w
        ramp = np.clip(1.0 - np.arange(n, dtype=_F32) / (0.25 * n), 0.0, 1.0)
        if rng.random() < 0.5:
            ramp = ramp[::-1]
        ramp = ramp[:, None] if ramp_axis == 0 else ramp[None, :]
        att = att + float(rng.uniform(0.15, 0.4)) * ramp
    gamma = float(rng.uniform(0.85, 1.15))
    disp = np.clip(att / 0.95, 0.0, 1.0) ** gamma
    img = Image.fromarray(np.ascontiguousarray(disp, dtype=_F32))
    img = img.resize((cols, rows), Image.Resampling.BILINEAR)
    return np.asarray(img, dtype=_F32)


def _to_stored(
    rng: np.random.Generator, disp: np.ndarray, bits: int, mono1: bool, low_quality: bool
) -> np.ndarray:
    """Map a display image to unsigned stored values with quantum-like noise, inverted for MONOCHROME1."""
    maxv = float(2**bits - 1)
    if low_quality:
        lo = float(rng.uniform(0.3, 0.45))
        hi = lo + float(rng.uniform(0.06, 0.14))
        sigma = float(rng.uniform(0.02, 0.045))
    else:
        lo = float(rng.uniform(0.0, 0.08))
        hi = float(rng.uniform(0.78, 0.97))
        sigma = float(rng.uniform(0.003, 0.01))
    noise = rng.standard_normal(disp.shape, dtype=_F32)
    out = disp * _F32((hi - lo) * maxv) + _F32(lo * maxv)
    noise *= _F32(sigma * maxv)
    out += noise
    if mono1:
        np.subtract(_F32(maxv), out, out=out)
    np.clip(out, 0.0, maxv, out=out)
    np.rint(out, out=out)
    return out.astype(np.uint16)


# --------------------------------------------------------------------------------------------------
# Burned-in text
# --------------------------------------------------------------------------------------------------

_DEFAULT_FONT = "<pil-default>"


@functools.lru_cache(maxsize=1)
def _font_keys() -> tuple[str, ...]:
    """Fonts usable for burned-in text: PIL's built-in font plus a few system TTFs, sorted."""
    keys = [_DEFAULT_FONT]
    root = Path("/usr/share/fonts")
    if root.is_dir() and features.check_module("freetype2"):
        ttfs = sorted(str(p) for p in root.rglob("*.ttf") if "Math" not in p.name and "Symbol" not in p.name)
        keys.extend(ttfs[:6])
    return tuple(keys)


@functools.lru_cache(maxsize=256)
def _font(key: str, size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    """Load font *key* at pixel *size* (falls back to PIL's built-in font)."""
    if key != _DEFAULT_FONT:
        try:
            return ImageFont.truetype(key, size)
        except OSError:
            pass
    if features.check_module("freetype2"):
        return ImageFont.load_default(size=size)
    return ImageFont.load_default()


def _render_line(text: str, key: str, size: int) -> np.ndarray:
    """Render one text line to a tightly cropped float32 alpha mask in [0, 1]."""
    font = _font(key, size)
    left, top, right, bottom = (int(v) for v in font.getbbox(text))
    w, h = max(1, right - left + 4), max(1, bottom - top + 4)
    im = Image.new("L", (w, h), 0)
    ImageDraw.Draw(im).text((2 - left, 2 - top), text, fill=255, font=font)
    if not isinstance(font, ImageFont.FreeTypeFont):  # bitmap fallback: scale up to the requested size
        factor = max(1, round(size / 11))
        im = im.resize((w * factor, h * factor), Image.Resampling.NEAREST)
    a = np.asarray(im, dtype=_F32) / 255.0
    ys, xs = np.nonzero(a > 0)
    if ys.size == 0:
        return np.zeros((0, 0), dtype=_F32)
    return a[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]


def _overlaps(box: tuple[int, int, int, int], boxes: list[tuple[int, int, int, int]], pad: int) -> bool:
    """Return True when *box* (padded) intersects any of *boxes*."""
    x0, y0, x1, y1 = box
    return any(x0 - pad < b[2] and b[0] < x1 + pad and y0 - pad < b[3] and b[1] < y1 + pad for b in boxes)


def _burn_text(
    rng: np.random.Generator, pixels: np.ndarray, bits: int, mono1: bool, candidates: list[str]
) -> list[tuple[int, int, int, int]]:
    """Burn 1-3 groups of text lines into *pixels* in place; return the tight per-line boxes."""
    rows, cols = pixels.shape
    maxv = float(2**bits - 1)
    keys = _font_keys()
    boxes: list[tuple[int, int, int, int]] = []
    places = ["tl", "tr", "bl", "br", "lung", "top"]
    n_groups = int(rng.integers(1, 4))
    order = rng.permutation(len(places))[:n_groups]
    for gi in order:
        place = places[int(gi)]
        n_lines = int(rng.integers(1, 4))
        lines = [
            candidates[int(i)]
            for i in rng.choice(len(candidates), size=min(n_lines, len(candidates)), replace=False)
        ]
        key = _pick(rng, keys)
        size = max(8, int(round(float(rng.uniform(0.012, 0.045)) * rows)))
        contrast_mode = rng.random()
        level = float(rng.uniform(0.75, 1.0))
        bump = float(rng.uniform(0.1, 0.25))
        margin = int(round(float(rng.uniform(0.01, 0.04)) * min(rows, cols)))
        masks: list[np.ndarray] = []
        for _attempt in range(4):
            masks = [_render_line(t, key, size) for t in lines]
            masks = [m for m in masks if m.size]
            width = max((m.shape[1] for m in masks), default=0)
            if width <= cols - 2 * margin - 2:
                break
            size = max(6, int(size * 0.7))
        else:
            continue
        if not masks:
            continue
        gap = max(2, size // 3)
        group_h = sum(m.shape[0] for m in masks) + gap * (len(masks) - 1)
        group_w = max(m.shape[1] for m in masks)
        if group_h > rows - 2 * margin:
            continue
        if place in ("tl", "tr", "top"):
            y = margin
        elif place in ("bl", "br"):
            y = rows - margin - group_h
        else:  # over the right lung field (image left, upper zone)
            y = int(rows * 0.3)
        if place == "lung":
            gx = max(margin, int(cols * 0.5 - 0.3 * min(rows, cols)))
            gx = min(gx, cols - margin - group_w)
        elif place == "top":
            gx = (cols - group_w) // 2
        else:
            gx = margin
        y = int(np.clip(y, 0, max(0, rows - group_h)))
        placed: list[tuple[tuple[int, int, int, int], np.ndarray]] = []
        for m in masks:
            mh, mw = m.shape
            x = cols - margin - mw if place in ("tr", "br") else gx
            x = int(np.clip(x, 0, cols - mw))
            placed.append(((x, y, x + mw, y + mh), m))
            y += mh + gap
        if any(_overlaps(b, boxes, gap) for b, _ in placed):
            continue
        for (x0, y0, x1, y1), m in placed:
            region = pixels[y0:y1, x0:x1].astype(_F32)
            bg = float(region.mean()) / maxv
            bg_disp = 1.0 - bg if mono1 else bg
            # Low contrast (just above the local background) or bright text.
            t_disp = min(1.0, bg_disp + bump) if contrast_mode < 0.3 else max(level, min(1.0, bg_disp + 0.1))
            tv = (1.0 - t_disp) * maxv if mono1 else t_disp * maxv
            new = region * (1.0 - m) + _F32(tv) * m
            pixels[y0:y1, x0:x1] = np.clip(np.rint(new), 0, maxv).astype(np.uint16)
            boxes.append((x0, y0, x1, y1))
    return boxes


# --------------------------------------------------------------------------------------------------
# Header
# --------------------------------------------------------------------------------------------------


def _fmt_ds(v: float) -> str:
    """Format a float as a short DICOM DS string."""
    s = f"{v:.6g}"
    return s if len(s) <= 16 else f"{v:.4e}"


def _image_size(rng: np.random.Generator, size_range: tuple[int, int]) -> tuple[int, int]:
    """Draw (rows, columns): mostly portrait, sometimes landscape or square, all within *size_range*."""
    lo, hi = int(size_range[0]), int(size_range[1])
    if lo < 16 or hi < lo:
        raise ValueError(f"size_range must satisfy 16 <= min <= max, got {size_range!r}")
    long_side = int(rng.integers(lo, hi + 1))
    short = max(lo, int(round(long_side * float(rng.uniform(0.78, 1.0)))))
    u = rng.random()
    if u < 0.6:
        return long_side, short
    if u < 0.85:
        return short, long_side
    return long_side, long_side


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


# --------------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------------


def _resolve_outlier(
    rng: np.random.Generator, outlier: str | None | EllipsisType, outlier_prob: float
) -> str | None:
    """Draw (or validate) the outlier class; always consumes the same random numbers."""
    u, k = rng.random(), int(rng.integers(len(OUTLIER_CLASSES)))
    if outlier is Ellipsis:
        return OUTLIER_CLASSES[k] if u < outlier_prob else None
    if outlier is not None and outlier not in OUTLIER_CLASSES:
        raise ValueError(f"outlier must be None, ... or one of {OUTLIER_CLASSES}, got {outlier!r}")
    return outlier  # type: ignore[return-value]


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
) -> tuple[FileDataset, PhantomTruth, _Patient, _Study]:
    """Generate one phantom for a given outlier class, optionally reusing a patient and study."""
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
    disp = _synthesize(rng, rows, cols, outlier, other_part, facing)
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
    )
    return ds, truth


def chest_reference_boxes(rows: int, columns: int) -> dict[str, tuple[int, int, int, int]]:
    """Return boxes that lie inside the right lung and the mediastinum/heart of frontal adult phantoms.

    Valid for phantoms with ``outlier`` None (and ``"low_quality"``), whatever their random jitter; useful
    to check contrast and photometric handling.

    Parameters
    ----------
    rows, columns : int
        Image size.

    Returns
    -------
    dict
        ``{"lung": box, "mediastinum": box}`` with boxes ``(x_min, y_min, x_max, y_max)``, max exclusive.
    """
    m = min(rows, columns)
    cx, cy = columns / 2, rows / 2
    lung = (int(cx - 0.25 * m), int(cy - 0.17 * m), int(cx - 0.15 * m), int(cy - 0.03 * m))
    medi = (int(cx - 0.01 * m), int(cy + 0.05 * m), int(cx + 0.08 * m), int(cy + 0.15 * m))
    return {"lung": lung, "mediastinum": medi}


def _atomic_write(path: Path, data: bytes) -> None:
    """Write *data* to *path* via a temporary file in the same directory and ``os.replace``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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
        ds, truth, patient, study = _generate(
            rng,
            i,
            size_range=size_range,
            text_prob=text_prob,
            outlier=resolved,
            burned_text=None,
            patient=patient,
            study=study,
        )
        if pnum == len(patients) + 1:
            patients.append((patient, [study], pnum))
        snum = next(s for s, st in enumerate(patients[pnum - 1][1], 1) if st is study)
        rel = f"P{pnum:0{width}d}/S{snum:02d}/{i + 1:0{width}d}.dcm"
        truth = dataclasses.replace(truth, file=rel)
        ds.filename = rel
        _atomic_write(out_dir / rel, _encode(ds))
        truths.append(truth)
        if on_progress is not None:
            on_progress(i + 1, n)
    text = json.dumps([t.to_dict() for t in truths], indent=2, ensure_ascii=False) + "\n"
    _atomic_write(out_dir / "truth.json", text.encode("utf-8"))
    return truths
