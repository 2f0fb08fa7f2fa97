"""Fictitious people and their studies: names in several character sets, IDs, dates, institutions.

Every identity is drawn from the ``numpy.random.Generator`` passed in. The character set styles cover plain
ASCII, ISO_IR 100 (Latin-1), ISO_IR 192 (UTF-8, Vietnamese and Japanese) and ISO 2022 IR 87 (Japanese, with
the three component groups of a PN value, PS3.5 6.2.1), so de-identification meets every encoding a PACS sends.
"""

from __future__ import annotations

import datetime as dt
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np

_T = TypeVar("_T")

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
