"""De-identification profiles: what happens to each attribute.

Built-in profiles
-----------------
``vindr``
    Keeps exactly the 25 attributes of the VinDr-PCXR data descriptor, Supplementary Table 3 (the same list as
    VinDr-CXR Table 4); every other element, private tags, sequences, overlays and curves included, is removed.
``basic``
    DICOM PS3.15 Annex E, Table E.1-1, Basic Application Level Confidentiality Profile (the action table comes from
    the ``dicom-anonymizer`` package's copy of the 2026c standard, so it is not retyped here), with the options
    Retain Patient Characteristics (E.3.9), Retain Device Identity (E.3.8), Clean Descriptors (E.3.5) and Retain
    Longitudinal Temporal Information with Modified Dates (E.3.6). Attributes the table does not list are kept,
    private attributes (E.3.10 not applied) and overlay/curve groups (60xx, 50xx) are removed.

User profiles are YAML files (see :func:`load_profile`). Every output carries (0012,0062) *Patient Identity
Removed* = YES and (0012,0063) *De-identification Method* naming the profile (PS3.15 E.1.1 item 6 and 7).
"""

from __future__ import annotations

import enum
import fnmatch
from dataclasses import dataclass, field
from pathlib import Path

from pydicom.datadict import dictionary_VR, keyword_for_tag, tag_for_keyword
from pydicom.tag import Tag

from cxrlab.errors import CxrlabError

__all__ = ["PROFILES", "VINDR_KEEP", "Action", "Profile", "Rule", "get_profile", "load_profile"]


class Action(enum.StrEnum):
    """What happens to an attribute (PS3.15 Table E.1-1 action codes in brackets)."""

    KEEP = "keep"  # K
    REMOVE = "remove"  # X
    EMPTY = "empty"  # Z: zero-length value
    DUMMY = "dummy"  # D: a dummy value consistent with the VR
    UID = "uid"  # U: keyed 2.25 UID, consistent across the batch (removed when the VR is not UI)
    CLEAN = "clean"  # C: kept only when every word is on the safe list, else removed
    SHIFT = "shift"  # M (E.3.6): dates moved back by a keyed per-patient number of days
    HASH = "hash"  # keyed HMAC of the value (user profiles)
    REPLACE = "replace"  # a fixed value given in the profile (user profiles)


#: Actions after which the element may still be in the output (used by verification).
SURVIVING = frozenset(Action) - {Action.REMOVE}


@dataclass(frozen=True)
class Rule:
    """An action and, for REPLACE, its value."""

    action: Action
    value: str | None = None


@dataclass(frozen=True)
class Profile:
    """A de-identification profile.

    Resolution order for an element: exact tag, keyword pattern, private tag, overlay/curve group, group length,
    then ``default``. File meta (group 0002) is always rebuilt by cxrlab.
    """

    name: str
    description: str
    tags: dict[int, Rule] = field(default_factory=dict)
    patterns: tuple[tuple[str, Rule], ...] = ()
    default: Action = Action.REMOVE
    private: Action = Action.REMOVE
    method_codes: tuple[tuple[str, str], ...] = ()

    def rule_for(self, tag: int, keyword: str = "") -> Rule:
        """Return the rule applying to *tag* (with its dictionary *keyword*)."""
        rule = self.tags.get(int(tag))
        if rule is not None:
            return rule
        if keyword:
            for pattern, prule in self.patterns:
                if fnmatch.fnmatchcase(keyword, pattern):
                    return prule
        group, elem = int(tag) >> 16, int(tag) & 0xFFFF
        if group % 2 == 1:
            return Rule(self.private)
        if 0x5000 <= group <= 0x50FF or 0x6000 <= group <= 0x60FF:
            return Rule(Action.REMOVE)  # PS3.15 E.1-1: Curve Data, Overlay Data/Comments (X)
        if elem == 0 or group in (0xFFFA, 0xFFFC):
            return Rule(Action.REMOVE)  # group lengths, digital signatures, trailing padding
        return Rule(self.default)


#: VinDr-PCXR data descriptor, Table 3 ("The list of DICOM tags that were retained"), in the seed's order.
VINDR_KEEP: tuple[tuple[int, str], ...] = (
    (Tag(0x0010, 0x0040), "PatientSex"),
    (Tag(0x0010, 0x1010), "PatientAge"),
    (Tag(0x0010, 0x1020), "PatientSize"),
    (Tag(0x0010, 0x1030), "PatientWeight"),
    (Tag(0x0028, 0x0010), "Rows"),
    (Tag(0x0028, 0x0011), "Columns"),
    (Tag(0x0028, 0x0030), "PixelSpacing"),
    (Tag(0x0028, 0x0034), "PixelAspectRatio"),
    (Tag(0x0028, 0x0100), "BitsAllocated"),
    (Tag(0x0028, 0x0101), "BitsStored"),
    (Tag(0x0028, 0x0102), "HighBit"),
    (Tag(0x0028, 0x0103), "PixelRepresentation"),
    (Tag(0x0028, 0x0106), "SmallestImagePixelValue"),
    (Tag(0x0028, 0x0107), "LargestImagePixelValue"),
    (Tag(0x0028, 0x1050), "WindowCenter"),
    (Tag(0x0028, 0x1051), "WindowWidth"),
    (Tag(0x0028, 0x1052), "RescaleIntercept"),
    (Tag(0x0028, 0x1053), "RescaleSlope"),
    (Tag(0x7FE0, 0x0010), "PixelData"),
    (Tag(0x0028, 0x0004), "PhotometricInterpretation"),
    (Tag(0x0028, 0x2110), "LossyImageCompression"),
    (Tag(0x0028, 0x2114), "LossyImageCompressionMethod"),
    (Tag(0x0028, 0x2112), "LossyImageCompressionRatio"),
    (Tag(0x0028, 0x0002), "SamplesPerPixel"),
    (Tag(0x0028, 0x0008), "NumberOfFrames"),
)

