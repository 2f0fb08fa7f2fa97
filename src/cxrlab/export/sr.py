"""DICOM Structured Reports of a release's labels (``cxrlab export TAG --format sr``): one Comprehensive 3D SR per
image, holding a TID 1500 Measurement Report (PS3.16 TID 1500) built and checked by highdicom.

Each consensus box becomes a TID 1410 planar ROI measurement group whose region is an SCOORD POLYLINE rectangle
(PS3.3 C.18.6.1.2: five points, the last equal to the first) on the de-identified image it references, with its
finding as the group's Finding (CID 6102 style: a coded concept). The global labels of the schema become TID 1501
qualitative evaluations of the image: the label's concept, valued Present (SCT 52101004) or Absent (SCT
272519000). Codes come from ``data/sr_codes.csv``: SNOMED CT or DICOM (DCM) codes where they exist, else the
private coding scheme ``99CXRLAB`` (PS3.16 Section 8: designators beginning with ``99`` are private); labels of a
custom schema that the table lacks get a private code derived from their name (:func:`code_for`).

UIDs are derived from the release tag and the image's de-identified UIDs, so exporting the same release again
writes the same SOP Instance UIDs (a PACS that receives them twice keeps one). Needs the ``[pacs]`` extra
(highdicom).
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from cxrlab import __version__
from cxrlab.errors import CxrlabError

__all__ = [
    "CODES_FILE",
    "PRIVATE_SCHEME",
    "Coding",
    "SrBox",
    "SrContent",
    "build_sr",
    "code_for",
    "load_codes",
    "read_sr",
    "reference",
]

CODES_FILE = Path(__file__).with_name("data") / "sr_codes.csv"
#: The private coding scheme designator of the labels without a standard code (PS3.16 Section 8).
PRIVATE_SCHEME = "99CXRLAB"
#: Series Number of the SR series (one per study), out of the range a modality uses.
SR_SERIES_NUMBER = 9001


@dataclass(frozen=True)
class Coding:
    """One row of ``sr_codes.csv``: the code of a label, and where it comes from (``PS3.16``, ``SNOMED CT``,
    ``cxrlab``)."""

    label: str
    scheme: str
    code: str
    meaning: str
    source: str


@lru_cache(maxsize=1)
def load_codes() -> dict[str, Coding]:
    """Label name -> :class:`Coding`, from :data:`CODES_FILE`."""
    with open(CODES_FILE, newline="", encoding="utf-8") as fh:
        rows = csv.DictReader(line for line in fh if not line.startswith("#"))
        return {r["label"]: Coding(r["label"], r["scheme"], r["code"], r["meaning"], r["source"]) for r in rows}


def _coding(label: str) -> Coding:
    coding = load_codes().get(label)
    if coding is None:
        # Code Value is SH (at most 16 characters, PS3.5 Table 6.2-1); Code Meaning is LO (at most 64).
        digest = hashlib.sha256(label.encode("utf-8")).hexdigest()[:12].upper()
        coding = Coding(label, PRIVATE_SCHEME, f"CXRH{digest}", label[:64], "cxrlab")
    return coding


def code_for(label: str):  # noqa: ANN201 - highdicom.sr.CodedConcept (imported lazily)
    """The coded concept of a label: from :data:`CODES_FILE`, else private code ``CXRH`` + 12 hex digits of the
    SHA-256 of its name in :data:`PRIVATE_SCHEME`."""
    from highdicom.sr import CodedConcept

    c = _coding(label)
    return CodedConcept(value=c.code, scheme_designator=c.scheme, meaning=c.meaning)


@dataclass(frozen=True)
class SrBox:
    """A box in pixel coordinates of the referenced image (``x`` columns, ``y`` rows, PS3.3 C.18.6.1.1)."""

    label: str
    x_min: float
    y_min: float
    x_max: float
    y_max: float

    def polyline(self) -> np.ndarray:
        """The closed rectangle: five (column, row) points, the last equal to the first."""
        x0, y0, x1, y1 = self.x_min, self.y_min, self.x_max, self.y_max
        return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]], dtype=np.float32)


@dataclass
class SrContent:
    """What an SR says about one image: its SOP Instance UID, boxes and global labels (name -> present)."""

    sop_instance_uid: str
    boxes: list[SrBox] = field(default_factory=list)
    labels: dict[str, bool] = field(default_factory=dict)


def _uid(*parts: str) -> str:
    """A UID derived from *parts* (PS3.5 B.2 via pydicom's prefix): the same parts always give the same UID."""
    return generate_uid(entropy_srcs=["cxrlab-sr", *parts])


#: What an SR copies from the image it references (PS3.3 C.7.1.1 Patient, C.7.2.1 General Study): the values of
#: the de-identified image, whatever its profile kept; and what highdicom checks to accept it as the source of a
#: region (PS3.3 C.7.6.3 Image Pixel description).
_COPIED = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "PatientAge", "StudyDate", "StudyTime",
           "ReferringPhysicianName", "StudyID", "AccessionNumber", "StudyInstanceUID", "SeriesInstanceUID",
           "Modality", "PatientIdentityRemoved", "DeidentificationMethod", "Rows", "Columns", "SamplesPerPixel",
           "PhotometricInterpretation", "BitsAllocated", "BitsStored", "HighBit", "PixelRepresentation",
           "NumberOfFrames")


