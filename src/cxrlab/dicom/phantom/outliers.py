"""Outlier classes: the images that are not a normal adult frontal chest film, for the filter stage to catch."""

from __future__ import annotations

from types import EllipsisType

import numpy as np

__all__ = ["OUTLIER_CLASSES"]

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
