"""Hypothesis strategies that plant PHI in DICOM datasets, and the checks a de-identified output must pass.

:func:`phi_datasets` draws ``(FileDataset, planted)``: a small valid CR image (Explicit VR Little Endian, 8x8
16-bit MONOCHROME2) whose identifying content is made of distinctive tokens (``PHI<nn><random>``, unique per
element through the counter ``nn``) and runs of non-ASCII characters, placed in

- identifying standard attributes: a fixed list (names, IDs, addresses, physicians, free text, birth date...)
  plus attributes drawn from the whole pydicom dictionary whose rule in the profile is not *keep*;
- UIDs (Study/Series/SOP Instance, Frame of Reference, referenced UIDs in items, file meta);
- private creator blocks in odd groups (LO/SH/UT/OB/UN/LT/ST/UC/UR/AE/CS/PN/DA/DT/TM values, private sequences,
  orphan private elements without a creator);
- nested sequences down to depth 3 (standard sequences the profile removes, empties or keeps-and-recurses, and
  private sequences), each item with its own PHI;
- overlay (60xx) and curve (50xx) groups, the file meta (Source AE Title, Private Information) and the preamble;
- under seven Specific Character Sets (default, ISO_IR 100/126/144/192, GB18030, ISO 2022 IR 87/149).

``planted`` holds every string that must not survive, as ``str``; :func:`encodings_of` gives the byte forms to
search for. Values a profile keeps on purpose are never planted: ``basic`` retains patient characteristics and
device identity (PatientAge/Sex/Size/Weight, StationName, DeviceSerialNumber...) and times (E.3.6 shifts whole
days), ``vindr`` retains PatientAge/Sex/Size/Weight; PHI goes there only for the profile that drops it.
Dates are real ``YYYYMMDD`` dates: the study date (used by every DA) lies in 2000-2030 and the birth date in
1900-1960, so a date moved back by at most 3650 days can never equal a planted one.

:func:`find_leaks` and :func:`elements_outside_profile` are the acceptance checks (shared with
``bench/deid_fuzz.py``).
"""

from __future__ import annotations

import re
import string
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import pydicom
from hypothesis import strategies as st
from pydicom.charset import convert_encodings, encode_string
from pydicom.datadict import DicomDictionary, tag_for_keyword
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import ExplicitVRLittleEndian

from cxrlab.deid.profiles import VINDR_KEEP, Action, Profile, get_profile

__all__ = [
    "CHARSETS",
    "MARKER_TAGS",
    "elements_outside_profile",
    "encodings_of",
    "find_leaks",
    "phi_datasets",
]

CR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.1"
ALNUM = string.ascii_letters + string.digits

# --- character sets ---------------------------------------------------------------------------------------------
_LATIN1 = "àáâãäåæçèéêëìíîïñòóôõöøùúûüýÿßÀÉÑÖÜ"
_GREEK = "αβγδεζηθικλμνξοπρστυφχψωΑΒΓΔΘΛΞΠΣΦΨΩ"
_CYRILLIC = "абвгдежзийклмнопрстуфхцчшщыэюяБГДЖЗИЛПФЦЧШЩЭЮЯ"
_VIETNAMESE = "ĂăÂâĐđÊêÔôƠơƯưảãạằẳẵắặầẩẫấậẻẽẹềểễếệỉĩịỏọồổỗốộờởỡớợủũụừửữứựỳỷỹỵ"
_JAPANESE = (
    "あいうえおかきくけこさしすせそたちつてとなにぬねのはひふへほまみむめもやゆよらりるれろわをん"
    "アイウエオカキクケコサシスセソタチツテトナニヌネノハヒフヘホマミムメモヤユヨラリルレロワヲン"
    "山田太郎花子鈴木佐藤中村小林加藤吉田本病院東京大阪医師患者"
)
_CHINESE = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖董潘袁蔡蒋余杜叶程苏魏医院北京上海"
_KOREAN = "김이박최정강조윤장임한오서신권황안송류홍병원서울"


