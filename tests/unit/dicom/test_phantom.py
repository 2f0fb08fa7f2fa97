"""Tests for the synthetic chest X-ray DICOM phantom generator (:mod:`cxrlab.dicom.phantom`)."""

from __future__ import annotations

import datetime as dt
import io
import json
import time
from pathlib import Path

import numpy as np
import pydicom
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydicom.charset import convert_encodings, encode_string
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian

from cxrlab.dicom.phantom import (
    CR_IMAGE_STORAGE,
    DX_PRESENTATION_STORAGE,
    OUTLIER_CLASSES,
    PhantomTruth,
    chest_reference_boxes,
    generate_phantom,
    generate_phantoms,
)

SMALL = (256, 384)
TEXT_VRS = {"AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "LT", "PN", "SH", "ST", "TM", "UC", "UT"}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[PhantomTruth]]:
    """A small corpus with plenty of text and outliers, shared by the read-back tests."""
    out = tmp_path_factory.mktemp("phantoms")
    truths = generate_phantoms(out, 24, seed=7, size_range=SMALL, text_prob=0.6, outlier_prob=0.4)
    return out, truths


def _decoded_text(ds: Dataset) -> list[str]:
    """Every decoded text value in *ds*, nested sequences and private elements included."""
    values = []
    for elem in ds.iterall():
        if elem.VR in TEXT_VRS and elem.value is not None:
            vals = elem.value if elem.VM > 1 else [elem.value]
            values.extend(str(v) for v in vals)
    return values


def _phi_present(raw: bytes, ds: Dataset, phi: str) -> bool:
    """True when *phi* is in the file bytes (encoded per charset), or decoded for ISO 2022 files."""
    charset = ds.get("SpecificCharacterSet")
    encodings = convert_encodings(charset) if charset else ["iso8859"]
    if encode_string(phi, encodings) in raw:
        return True
    if any("2022" in c for c in ([charset] if isinstance(charset, str) else list(charset or []))):
        return any(phi in v for v in _decoded_text(ds))
    return False


def _display(ds: Dataset) -> np.ndarray:
    """Stored values mapped so that larger means brighter on display."""
    arr = ds.pixel_array.astype(np.float64)
    if ds.PhotometricInterpretation == "MONOCHROME1":
        arr = (2**ds.BitsStored - 1) - arr
    return arr


@pytest.mark.slow  # three phantom sets
def test_determinism_same_seed_identical_bytes(tmp_path: Path) -> None:
    a = generate_phantoms(tmp_path / "a", 5, seed=11, size_range=SMALL, text_prob=0.5)
    b = generate_phantoms(tmp_path / "b", 5, seed=11, size_range=SMALL, text_prob=0.5)
    c = generate_phantoms(tmp_path / "c", 5, seed=12, size_range=SMALL, text_prob=0.5)
    assert a == b
    files_a = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*") if p.is_file())
    assert files_a == files_b and len(files_a) == 6
    for rel in files_a:
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes(), rel
    assert a != c
    ta = (tmp_path / "a" / "truth.json").read_bytes()
    assert ta != (tmp_path / "c" / "truth.json").read_bytes()
    bytes_c = {p.read_bytes() for p in (tmp_path / "c").rglob("*.dcm")}
    assert not bytes_c & {p.read_bytes() for p in (tmp_path / "a").rglob("*.dcm")}


def test_generate_phantom_is_deterministic() -> None:
    ds1, t1 = generate_phantom(np.random.default_rng(3), 0, size_range=SMALL)
    ds2, t2 = generate_phantom(np.random.default_rng(3), 0, size_range=SMALL)
    assert t1 == t2
    assert ds1.PixelData == ds2.PixelData
    assert ds1.SOPInstanceUID == ds2.SOPInstanceUID and ds1.SOPInstanceUID.startswith("2.25.")


def test_truth_json_written_and_round_trips(corpus: tuple[Path, list[PhantomTruth]]) -> None:
    out, truths = corpus
    data = json.loads((out / "truth.json").read_text(encoding="utf-8"))
    assert data == [t.to_dict() for t in truths]
    assert [PhantomTruth.from_dict(d) for d in data] == truths
    assert not list(out.rglob("*.tmp"))
    assert len({t.sop_instance_uid for t in truths}) == len(truths)


def test_files_read_back_with_valid_pixel_module(corpus: tuple[Path, list[PhantomTruth]]) -> None:
    out, truths = corpus
    for t in truths:
        ds = pydicom.dcmread(out / t.file)
        assert ds.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
        assert ds.SOPInstanceUID == t.sop_instance_uid
        assert ds.SOPClassUID == (CR_IMAGE_STORAGE if t.modality == "CR" else DX_PRESENTATION_STORAGE)
        assert ds.Modality == t.modality
        assert (ds.Rows, ds.Columns) == (t.rows, t.columns)
        assert SMALL[0] <= t.rows <= SMALL[1] and SMALL[0] <= t.columns <= SMALL[1]
        assert ds.BitsAllocated == 16 and ds.PixelRepresentation == 0
        assert 10 <= ds.BitsStored <= 16 and ds.HighBit == ds.BitsStored - 1
        assert ds.PhotometricInterpretation == t.photometric
        arr = ds.pixel_array
        assert arr.shape == (t.rows, t.columns)
        assert int(arr.max()) <= 2**ds.BitsStored - 1
        assert ds.PatientID == t.patient_id and ds.PatientSex == t.sex
        assert ds.private_block(0x0009, "ACME_PRIVATE")[0x10].value
        req = ds.RequestAttributesSequence[0]
        lvl2 = req.private_block(0x0009, "ACME_PRIVATE")[0x20].value[0]
        assert lvl2.ReferencedPatientSequence[0].PatientID == t.patient_id  # depth 3


def test_every_phi_string_occurs_in_file(corpus: tuple[Path, list[PhantomTruth]]) -> None:
    out, truths = corpus
    charsets = set()
    for t in truths:
        raw = (out / t.file).read_bytes()
        ds = pydicom.dcmread(out / t.file)
        charsets.add(str(ds.get("SpecificCharacterSet", "")))
        assert t.phi and t.patient_id in t.phi
        for phi in t.phi:
            assert len(phi) >= 6, phi
            assert _phi_present(raw, ds, phi), (t.file, phi)
    assert len(charsets) >= 3  # the corpus exercises several character sets


def test_utf8_names_are_bytes_greppable() -> None:
    for seed in range(200):
        ds, truth = generate_phantom(np.random.default_rng(seed), seed, size_range=(64, 64))
        if ds.get("SpecificCharacterSet") == "ISO_IR 192" and not str(ds.PatientName).isascii():
            break
    else:
        pytest.fail("no UTF-8 phantom in 200 seeds")
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    assert str(ds.PatientName).encode("utf-8") in buf.getvalue()
    assert str(ds.PatientName) in truth.phi


def test_patient_grouping_and_age_consistency(corpus: tuple[Path, list[PhantomTruth]]) -> None:
    out, truths = corpus
    by_folder: dict[str, set[str]] = {}
    for t in truths:
        by_folder.setdefault(t.file.split("/")[0], set()).add(t.patient_id)
        ds = pydicom.dcmread(out / t.file, stop_before_pixels=True)
        birth = dt.datetime.strptime(ds.PatientBirthDate, "%Y%m%d").date()
        study = dt.datetime.strptime(ds.StudyDate, "%Y%m%d").date()
        assert abs((study - birth).days / 365.25 - t.age_years) < 1e-3
        age = ds.PatientAge
        assert len(age) == 4 and age[3] in "DWMY"
        if age[3] == "Y":
            assert int(age[:3]) == int(t.age_years) or abs(int(age[:3]) - t.age_years) < 1.01
        elif age[3] == "M":
            assert abs(int(age[:3]) / 12 - t.age_years) < 0.1
    assert all(len(ids) == 1 for ids in by_folder.values())
    assert len(by_folder) < len(truths)  # some patients have several files


def test_text_boxes_inside_image(corpus: tuple[Path, list[PhantomTruth]]) -> None:
    _, truths = corpus
    assert any(t.text_boxes for t in truths)
    for t in truths:
        for x0, y0, x1, y1 in t.text_boxes:
            assert 0 <= x0 < x1 <= t.columns and 0 <= y0 < y1 <= t.rows
            height = y1 - y0
            assert 2 <= height <= 0.1 * t.rows


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4, 5])
def test_burned_text_only_changes_boxes_and_is_bright(seed: int) -> None:
    ds_t, t_t = generate_phantom(
        np.random.default_rng(seed), 0, size_range=SMALL, burned_text=True, outlier=None
    )
    ds_n, t_n = generate_phantom(
        np.random.default_rng(seed), 0, size_range=SMALL, burned_text=False, outlier=None
    )
    assert t_t.text_boxes and not t_n.text_boxes
    a, b = _display(ds_t), _display(ds_n)
    diff = a - b
    inside = np.zeros(diff.shape, dtype=bool)
    for x0, y0, x1, y1 in t_t.text_boxes:
        inside[y0:y1, x0:x1] = True
        box = diff[y0:y1, x0:x1]
        assert np.count_nonzero(box) > 0
        assert box.sum() > 0  # brighter on display, whatever the photometric interpretation
    assert not np.any(diff[~inside])


