"""Stored thumbnails: the small JPEG the grid triage page shows, rendered once and kept in the workspace.

A thumbnail is exactly what ``/api/triage/images/{pk}/render`` sent before thumbnails were stored: the display
pipeline's default window (:func:`cxrlab.dicom.display.render_pixels`: Modality LUT, area downsampling to a long
side of :data:`THUMB_SIZE`, the file's VOI or the percentile fallback, MONOCHROME1 inverted), aspect ratio kept,
encoded as JPEG quality 90 (:func:`cxrlab.dicom.display.encode`). Whoever already holds the decoded pixels (the
filter stage, which decodes every image for its model; de-identification when it holds an image for text review)
writes it, so the triage page never decodes a 12.5 MB DICOM file for a 10 kB thumbnail.

Layout: ``thumbs/<image_id>.jpg`` in the workspace: the pseudonymous image id only, never a header value. Written
to a temporary name beside it and renamed (:func:`cxrlab.runtime.files.atomic_path`): a reader sees the old file
or the new one, never part of one, and a killed writer leaves only a ``.*.tmp`` that no reader opens. Not fsynced
(a thumbnail can always be rendered again); a file cut short by a power loss is recognised by
:func:`read_thumbnail` (no JPEG start or end marker) and rendered again.

A thumbnail is used only while it is at least as recent as the file it was rendered from
(:func:`read_thumbnail` compares modification times, a ``stat``, never a read): a file written again after its
thumbnail (a redaction) makes the thumbnail stale.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset

from cxrlab.dicom.display import _monochrome, _to_u8, _voi_downsampled, encode, render_pixels
from cxrlab.runtime.files import atomic_path

__all__ = [
    "THUMB_FOLDER",
    "THUMB_SIZE",
    "read_thumbnail",
    "remove_thumbnail",
    "render_thumbnail",
    "thumbnail_path",
    "write_thumbnail",
]

#: Long side of a stored thumbnail, in pixels (the triage grid's ``max_size``).
THUMB_SIZE = 256
#: The workspace folder of the thumbnails.
THUMB_FOLDER = "thumbs"
#: JPEG quality (the triage route's encoding).
QUALITY = 90
#: What an image id may look like to become a file name (cxrlab's ids are hex or ``[A-Za-z0-9._-]``).
_SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def thumbnail_path(folder: str | os.PathLike[str], image_id: str) -> Path:
    """``folder/<image_id>.jpg``.

    Raises
    ------
    ValueError
        *image_id* is not a plain file name (empty, a path, or characters outside ``[A-Za-z0-9._-]``).
    """
    if not _SAFE_ID.match(image_id or "") or ".." in image_id:
        raise ValueError("an image id must be a plain name of [A-Za-z0-9._-] to name a thumbnail")
    return Path(folder) / f"{image_id}.jpg"


def render_thumbnail(stored: np.ndarray, ds: Dataset) -> bytes:
    """The thumbnail's JPEG bytes from decoded stored values (:func:`cxrlab.dicom.io.read_pixels`) and their
    dataset: ``encode(to_uint8(file, max_size=THUMB_SIZE), "jpeg")`` without decoding the file again.

    Raises
    ------
    DicomReadError
        Not a greyscale image, or a Modality/VOI LUT that cannot be applied.
    """
    if (_identity_rescale(ds) and stored.dtype.kind in "ui" and stored.dtype.itemsize <= 2
            and max(stored.shape[:2]) > THUMB_SIZE):
        # Modality values equal the stored integers (no Modality LUT, slope 1, intercept 0), and integers below
        # 2**24 are exact in float32: area averaging and the percentile window of the stored array give what
        # render_pixels computes from its float64 copy, bit for bit, without the 50 MB copy (a third of the time).
        photometric = _monochrome(ds)
        y = _voi_downsampled(stored, ds, window=None, max_size=THUMB_SIZE)
        return encode(_to_u8(y, invert=photometric == "MONOCHROME1"), "jpeg", quality=QUALITY)
    return encode(render_pixels(stored, ds, max_size=THUMB_SIZE), "jpeg", quality=QUALITY)


def _identity_rescale(ds: Dataset) -> bool:
    """No Modality LUT Sequence, and Rescale Slope/Intercept absent or 1/0 (PS3.3 C.11.1)."""
    if ds.get("ModalityLUTSequence"):
        return False
    try:
        slope, intercept = ds.get("RescaleSlope"), ds.get("RescaleIntercept")
        return (slope in (None, "") or float(slope) == 1.0) and (intercept in (None, "") or float(intercept) == 0.0)
    except (TypeError, ValueError):
        return False  # render_pixels says what is wrong


def write_thumbnail(path: str | os.PathLike[str], data: bytes) -> None:
    """Write *data* to *path* through a temporary file and a rename (never half-written; not fsynced: see the
    module docstring). The folder is created when missing.

    Raises
    ------
    OSError
        The folder or the file cannot be written (nothing is left at *path* but the previous thumbnail).
    """
    with atomic_path(path) as tmp, open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644), "wb") as fh:
        fh.write(data)


def read_thumbnail(path: str | os.PathLike[str], source: str | os.PathLike[str] | None = None) -> bytes | None:
    """The stored thumbnail's bytes, or None when there is none to use: missing, unreadable, not a whole JPEG
    (start and end markers), or older than *source* (the file it shows was written again after it).

    *source* is only ``stat``-ed, never read: a stored thumbnail is served without decoding the image.
    """
    try:
        st = os.stat(path)
        if source is not None and os.stat(source).st_mtime_ns > st.st_mtime_ns:
            return None
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError:
        return None
    if len(data) < 4 or data[:2] != b"\xff\xd8" or data[-2:] != b"\xff\xd9":
        return None
    return data


def remove_thumbnail(folder: str | os.PathLike[str], image_id: str) -> None:
    """Delete the thumbnail of *image_id* if there is one (its pixels changed, or it showed pixels that must no
    longer be shown: the source of an image held for burned-in text once it is decided)."""
    try:
        thumbnail_path(folder, image_id).unlink(missing_ok=True)
    except ValueError:
        return