def _encodable(alphabet: str, charset: str | list[str]) -> str:
    """The characters of *alphabet* that pydicom encodes under *charset* without a fallback."""
    encodings = convert_encodings(charset)
    kept = []
    for ch in dict.fromkeys(alphabet):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                encode_string(ch, encodings)
        except (UnicodeError, UserWarning, LookupError, ValueError):
            continue
        kept.append(ch)
    return "".join(kept)


#: ``(SpecificCharacterSet value or None for the default repertoire, characters for multi-byte/8-bit PHI)``.
CHARSETS: tuple[tuple[str | list[str] | None, str], ...] = tuple(
    (cs, _encodable(alphabet, cs or "ISO_IR 6") if alphabet else "")
    for cs, alphabet in (
        (None, ""),
        ("ISO_IR 100", _LATIN1),
        ("ISO_IR 126", _GREEK),
        ("ISO_IR 144", _CYRILLIC),
        ("ISO_IR 192", _LATIN1 + _GREEK + _CYRILLIC + _VIETNAMESE + _JAPANESE + _CHINESE + _KOREAN),
        ("GB18030", _CHINESE),
        (["", "ISO 2022 IR 87"], _JAPANESE),
        (["", "ISO 2022 IR 149"], _KOREAN),
    )
)

_ESCAPE = re.compile(rb"\x1b[\x20-\x2f]*[\x30-\x7e]")


def encodings_of(value: str, charset: str | Sequence[str] | None) -> list[bytes]:
    """Byte strings under which *value* could appear in a file written with *charset*.

    UTF-8 of the whole value, its encoding under *charset* (pydicom's encoder, ISO 2022 escapes included) and,
    for ISO 2022 sets, the same bytes with the escape sequences removed (a run encoded in the middle of a longer
    value may be preceded by an escape the needle does not have). Needles shorter than 6 bytes are dropped.
    """
    found: dict[bytes, None] = {value.encode("utf-8"): None}
    cs = charset if charset else "ISO_IR 6"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            encoded = encode_string(value, convert_encodings(list(cs) if not isinstance(cs, str) else cs))
    except (UnicodeError, UserWarning, LookupError, ValueError):
        encoded = b""
    if encoded:
        found[encoded] = None
        found[_ESCAPE.sub(b"", encoded)] = None
    return [needle for needle in found if len(needle) >= 6]


# --- tag pools ----------------------------------------------------------------------------------------------------
TEXT_VRS = frozenset({"PN", "LO", "SH", "LT", "ST", "UT", "UC", "UR", "AE", "CS", "DA", "DT", "TM", "UI"})
BINARY_VRS = frozenset({"OB", "OW", "UN"})
#: Added by cxrlab to every output (PS3.15 E.1.1), never checked against the profile.
MARKER_TAGS = frozenset({0x00120062, 0x00120063, 0x00120064, 0x00280303})
_MARKER_ITEM_TAGS = frozenset({0x00080100, 0x00080102, 0x00080104})  # CodeValue, CodingSchemeDesignator, CodeMeaning
_NEVER_PLANT = frozenset(
    {0x00080005, 0x00080016, 0x00080018, 0x00080060, 0x00280002, 0x00280004, 0x00280008, 0x7FE00010}
    | MARKER_TAGS
)

