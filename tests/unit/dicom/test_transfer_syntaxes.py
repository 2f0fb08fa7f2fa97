"""Every common transfer syntax of chest radiography reads, decodes and renders.

A phantom chest image (:func:`cxrlab.dicom.phantom.generate_phantom`) is requantised to the bit depth a
transfer syntax allows (8 bits for JPEG Baseline, 12 for JPEG Extended and the lossy syntaxes, 12 or 16
for the rest) and encoded with a real encoder:

* native and deflated syntaxes: pydicom's writer;
* RLE Lossless, JPEG-LS and JPEG 2000: pydicom's ``Dataset.compress`` (pydicom/pylibjpeg-rle, pyjpegls,
  pylibjpeg-openjpeg);
* JPEG Baseline, Extended and Lossless (Process 14, SV1): DCMTK's ``dcmcjpeg`` (IJG libjpeg), an encoder
  independent of the decoders under test. Those cases skip when ``/usr/bin/dcmcjpeg`` is missing.

Each file is read back with :func:`cxrlab.dicom.io.read_dataset` / :func:`~cxrlab.dicom.io.read_pixels`
and rendered with :func:`cxrlab.dicom.display.to_uint8`. Lossless syntaxes must give the source values and
rendering exactly; lossy ones stay within bounds measured on this phantom (with headroom), which also
catches a decoder that returns plausible-looking garbage. An unsupported syntax (MPEG2) must raise
:class:`~cxrlab.dicom.io.DicomReadError` naming the file and the UID.
"""

from __future__ import annotations

import copy
import subprocess
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import FileDataset
from pydicom.encaps import encapsulate
from pydicom.uid import (
    JPEG2000,
    MPEG2MPML,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLossless,
    JPEGLosslessSV1,
    JPEGLSLossless,
    JPEGLSNearLossless,
    RLELossless,
)

from cxrlab.dicom.display import to_uint8
from cxrlab.dicom.io import DicomReadError, read_dataset, read_pixels
from cxrlab.dicom.phantom import generate_phantom

DCMCJPEG = Path("/usr/bin/dcmcjpeg")
MPEG2_MAIN_PROFILE = MPEG2MPML  # 1.2.840.10008.1.2.4.100
SEED = 7

#: Attributes dropped from the phantom: its windows/LUTs are in the units of its own bit depth.
_VOI_KEYWORDS = ("WindowCenter", "WindowWidth", "WindowCenterWidthExplanation", "VOILUTFunction", "VOILUTSequence")

Encoder = Callable[[FileDataset, Path], None]


# --------------------------------------------------------------------------------------------------
# sources and encoders
# --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def phantom() -> FileDataset:
    """One small adult frontal chest phantom without burned-in text (Explicit VR LE)."""
    ds, _ = generate_phantom(np.random.default_rng(SEED), 0, size_range=(256, 320), outlier=None, burned_text=False)
    return ds


def _requantise(phantom: FileDataset, bits: int) -> tuple[FileDataset, np.ndarray]:
    """Return a copy of *phantom* with its image linearly rescaled to *bits* stored bits, and the array."""
    ds = copy.deepcopy(phantom)
    for keyword in _VOI_KEYWORDS:
        if keyword in ds:
            del ds[keyword]
    stored = phantom.pixel_array.astype(np.float64)
    scaled = np.rint(stored * (2**bits - 1) / (2 ** int(phantom.BitsStored) - 1))
    arr = scaled.astype(np.uint8 if bits == 8 else np.uint16)
    ds.BitsAllocated = 8 if bits == 8 else 16
    ds.BitsStored = bits
    ds.HighBit = bits - 1
    ds.PixelRepresentation = 0
    ds.PixelData = arr.tobytes()
    ds["PixelData"].VR = "OB" if bits == 8 else "OW"
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.filename = None
    return ds, arr


def _native(uid: str) -> Encoder:
    """Write with pydicom's writer in the native (or deflated) syntax *uid*."""

    def encode(ds: FileDataset, out: Path) -> None:
        ds = copy.deepcopy(ds)
        if uid == ExplicitVRBigEndian:
            # pydicom writes OW bytes as they are: the pixel data must be big endian already.
            ds.PixelData = ds.pixel_array.astype(">u2").tobytes()
        ds.file_meta.TransferSyntaxUID = uid  # dcmwrite encodes (and deflates) as the meta's syntax says
        pydicom.dcmwrite(out, ds, enforce_file_format=True)

    return encode


def _pydicom_compress(uid: str, **kwargs: object) -> Encoder:
    """Compress with pydicom's ``Dataset.compress`` (the first available encoding plugin)."""

    def encode(ds: FileDataset, out: Path) -> None:
        ds = copy.deepcopy(ds)
        ds.compress(uid, **kwargs)
        ds.save_as(out, enforce_file_format=True)

    return encode


