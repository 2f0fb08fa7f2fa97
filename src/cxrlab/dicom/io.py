"""Reading DICOM files: format sniffing, header-only reads and pixel decoding with clear errors.

Decoding uses pydicom's pixel backends; the plugins pylibjpeg (libjpeg, openjpeg, rle), pyjpegls and
python-gdcm are installed with cxrlab so every common transfer syntax of projection radiography decodes:
Implicit/Explicit VR Little Endian, Deflated Explicit VR LE, RLE Lossless, JPEG Baseline/Extended/Lossless,
JPEG-LS and JPEG 2000 (PS3.5 Section 8 and Annex A).
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileDataset
from pydicom.errors import InvalidDicomError

from cxrlab.errors import FileError

__all__ = ["DicomReadError", "is_dicom", "read_dataset", "read_pixels"]

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


class DicomReadError(FileError):
    """A file could not be read as a usable DICOM image."""


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
        The file is missing, not DICOM, or truncated inside its header. The message never quotes a value
        from the file.
    """
    path = Path(path)
    if not path.exists():
        raise DicomReadError(path, "file not found")
    if path.is_dir():
        raise DicomReadError(path, "is a folder, not a file")
    if not is_dicom(path):
        raise DicomReadError(path, "not a DICOM file (no DICM prefix at byte 128)")
    try:
        ds = pydicom.dcmread(path, stop_before_pixels=header_only, force=True)
        # Touch every top-level element so a truncated header fails here, not later.
        for _ in ds.iterall():
            pass
    except InvalidDicomError:
        raise DicomReadError(path, "not a valid DICOM file") from None
    except (EOFError, OSError, ValueError, struct.error) as exc:
        raise DicomReadError(path, f"truncated or corrupt DICOM header ({type(exc).__name__})") from None
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


def read_pixels(ds: Dataset, *, path: str | Path = "<dataset>") -> np.ndarray:
    """Decode the first frame of (7FE0,0010) *Pixel Data* to stored values.

    Raises
    ------
    DicomReadError
        No pixel data, an unsupported transfer syntax, or a decode failure (truncated pixel data).
    """
    if "PixelData" not in ds:
        raise DicomReadError(path, "no pixel data (7FE0,0010)")
    uid = transfer_syntax_uid(ds)
    if uid not in SUPPORTED_TRANSFER_SYNTAXES:
        raise DicomReadError(path, f"unsupported transfer syntax {uid}")
    try:
        arr = ds.pixel_array
    except NotImplementedError:
        raise DicomReadError(path, f"no decoder available for transfer syntax {uid}") from None
    except Exception as exc:  # noqa: BLE001 - any decoder failure becomes one clear file error
        raise DicomReadError(path, f"pixel data could not be decoded ({type(exc).__name__})") from None
    if arr.ndim == 3 and int(getattr(ds, "SamplesPerPixel", 1)) == 1:
        arr = arr[0]
    return arr
