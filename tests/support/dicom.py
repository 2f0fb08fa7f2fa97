"""The one DICOM writer of the tests (and ``bench/``): small valid Part 10 files (Explicit VR Little Endian,
greyscale, one frame), and the malformed inputs of issue 10 made from them."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import DeflatedExplicitVRLittleEndian, ExplicitVRLittleEndian, JPEGLSLossless, generate_uid

__all__ = ["CR_IMAGE_STORAGE", "DX_FOR_PRESENTATION", "dicom_dataset", "make_dicom", "make_hostile_dicoms"]

CR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.1"
DX_FOR_PRESENTATION = "1.2.840.10008.5.1.4.1.1.1.1"


def dicom_dataset(
    *,
    rows: int = 64,
    columns: int = 64,
    pixels: bool | np.ndarray = True,
    bits_stored: int = 12,
    photometric: str = "MONOCHROME2",
    sop_class: str = CR_IMAGE_STORAGE,
    modality: str = "CR",
    window: tuple[float | str, float | str] | None = (2048, 4096),
    header: bool = True,
    body_part: str = "CHEST",
    view: str = "PA",
    age: str = "045Y",
    sex: str = "M",
    sop_uid: str | None = None,
    patient_name: str = "DOE^JOHN",
    patient_id: str = "PID123456",
    seed: int = 0,
    **elements: object,
) -> Dataset:
    """A greyscale single-frame image data set with its file meta (Explicit VR Little Endian).

    Parameters
    ----------
    rows, columns : int
        Image size when *pixels* is not an array.
    pixels : bool or numpy.ndarray
        True: uniform random values below ``2**bits_stored`` (from *seed*); False: no Pixel Data; an array: these
        values (signed arrays give Pixel Representation 1), its shape gives the size.
    bits_stored : int
        Bits Stored in a 16-bit container (High Bit one less).
    window : (center, width) or None
        The first VOI window (None: no window in the header).
    header : bool
        True: a patient, study and equipment as a hospital writes them (PHI included: name, id, birth date,
        institution, and a private element), with body part and view; False: only the image, SOP and modality.
    **elements
        More attributes by keyword, set last.
    """
    ds = Dataset()
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = sop_uid or generate_uid()
    if header:
        ds.StudyInstanceUID = generate_uid()
        ds.SeriesInstanceUID = generate_uid()
        ds.PatientName = patient_name
        ds.PatientID = patient_id
        ds.PatientBirthDate = "19700101"
        ds.PatientSex = sex
        ds.PatientAge = age
        ds.StudyDate = "20200315"
        ds.InstitutionName = "SECRET HOSPITAL"
    ds.Modality = modality
    if header:
        ds.BodyPartExamined = body_part
        ds.ViewPosition = view
    if isinstance(pixels, np.ndarray):
        rows, columns = pixels.shape
    ds.Rows, ds.Columns = rows, columns
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    signed = isinstance(pixels, np.ndarray) and pixels.dtype.kind == "i"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, bits_stored, bits_stored - 1, int(signed)
    if header:
        ds.PixelSpacing = [0.15, 0.15]
    if window is not None:
        ds.WindowCenter, ds.WindowWidth = window
    if header:
        ds.add_new(0x00091010, "LO", "ACME_PRIVATE")
    if isinstance(pixels, np.ndarray):
        ds.PixelData = np.ascontiguousarray(pixels).astype(np.int16 if signed else np.uint16).tobytes()
    elif pixels:
        arr = np.random.default_rng(seed).integers(0, 2**bits_stored, (rows, columns), dtype=np.uint16)
        ds.PixelData = arr.tobytes()
    for keyword, value in elements.items():
        setattr(ds, keyword, value)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta = meta
    return ds


def make_dicom(path: Path, **kwargs: object) -> Path:
    """Write :func:`dicom_dataset` (``**kwargs``) to *path* as a Part 10 file (folders made); return *path*.

    The defaults give a 64x64 12-bit MONOCHROME2 chest CR whose header carries PHI.
    """
    ds = dicom_dataset(**kwargs)
    path.parent.mkdir(parents=True, exist_ok=True)
    pydicom.dcmwrite(path, ds, enforce_file_format=True)
    return path


def _pixel_data_offset(data: bytes) -> int:
    """Offset of the top-level (7FE0,0010) element in explicit VR LE file bytes (the last one)."""
    return data.rfind(b"\xe0\x7f\x10\x00")


def make_hostile_dicoms(folder: Path) -> dict[str, Path]:
    """The malformed inputs of issue 10 (item 3), each built from a valid :func:`make_dicom` file.

    - ``nested``: 5,000 nested undefined-length sequences (0040,A730) before Pixel Data (pydicom recurses);
    - ``deflated``: Deflated Explicit VR LE meta, then bytes that are no deflate stream (zlib.error);
    - ``truncated``: native Pixel Data cut 2,000 bytes short;
    - ``truncated_jpeg``: JPEG-LS Lossless whose codestream lost its second half, end marker included (the
      decoder fills the rest and reports success).
    """
    from pydicom.encaps import encapsulate, generate_frames
    from pydicom.filereader import read_file_meta_info

    folder.mkdir(parents=True, exist_ok=True)
    good = make_dicom(folder / "_good.dcm", seed=11)
    data = good.read_bytes()
    good.unlink()
    at = _pixel_data_offset(data)
    sq = struct.pack("<HH2sHI", 0x0040, 0xA730, b"SQ", 0, 0xFFFFFFFF)
    item = struct.pack("<HHI", 0xFFFE, 0xE000, 0xFFFFFFFF)
    ends = struct.pack("<HHI", 0xFFFE, 0xE00D, 0) + struct.pack("<HHI", 0xFFFE, 0xE0DD, 0)
    out = {"nested": folder / "nested.dcm", "deflated": folder / "deflated.dcm", "truncated": folder / "truncated.dcm",
           "truncated_jpeg": folder / "truncated_jpeg.dcm"}
    out["nested"].write_bytes(data[:at] + (sq + item) * 5000 + ends * 5000 + data[at:])
    out["truncated"].write_bytes(data[:-2000])
    ds = pydicom.dcmread(make_dicom(folder / "_deflated.dcm", seed=12))
    (folder / "_deflated.dcm").unlink()
    ds.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    ds.save_as(out["deflated"], enforce_file_format=True)
    meta_end = 144 + int(read_file_meta_info(out["deflated"]).FileMetaInformationGroupLength)
    out["deflated"].write_bytes(out["deflated"].read_bytes()[:meta_end] + bytes(range(256)) * 16)
    ds = pydicom.dcmread(make_dicom(folder / "_jls.dcm", rows=96, columns=96, seed=13))
    (folder / "_jls.dcm").unlink()
    ds.compress(JPEGLSLossless)
    frame = next(generate_frames(ds.PixelData, number_of_frames=1))
    ds.PixelData = encapsulate([frame[: len(frame) // 2]])
    ds.save_as(out["truncated_jpeg"], enforce_file_format=True)
    return out
