"""Reading DICOM files: format sniffing, header-only reads and pixel decoding with clear errors.

Decoding uses pydicom's pixel backends; the plugins pylibjpeg (libjpeg, openjpeg, rle), pyjpegls and
python-gdcm are installed with cxrlab so every common transfer syntax of projection radiography decodes:
Implicit/Explicit VR Little Endian, Deflated Explicit VR LE, RLE Lossless, JPEG Baseline/Extended/Lossless,
JPEG-LS and JPEG 2000 (PS3.5 Section 8 and Annex A).
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileDataset
from pydicom.encaps import generate_frames
from pydicom.errors import InvalidDicomError
from pydicom.pixels.utils import get_expected_length

from cxrlab.errors import FileError
from cxrlab.runtime.unpack import CorruptStreamError, UnpackedTooLargeError, check_inflated_size

__all__ = [
    "DicomReadError",
    "check_codestream_end",
    "check_deflated_size",
    "check_pixel_data",
    "check_pixel_length",
    "is_dicom",
    "read_dataset",
    "read_errors",
    "read_pixels",
]

#: Transfer syntaxes a de-identified cxrlab file may carry and the decoders accept (PS3.5 Annex A).
SUPPORTED_TRANSFER_SYNTAXES = {
    "1.2.840.10008.1.2": "Implicit VR Little Endian",
    "1.2.840.10008.1.2.1": "Explicit VR Little Endian",
    "1.2.840.10008.1.2.1.99": "Deflated Explicit VR Little Endian",
    "1.2.840.10008.1.2.2": "Explicit VR Big Endian",
    "1.2.840.10008.1.2.5": "RLE Lossless",
    "1.2.840.10008.1.2.4.50": "JPEG Baseline (Process 1)",
    "1.2.840.10008.1.2.4.51": "JPEG Extended (Process 2 & 4)",
    "1.2.840.10008.1.2.4.57": "JPEG Lossless, Non-Hierarchical (Process 14)",
    "1.2.840.10008.1.2.4.70": "JPEG Lossless, First-Order Prediction (Process 14 SV1)",
    "1.2.840.10008.1.2.4.80": "JPEG-LS Lossless",
    "1.2.840.10008.1.2.4.81": "JPEG-LS Near-Lossless",
    "1.2.840.10008.1.2.4.90": "JPEG 2000 Lossless Only",
    "1.2.840.10008.1.2.4.91": "JPEG 2000",
    "1.2.840.10008.1.2.4.201": "HTJ2K Lossless",
    "1.2.840.10008.1.2.4.203": "HTJ2K",
}


#: Native encodings of Pixel Data (PS3.5 8.1.1): the element holds Rows x Columns x Samples x Frames values.
NATIVE_TRANSFER_SYNTAXES = frozenset({
    "1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.1.99", "1.2.840.10008.1.2.2",
})
#: Encapsulated syntaxes whose codestream of a frame ends with the marker FFD9: EOI of JPEG (ISO/IEC 10918-1
#: B.2.1) and JPEG-LS (ISO/IEC 14495-1 C.1.1), EOC of JPEG 2000 and HTJ2K (ISO/IEC 15444-1 A.3.4).
MARKER_TERMINATED = frozenset({
    "1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51", "1.2.840.10008.1.2.4.57", "1.2.840.10008.1.2.4.70",
    "1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.81", "1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.91",
    "1.2.840.10008.1.2.4.201", "1.2.840.10008.1.2.4.202", "1.2.840.10008.1.2.4.203",
})
DEFLATED = "1.2.840.10008.1.2.1.99"
#: What the length of native Pixel Data follows from (PS3.3 C.7.6.3, C.7.6.6).
_IMAGE_SIZE_KEYWORDS = ("Rows", "Columns", "SamplesPerPixel", "BitsAllocated", "NumberOfFrames",
                        "PhotometricInterpretation")
#: Bytes at the end of a frame searched for the end marker: encoders pad after it (a NULL to reach an even
#: length, PS3.5 A.4; some a fill byte FF as well).
END_MARKER_SLACK = 16


class DicomReadError(FileError):
    """A file could not be read as a usable DICOM image."""


@contextmanager
def read_errors(path: str | Path) -> Iterator[None]:
    """Turn what pydicom raises on a malformed file into one :class:`DicomReadError` naming *path* and the
    reason (never a value from the file).

    Covers what a hostile file makes pydicom raise besides its own errors: ``RecursionError`` for sequences
    nested thousands deep (pydicom parses each level recursively; PS3.5 7.5 sets no depth limit) and
    ``zlib.error`` for a Deflated Explicit VR Little Endian file whose deflate stream is corrupt (PS3.5 A.5).
    """
    try:
        yield
    except DicomReadError:
        raise
    except InvalidDicomError:
        raise DicomReadError(path, "not a valid DICOM file") from None
    except RecursionError:
        raise DicomReadError(path, "sequences nested too deeply to read (corrupt or hostile file)") from None
    except zlib.error:
        raise DicomReadError(path, "deflated data set cannot be inflated (corrupt or truncated zlib stream)") from None
    except (EOFError, OSError, ValueError, struct.error) as exc:
        raise DicomReadError(path, f"truncated or corrupt DICOM header ({type(exc).__name__})") from None


#: VRs whose explicit-VR header has a 4-byte length after 2 reserved bytes (PS3.5 Table 7.1-1).
_LONG_VRS = frozenset({b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"})
#: File Meta Information longer than this is left to pydicom (real ones are a few hundred bytes).
_MAX_META = 1 << 20


def _meta_transfer_syntax(meta: bytes) -> str | None:
    """(0002,0010) *Transfer Syntax UID* from the File Meta Information elements after the group length, which
    are always Explicit VR Little Endian (PS3.10 7.1). A parse of these few elements costs microseconds where
    ``pydicom.filereader.read_file_meta_info`` costs half a millisecond on every file read."""
    pos = 0
    while pos + 8 <= len(meta):
        group, elem = struct.unpack_from("<HH", meta, pos)
        if group != 0x0002:
            return None
        if meta[pos + 4 : pos + 6] in _LONG_VRS:
            if pos + 12 > len(meta):
                return None
            (length,), start = struct.unpack_from("<I", meta, pos + 8), pos + 12
        else:
            (length,), start = struct.unpack_from("<H", meta, pos + 6), pos + 8
        if elem == 0x0010:
            return meta[start : start + length].rstrip(b"\0 ").decode("ascii", "replace")
        pos = start + length
    return None


def check_deflated_size(path: str | Path) -> None:
    """If *path* is a Deflated Explicit VR LE file, inflate its data set once, keeping nothing, before pydicom
    inflates it whole in memory: a deflate bomb fails here at :func:`~cxrlab.runtime.unpack.max_unpacked` bytes.

    The deflated stream starts right after the File Meta Information, whose length (0002,0000) *File Meta
    Information Group Length* gives (PS3.10 7.1: 128-byte preamble, ``DICM``, then that 12-byte element).
    """
    with open(path, "rb") as fh:
        head = fh.read(132 + 12)
        if len(head) < 144 or head[128:132] != b"DICM" or head[132:136] != b"\x02\x00\x00\x00":
            return
        (group_length,) = struct.unpack("<I", head[140:144])
        if group_length > _MAX_META or _meta_transfer_syntax(fh.read(group_length)) != DEFLATED:
            return
        try:
            check_inflated_size(fh, path=path)
        except UnpackedTooLargeError as exc:
            raise DicomReadError(path, f"deflated data set {exc.reason}") from None
        except CorruptStreamError:
            raise DicomReadError(path, "deflated data set cannot be inflated (corrupt or truncated zlib stream)") \
                from None


def is_dicom(path: str | Path) -> bool:
    """Return True when *path* looks like a DICOM file.

    A Part 10 file has the 4-byte prefix ``DICM`` after a 128-byte preamble (PS3.10 Section 7.1). Files
    without the preamble are accepted when they start with a group 0x0008 or 0x0002 element, the way
    pydicom's ``force`` reading expects.
    """
    try:
        with open(path, "rb") as fh:
            head = fh.read(132)
    except OSError:
        return False
    if len(head) >= 132 and head[128:132] == b"DICM":
        return True
    return len(head) >= 8 and head[:2] in (b"\x08\x00", b"\x02\x00") and head[2:4] < b"\x20\x00"


def read_dataset(path: str | Path, *, header_only: bool = False) -> FileDataset:
    """Read *path* with pydicom.

    Parameters
    ----------
    path : str or Path
        The file.
    header_only : bool
        Stop before (7FE0,0010) *Pixel Data*: no pixel bytes are read.

    Raises
    ------
    DicomReadError
        The file is missing, not DICOM, truncated inside its header, nested too deeply, or deflated with a
        corrupt stream or one that inflates to more than :func:`~cxrlab.runtime.unpack.max_unpacked` bytes.
        The message never quotes a value from the file.
    """
    path = Path(path)
    if not path.exists():
        raise DicomReadError(path, "file not found")
    if path.is_dir():
        raise DicomReadError(path, "is a folder, not a file")
    if not is_dicom(path):
        raise DicomReadError(path, "not a DICOM file (no DICM prefix at byte 128)")
    with read_errors(path):
        check_deflated_size(path)
        ds = pydicom.dcmread(path, stop_before_pixels=header_only, force=True)
        # Touch every top-level element so a truncated header fails here, not later.
        for _ in ds.iterall():
            pass
    if "SOPInstanceUID" not in ds and "Rows" not in ds:
        # pydicom stops quietly at a cut element: a header with neither attribute was cut short.
        raise DicomReadError(path, "truncated or corrupt DICOM header (image attributes missing)")
    if "PixelData" not in ds and "FloatPixelData" not in ds and not header_only:
        raise DicomReadError(path, "no pixel data (7FE0,0010)")
    return ds


def transfer_syntax_uid(ds: Dataset) -> str:
    """Return the dataset's Transfer Syntax UID (0002,0010), or Implicit VR LE when meta is missing."""
    meta = getattr(ds, "file_meta", None)
    uid = getattr(meta, "TransferSyntaxUID", None) if meta is not None else None
    return str(uid) if uid else "1.2.840.10008.1.2"


