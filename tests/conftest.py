"""Shared fixtures: the real files in ../shared/data, small synthetic DICOMs, fresh workspaces."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

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


@pytest.fixture
def workspace(tmp_path: Path):
    """A fresh initialised workspace (SQLite)."""
    from cxrlab.catalog import init_workspace

    return init_workspace(tmp_path / "ws")
