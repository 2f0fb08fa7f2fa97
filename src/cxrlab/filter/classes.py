"""The filter's vocabulary: model classes, age classes, decisions, and how human reason codes map onto them.

The classes follow the seeds' filtering step: "images of other modalities, other body parts, low quality, or
incorrect orientation" are removed, lateral views are removed, and adults are removed from a pediatric set and
children from an adult set (VinDr-CXR data descriptor, "Data filtering"; VinDr-PCXR data descriptor, "Data
filtering": patients younger than 10 years).
"""

from __future__ import annotations

__all__ = [
    "AGE_CLASSES",
    "AUDIT",
    "DECISIONS",
    "OUTLIER_CLASSES",
    "READER_CODES",
    "VERIFY_ACTIONS",
    "VIEW_CLASSES",
    "population_outlier",
]

#: The view head of the model: one softmax over these (the order is the ONNX output's column order).
VIEW_CLASSES: tuple[str, ...] = ("frontal_chest", "lateral", "other_body_part", "low_quality")
#: The age head: one sigmoid, the probability of ``pediatric`` (younger than 10 years, VinDr-PCXR).
AGE_CLASSES: tuple[str, ...] = ("adult", "pediatric")
#: Every class a decision can name: the view classes, and the age class that is wrong for the population.
OUTLIER_CLASSES: tuple[str, ...] = ("lateral", "other_body_part", "low_quality", "pediatric", "adult")
#: Decisions of the filter, one per image (the image states they lead to have the same names).
DECISIONS: tuple[str, ...] = ("accepted", "filtered_out", "needs_verification")
#: Reason of a ``needs_verification`` image drawn into the random audit sample of the accepted ones.
AUDIT = "audit"
#: What a verifier can decide about an image waiting for verification
#: (:func:`~cxrlab.filter.verify.record_verification`).
VERIFY_ACTIONS: tuple[str, ...] = ("accept", "outlier")

#: Readers' "unusable" reason codes (:data:`cxrlab.annotate.reasons.UNUSABLE_CODES`) that name a model class;
#: ``wrong_age_group`` maps to the class that is wrong for the workspace population (:func:`population_outlier`);
#: ``burned_in_text`` and ``other`` teach the model nothing about the view and are not used for training.
READER_CODES: dict[str, str] = {
    "not_chest": "other_body_part",
    "lateral": "lateral",
    "poor_quality": "low_quality",
    "wrong_age_group": "wrong_age_group",
}


def population_outlier(population: str) -> str | None:
    """The age class that is an outlier for *population* (``adult`` -> ``pediatric``, ``pediatric`` -> ``adult``).

    Parameters
    ----------
    population : {"adult", "pediatric", "any"}
        The workspace population (VinDr-CXR: adults; VinDr-PCXR: children younger than 10 years).

    Returns
    -------
    str or None
        None for ``any``.
    """
    if population == "adult":
        return "pediatric"
    if population == "pediatric":
        return "adult"
    if population == "any":
        return None
    raise ValueError(f"population must be adult, pediatric or any, not {population!r}")