def test_lungs_darker_than_mediastinum_and_mono1_inverted() -> None:
    seen = set()
    for seed in range(16):
        ds, t = generate_phantom(
            np.random.default_rng(seed), seed, size_range=(256, 512), outlier=None, burned_text=False
        )
        boxes = chest_reference_boxes(t.rows, t.columns)
        arr = ds.pixel_array.astype(np.float64)
        lx0, ly0, lx1, ly1 = boxes["lung"]
        mx0, my0, mx1, my1 = boxes["mediastinum"]
        lung, medi = arr[ly0:ly1, lx0:lx1].mean(), arr[my0:my1, mx0:mx1].mean()
        span = 2**ds.BitsStored - 1
        if t.photometric == "MONOCHROME2":
            assert lung < medi - 0.05 * span, seed
        else:
            assert lung > medi + 0.05 * span, seed
        seen.add(t.photometric)
    assert seen == {"MONOCHROME1", "MONOCHROME2"}


@pytest.mark.parametrize("outlier", [*OUTLIER_CLASSES, None])
def test_requested_outliers(outlier: str | None) -> None:
    for seed in range(3):
        ds, t = generate_phantom(np.random.default_rng(seed), seed, size_range=SMALL, outlier=outlier)
        assert t.outlier == outlier
        if outlier == "lateral":
            assert ds.ViewPosition in ("LL", "RL")
        elif outlier == "other_body_part":
            assert ds.BodyPartExamined not in ("CHEST", "")
        else:
            assert ds.BodyPartExamined in ("CHEST", "")
            assert ds.ViewPosition in ("PA", "AP")
        if outlier == "pediatric":
            assert t.age_years < 10 and ds.PatientAge[3] in "MY"
            assert ds.PatientAge[3] == "M" or int(ds.PatientAge[:3]) < 10
        else:
            assert t.age_years >= 18
        disp = _display(ds) / (2**ds.BitsStored - 1)
        p1, p99 = np.percentile(disp, [1, 99])
        if outlier == "low_quality":
            assert p99 - p1 < 0.4
        else:
            assert p99 - p1 > 0.45