def _dcmcjpeg(*flags: str) -> Encoder:
    """Compress with DCMTK's dcmcjpeg (Explicit VR LE input written by pydicom)."""

    def encode(ds: FileDataset, out: Path) -> None:
        if not DCMCJPEG.is_file():
            pytest.skip("dcmtk not installed: apt-get install dcmtk")
        src = out.with_name(out.stem + "_src.dcm")
        ds.save_as(src, enforce_file_format=True)
        proc = subprocess.run(
            [str(DCMCJPEG), *flags, str(src), str(out)], capture_output=True, text=True, timeout=60, check=False
        )
        assert proc.returncode == 0, f"dcmcjpeg {' '.join(flags)} failed: {proc.stderr.strip()}"

    return encode


@dataclass(frozen=True)
class Case:
    """One transfer syntax: how to encode it and how close the decoded image must be."""

    id: str
    uid: str
    bits: int
    encode: Encoder
    max_error: int = 0  # on stored values; 0 = lossless
    mean_error: float = 0.0  # mean |decoded - source| on stored values
    render_mean_error: float = 0.0  # mean |rendered - rendered source| on the 0..255 output

    @property
    def lossless(self) -> bool:
        return self.max_error == 0


# dcmcjpeg's lossy default (+sp) shifts stored values down by the image minimum (without writing a rescale);
# +sr scales by the bit range instead, so decoded values stay comparable with the source.
# Lossy bounds: measured on this phantom (seed 7, 256 x 312, MONOCHROME2), then about 2x headroom:
#   JPEG Baseline q90, 8-bit (dcmtk):       stored max 6,  mean 0.98;  render mean 1.68
#   JPEG Extended q90, 12-bit (dcmtk):      stored max 18, mean 3.04;  render mean 0.29
#   JPEG-LS NEAR=2, 12-bit (pyjpegls):      stored max 2 (the standard's guarantee), mean 1.20; render mean 0.11
#   JPEG 2000 irreversible 10:1, 12-bit:    stored max 71, mean 12.26; render mean 1.16
CASES = [
    Case("implicit-vr-le", ImplicitVRLittleEndian, 12, _native(ImplicitVRLittleEndian)),
    Case("explicit-vr-le", ExplicitVRLittleEndian, 12, _native(ExplicitVRLittleEndian)),
    Case("deflated-explicit-vr-le", DeflatedExplicitVRLittleEndian, 12, _native(DeflatedExplicitVRLittleEndian)),
    Case("explicit-vr-big-endian", ExplicitVRBigEndian, 12, _native(ExplicitVRBigEndian)),
    Case("rle-lossless", RLELossless, 16, _pydicom_compress(RLELossless)),
    Case(
        "jpeg-baseline-8bit",
        JPEGBaseline8Bit,
        8,
        _dcmcjpeg("+eb", "+sr", "+q", "90"),
        max_error=12,
        mean_error=2.0,
        render_mean_error=3.5,
    ),
    Case(
        "jpeg-extended-12bit",
        JPEGExtended12Bit,
        12,
        _dcmcjpeg("+ee", "+sr", "+q", "90"),
        max_error=36,
        mean_error=6.0,
        render_mean_error=0.6,
    ),
    Case("jpeg-lossless-p14-16bit", JPEGLossless, 16, _dcmcjpeg("+el", "+sv", "6")),
    Case("jpeg-lossless-sv1-16bit", JPEGLosslessSV1, 16, _dcmcjpeg("+e1")),
    Case("jpeg-ls-lossless-16bit", JPEGLSLossless, 16, _pydicom_compress(JPEGLSLossless)),
    Case(
        "jpeg-ls-near-lossless-12bit",
        JPEGLSNearLossless,
        12,
        _pydicom_compress(JPEGLSNearLossless, jls_error=2),
        max_error=2,
        mean_error=1.5,
        render_mean_error=0.25,
    ),
    Case("jpeg-2000-lossless-16bit", JPEG2000Lossless, 16, _pydicom_compress(JPEG2000Lossless)),
    Case(
        "jpeg-2000-lossy-12bit",
        JPEG2000,
        12,
        _pydicom_compress(JPEG2000, j2k_cr=[10]),
        max_error=140,
        mean_error=20.0,
        render_mean_error=2.5,
    ),
]


