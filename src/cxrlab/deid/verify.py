"""Verification of de-identified outputs (``cxrlab deid verify``): trust nothing, re-read everything.

For each output file:

1. it parses, and every element, recursively through sequences, is allowed by the profile (no element whose
   action is *remove* survives; for ``vindr`` no sequence at all besides cxrlab's own markers);
2. no known PHI string occurs anywhere in the file bytes — strings given by the caller (e.g. a phantom's planted
   PHI) plus, when the source folder is given, every text value and UID of the source that the profile does not
   keep, in the source's character set and in UTF-8;
3. it carries (7FE0,0010) *Pixel Data* (unless the profile removes it), its Rows x Columns equal the source's and
   its pixels equal the source's outside redacted boxes (exactly: decoded arrays are compared);
4. with a mapping store, its mapping rows are there: the ``image_id`` row, and with the source every UID row
   (recomputed from the source header under the key).

The report names files by ``image_id`` and checks by number; it never contains a PHI value.
"""

from __future__ import annotations

import contextlib
import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from sqlalchemy import Engine, select

from cxrlab.catalog.models import UidMap
from cxrlab.deid.engine import NO_PIXEL_DATA, PIXEL_DATA, deidentify_dataset
from cxrlab.deid.identifiers import image_id_for
from cxrlab.deid.profiles import Action, Profile
from cxrlab.runtime.files import atomic_write_text, iter_files

__all__ = ["Finding", "VerifyReport", "known_phi", "verify_file", "verify_folder"]

#: Elements cxrlab itself adds to every output (PS3.15 E.1.1).
MARKERS = frozenset({0x00120062, 0x00120063, 0x00120064, 0x00280303, 0x00080100, 0x00080102, 0x00080104})
_TEXT_VRS = frozenset({"PN", "LO", "SH", "LT", "ST", "UT", "UC", "CS", "AE", "DA", "DT", "TM", "UI", "UR", "AS"})
MIN_PHI_LEN = 6


@dataclass
class Finding:
    """One problem in one file (no PHI: tags, keywords and counts only)."""

    image_id: str
    check: str  # unreadable | outside_profile | phi | pixels | size | mapping | missing | extra
    detail: str


@dataclass
class VerifyReport:
    """Outcome of a verification run."""

    files: int = 0
    clean: int = 0
    findings: list[Finding] = field(default_factory=list)
    checks: Counter = field(default_factory=Counter)

    @property
    def ok(self) -> bool:
        """True when nothing was found."""
        return not self.findings

    def to_json(self) -> str:
        """The report as JSON (what ``verify`` writes)."""
        return json.dumps(
            {
                "ok": self.ok,
                "files": self.files,
                "clean": self.clean,
                "checks": dict(self.checks),
                "findings": [asdict(f) for f in self.findings],
            },
            indent=2,
        )


def _walk(ds: Dataset, depth: int = 0):  # noqa: ANN202 - generator of (element, depth)
    for elem in ds:
        yield elem, depth
        if elem.VR == "SQ":
            for item in elem.value:
                yield from _walk(item, depth + 1)


def _texts(elem) -> list[str]:  # noqa: ANN001 - a pydicom DataElement
    values = elem.value if elem.VM > 1 else [elem.value]
    return [str(v).strip().rstrip("\0") for v in values if v is not None]


