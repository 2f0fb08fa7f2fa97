"""Keyed identifiers: ``image_id`` and replacement UIDs derived from the original SOP Instance UID.

``image_id`` is HMAC-SHA256 of (0008,0018) *SOP Instance UID* under the workspace secret, 32 hex characters like
the released VinDr ids. ``md5`` reproduces the VinDr-CXR public scheme (MD5 of the UID with Python's ``hashlib``,
VinDr-CXR data descriptor, "Data Records"): it is unkeyed, so anyone holding a list of candidate UIDs can reverse
it by a dictionary attack; use it only for compatibility. New UIDs use the ``2.25.<integer>`` form of PS3.5
Annex B.2, from the same key, so they are consistent across a batch, across runs and inside sequences.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import uuid
from datetime import date, timedelta

from cxrlab.dicom.metadata import keyed_hex

__all__ = ["ID_SCHEMES", "IMPLEMENTATION_CLASS_UID", "date_offset_days", "image_id_for", "keyed_hex", "new_uid"]

#: cxrlab's Implementation Class UID (0002,0012): a 2.25 UID from a fixed name-based UUID.
IMPLEMENTATION_CLASS_UID = f"2.25.{uuid.uuid5(uuid.NAMESPACE_URL, 'https://pypi.org/project/cxrlab').int}"
IMPLEMENTATION_VERSION_NAME = "CXRLAB_010"
ID_SCHEMES = ("hmac", "md5")


def image_id_for(sop_instance_uid: str, key: bytes, scheme: str = "hmac") -> str:
    """Return the 32-hex-character image id of *sop_instance_uid* under *scheme* (``hmac`` or ``md5``)."""
    if scheme == "md5":
        return hashlib.md5(sop_instance_uid.encode("ascii")).hexdigest()  # noqa: S324 - the VinDr public scheme
    if scheme != "hmac":
        raise ValueError(f"unknown id scheme {scheme!r} (one of {', '.join(ID_SCHEMES)})")
    return hmac.new(key, sop_instance_uid.encode("ascii"), hashlib.sha256).hexdigest()[:32]


def new_uid(original: str, key: bytes) -> str:
    """Return the replacement UID ``2.25.<128-bit integer>`` for *original* (PS3.5 B.2; at most 44 chars)."""
    digest = hmac.new(key, b"uid:" + original.encode("ascii", "replace"), hashlib.sha256).digest()
    return f"2.25.{int.from_bytes(digest[:16], 'big')}"


def date_offset_days(key: bytes, patient_id: str) -> int:
    """Days (1..3650) that every date of this patient moves back (PS3.15 E.3.6, Modified Dates)."""
    return int(keyed_hex(key, "date", patient_id)[:8], 16) % 3650 + 1


#: A DA value is exactly ``YYYYMMDD``; a DT value ``YYYYMMDD[HH[MM[SS[.F{1,6}]]]][&ZZXX]`` (PS3.5 Table 6.2-1).
_DATE = re.compile(r"\d{8}")
_DATETIME_TAIL = re.compile(r"(\d{2}(\d{2}(\d{2}(\.\d{1,6})?)?)?)?([+-]\d{4})?")


def shift_date(value: str, days: int) -> str:
    """Move a DA ``YYYYMMDD`` (or the date part of a DT) back by *days*.

    Anything that is not a well-formed DA/DT value returns '' — a malformed value may hide text after the date.
    """
    text = value.strip()
    if not _DATE.fullmatch(text[:8]) or not _DATETIME_TAIL.fullmatch(text[8:]):
        return ""
    try:
        d = date(int(text[:4]), int(text[4:6]), int(text[6:8]))
    except ValueError:
        return ""
    return (d - timedelta(days=days)).strftime("%Y%m%d") + text[8:]
