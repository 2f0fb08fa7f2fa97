"""``cxrlab.deid.engine.deidentify_reviewed``: an image a person reviewed for burned-in text, released as is or
with the boxes the person chose redacted (issue 15, item 2: the triage page's text decisions)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.uid import JPEGLSLossless

from cxrlab.deid import get_profile
from cxrlab.deid.engine import REENCODE_SYNTAX, deidentify_file, deidentify_reviewed
from tests.support.dicom import dicom_dataset, make_dicom

KEY = bytes(range(32))
BOX = (10, 12, 40, 30)


def _source(tmp_path: Path, *, compressed: bool = False) -> tuple[Path, np.ndarray]:
    arr = np.full((96, 128), 500, dtype=np.uint16)
    arr[BOX[1]:BOX[3], BOX[0]:BOX[2]] = 4000  # "burned-in text"
    path = tmp_path / "src.dcm"
    if compressed:
        ds = dicom_dataset(pixels=arr)
        ds.compress(JPEGLSLossless, arr, generate_instance_uid=False)
        ds.save_as(path, enforce_file_format=True)
    else:
        make_dicom(path, pixels=arr)
    return path, arr


def test_release_as_is_is_the_plain_deidentification(tmp_path: Path) -> None:
    src, arr = _source(tmp_path)
    result = deidentify_reviewed(src, tmp_path / "out", profile=get_profile("basic"), key=KEY, boxes=None)
    plain = deidentify_file(src, tmp_path / "plain", profile=get_profile("basic"), key=KEY)
    assert result.image_id == plain.image_id and result.text_decision == "reviewed" and not result.redacted_boxes
    out = (tmp_path / "out" / f"{result.image_id}.dicom").read_bytes()
    assert out == (tmp_path / "plain" / f"{plain.image_id}.dicom").read_bytes()
    assert b"DOE^JOHN" not in out and b"PID123456" not in out


@pytest.mark.parametrize("compressed", [False, True])
def test_redact_fills_the_boxes_and_keeps_the_rest(tmp_path: Path, compressed: bool) -> None:
    src, arr = _source(tmp_path, compressed=compressed)
    result = deidentify_reviewed(src, tmp_path / "out", profile=get_profile("basic"), key=KEY, boxes=[BOX], margin=2)
    assert result.text_decision == "redact"
    assert result.redacted_boxes == [(BOX[0] - 2, BOX[1] - 2, BOX[2] + 2, BOX[3] + 2)]
    ds = pydicom.dcmread(tmp_path / "out" / f"{result.image_id}.dicom")
    assert "PatientName" not in ds or "DOE" not in str(ds.PatientName)
    assert (result.reencoded_to == REENCODE_SYNTAX) == compressed
    assert str(ds.file_meta.TransferSyntaxUID) == (REENCODE_SYNTAX if compressed else "1.2.840.10008.1.2.1")
    out = ds.pixel_array
    x0, y0, x1, y1 = result.redacted_boxes[0]
    assert (out[y0:y1, x0:x1] == arr.min()).all()
    mask = np.ones(arr.shape, bool)
    mask[y0:y1, x0:x1] = False
    assert (out[mask] == arr[mask]).all()


@pytest.mark.parametrize("box", [(0, 0, 129, 10), (5, 5, 5, 9), (10, 10, 2, 20), (-1, 0, 4, 4)])
def test_a_box_outside_the_image_writes_nothing(tmp_path: Path, box: tuple[int, int, int, int]) -> None:
    src, _ = _source(tmp_path)
    with pytest.raises(ValueError, match="outside the image"):
        deidentify_reviewed(src, tmp_path / "out", profile=get_profile("basic"), key=KEY, boxes=[box])
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