def known_phi(source: Dataset, profile: Profile) -> list[bytes]:
    """Byte strings from *source* that must not appear in its output: values of text elements (and UIDs) that the
    profile does not keep verbatim, at least ``MIN_PHI_LEN`` characters, in the source encoding and UTF-8.

    A value that the profile legitimately keeps in another element (a time kept while another is removed, a
    descriptor that passed Clean Descriptors) is not counted.
    """
    from pydicom.charset import encode_string

    from cxrlab.deid.engine import _clean

    candidates: set[str] = set()
    kept: set[str] = set()
    for elem, _ in _walk(source):
        tag = int(elem.tag)
        if elem.VR not in _TEXT_VRS or tag >> 16 == 0x0002:
            continue
        action = profile.rule_for(tag, elem.keyword).action
        texts = _texts(elem)
        if (tag >> 16) % 2 == 0 and (
            action == Action.KEEP
            or (action == Action.CLEAN and _clean(elem.value))
            or (action == Action.SHIFT and elem.VR == "TM")
        ):
            kept.update(texts)
            continue
        candidates.update(texts)
    charset = source.get("SpecificCharacterSet") or "ISO_IR 6"
    charsets = [charset] if isinstance(charset, str) else list(charset)
    out: set[bytes] = set()
    for text in candidates - kept:
        if len(text) < MIN_PHI_LEN or text.startswith("1.2.840.10008."):  # DICOM-defined UIDs are no PHI
            continue
        if text.upper() in {"YES", "NO", "NONE", "UNKNOWN", "ANONYMOUS"}:
            continue
        out.add(text.encode("utf-8"))
        with contextlib.suppress(Exception):  # the UTF-8 form is still checked
            out.add(encode_string(text, charsets))
    return sorted(out)


def verify_file(
    path: Path,
    *,
    profile: Profile,
    phi: list[bytes] = (),
    source: Path | None = None,
    redacted: list[tuple[int, int, int, int]] = (),
) -> list[Finding]:
    """Verify one output file; return the findings (empty when clean)."""
    image_id = path.stem
    findings: list[Finding] = []
    raw = path.read_bytes()
    try:
        ds = pydicom.dcmread(path)
    except Exception as exc:  # noqa: BLE001
        return [Finding(image_id, "unreadable", f"cannot parse ({type(exc).__name__})")]
    for elem, depth in _walk(ds):
        tag = int(elem.tag)
        if tag in MARKERS:
            continue
        action = profile.rule_for(tag, elem.keyword).action
        if action == Action.REMOVE:
            findings.append(
                Finding(
                    image_id,
                    "outside_profile",
                    f"element {elem.tag} {elem.keyword or 'private/unknown'} at depth {depth}",
                )
            )
    for i, needle in enumerate(phi):
        if needle and (needle in raw or needle.upper() in raw):
            findings.append(Finding(image_id, "phi", f"known PHI string #{i} found in the file bytes"))
    if "PixelData" not in ds and profile.rule_for(PIXEL_DATA, "PixelData").action != Action.REMOVE:
        findings.append(Finding(image_id, "pixels", f"{NO_PIXEL_DATA}: the output lost its image"))
    if source is not None:
        findings += _compare_image(image_id, ds, source, redacted)
    return findings


def _size(ds: Dataset) -> str:
    return f"{ds.get('Rows', '?')}x{ds.get('Columns', '?')}"


def _compare_image(
    image_id: str, ds: Dataset, source: Path, redacted: list[tuple[int, int, int, int]]
) -> list[Finding]:
    """Rows x Columns (PS3.3 C.7.6.3) and the decoded pixels of an output against its source."""
    try:
        src = pydicom.dcmread(source, force=True)
    except Exception as exc:  # noqa: BLE001
        return [Finding(image_id, "pixels", f"cannot read the source ({type(exc).__name__})")]
    if (ds.get("Rows"), ds.get("Columns")) != (src.get("Rows"), src.get("Columns")):
        return [Finding(image_id, "size", f"image size {_size(ds)} differs from the source's {_size(src)}")]
    if "PixelData" not in ds or "PixelData" not in src:
        return []
    try:
        a, b = src.pixel_array, ds.pixel_array
        mask = np.ones(a.shape[:2], dtype=bool)
        for x0, y0, x1, y1 in redacted:
            mask[int(y0) : int(y1), int(x0) : int(x1)] = False
        if a.shape != b.shape or not np.array_equal(a[mask], b[mask]):
            return [Finding(image_id, "pixels", "pixels differ from the source outside redacted boxes")]
    except Exception as exc:  # noqa: BLE001
        return [Finding(image_id, "pixels", f"cannot compare pixels ({type(exc).__name__})")]
    return []