#: Identifying attributes named in the issue, always candidates (whatever the profile says about them).
NAMED_PHI = (
    "PatientName", "PatientID", "OtherPatientIDs", "OtherPatientNames", "PatientAddress", "InstitutionName",
    "InstitutionAddress", "ReferringPhysicianName", "OperatorsName", "PerformingPhysicianName", "AccessionNumber",
    "StudyID", "PatientBirthDate", "StudyDescription", "SeriesDescription", "ImageComments",
    "AdditionalPatientHistory", "PatientComments", "RequestingPhysician", "IssuerOfPatientID",
    "PatientTelephoneNumbers", "PatientBirthName", "PatientMotherBirthName", "NameOfPhysiciansReadingStudy",
    "PhysiciansOfRecord", "InstitutionalDepartmentName", "StudyDate", "SeriesDate", "AcquisitionDate",
    "ContentDate", "AcquisitionDateTime", "SeriesTime", "PatientBirthTime", "RequestedProcedureID",
    "PerformedProcedureStepID", "ProtocolName", "RequestedProcedureDescription", "ReasonForStudy",
)
#: Kept by ``basic`` on purpose (Retain Device Identity, Retain Longitudinal Temporal Information): PHI only for
#: profiles that drop them.
RETAINED_BY_BASIC = ("StationName", "DeviceSerialNumber", "StudyTime", "ContentTime", "DetectorID", "PlateID")
STANDARD_SEQUENCES = (
    "RequestAttributesSequence", "ReferencedStudySequence", "OtherPatientIDsSequence", "ReferencedPatientSequence",
    "AnatomicRegionSequence", "ViewCodeSequence", "ProcedureCodeSequence", "PerformedProtocolCodeSequence",
    "ContributingEquipmentSequence", "RequestingPhysicianIdentificationSequence", "SourceImageSequence",
    "ContentSequence", "ReferencedImageSequence", "PatientInsurancePlanCodeSequence",
)
PRIVATE_GROUPS = (0x0009, 0x0011, 0x0019, 0x0021, 0x0029, 0x0043, 0x0099, 0x2001, 0x7FD1, 0x7FE1)
PRIVATE_CREATORS = ("SIEMENS CSA HEADER", "GEMS_IDEN_01", "Philips Imaging DD 001", "AGFA PACS Archive Mirroring")
PRIVATE_VRS = ("LO", "SH", "UT", "OB", "UN", "LT", "ST", "UC", "UR", "AE", "CS", "PN", "DA", "DT", "TM", "SQ",
               "DS", "IS", "AS")


@dataclass(frozen=True)
class _Pool:
    named: tuple[tuple[int, str], ...]  # (tag, VR)
    scalars: tuple[tuple[int, str], ...]
    sequences: tuple[int, ...]


def _plantable(profile: Profile, tag: int, keyword: str, vr: str) -> bool:
    if tag in _NEVER_PLANT or keyword == "":
        return False
    group = tag >> 16
    if group in (0x0000, 0x0002, 0x0004, 0x0006, 0xFFFA, 0xFFFC, 0xFFFE) or tag >= 0x7FE00000:
        return False
    action = profile.rule_for(tag, keyword).action
    if action == Action.KEEP:
        return False
    return not (action == Action.SHIFT and vr not in ("DA", "DT"))


_POOLS: dict[str, _Pool] = {}


def _pool(profile_name: str) -> _Pool:
    if profile_name in _POOLS:
        return _POOLS[profile_name]
    profile = get_profile(profile_name)
    named_kw = NAMED_PHI + (RETAINED_BY_BASIC if profile_name != "basic" else ())
    named = tuple((int(tag_for_keyword(kw)), DicomDictionary[tag_for_keyword(kw)][0]) for kw in named_kw)
    scalars = []
    for tag, (vr, _vm, _name, _retired, keyword) in sorted(DicomDictionary.items()):
        if vr in TEXT_VRS | BINARY_VRS and _plantable(profile, tag, keyword, vr):
            scalars.append((tag, vr))
    sequences = tuple(int(tag_for_keyword(kw)) for kw in STANDARD_SEQUENCES)
    _POOLS[profile_name] = _Pool(named, tuple(scalars), sequences)
    return _POOLS[profile_name]


# --- drawing values -------------------------------------------------------------------------------------------------
@dataclass
class _Ctx:
    draw: Any
    profile: str
    charset: str | list[str] | None
    alphabet: str
    study_date: date
    birth_date: date
    planted: list[str] = field(default_factory=list)
    counter: int = 0

    def plant(self, value: str) -> str:
        if value not in self.planted:
            self.planted.append(value)
        return value

    def token(self, upper: bool = False) -> str:
        self.counter += 1
        rand = self.draw(st.text(alphabet=ALNUM, min_size=8, max_size=10))
        tok = f"PHI{self.counter % 100:02d}{rand}"
        return self.plant(tok.upper() if upper else tok)

    def foreign(self, max_size: int = 10) -> str:
        """A run of non-ASCII characters of the data set's repertoire (planted), or '' for the default one."""
        if not self.alphabet:
            return ""
        return self.plant(self.draw(st.text(alphabet=self.alphabet, min_size=6, max_size=max_size)))

    def uid(self) -> str:
        digits = self.draw(st.integers(min_value=10**11, max_value=10**18))
        self.counter += 1
        return self.plant(f"1.2.826.0.1.3680043.10.{self.counter}.{digits}")

    def time(self) -> str:
        self.counter += 1
        hh, mm, ss = self.draw(st.tuples(st.integers(0, 23), st.integers(0, 59), st.integers(0, 59)))
        return f"{hh:02d}{mm:02d}{ss:02d}.{self.counter % 100:02d}{self.draw(st.integers(0, 9999)):04d}"

    def datetime(self) -> str:
        tz = self.draw(st.sampled_from(["", "+0700", "-0500", "+0900"]))
        return self.plant(self.study_date.strftime("%Y%m%d") + self.time() + tz)


