"""Tests of cxrlab.dicom.display: the PS3.4 Annex N grayscale pipeline on synthetic and real files."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.dataset import Dataset

from cxrlab.dicom.display import (
    FALLBACK_PERCENTILES,
    apply_modality_lut,
    apply_voi,
    apply_window,
    downsample,
    encode,
    render_file,
    render_pixels,
    to_uint8,
    to_uint16,
    window_presets,
)
from cxrlab.dicom.io import DicomReadError
from tests.support.data import real_data
from tests.support.dicom import dicom_dataset

# --------------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------------


def make_ds(pixels: np.ndarray, *, photometric: str = "MONOCHROME2", **elements: object) -> Dataset:
    """A minimal single-frame greyscale CR data set holding *pixels* (16 bits stored, no window, no patient)."""
    return dicom_dataset(pixels=pixels, photometric=photometric, bits_stored=16, window=None, header=False,
                         **elements)


def write_ds(ds: Dataset, path: Path) -> Path:
    """Write *ds* as a Part 10 file."""
    ds.save_as(path, enforce_file_format=True)
    return path


def lut_item(descriptor: list[int], data: list[int]) -> Dataset:
    """Return a LUT item with *LUT Descriptor* and US *LUT Data*."""
    item = Dataset()
    item.LUTDescriptor = descriptor
    item.LUTData = data
    return item


def reference_linear(x: float, c: float, w: float) -> float:
    """PS3.3 C.11.2.1.2.1, written out literally (ymin = 0, ymax = 1)."""
    if x <= c - 0.5 - (w - 1) / 2:
        return 0.0
    if x > c - 0.5 + (w - 1) / 2:
        return 1.0
    return (x - (c - 0.5)) / (w - 1) + 0.5


RAMP = np.arange(0, 1000, dtype=np.uint16).reshape(20, 50)


# --------------------------------------------------------------------------------------------------
# apply_modality_lut
# --------------------------------------------------------------------------------------------------


class TestApplyModalityLut:
    def test_rescale_slope_intercept(self) -> None:
        ds = make_ds(RAMP, RescaleSlope="2", RescaleIntercept="-1024")
        out = apply_modality_lut(RAMP, ds)
        assert out.dtype == np.float64
        np.testing.assert_allclose(out, RAMP * 2.0 - 1024.0)
        np.testing.assert_allclose(out, pydicom.pixels.apply_modality_lut(RAMP, ds))

    def test_no_rescale_is_identity_as_float(self) -> None:
        out = apply_modality_lut(RAMP, make_ds(RAMP))
        assert out.dtype == np.float64
        np.testing.assert_array_equal(out, RAMP)

    def test_modality_lut_sequence(self) -> None:
        ds = make_ds(RAMP)
        ds.ModalityLUTSequence = [lut_item([4, 10, 16], [100, 200, 300, 400])]
        ds.ModalityLUTSequence[0].ModalityLUTType = "US"
        arr = np.array([[5, 10, 11, 13, 20]], dtype=np.uint16)
        # Below the first mapped value -> first entry, past the end -> last entry (C.11.1.1.1).
        np.testing.assert_array_equal(apply_modality_lut(arr, ds), [[100, 100, 200, 400, 400]])

    def test_modality_lut_sequence_ow_data(self) -> None:
        ds = make_ds(RAMP)
        item = Dataset()
        item.LUTDescriptor = [3, 0, 16]
        item.add_new("LUTData", "OW", np.array([7, 8, 9], dtype="<u2").tobytes())
        ds.ModalityLUTSequence = [item]
        np.testing.assert_array_equal(apply_modality_lut(np.array([0, 1, 2, 5]), ds), [7, 8, 9, 9])

    def test_lut_sequence_without_descriptor_raises(self) -> None:
        ds = make_ds(RAMP)
        item = Dataset()
        item.LUTData = [1, 2]
        ds.ModalityLUTSequence = [item]
        with pytest.raises(DicomReadError, match="LUT Descriptor"):
            apply_modality_lut(RAMP, ds)


# --------------------------------------------------------------------------------------------------
# apply_window: the VOI LUT functions of C.11.2.1.2.1 / C.11.2.1.3
# --------------------------------------------------------------------------------------------------


class TestApplyWindow:
    def test_linear_edges_match_standard(self) -> None:
        c, w = 100.0, 51.0
        lo, hi = c - 0.5 - (w - 1) / 2, c - 0.5 + (w - 1) / 2  # 74.5, 124.5
        x = np.array([lo - 1, lo, lo + 1e-6, c - 0.5, hi - 1e-6, hi, hi + 1e-6, hi + 1])
        y = apply_window(x, c, w)
        assert y[0] == 0.0 and y[1] == 0.0  # x <= c - 0.5 - (w-1)/2 -> ymin
        assert 0.0 < y[2] < 1e-6  # just above the lower edge: already above ymin
        assert y[3] == pytest.approx(0.5)
        assert 1.0 - 1e-6 < y[4] < 1.0
        assert y[5] == pytest.approx(1.0)  # at the upper edge the middle branch reaches ymax
        assert y[6] == 1.0 and y[7] == 1.0  # x > c - 0.5 + (w-1)/2 -> ymax

    def test_linear_matches_literal_formula(self) -> None:
        x = np.linspace(-50, 250, 1201)
        for c, w in [(100.0, 51.0), (0.0, 2.0), (40.0, 400.0), (15000.0, 30000.0), (7.3, 1.5)]:
            expected = [reference_linear(float(v), c, w) for v in x]
            np.testing.assert_allclose(apply_window(x, c, w), expected, atol=1e-12)

    def test_linear_width_one_is_a_threshold(self) -> None:
        # w = 1 is the smallest width C.11.2.1.2.1 allows: the middle interval is empty.
        y = apply_window(np.array([9.0, 9.5, 9.5 + 1e-9, 10.0, 11.0]), 10.0, 1.0)
        np.testing.assert_array_equal(y, [0.0, 0.0, 1.0, 1.0, 1.0])

    def test_linear_width_below_one_raises(self) -> None:
        with pytest.raises(ValueError, match="width must be >= 1"):
            apply_window(np.zeros(3), 10.0, 0.5)

    def test_linear_exact(self) -> None:
        y = apply_window(np.array([89.0, 90.0, 90.001, 100.0, 110.0, 110.001]), 100.0, 20.0, "LINEAR_EXACT")
        assert y[0] == 0.0 and y[1] == 0.0
        assert y[2] > 0.0
        assert y[3] == pytest.approx(0.5)
        assert y[4] == pytest.approx(1.0) and y[5] == 1.0

    def test_sigmoid(self) -> None:
        y = apply_window(np.array([100.0, 110.0, -1e6, 1e6]), 100.0, 20.0, "SIGMOID")
        assert y[0] == pytest.approx(0.5)
        assert y[1] == pytest.approx(1.0 / (1.0 + math.exp(-2.0)))  # 1/(1+exp(-4(x-c)/w))
        assert y[2] == pytest.approx(0.0) and y[3] == pytest.approx(1.0)

    def test_sigmoid_zero_width_raises(self) -> None:
        with pytest.raises(ValueError, match="> 0 for LINEAR_EXACT/SIGMOID"):
            apply_window(np.zeros(3), 0.0, 0.0, "SIGMOID")

    def test_unknown_function_raises(self) -> None:
        with pytest.raises(ValueError, match="unknown VOI LUT function"):
            apply_window(np.zeros(3), 0.0, 10.0, "CUBIC")


# --------------------------------------------------------------------------------------------------
# apply_voi
# --------------------------------------------------------------------------------------------------


class TestApplyVoi:
    def test_file_window(self) -> None:
        ds = make_ds(RAMP, WindowCenter="500", WindowWidth="201")
        np.testing.assert_allclose(apply_voi(RAMP.astype(float), ds), apply_window(RAMP, 500, 201))

    def test_multi_valued_window_uses_first(self) -> None:
        ds = make_ds(RAMP, WindowCenter=["300", "700"], WindowWidth=["101", "51"])
        np.testing.assert_allclose(apply_voi(RAMP, ds), apply_window(RAMP, 300, 101))
        np.testing.assert_allclose(apply_voi(RAMP, ds, index=1), apply_window(RAMP, 700, 51))

    def test_explicit_window_overrides_file(self) -> None:
        ds = make_ds(RAMP, WindowCenter="300", WindowWidth="101")
        ds.VOILUTSequence = [lut_item([2, 0, 8], [0, 255])]
        np.testing.assert_allclose(apply_voi(RAMP, ds, window=(600, 401)), apply_window(RAMP, 600, 401))

    def test_voi_lut_sequence(self) -> None:
        ds = make_ds(RAMP, WindowCenter="300", WindowWidth="101")  # the LUT takes precedence
        ds.VOILUTSequence = [lut_item([3, 10, 8], [0, 51, 255])]
        y = apply_voi(np.array([0, 10, 11, 12, 500]), ds)
        np.testing.assert_allclose(y, [0.0, 0.0, 0.2, 1.0, 1.0])  # output / (2^8 - 1)

    def test_voi_lut_function_from_file(self) -> None:
        ds = make_ds(RAMP, WindowCenter="500", WindowWidth="200", VOILUTFunction="SIGMOID")
        np.testing.assert_allclose(apply_voi(RAMP, ds), apply_window(RAMP, 500, 200, "SIGMOID"))

    def test_fallback_without_window_is_robust_min_max(self) -> None:
        arr = RAMP.astype(float)
        y = apply_voi(arr, make_ds(RAMP))
        lo, hi = np.percentile(arr, FALLBACK_PERCENTILES)
        assert y.min() == 0.0 and y.max() == 1.0
        assert np.all(y[arr <= lo] == 0.0) and np.all(y[arr >= hi] == 1.0)
        assert np.all(np.diff(y.ravel()) >= 0)  # monotone on the ramp
        inside = (arr > lo) & (arr < hi)
        np.testing.assert_allclose(y[inside], (arr[inside] - lo) / (hi - lo))

    def test_invalid_file_window_falls_back(self) -> None:
        ds = make_ds(RAMP, WindowCenter="500", WindowWidth="0")  # forbidden by C.11.2.1.2.1
        np.testing.assert_allclose(apply_voi(RAMP, ds), apply_voi(RAMP, make_ds(RAMP)))

    def test_constant_image_fallback_is_black(self) -> None:
        flat = np.full((4, 4), 7.0)
        np.testing.assert_array_equal(apply_voi(flat, make_ds(flat.astype(np.uint16))), 0.0)

    def test_invalid_explicit_window_raises(self) -> None:
        with pytest.raises(ValueError, match="width must be >= 1"):
            apply_voi(RAMP, make_ds(RAMP), window=(100.0, 0.0))

    def test_negative_index_raises(self) -> None:
        with pytest.raises(ValueError, match="index must be >= 0"):
            apply_voi(RAMP, make_ds(RAMP), index=-1)


# --------------------------------------------------------------------------------------------------
# downsample / encode
# --------------------------------------------------------------------------------------------------


class TestDownsample:
    def test_area_average(self) -> None:
        arr = np.kron(np.array([[0.0, 100.0], [200.0, 300.0]]), np.ones((4, 4)))
        arr[0, 0] = 16.0  # one pixel of a 4x4 block moves its mean by 1
        np.testing.assert_allclose(downsample(arr, 2), [[1.0, 100.0], [200.0, 300.0]], atol=1e-4)

    def test_keeps_aspect_ratio(self) -> None:
        assert downsample(np.zeros((300, 200)), 100).shape == (100, 67)
        assert downsample(np.zeros((1955, 1841)), 1024).shape == (1024, 964)
        assert downsample(np.zeros((50, 40)), 100).shape == (50, 40)  # never upsampled

    def test_bad_max_size_raises(self) -> None:
        with pytest.raises(ValueError, match="max_size must be >= 1"):
            downsample(np.zeros((10, 10)), 0)


class TestEncode:
    def test_bad_format_raises(self) -> None:
        with pytest.raises(ValueError, match="unsupported image format"):
            encode(np.zeros((2, 2), np.uint8), "GIF")


# --------------------------------------------------------------------------------------------------
# to_uint8
# --------------------------------------------------------------------------------------------------


class TestToUint8:
    def test_monochrome1_is_inverted_after_voi(self) -> None:
        m2 = to_uint8(make_ds(RAMP, WindowCenter="500", WindowWidth="1000"))
        m1 = to_uint8(make_ds(RAMP, photometric="MONOCHROME1", WindowCenter="500", WindowWidth="1000"))
        assert m2.dtype == np.uint8 and m2[0, 0] == 0 and m2[-1, -1] == 255
        np.testing.assert_array_equal(m1.astype(int) + m2.astype(int), 255)

    def test_window_override(self) -> None:
        ds = make_ds(RAMP, WindowCenter="500", WindowWidth="1000")
        out = to_uint8(ds, window=(100.5, 100.0))  # lower edge 50, upper edge 149
        assert np.all(out.ravel()[:51] == 0) and np.all(out.ravel()[150:] == 255)

    def test_max_size_keeps_aspect_ratio(self) -> None:
        arr = (np.arange(300 * 200) % 4096).astype(np.uint16).reshape(300, 200)
        assert to_uint8(make_ds(arr), max_size=100).shape == (100, 67)
        assert to_uint8(make_ds(arr)).shape == (300, 200)

    def test_missing_file_raises(self, tmp_path: Path) -> None:
        with pytest.raises(DicomReadError, match="file not found"):
            to_uint8(tmp_path / "nope.dcm")

    def test_colour_image_raises(self) -> None:
        ds = make_ds(RAMP)
        ds.PhotometricInterpretation = "RGB"
        with pytest.raises(DicomReadError, match="not a greyscale image"):
            to_uint8(ds)

    def test_j2k_lossy_matches_uncompressed(self) -> None:
        a = to_uint8(real_data("dicom", "RG1_UNCI.dcm")).astype(int)
        b = to_uint8(real_data("dicom", "RG1_J2KI.dcm")).astype(int)
        assert a.shape == b.shape == (1955, 1841)
        diff = np.abs(a - b)
        # "Within 2 grey levels": mean and 99th percentile of |a - b| at most 2. Measured: 0 everywhere
        # (the stored values decode identically; RG1_UNCI appears to be a decode of the J2K stream).
        assert diff.mean() <= 2.0
        assert np.percentile(diff, 99) <= 2.0

    def test_relabelled_monochrome1_renders_inverse(self) -> None:
        a = to_uint8(real_data("dicom", "siim_cr_jpeg_baseline.dcm")).astype(int)
        b = to_uint8(real_data("dicom", "Fake_MONOHR1.dcm")).astype(int)
        assert a.shape == b.shape == (1024, 1024)
        # Inversion happens on the quantised output, so the complement is exact everywhere.
        np.testing.assert_array_equal(a + b, 255)

    def test_monochrome1_chest_shows_dark_lungs(self) -> None:
        img = to_uint8(real_data("dicom", "RG1_UNCI.dcm")).astype(float)
        h, w = img.shape

        def region(r0: float, r1: float, c0: float, c1: float) -> float:
            return float(img[int(r0 * h) : int(r1 * h), int(c0 * w) : int(c1 * w)].mean())

        # Regions picked after viewing the render: upper-middle lung fields either side of the
        # mediastinum, and the central column (spine / mediastinum / heart). Measured ~148, ~142, ~223.
        right_lung = region(0.20, 0.45, 0.18, 0.38)
        left_lung = region(0.20, 0.45, 0.60, 0.80)
        mediastinum = region(0.25, 0.70, 0.45, 0.55)
        assert right_lung < mediastinum - 40
        assert left_lung < mediastinum - 40

    def test_extremity_renders_with_contrast(self) -> None:
        img = to_uint8(real_data("dicom", "RG3_UNCI.dcm"), max_size=512)
        assert img.shape == (512, 512)
        assert np.percentile(img, 95) - np.percentile(img, 5) > 100


class TestRenderPixels:
    def test_same_as_to_uint8(self) -> None:
        ds = make_ds(RAMP, photometric="MONOCHROME1", RescaleSlope="2", RescaleIntercept="10")
        np.testing.assert_array_equal(render_pixels(RAMP, ds, max_size=30), to_uint8(ds, max_size=30))

    def test_colour_dataset_raises(self) -> None:
        ds = make_ds(RAMP)
        ds.SamplesPerPixel = 3
        with pytest.raises(DicomReadError, match="not a greyscale image"):
            render_pixels(RAMP, ds)


# --------------------------------------------------------------------------------------------------
# to_uint16
# --------------------------------------------------------------------------------------------------


class TestToUint16:
    def test_meta_round_trips_modality_values(self) -> None:
        arr = (np.arange(60 * 40) * 7 % 4096).astype(np.uint16).reshape(60, 40)
        ds = make_ds(arr, RescaleSlope="0.5", RescaleIntercept="-100", WindowCenter="600", WindowWidth="800")
        packed, meta = to_uint16(ds, max_size=None)
        assert packed.dtype == np.uint16 and packed.shape == arr.shape
        assert packed.min() == 0 and packed.max() == 65535
        restored = meta["offset"] + meta["scale"] * packed.astype(float)
        np.testing.assert_allclose(restored, arr * 0.5 - 100, atol=meta["scale"] / 2 + 1e-9)
        assert meta["photometric"] == "MONOCHROME2"
        assert (meta["rows"], meta["columns"]) == (60, 40)
        assert meta["window"] == {"center": 600.0, "width": 800.0, "function": "LINEAR", "source": "file"}
        assert meta["windows"] == [{"center": 600.0, "width": 800.0, "function": "LINEAR"}]

    def test_downsampled_values_are_block_means(self) -> None:
        arr = np.kron(np.array([[0, 1000], [2000, 4000]], dtype=np.uint16), np.ones((10, 10), np.uint16))
        packed, meta = to_uint16(make_ds(arr, photometric="MONOCHROME1"), max_size=4)
        assert packed.shape == (4, 4) and meta["shape"] == [4, 4] and meta["rows"] == 20
        restored = meta["offset"] + meta["scale"] * packed.astype(float)
        np.testing.assert_allclose(restored[::2, ::2], [[0, 1000], [2000, 4000]], atol=meta["scale"])
        assert meta["photometric"] == "MONOCHROME1"
        assert meta["window"]["source"] == "fallback"

    def test_real_file(self) -> None:
        packed, meta = to_uint16(real_data("dicom", "RG1_UNCI.dcm"))
        assert packed.shape == (1024, 964)
        assert meta["window"]["center"] == 15000.0 and meta["window"]["width"] == 30000.0
        assert meta["photometric"] == "MONOCHROME1" and (meta["rows"], meta["columns"]) == (1955, 1841)

    def test_missing_file_raises(self, tmp_path: Path) -> None:
        with pytest.raises(DicomReadError, match="file not found"):
            to_uint16(tmp_path / "missing.dcm")


# --------------------------------------------------------------------------------------------------
# window_presets
# --------------------------------------------------------------------------------------------------


class TestWindowPresets:
    def test_file_windows_named_by_explanation_then_auto(self) -> None:
        ds = make_ds(
            RAMP,
            WindowCenter=["300", "700"],
            WindowWidth=["101", "51"],
            WindowCenterWidthExplanation=["LUNG", ""],
        )
        presets = window_presets(ds, RAMP.astype(float))
        names = [p["name"] for p in presets]
        assert names == ["LUNG", "file 2", "full range", "auto 1-99%", "auto 2-98%", "auto 5-95%"]
        assert presets[0] == {"name": "LUNG", "center": 300.0, "width": 101.0}
        full = presets[2]
        assert full["center"] - full["width"] / 2 == 0.0 and full["center"] + full["width"] / 2 == 999.0
        widths = [p["width"] for p in presets[2:]]
        assert widths == sorted(widths, reverse=True)  # narrower percentile bands, narrower windows

    def test_without_file_window(self) -> None:
        presets = window_presets(make_ds(RAMP), RAMP.astype(float))
        assert [p["name"] for p in presets][0] == "full range"

    def test_constant_image_has_no_computed_window(self) -> None:
        assert window_presets(make_ds(RAMP), np.full((5, 5), 3.0)) == []


# --------------------------------------------------------------------------------------------------
# render_file
# --------------------------------------------------------------------------------------------------


class TestRenderFile:
    @pytest.mark.parametrize("suffix,fmt", [(".png", "PNG"), (".jpg", "JPEG"), (".jpeg", "JPEG")])
    def test_writes_readable_image_atomically(self, tmp_path: Path, suffix: str, fmt: str) -> None:
        src = write_ds(make_ds(RAMP, WindowCenter="500", WindowWidth="1000"), tmp_path / "in.dcm")
        out_dir = tmp_path / "out"
        out = render_file(src, out_dir / f"img{suffix}", max_size=25)
        assert out == out_dir / f"img{suffix}"
        with Image.open(out) as img:
            assert img.format == fmt and img.mode == "L" and img.size == (25, 10)
            pixels = np.asarray(img)
        if fmt == "PNG":  # lossless: identical to to_uint8
            np.testing.assert_array_equal(pixels, to_uint8(src, max_size=25))
        assert sorted(p.name for p in out_dir.iterdir()) == [f"img{suffix}"]  # no temp file left

    def test_replaces_existing_file(self, tmp_path: Path) -> None:
        src = write_ds(make_ds(RAMP), tmp_path / "in.dcm")
        out = tmp_path / "img.png"
        out.write_bytes(b"old")
        render_file(src, out)
        with Image.open(out) as img:
            assert img.size == (50, 20)
        assert sorted(p.name for p in tmp_path.iterdir()) == ["img.png", "in.dcm"]

    def test_unsupported_suffix_raises(self, tmp_path: Path) -> None:
        src = write_ds(make_ds(RAMP), tmp_path / "in.dcm")
        with pytest.raises(ValueError, match="unsupported output suffix"):
            render_file(src, tmp_path / "img.gif")

    def test_not_dicom_raises_and_writes_nothing(self, tmp_path: Path) -> None:
        src = tmp_path / "notes.txt"
        src.write_text("hello")
        with pytest.raises(DicomReadError, match="not a DICOM file"):
            render_file(src, tmp_path / "out" / "img.png")
        assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())

    def test_real_file_jpeg(self, tmp_path: Path) -> None:
        out = render_file(real_data("dicom", "RG1_J2KI.dcm"), tmp_path / "rg1.jpg", max_size=512, quality=85)
        with Image.open(out) as img:
            assert img.format == "JPEG" and img.size == (482, 512)  # 1841 * 512 / 1955 = 482.1