def _mapping_findings(
    image_id: str, mapping: Engine, source: Dataset | None, *, profile: Profile, key: bytes | None, id_scheme: str
) -> list[Finding]:
    """Check that the mapping store holds the rows of one output: its ``image_id`` row, and with the source header
    and the key every UID row (recomputed exactly as the batch records them)."""
    from cxrlab.deid.batch import mapping_rows

    with mapping.connect() as conn:
        if source is None or key is None:
            found = conn.execute(
                select(UidMap.original).where(UidMap.kind == "image_id", UidMap.new == image_id).limit(1)
            ).first()
            return [] if found else [Finding(image_id, "mapping", "no image_id row in the mapping store")]
        result = deidentify_dataset(source, profile=profile, key=key, id_scheme=id_scheme)
        expected = mapping_rows(result.original_sop, result.image_id, result.uid_map)
        originals = sorted({r["original"] for r in expected})
        stored = {
            (o, k): n
            for o, k, n in conn.execute(
                select(UidMap.original, UidMap.kind, UidMap.new).where(UidMap.original.in_(originals))
            )
        }
    missing = [r for r in expected if (r["original"], r["kind"]) not in stored]
    wrong = [r for r in expected if stored.get((r["original"], r["kind"]), r["new"]) != r["new"]]
    findings = []
    if missing:
        kinds = sorted({r["kind"] for r in missing})
        findings.append(Finding(image_id, "mapping", f"{len(missing)} of {len(expected)} mapping row(s) missing "
                                                     f"({', '.join(kinds)})"))
    if wrong:
        findings.append(Finding(image_id, "mapping", f"{len(wrong)} mapping row(s) map to another value "
                                                     "(another key or profile?)"))
    return findings


def verify_folder(
    out: Path,
    *,
    profile: Profile,
    phi_strings: list[str] = (),
    source_dir: Path | None = None,
    key: bytes | None = None,
    id_scheme: str = "hmac",
    report_path: Path | None = None,
    redactions: dict[str, list] | None = None,
    held_back: set[str] | None = None,
    mapping: Engine | None = None,
) -> VerifyReport:
    """Verify every ``*.dicom`` in *out*; with *source_dir* and *key* also check pixels, image size, source-derived
    PHI and that every source image has exactly one output (missing/extra). *redactions* maps ``image_id`` to the
    boxes that were redacted (pixels may differ only there); images held back for review count as not missing
    when listed in *held_back*. With *mapping* (the mapping store, or a workspace catalog), every output must have
    its mapping rows."""
    report = VerifyReport()
    common = [s.encode("utf-8") for s in phi_strings if s]
    sources: dict[str, Path] = {}
    if source_dir is not None and key is not None:
        from cxrlab.dicom.io import is_dicom

        for p in iter_files(Path(source_dir)):
            if not is_dicom(p):
                continue
            try:
                ds = pydicom.dcmread(p, stop_before_pixels=True, force=True)
            except Exception:  # noqa: BLE001 - unreadable sources are the batch report's business
                continue
            uid = str(ds.get("SOPInstanceUID") or "").strip()
            if uid:
                sources.setdefault(image_id_for(uid, key, id_scheme), p)
    outputs = sorted(Path(out).glob("*.dicom"))
    for path in outputs:
        report.files += 1
        phi = list(common)
        src = sources.get(path.stem)
        header = pydicom.dcmread(src, stop_before_pixels=True, force=True) if src is not None else None
        if header is not None:
            phi += known_phi(header, profile)
        boxes = [tuple(b) for b in (redactions or {}).get(path.stem, [])]
        found = verify_file(path, profile=profile, phi=phi, source=src, redacted=boxes)
        if mapping is not None:
            found += _mapping_findings(path.stem, mapping, header, profile=profile, key=key, id_scheme=id_scheme)
        report.findings += found
        report.clean += not found
        report.checks["files"] += 1
    if sources:
        names = {p.stem for p in outputs}
        for image_id in sorted(set(sources) - names - (held_back or set())):
            report.findings.append(Finding(image_id, "missing", "a source image has no output"))
        for image_id in sorted(names - set(sources)):
            report.findings.append(Finding(image_id, "extra", "an output has no source image"))
    for f in report.findings:
        report.checks[f.check] += 1
    if report_path is not None:
        atomic_write_text(report_path, report.to_json())
    return report
