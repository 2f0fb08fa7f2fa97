"""Shared fixtures: the real files in ../shared/data, small synthetic DICOMs, fresh workspaces."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import DeflatedExplicitVRLittleEndian, ExplicitVRLittleEndian, JPEGLSLossless, generate_uid

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


@pytest.fixture
def shared_dicom() -> Path:
    """The folder of real DICOM files; skip when ../shared/data is absent."""
    folder = SHARED_DATA / "dicom"
    if not folder.is_dir():
        pytest.skip(f"real test files not found at {folder} (../shared/data is absent)")
    return folder


def make_dicom(
    path: Path,
    *,
    rows: int = 64,
    columns: int = 64,
    modality: str = "CR",
    body_part: str = "CHEST",
    view: str = "PA",
    age: str = "045Y",
    sex: str = "M",
    sop_uid: str | None = None,
    patient_name: str = "DOE^JOHN",
    patient_id: str = "PID123456",
    pixels: bool = True,
    seed: int = 0,
) -> Path:
    """Write a small valid Explicit VR LE MONOCHROME2 CR/DX file and return its path."""
    ds = Dataset()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.1"
    ds.SOPInstanceUID = sop_uid or generate_uid()
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
    ds.BodyPartExamined = body_part
    ds.ViewPosition = view
    ds.Rows, ds.Columns = rows, columns
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.PixelSpacing = [0.15, 0.15]
    ds.WindowCenter, ds.WindowWidth = 2048, 4096
    ds.add_new(0x00091010, "LO", "ACME_PRIVATE")
    if pixels:
        arr = np.random.default_rng(seed).integers(0, 4096, (rows, columns), dtype=np.uint16)
        ds.PixelData = arr.tobytes()
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta = meta
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


@pytest.fixture
def workspace(tmp_path: Path):
    """A fresh initialised workspace (SQLite)."""
    from cxrlab.catalog import init_workspace

    return init_workspace(tmp_path / "ws")