def _text(ctx: _Ctx, vr: str, tag: int = 0) -> str | list[str]:
    """A PHI value valid for *vr* (every identifying part is planted)."""
    if vr == "PN":
        foreign = ctx.foreign(6)
        if isinstance(ctx.charset, list):  # ISO 2022: alphabetic=ideographic=phonetic groups
            return f"{ctx.token()}^{ctx.token()}={foreign}^{ctx.foreign(6)}={ctx.foreign(6)}"
        name = f"{ctx.token()}^{foreign or ctx.token()}"
        return [name, f"{ctx.token()}^{ctx.foreign(6) or ctx.token()}"] if ctx.draw(st.booleans()) else name
    if vr in ("SH",):
        return ctx.foreign(16) if ctx.alphabet and ctx.draw(st.booleans()) else ctx.token()
    if vr == "LO":
        return f"{ctx.token()} {ctx.foreign(12)}".strip()
    if vr in ("LT", "ST", "UT", "UC"):
        sep = ctx.draw(st.sampled_from([" ", "\r\n", " \\ ", "\t"]))
        return f"seen by {ctx.token()}{sep}{ctx.foreign(10)} at {ctx.token()} hospital"
    if vr == "UR":
        return f"https://pacs.example.org/wado?patient={ctx.token()}"
    if vr in ("AE", "CS"):
        return ctx.token(upper=True)
    if vr == "DA":
        if tag == 0x00100030:
            return ctx.plant(ctx.birth_date.strftime("%Y%m%d"))
        return ctx.plant(ctx.study_date.strftime("%Y%m%d"))
    if vr == "DT":
        return ctx.datetime()
    if vr == "TM":
        return ctx.plant(ctx.time())
    if vr == "UI":
        return ctx.uid()
    raise AssertionError(vr)


def _binary(ctx: _Ctx) -> bytes:
    data = encode_string(f"{ctx.token()} {ctx.foreign(8)}".strip(), convert_encodings(ctx.charset or "ISO_IR 6"))
    return data + b"\0" * (len(data) % 2)


def _element(ctx: _Ctx, tag: int, vr: str) -> DataElement:
    if vr in BINARY_VRS:
        return DataElement(tag, vr, _binary(ctx))
    return DataElement(tag, vr, _text(ctx, vr, tag))


def _private_value(ctx: _Ctx, vr: str, depth: int) -> Any:
    if vr == "SQ":
        return DicomSequence([_item(ctx, depth + 1) for _ in range(ctx.draw(st.integers(1, 2)))])
    if vr in ("OB", "UN"):
        return _binary(ctx)
    if vr == "DS":
        return ctx.draw(st.sampled_from(["12.5", "-0.25", "1e3"]))
    if vr == "IS":
        return str(ctx.draw(st.integers(-1000, 100000)))
    if vr == "AS":
        return ctx.draw(st.sampled_from(["045Y", "003M", "010W", "002D"]))
    return _text(ctx, vr)