def test_unknown_outlier_rejected() -> None:
    with pytest.raises(ValueError):
        generate_phantom(np.random.default_rng(0), 0, size_range=SMALL, outlier="cat")


@pytest.mark.slow  # a hundred phantoms
def test_random_outliers_follow_probability() -> None:
    rng = np.random.default_rng(0)
    outs = [generate_phantom(rng, i, size_range=(32, 48), outlier_prob=0.5)[1].outlier for i in range(80)]
    assert {o for o in outs if o} == set(OUTLIER_CLASSES)
    assert 20 < sum(o is not None for o in outs) < 60
    outs = [generate_phantom(rng, i, size_range=(32, 48), outlier_prob=0.0)[1].outlier for i in range(20)]
    assert outs == [None] * 20


def test_progress_callback_and_layout(tmp_path: Path) -> None:
    calls: list[tuple[int, int]] = []
    truths = generate_phantoms(
        tmp_path, 4, seed=1, size_range=(64, 96), on_progress=lambda i, n: calls.append((i, n))
    )
    assert calls == [(1, 4), (2, 4), (3, 4), (4, 4)]
    for t in truths:
        assert (tmp_path / t.file).is_file() and t.file.endswith(".dcm")
        assert pydicom.misc.is_dicom(tmp_path / t.file)


def test_large_image_is_fast() -> None:
    start = time.perf_counter()
    ds, t = generate_phantom(np.random.default_rng(0), 0, size_range=(3000, 3000), burned_text=True)
    elapsed = time.perf_counter() - start
    assert (t.rows, t.columns) == (3000, 3000)
    assert len(ds.PixelData) == 3000 * 3000 * 2
    assert elapsed < 2.0, elapsed


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1))
def test_invariants_hold_for_any_seed(seed: int) -> None:
    ds, t = generate_phantom(np.random.default_rng(seed), 0, size_range=(96, 160), text_prob=0.5)
    arr = np.frombuffer(ds.PixelData, dtype="<u2")
    assert arr.size == t.rows * t.columns and int(arr.max()) < 2**ds.BitsStored
    assert ds.PhotometricInterpretation in ("MONOCHROME1", "MONOCHROME2")
    assert all(0 <= b[0] < b[2] <= t.columns and 0 <= b[1] < b[3] <= t.rows for b in t.text_boxes)
    assert ds.PatientSex in ("M", "F", "O", "")
    json.dumps(t.to_dict())