#: Type 2 attributes of the Patient and General Study modules that the SR needs even when empty.
_TYPE_2 = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyDate", "StudyTime",
           "ReferringPhysicianName", "StudyID", "AccessionNumber")
#: Modality of a referenced image whose data set lost it: by SOP class (PS3.4 B.5; Secondary Capture: "OT").
_MODALITY_OF_CLASS = {"1.2.840.10008.5.1.4.1.1.1": "CR", "1.2.840.10008.5.1.4.1.1.1.1": "DX",
                      "1.2.840.10008.5.1.4.1.1.1.1.1": "DX", "1.2.840.10008.5.1.4.1.1.1.2": "MG",
                      "1.2.840.10008.5.1.4.1.1.1.2.1": "MG"}


def reference(image: Dataset) -> Dataset:
    """The image as an SR references it: its SOP Class and Instance UIDs (from the data set, else from the file
    meta, PS3.10 7.1), its study and series (derived from its SOP Instance UID when the de-identification profile
    kept none: the VinDr keep-list keeps no UID in the data set), and its Patient and Study values.

    Raises
    ------
    ValueError
        The file names no SOP Instance UID at all.
    """
    meta = getattr(image, "file_meta", Dataset())
    ref = Dataset()
    for keyword in _COPIED:
        if keyword in image:
            setattr(ref, keyword, image[keyword].value)
    ref.SOPClassUID = image.get("SOPClassUID") or meta.get("MediaStorageSOPClassUID")
    ref.SOPInstanceUID = image.get("SOPInstanceUID") or meta.get("MediaStorageSOPInstanceUID")
    if not ref.SOPClassUID or not ref.SOPInstanceUID:
        raise ValueError("no SOP Class UID or SOP Instance UID")
    sop = str(ref.SOPInstanceUID)
    for keyword in _TYPE_2:  # present, empty when unknown (PS3.5 7.4.3)
        if keyword not in ref:
            setattr(ref, keyword, "")
    if not ref.get("Modality"):  # Type 1 (C.7.3.1); the VinDr keep-list drops it: the SOP class tells it
        ref.Modality = _MODALITY_OF_CLASS.get(str(ref.SOPClassUID), "OT")
    ref.StudyInstanceUID = image.get("StudyInstanceUID") or _uid(sop, "study")
    ref.SeriesInstanceUID = image.get("SeriesInstanceUID") or _uid(sop, "series")
    return ref


def build_sr(image: Dataset, content: SrContent, *, tag: str, global_labels: Iterable[str]):  # noqa: ANN201
    """Build the SR of one image (a :class:`highdicom.sr.Comprehensive3DSR`, validated by highdicom).

    Parameters
    ----------
    image : Dataset
        The de-identified image's header (:func:`reference`: the SR copies its Patient and Study values, PS3.3
        A.35.13, and references it in the Current Requested Procedure Evidence Sequence).
    content : SrContent
        Its boxes and the global labels that are present.
    tag : str
        The release tag (part of the derived UIDs).
    global_labels : iterable of str
        Every global label of the schema, in order: each becomes a qualitative evaluation, Present or Absent.
    """
    import highdicom as hd
    from pydicom.sr.codedict import codes

    image = reference(image)
    sop = str(image.SOPInstanceUID)
    observer = hd.sr.ObserverContext(
        observer_type=codes.DCM.Device,
        observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
            uid=_uid("observer"), name="cxrlab consensus", manufacturer_name="cxrlab", model_name=__version__),
    )
    groups: list = []
    for i, box in enumerate(content.boxes, start=1):
        region = hd.sr.ImageRegion(graphic_type=hd.sr.GraphicTypeValues.POLYLINE, graphic_data=box.polyline(),
                                   source_image=hd.sr.SourceImageForRegion.from_source_image(image))
        groups.append(hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations(
            tracking_identifier=hd.sr.TrackingIdentifier(uid=_uid(tag, sop, "box", str(i)), identifier=f"box {i}"),
            referenced_region=region, finding_type=code_for(box.label)))
    evaluations = [
        hd.sr.QualitativeEvaluation(name=code_for(name),
                                    value=codes.SCT.Present if content.labels.get(name) else codes.SCT.Absent)
        for name in global_labels
    ]
    if evaluations:
        groups.append(hd.sr.MeasurementsAndQualitativeEvaluations(
            tracking_identifier=hd.sr.TrackingIdentifier(uid=_uid(tag, sop, "labels"), identifier="global labels"),
            qualitative_evaluations=evaluations,
            source_images=[hd.sr.SourceImageForMeasurementGroup.from_source_image(image)]))
    report = hd.sr.MeasurementReport(
        observation_context=hd.sr.ObservationContext(observer_device_context=observer),
        procedure_reported=codes.SCT.ImagingProcedure,
        imaging_measurements=groups or None,
    )
    return hd.sr.Comprehensive3DSR(
        evidence=[image], content=report, series_instance_uid=_uid(tag, str(image.StudyInstanceUID), "series"),
        series_number=SR_SERIES_NUMBER, sop_instance_uid=_uid(tag, sop, "sr"), instance_number=1,
        manufacturer="cxrlab", is_complete=True, is_final=True, series_description=f"cxrlab labels {tag}"[:64],
    )