def check_pixel_length(ds: Dataset, actual: int, *, path: str | Path = "<dataset>") -> None:
    """Refuse native Pixel Data of *actual* bytes when the image needs more: Rows x Columns x Samples per
    Pixel x Number of Frames x Bits Allocated / 8 (PS3.5 8.1.1; PS3.3 C.7.6.3).

    Raises
    ------
    DicomReadError
        Too short, or the image attributes are missing.
    """
    # Read the attributes from a copy of their raw elements: converting them in *ds* would re-encode them when
    # the de-identification writer copies kept elements byte for byte.
    attrs = Dataset()
    for keyword in _IMAGE_SIZE_KEYWORDS:
        elem = ds.get_item(keyword)
        if elem is not None:
            attrs[keyword] = elem
    try:
        expected = int(get_expected_length(attrs, unit="bytes"))
    except (AttributeError, KeyError, TypeError, ValueError):
        raise DicomReadError(path, "image attributes (0028,xxxx) missing or not numbers") from None
    if actual < expected:
        raise DicomReadError(path, f"pixel data truncated ({actual} of {expected} bytes)")


def check_codestream_end(frame_tail: bytes, *, path: str | Path = "<dataset>", which: str = "") -> None:
    """Refuse a JPEG, JPEG-LS or JPEG 2000 frame whose last bytes hold no end marker FFD9 (EOI / EOC), give
    or take padding: JPEG decoders fill a cut-off image with grey and report success. Inside entropy-coded data
    FF is always followed by 00 or a restart marker (ISO/IEC 10918-1 B.1.1.5), and JPEG 2000 packet data never
    holds FF90-FFFF (ISO/IEC 15444-1 A.1), so FFD9 near the end is the marker, not data.

    Raises
    ------
    DicomReadError
        No end marker in the last bytes of *frame_tail*.
    """
    if b"\xff\xd9" not in frame_tail[-END_MARKER_SLACK:]:
        raise DicomReadError(path, f"pixel data truncated ({which or 'the compressed image'} has no end marker FFD9)")