def _private_block(ctx: _Ctx, ds: Dataset, depth: int) -> None:
    group = ctx.draw(st.sampled_from(PRIVATE_GROUPS))
    block = ctx.draw(st.integers(0x10, 0xFF))
    if (group << 16 | block) in ds:
        return
    if any(e.tag.group == group and (e.tag.element >> 8) == block for e in ds):
        return
    orphan = ctx.draw(st.integers(0, 9)) == 0  # data elements without their creator
    if not orphan:
        creator = ctx.draw(st.one_of(st.sampled_from(PRIVATE_CREATORS), st.just("")))
        ds.add(DataElement(group << 16 | block, "LO", creator or ctx.token()))
    vrs = PRIVATE_VRS if depth < 3 else PRIVATE_VRS[:-4] + PRIVATE_VRS[-3:]
    offsets = ctx.draw(st.lists(st.integers(0, 0xFF), min_size=1, max_size=4, unique=True))
    for offset in offsets:
        vr = ctx.draw(st.sampled_from(vrs))
        ds.add(DataElement(group << 16 | block << 8 | offset, vr, _private_value(ctx, vr, depth)))


def _add_phi(ctx: _Ctx, ds: Dataset, depth: int, min_size: int, max_size: int) -> None:
    pool = _pool(ctx.profile)
    chosen = ctx.draw(st.lists(st.sampled_from(pool.scalars), min_size=min_size, max_size=max_size,
                               unique_by=lambda x: x[0]))
    for tag, vr in chosen:
        if tag not in ds:
            ds.add(_element(ctx, tag, vr))
    if depth < 3 and ctx.draw(st.integers(0, 2)) == 0:
        tag = ctx.draw(st.sampled_from(pool.sequences))
        if tag not in ds:
            ds.add(DataElement(tag, "SQ", DicomSequence([_item(ctx, depth + 1)
                                                         for _ in range(ctx.draw(st.integers(1, 2)))])))
    if ctx.draw(st.integers(0, 2)) == 0:
        _private_block(ctx, ds, depth)


def _item(ctx: _Ctx, depth: int) -> Dataset:
    item = Dataset()
    pool = _pool(ctx.profile)
    for tag, vr in ctx.draw(st.lists(st.sampled_from(pool.named), min_size=1, max_size=3, unique=True)):
        item.add(_element(ctx, tag, vr))
    if ctx.draw(st.booleans()):
        item.add(DataElement(0x00081155, "UI", ctx.uid()))  # ReferencedSOPInstanceUID
    _add_phi(ctx, item, depth, 0, 2)
    return item


@st.composite
def phi_datasets(draw: Any, profile: str = "basic") -> tuple[FileDataset, list[str]]:
    """Draw ``(dataset, planted)`` for *profile* (``basic`` or ``vindr``); see the module docstring."""
    charset, alphabet = draw(st.sampled_from(CHARSETS))
    ctx = _Ctx(
        draw=draw, profile=profile, charset=charset, alphabet=alphabet,
        study_date=draw(st.dates(date(2000, 1, 1), date(2030, 12, 31))),
        birth_date=draw(st.dates(date(1900, 1, 1), date(1960, 12, 31))),
    )
    sop_uid = ctx.uid()
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CR_IMAGE_STORAGE
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    if draw(st.booleans()):
        meta.SourceApplicationEntityTitle = ctx.token(upper=True)
        meta.PrivateInformationCreatorUID = ctx.uid()
        meta.PrivateInformation = _binary(ctx)
    preamble = None
    if draw(st.booleans()):
        preamble = ctx.token().encode("ascii").ljust(128, b"\0")
    ds = FileDataset("", Dataset(), file_meta=meta, preamble=preamble or b"\0" * 128)
    if charset is not None:
        ds.SpecificCharacterSet = charset
    ds.SOPClassUID = CR_IMAGE_STORAGE
    ds.SOPInstanceUID = sop_uid
    ds.StudyInstanceUID = ctx.uid()
    ds.SeriesInstanceUID = ctx.uid()
    if draw(st.booleans()):
        ds.FrameOfReferenceUID = ctx.uid()
    ds.Modality = "CR"
    ds.PatientSex = draw(st.sampled_from(["M", "F", "O"]))
    ds.PatientAge = draw(st.sampled_from(["045Y", "007Y", "011M"]))
    ds.BodyPartExamined = "CHEST"
    pool = _pool(profile)
    for tag, vr in draw(st.lists(st.sampled_from(pool.named), min_size=3, max_size=12, unique=True)):
        ds.add(_element(ctx, tag, vr))
    if "PatientID" not in ds:
        ds.PatientID = ctx.token()
    if "StudyDescription" not in ds and draw(st.booleans()):  # safe words around PHI: Clean Descriptors drops it
        ds.StudyDescription = f"CHEST PA {ctx.token()}"
    _add_phi(ctx, ds, 0, 1, 8)
    for _ in range(draw(st.integers(0, 2))):
        _private_block(ctx, ds, 0)
    if draw(st.integers(0, 3)) == 0:  # overlay and curve groups (PS3.15 E.1-1: X)
        ds.add(DataElement(0x60000022, "LO", ctx.token()))  # OverlayDescription
        ds.add(DataElement(0x60001500, "LO", ctx.token()))  # OverlayLabel
        ds.add(DataElement(0x60003000, "OW", _binary(ctx)))  # OverlayData
        ds.add(DataElement(0x50002500, "LO", ctx.token()))  # CurveLabel (retired)
    ds.Rows = ds.Columns = 8
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.WindowCenter, ds.WindowWidth = 2048, 4096
    ds.PixelData = bytes(8 * 8 * 2)
    ds["PixelData"].VR = "OW"
    return ds, ctx.planted