# PS3.15 Table E.1-1 option columns used by the `basic` profile.
#: Retain Patient Characteristics Option (E.3.9): K for these.
RETAIN_PATIENT_CHARACTERISTICS = (
    "PatientAge",
    "PatientSex",
    "PatientSize",
    "PatientWeight",
    "EthnicGroup",
    "SmokingStatus",
    "PregnancyStatus",
    "PatientSexNeutered",
    "PatientBodyMassIndex",
)
#: Retain Device Identity Option (E.3.8): K for these.
RETAIN_DEVICE_IDENTITY = (
    "StationName",
    "DeviceSerialNumber",
    "DeviceUID",
    "DetectorID",
    "PlateID",
    "CassetteID",
    "GantryID",
    "GeneratorID",
    "DeviceLabel",
)
#: Clean Descriptors Option (E.3.5): C for these.
CLEAN_DESCRIPTORS = (
    "StudyDescription",
    "SeriesDescription",
    "ProtocolName",
    "AcquisitionDeviceProcessingDescription",
    "ImageComments",
    "PerformedProcedureStepDescription",
    "RequestedProcedureDescription",
    "ScheduledProcedureStepDescription",
    "AdmittingDiagnosesDescription",
    "DerivationDescription",
    "AcquisitionComments",
    "ContrastBolusAgent",
    "ReasonForStudy",
    "RequestedContrastAgent",
)
#: Never shifted, always emptied: a birth date identifies even when moved.
NEVER_SHIFT = ("PatientBirthDate",)
#: cxrlab's additions to Table E.1-1 (stricter than the standard): attributes the 2026c table does not list but
#: that carry identifying text. Found by the PHI fuzzer (tests/unit/deid/test_fuzz.py) or by review.
EXTRA_REMOVE = (
    "PatientBirthDateInAlternativeCalendar", "PatientDeathDateInAlternativeCalendar",
    "PatientAlternativeCalendar", "TextValue", "RetrieveURL", "RetrieveURI", "CommentsOnTheScheduledProcedureStep",
)


def _vindr() -> Profile:
    return Profile(
        name="vindr",
        description="VinDr 25-attribute keep-list (VinDr-PCXR data descriptor, Table 3)",
        tags={int(tag): Rule(Action.KEEP) for tag, _ in VINDR_KEEP},
        default=Action.REMOVE,
        private=Action.REMOVE,
    )


def _basic() -> Profile:
    from dicomanonymizer.dicomfields_selector import dicom_anonymization_database_selector

    table = dicom_anonymization_database_selector("dicomfields_2026c")
    category = {
        "D_TAGS": Action.DUMMY,
        "Z_TAGS": Action.EMPTY,
        "X_TAGS": Action.REMOVE,
        "U_TAGS": Action.UID,
        # Combined codes: the standard lets the implementation choose; we take the stronger removal.
        "Z_D_TAGS": Action.EMPTY,
        "X_Z_TAGS": Action.REMOVE,
        "X_D_TAGS": Action.REMOVE,
        "X_Z_D_TAGS": Action.REMOVE,
        "X_Z_U_STAR_TAGS": Action.UID,
    }
    tags: dict[int, Rule] = {}
    for name, action in category.items():
        for entry in table[name]:
            if len(entry) == 2:  # masked 50xx/60xx entries are handled by Profile.rule_for
                tags[(entry[0] << 16) | entry[1]] = Rule(action)
    for kw in RETAIN_PATIENT_CHARACTERISTICS + RETAIN_DEVICE_IDENTITY:
        tags[tag_for_keyword(kw)] = Rule(Action.KEEP)
    for kw in CLEAN_DESCRIPTORS:
        if tag_for_keyword(kw) is not None:
            tags[tag_for_keyword(kw)] = Rule(Action.CLEAN)
    for tag, rule in list(tags.items()):
        try:
            vr = dictionary_VR(tag)
        except KeyError:
            continue
        shiftable = vr in ("DA", "DT") and keyword_for_tag(tag) not in NEVER_SHIFT
        if shiftable and rule.action in (Action.DUMMY, Action.EMPTY):
            tags[tag] = Rule(Action.SHIFT)
        if vr == "TM" and rule.action in (Action.DUMMY, Action.EMPTY):
            tags[tag] = Rule(Action.KEEP)  # whole-day date shifts keep times consistent (E.3.6)
    tags[tag_for_keyword("PatientBirthDate")] = Rule(Action.EMPTY)
    for kw in EXTRA_REMOVE:
        tag = tag_for_keyword(kw)
        if tag is not None:
            tags[tag] = Rule(Action.REMOVE)
    # Every person name the table does not list is emptied: a PN value is a name by definition.
    from pydicom.datadict import DicomDictionary

    for tag, entry in DicomDictionary.items():
        if entry[0] == "PN" and tag not in tags:
            tags[tag] = Rule(Action.EMPTY)
    return Profile(
        name="basic",
        description="PS3.15 E.1-1 Basic Profile + Retain Patient Characteristics, Retain Device Identity, "
        "Clean Descriptors, Retain Longitudinal Temporal Information with Modified Dates",
        tags=tags,
        default=Action.KEEP,
        private=Action.REMOVE,
        method_codes=(
            ("113100", "Basic Application Confidentiality Profile"),
            ("113108", "Retain Patient Characteristics Option"),
            ("113109", "Retain Device Identity Option"),
            ("113105", "Clean Descriptors Option"),
            ("113107", "Retain Longitudinal Temporal Information Modified Dates Option"),
        ),
    )


