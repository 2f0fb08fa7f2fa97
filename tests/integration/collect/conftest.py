"""Fixtures of the collect tests: phantoms with planted PHI, the real files of ``$CXRLAB_TEST_DATA/dicom``, and an
Orthanc loaded with both (one per module: starting one takes about a second)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pydicom
import pytest
from pydicom.uid import generate_uid

from tests.support.data import real_data
from tests.support.orthanc import (
    CXRLAB_AET,
    Orthanc,
    Phantom,
    free_port,
    start_orthanc,
    write_phantom,
)

#: Real files loaded into the PACS: a chest CR (7 MB), an extremity CR (not a chest), a 32x32 chest CR without
#: Pixel Data (quarantined on arrival, as by `ingest folder`), a JPEG Baseline chest Secondary Capture.
REAL_FILES = ("RG1_UNCI.dcm", "RG3_UNCI.dcm", "chrJapMulti.dcm", "siim_cr_jpeg_baseline.dcm")


@dataclass
class Archive:
    """What the PACS holds: every file, and per file its SOP Instance UID and the keys the filters look at."""

    files: list[Path]
    headers: dict[Path, pydicom.Dataset]

    def expected(self, *, modalities: tuple[str, ...] = ("CR", "DX"), date: tuple[str, str] | None = None,
                 body_part: str | None = None) -> set[str]:
        """SOP Instance UIDs that match the filters (the test's own reading of the rule)."""
        out = set()
        for ds in self.headers.values():
            if ds.Modality not in modalities:
                continue
            if date and not date[0] <= ds.StudyDate <= date[1]:
                continue
            if body_part and str(ds.get("BodyPartExamined", "")).upper() != body_part:
                continue
            out.add(ds.SOPInstanceUID)
        return out

    def uid_of(self, name: str) -> str:
        return next(ds.SOPInstanceUID for p, ds in self.headers.items() if p.name == name)


def phantom_set() -> list[Phantom]:
    """Four studies: 2020 CR chest (2), 2020 DX chest (2) + DX abdomen (1), 2021 CR chest (1), 2020 CT chest (2)."""
    s = [generate_uid() for _ in range(4)]
    se = [generate_uid() for _ in range(5)]
    return [
        Phantom(s[0], se[0], "20200310", "CR", "CHEST"), Phantom(s[0], se[0], "20200310", "CR", "CHEST"),
        Phantom(s[1], se[1], "20200820", "DX", "CHEST"), Phantom(s[1], se[1], "20200820", "DX", "CHEST"),
        Phantom(s[1], se[2], "20200820", "DX", "ABDOMEN"),
        Phantom(s[2], se[3], "20210105", "CR", "CHEST"),
        Phantom(s[3], se[4], "20200601", "CT", "CHEST"), Phantom(s[3], se[4], "20200601", "CT", "CHEST"),
    ]


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Archive:
    """The phantoms (written once per module) and the real files."""
    real = real_data("dicom")
    folder = tmp_path_factory.mktemp("archive")
    files = [write_phantom(folder / f"ph{i}.dcm", p, seed=i) for i, p in enumerate(phantom_set())]
    files += [real / name for name in REAL_FILES]
    return Archive(files, {f: pydicom.dcmread(f, stop_before_pixels=True) for f in files})


@pytest.fixture(scope="module")
def move_port() -> int:
    """The port cxrlab's C-MOVE destination listens on (declared to the PACS)."""
    return free_port()


@pytest.fixture(scope="module")
def pacs(tmp_path_factory: pytest.TempPathFactory, archive: Archive, move_port: int) -> Iterator[Orthanc]:
    """An Orthanc holding the archive, knowing cxrlab as CXRLAB (C-MOVE destination: 127.0.0.1:move_port)."""
    server = start_orthanc(tmp_path_factory.mktemp("orthanc"), modalities={CXRLAB_AET: ("127.0.0.1", move_port)})
    try:
        server.upload(archive.files)
        yield server
    finally:
        server.stop()