def read_sr(source: str | Path | Dataset, labels: Iterable[str] = ()) -> SrContent:
    """Read back what :func:`build_sr` wrote (through highdicom's SR parser, so a malformed SR raises).

    Parameters
    ----------
    labels : iterable of str
        The schema's label names: a code maps back to the first of them that has it (several spellings share a
        code, e.g. "Pleural effusion" and "Effusion"); other codes come back as their Code Meaning.

    Raises
    ------
    CxrlabError
        Not a TID 1500 SR that highdicom can read.
    """
    import highdicom as hd

    ds = source if isinstance(source, Dataset) else pydicom.dcmread(source)
    try:
        sr = hd.sr.Comprehensive3DSR.from_dataset(ds)
    except (ValueError, AttributeError, TypeError) as exc:
        raise CxrlabError(f"not a cxrlab SR ({type(exc).__name__})") from None
    by_code: dict[tuple[str, str], str] = {}
    for name in labels:
        c = _coding(name)
        by_code.setdefault((c.scheme, c.code), name)

    def name_of(concept) -> str:  # noqa: ANN001 - CodedConcept
        return by_code.get((concept.scheme_designator, concept.value), concept.meaning)

    evidence = ds.CurrentRequestedProcedureEvidenceSequence[0].ReferencedSeriesSequence[0]
    out = SrContent(str(evidence.ReferencedSOPSequence[0].ReferencedSOPInstanceUID))
    for group in sr.content.get_planar_roi_measurement_groups():
        points = np.asarray(group.roi.value, dtype=np.float32)
        out.boxes.append(SrBox(name_of(group.finding_type), float(points[:, 0].min()), float(points[:, 1].min()),
                               float(points[:, 0].max()), float(points[:, 1].max())))
    for group in sr.content.get_image_measurement_groups():
        for ev in group.get_qualitative_evaluations():
            out.labels[name_of(ev.name)] = ev.value.value == "52101004" and ev.value.scheme_designator == "SCT"
    return out


def write_srs(
    items: Iterable[tuple[str, Path, SrContent]], out: Path, *, tag: str, global_labels: list[str],
    problems: list[tuple[str, str]],
) -> int:
    """Write ``out/<image_id>.dcm`` for each ``(image_id, de-identified image path, content)``; return how many.

    An image whose file cannot be read (or is no DICOM) is listed in *problems* and skipped.
    """
    from cxrlab.runtime.files import atomic_path

    written = 0
    for image_id, path, content in items:
        try:
            image = reference(pydicom.dcmread(path, stop_before_pixels=True))
            content.sop_instance_uid = str(image.SOPInstanceUID)
            sr = build_sr(image, content, tag=tag, global_labels=global_labels)
        except (OSError, pydicom.errors.InvalidDicomError, AttributeError, ValueError, TypeError) as exc:
            problems.append((image_id, f"no SR: the image cannot be referenced ({type(exc).__name__})"))
            continue
        dest = out / f"{image_id}.dcm"
        dest.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(dest) as tmp:
            sr.save_as(tmp, enforce_file_format=True)
        written += 1
    return written


def contents_from_tables(boxes: Mapping[str, list[SrBox]], positives: Mapping[str, list[str]],
                         image_ids: Iterable[str]) -> dict[str, SrContent]:
    """:class:`SrContent` per image id from boxes and positive labels (the SOP Instance UID is filled in when the
    image is read)."""
    return {iid: SrContent("", list(boxes.get(iid, [])), dict.fromkeys(positives.get(iid, []), True))
            for iid in image_ids}