# --------------------------------------------------------------------------------------------------
# tests
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_transfer_syntax_reads_decodes_and_renders(case: Case, phantom: FileDataset, tmp_path: Path) -> None:
    source, expected = _requantise(phantom, case.bits)
    path = tmp_path / f"{case.id}.dcm"
    case.encode(source, path)

    ds = read_dataset(path)
    assert ds.file_meta.TransferSyntaxUID == case.uid
    assert int(ds.BitsStored) == case.bits
    if case.uid == DeflatedExplicitVRLittleEndian:
        # The data set after the file meta really is a raw deflate stream (PS3.5 A.5).
        raw = path.read_bytes()
        meta_end = 132 + 12 + int.from_bytes(raw[140:144], "little")
        inflated = zlib.decompressobj(-zlib.MAX_WBITS).decompress(raw[meta_end:])
        assert len(inflated) > expected.nbytes

    arr = read_pixels(ds, path=path)
    assert arr.shape == expected.shape
    assert arr.dtype.kind == "u"
    error = np.abs(arr.astype(np.int64) - expected.astype(np.int64))
    if case.lossless:
        np.testing.assert_array_equal(arr, expected)
    else:
        assert 0 < error.max() <= case.max_error, f"max error {error.max()}"
        assert error.mean() <= case.mean_error, f"mean error {error.mean():.3f}"

    img = to_uint8(path)
    reference = to_uint8(source)
    assert img.dtype == np.uint8
    assert img.shape == (int(source.Rows), int(source.Columns))
    assert img.max() > img.min()
    if case.lossless:
        np.testing.assert_array_equal(img, reference)
    else:
        render_error = np.abs(img.astype(np.int64) - reference.astype(np.int64)).mean()
        assert render_error <= case.render_mean_error, f"render mean error {render_error:.3f}"


def test_unsupported_transfer_syntax_names_file_and_uid(phantom: FileDataset, tmp_path: Path) -> None:
    source, expected = _requantise(phantom, 8)
    ds = copy.deepcopy(source)
    # A well-formed encapsulated file whose fragment is not a decodable image in this syntax.
    ds.PixelData = encapsulate([expected.tobytes()[:1024]])
    ds["PixelData"].VR = "OB"
    ds.file_meta.TransferSyntaxUID = MPEG2_MAIN_PROFILE
    path = tmp_path / "mpeg2.dcm"
    pydicom.dcmwrite(path, ds, enforce_file_format=True)

    ds = read_dataset(path)  # the header is readable
    assert ds.file_meta.TransferSyntaxUID == MPEG2_MAIN_PROFILE
    with pytest.raises(DicomReadError) as info:
        read_pixels(ds, path=path)
    assert info.value.path == path
    assert str(path) in str(info.value)
    assert MPEG2_MAIN_PROFILE in str(info.value)

    with pytest.raises(DicomReadError, match=MPEG2_MAIN_PROFILE.replace(".", r"\.")):
        to_uint8(path)


class TestDamagedFiles:
    """What a decoder would pass silently is refused by :mod:`cxrlab.dicom.io` before decoding (issue 10)."""

    def test_deflate_bomb_stops_at_the_unpack_limit(self, phantom: FileDataset, tmp_path: Path) -> None:
        from cxrlab.runtime.unpack import unpack_limit

        ds = copy.deepcopy(phantom)
        ds.add_new(0x00091011, "OB", b"\0" * (8 * 2**20))  # 8 MiB of zeros: deflates to about 8 KiB
        ds.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
        path = tmp_path / "bomb.dcm"
        ds.save_as(path, enforce_file_format=True)
        assert path.stat().st_size < 2**20
        assert read_dataset(path).Rows == phantom.Rows  # within the default 2 GiB
        with unpack_limit(2**20), pytest.raises(DicomReadError) as info:
            read_dataset(path)
        assert str(info.value) == f"{path}: deflated data set unpacks to more than 1 MiB (the limit on unpacked size)"

    def test_truncated_frame_of_a_multiframe_jpeg_ls_is_named(self, phantom: FileDataset, tmp_path: Path) -> None:
        from pydicom.encaps import generate_frames

        source, expected = _requantise(phantom, 12)
        ds = copy.deepcopy(source)
        ds.NumberOfFrames = 2
        ds.compress(JPEGLSLossless, np.stack([expected, expected]))
        frames = list(generate_frames(ds.PixelData, number_of_frames=2))
        ds.PixelData = encapsulate([frames[0], frames[1][:-40]])
        path = tmp_path / "two.dcm"
        ds.save_as(path, enforce_file_format=True)
        with pytest.raises(DicomReadError, match=r"pixel data truncated \(frame 2 of 2 has no end marker FFD9\)"):
            read_pixels(read_dataset(path), path=path)

    def test_native_pixel_data_shorter_than_the_image_is_named(self, phantom: FileDataset, tmp_path: Path) -> None:
        ds = copy.deepcopy(phantom)
        need = int(ds.Rows) * int(ds.Columns) * 2
        ds.PixelData = ds.PixelData[: need - 64]  # a consistent file whose Pixel Data is short
        path = tmp_path / "short.dcm"
        ds.save_as(path, enforce_file_format=True)
        with pytest.raises(DicomReadError, match=rf"pixel data truncated \({need - 64} of {need} bytes\)"):
            to_uint8(path)