# --- checks ---------------------------------------------------------------------------------------------------------
def _pattern(needle: bytes) -> re.Pattern[bytes]:
    if needle.isdigit():  # a date: not inside a UID (a run of digits and dots); what follows may be a tag byte
        return re.compile(rb"(?<![0-9.])" + re.escape(needle))
    return re.compile(re.escape(needle))


def _texts(ds: Dataset) -> Iterable[str]:
    for elem in ds:
        if elem.VR == "SQ":
            for item in elem.value:
                yield from _texts(item)
        elif not isinstance(elem.value, bytes | bytearray) and elem.value is not None:
            yield str(elem.value)


def find_leaks(
    data: bytes, planted: Iterable[str], charset: str | Sequence[str] | None, parsed: Dataset | None = None
) -> list[str]:
    """The planted values found in *data* (any encoding, as written and upper-cased) or in *parsed*'s text."""
    text = "\n".join(_texts(parsed)) if parsed is not None else ""
    leaks = []
    for value in planted:
        needles = {n for v in (value, value.upper()) for n in encodings_of(v, charset)}
        hit = any(_pattern(n).search(data) for n in needles)
        if not hit and text:
            hit = any(_pattern(v.encode("utf-8")).search(text.encode("utf-8")) for v in (value, value.upper()))
        if hit:
            leaks.append(value)
    return leaks


def elements_outside_profile(ds: Dataset, profile: Profile) -> list[str]:
    """Elements of *ds* (recursively) that *profile* removes, and, for ``vindr``, anything off its keep-list."""
    bad: list[str] = []

    def walk(d: Dataset, path: str, in_marker: bool) -> None:
        for elem in d:
            tag = int(elem.tag)
            where = f"{path}({tag >> 16:04X},{tag & 0xFFFF:04X}) {elem.keyword}"
            exempt = (not path and tag in MARKER_TAGS) or (in_marker and tag in _MARKER_ITEM_TAGS)
            if not exempt and profile.rule_for(tag, elem.keyword).action == Action.REMOVE:
                bad.append(where)
            if elem.VR == "SQ":
                if profile.name == "vindr":
                    bad.append(f"{where}: a sequence in vindr output")
                for i, item in enumerate(elem.value):
                    walk(item, f"{where}[{i}] > ", in_marker=not path and tag == 0x00120064)

    walk(ds, "", False)
    if profile.name == "vindr":
        allowed = {int(tag) for tag, _ in VINDR_KEEP} | {0x00120062, 0x00120063}
        bad += [f"{e.tag} not in VINDR_KEEP" for e in ds if int(e.tag) not in allowed]
    meta = getattr(ds, "file_meta", None)
    if meta is not None:
        allowed_meta = {0x00020000, 0x00020001, 0x00020002, 0x00020003, 0x00020010, 0x00020012, 0x00020013}
        bad += [f"file meta {e.tag} {e.keyword}" for e in meta if int(e.tag) not in allowed_meta]
    return bad


def read_back(data: bytes) -> pydicom.FileDataset:
    """Parse written output strictly (it must be a conformant Part 10 file)."""
    from io import BytesIO

    return pydicom.dcmread(BytesIO(data))
