"""Outlier classes: the images that are not a normal adult frontal chest film, for the filter stage to catch."""

from __future__ import annotations

from types import EllipsisType

import numpy as np
from pydicom.dataset import Dataset

__all__ = ["OUTLIER_CLASSES", "mislabel_header"]

#: Outlier classes :func:`generate_phantom` can produce (``None`` is a normal adult frontal chest film).
OUTLIER_CLASSES: tuple[str, ...] = ("lateral", "other_body_part", "pediatric", "low_quality")
#: Body parts of the ``other_body_part`` outlier.
_OTHER_PARTS = ("ABDOMEN", "SPINE", "HAND", "PELVIS", "KNEE", "SKULL")


def _resolve_outlier(
    rng: np.random.Generator, outlier: str | None | EllipsisType, outlier_prob: float
) -> str | None:
    """Draw (or validate) the outlier class; always consumes the same random numbers."""
    u, k = rng.random(), int(rng.integers(len(OUTLIER_CLASSES)))
    if outlier is Ellipsis:
        return OUTLIER_CLASSES[k] if u < outlier_prob else None
    if outlier is not None and outlier not in OUTLIER_CLASSES:
        raise ValueError(f"outlier must be None, ... or one of {OUTLIER_CLASSES}, got {outlier!r}")
    return outlier  # type: ignore[return-value]


def mislabel_header(ds: Dataset, outlier: str) -> None:
    """Make the header of an *outlier* look like an adult frontal chest film's (in place).

    The seeds' filter needs an image model because tags are often wrong: "other body parts because of mismatched
    DICOM tags" (VinDr-CXR data descriptor, "Data filtering"). Here (0018,0015) *Body Part Examined* says CHEST,
    (0018,5101) *View Position* is empty (PS3.3 C.8.11.5: type 3, often absent) and, for a child, (0010,1010)
    *Patient's Age* and (0010,0030) *Patient's Birth Date* are removed, so header rules keep the image and only
    the pixels tell. Draws no random numbers.

    Parameters
    ----------
    ds : pydicom.dataset.Dataset
        The phantom's dataset.
    outlier : str
        Its outlier class (:data:`OUTLIER_CLASSES`).
    """
    if outlier not in OUTLIER_CLASSES:
        raise ValueError(f"outlier must be one of {OUTLIER_CLASSES}, got {outlier!r}")
    ds.BodyPartExamined = "CHEST"
    ds.StudyDescription = "XR CHEST"
    ds.ViewPosition = ""
    ds.PatientOrientation = ""
    if outlier == "pediatric":
        for keyword in ("PatientAge", "PatientBirthDate"):
            if keyword in ds:
                delattr(ds, keyword)
