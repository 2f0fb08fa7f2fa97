"""Header rules that set outliers aside before labeling.

The seeds drop "images of other modalities, other body parts, low quality, or incorrect orientation",
lateral views, and adults from a pediatric set or children from an adult set (VinDr-CXR data descriptor,
"Data filtering"; VinDr-PCXR, "Data filtering"). These rules use only the catalog's header metadata; the
image-based CNN comes later.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["FilterRules", "check_header"]

#: Projection radiography modalities (PS3.3 C.7.3.1.1.1): Computed Radiography, Digital Radiography.
CXR_MODALITIES = frozenset({"CR", "DX"})
#: (0018,0015) Body Part Examined values accepted as a chest (PS3.16 Annex L defined terms).
CHEST_BODY_PARTS = frozenset({"CHEST", "THORAX", "LUNG", ""})
#: (0018,5101) View Position values of frontal views (PS3.3 C.8.11.5).
FRONTAL_VIEWS = frozenset({"PA", "AP", ""})


@dataclass(frozen=True)
class FilterRules:
    """Options of the header filter.

    Attributes
    ----------
    population : str
        ``adult`` keeps ages >= ``adult_min_age``; ``pediatric`` keeps ages < ``pediatric_max_age``
        (VinDr-PCXR: "patients younger than 10 years"); ``any`` keeps all ages. Unknown ages are kept.
    """

    population: str = "adult"
    adult_min_age: float = 18.0
    pediatric_max_age: float = 10.0

    def __post_init__(self) -> None:
        if self.population not in ("adult", "pediatric", "any"):
            raise ValueError(f"population must be adult, pediatric or any, not {self.population!r}")


def check_header(
    *,
    modality: str | None,
    body_part: str | None,
    view_position: str | None,
    age_years: float | None,
    rules: FilterRules,
) -> str | None:
    """Return None when the image passes, else the reason it is an outlier."""
    if (modality or "").upper() not in CXR_MODALITIES:
        return f"modality {modality or 'missing'} is not CR/DX"
    if (body_part or "").upper() not in CHEST_BODY_PARTS:
        return f"body part {body_part} is not chest"
    if (view_position or "").upper() not in FRONTAL_VIEWS:
        return f"view position {view_position} is not PA/AP"
    if age_years is not None:
        if rules.population == "adult" and age_years < rules.adult_min_age:
            return f"age {age_years:.1f} y is below the adult minimum {rules.adult_min_age:g} y"
        if rules.population == "pediatric" and age_years >= rules.pediatric_max_age:
            return f"age {age_years:.1f} y is not below the pediatric maximum {rules.pediatric_max_age:g} y"
    return None
