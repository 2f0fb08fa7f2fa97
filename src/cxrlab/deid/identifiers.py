"""Keyed identifiers: ``image_id`` and replacement UIDs derived from the original SOP Instance UID.

``image_id`` is HMAC-SHA256 of (0008,0018) *SOP Instance UID* under the workspace secret, 32 hex characters
like the released VinDr ids (the seeds used an unkeyed ``hashlib`` digest, which a dictionary of UIDs can
reverse). New UIDs use the ``2.25.<integer>`` form of PS3.5 Annex B.2, from the same keyed hash, so they are
consistent across a batch and across runs.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid

__all__ = ["IMPLEMENTATION_CLASS_UID", "image_id_for", "new_uid"]

#: cxrlab's Implementation Class UID (0002,0012): a 2.25 UID from a fixed name-based UUID.
IMPLEMENTATION_CLASS_UID = f"2.25.{uuid.uuid5(uuid.NAMESPACE_URL, 'https://pypi.org/project/cxrlab').int}"
IMPLEMENTATION_VERSION_NAME = "CXRLAB_010"


def image_id_for(sop_instance_uid: str, key: bytes) -> str:
    """Return the 32-hex-character keyed image id of *sop_instance_uid*."""
    return hmac.new(key, sop_instance_uid.encode("ascii"), hashlib.sha256).hexdigest()[:32]


def new_uid(original: str, key: bytes) -> str:
    """Return the replacement UID ``2.25.<128-bit integer>`` for *original* (PS3.5 B.2; at most 44 chars)."""
    digest = hmac.new(key, b"uid:" + original.encode("ascii"), hashlib.sha256).digest()
    return f"2.25.{int.from_bytes(digest[:16], 'big')}"