def check_pixel_data(ds: Dataset, *, path: str | Path = "<dataset>") -> None:
    """Refuse Pixel Data that cannot hold the whole image.

    Native data must be as long as the image needs (:func:`check_pixel_length`); encapsulated JPEG, JPEG-LS and
    JPEG 2000 frames (PS3.5 A.4) must end with their end marker (:func:`check_codestream_end`).

    Raises
    ------
    DicomReadError
        No pixel data, or truncated (the message says which frame).
    """
    if "PixelData" not in ds:
        raise DicomReadError(path, "no pixel data (7FE0,0010)")
    uid = transfer_syntax_uid(ds)
    data = ds.PixelData
    if uid in NATIVE_TRANSFER_SYNTAXES:
        check_pixel_length(ds, len(data), path=path)
        return
    if uid not in MARKER_TERMINATED:
        return
    try:
        n = int(ds.get("NumberOfFrames") or 1)
        frames = list(generate_frames(data, number_of_frames=n))
    except (TypeError, ValueError, KeyError, struct.error):
        raise DicomReadError(path, "encapsulated pixel data or (0028,0008) Number of Frames is malformed") from None
    for i, frame in enumerate(frames, start=1):
        check_codestream_end(frame, path=path, which=f"frame {i} of {n}" if n > 1 else "")


def read_pixels(ds: Dataset, *, path: str | Path = "<dataset>") -> np.ndarray:
    """Decode the first frame of (7FE0,0010) *Pixel Data* to stored values.

    Raises
    ------
    DicomReadError
        No pixel data, an unsupported transfer syntax, truncated pixel data (:func:`check_pixel_data`), or a
        decode failure.
    """
    if "PixelData" not in ds:
        raise DicomReadError(path, "no pixel data (7FE0,0010)")
    uid = transfer_syntax_uid(ds)
    if uid not in SUPPORTED_TRANSFER_SYNTAXES:
        raise DicomReadError(path, f"unsupported transfer syntax {uid}")
    check_pixel_data(ds, path=path)
    try:
        arr = ds.pixel_array
    except NotImplementedError:
        raise DicomReadError(path, f"no decoder available for transfer syntax {uid}") from None
    except Exception as exc:  # noqa: BLE001 - any decoder failure becomes one clear file error
        raise DicomReadError(path, f"pixel data could not be decoded ({type(exc).__name__})") from None
    if arr.ndim == 3 and int(getattr(ds, "SamplesPerPixel", 1)) == 1:
        arr = arr[0]
    return arr