_BUILDERS = {"vindr": _vindr, "basic": _basic}
PROFILES = tuple(_BUILDERS)
_CACHE: dict[str, Profile] = {}


def get_profile(name: str | Path) -> Profile:
    """Return a built-in profile by name, or load a YAML profile from a path.

    Raises
    ------
    CxrlabError
        Unknown name, or an invalid YAML file.
    """
    key = str(name)
    if key in _BUILDERS:
        if key not in _CACHE:
            _CACHE[key] = _BUILDERS[key]()
        return _CACHE[key]
    if key.endswith((".yaml", ".yml")):
        return load_profile(Path(key))
    raise CxrlabError(f"unknown de-identification profile {key!r} (built-in: {', '.join(PROFILES)}; or a .yaml file)")


def _parse_tag(text: str) -> int:
    cleaned = text.strip().strip("()").replace(" ", "")
    try:
        group, elem = cleaned.split(",")
        return (int(group, 16) << 16) | int(elem, 16)
    except ValueError:
        raise CxrlabError(f"invalid tag {text!r}: expected (gggg,eeee)") from None


def load_profile(path: Path) -> Profile:
    """Load a user profile from YAML.

    Format::

        name: my-site
        base: basic            # optional: vindr | basic (rules below override it)
        default: remove        # action for public attributes not listed (default: the base's, or remove)
        private: remove        # action for private attributes
        rules:
          - {tag: "(0010,0010)", action: replace, value: "ANON"}
          - {keyword: StudyDescription, action: keep}
          - {pattern: "*Date", action: shift}      # fnmatch on the DICOM keyword
          - {keyword: PatientID, action: hash}

    Raises
    ------
    CxrlabError
        The file cannot be read, or a rule is invalid (the message names the rule number).
    """
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise CxrlabError(f"{path}: cannot read profile ({type(exc).__name__})") from None
    if not isinstance(data, dict):
        raise CxrlabError(f"{path}: a profile is a mapping with name, rules, ...")
    base = get_profile(data["base"]) if data.get("base") else None
    tags = dict(base.tags) if base else {}
    patterns: list[tuple[str, Rule]] = list(base.patterns) if base else []

    def action(value: object, where: str) -> Action:
        try:
            return Action(str(value))
        except ValueError:
            raise CxrlabError(
                f"{path}: {where}: unknown action {value!r} (one of {', '.join(a.value for a in Action)})"
            ) from None

    for i, rule in enumerate(data.get("rules") or [], start=1):
        if not isinstance(rule, dict) or "action" not in rule:
            raise CxrlabError(f"{path}: rule {i}: needs an action and a tag, keyword or pattern")
        r = Rule(action(rule["action"], f"rule {i}"), None if rule.get("value") is None else str(rule["value"]))
        if r.action == Action.REPLACE and r.value is None:
            raise CxrlabError(f"{path}: rule {i}: replace needs a value")
        if "tag" in rule:
            tags[_parse_tag(str(rule["tag"]))] = r
        elif "keyword" in rule:
            tag = tag_for_keyword(str(rule["keyword"]))
            if tag is None:
                raise CxrlabError(f"{path}: rule {i}: unknown DICOM keyword {rule['keyword']!r}")
            tags[tag] = r
        elif "pattern" in rule:
            patterns.append((str(rule["pattern"]), r))
        else:
            raise CxrlabError(f"{path}: rule {i}: needs a tag, keyword or pattern")
    return Profile(
        name=str(data.get("name") or Path(path).stem),
        description=str(data.get("description") or f"user profile {Path(path).name}"),
        tags=tags,
        patterns=tuple(patterns),
        default=action(data.get("default", base.default if base else "remove"), "default"),
        private=action(data.get("private", "remove"), "private"),
        method_codes=base.method_codes if base else (),
    )
