"""Class lists for detection scoring: the integer ids a submission's ``PredictionString`` uses.

The public VinBigData challenge on the VinDr-CXR test set ("A slightly modified version of this dataset was used
to organize the VinBigData Chest Xray Abnormalities Detection Challenge", VinDr-CXR data descriptor, "Background &
Summary") scored 14 boxed findings with ids 0-13 in alphabetical order plus "No finding" = 14, whose box is
``0 0 1 1``. Its spellings differ from the data descriptor's Table 2 in two names ("ILD" for "Interstitial lung
disease (ILD)", "Lung Opacity" for "Lung opacity"); both spellings are accepted. The eight rarer local labels of
Table 2 (clavicle and rib fractures, edema, emphysema, enlarged PA, lung cavity, lung cyst, mediastinal shift)
were not scored by the challenge.

A label schema of :mod:`cxrlab.schemas` is a class list too: its local labels in seed order get ids
``0..n-1`` and "No finding" gets ``n`` — the ``class_id`` cxrlab writes in ``annotations_*.csv``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from cxrlab.evaluate.exceptions import EvaluationError
from cxrlab.schemas import CHALLENGE_CLASSES, get_schema

__all__ = ["CHALLENGE", "CLASS_LISTS", "ClassList", "get_class_list"]

#: The box given to "No finding" in submissions and ground truth: ``14 1 0 0 1 1`` (docs, "File formats").
NO_FINDING_BOX = (0.0, 0.0, 1.0, 1.0)


@dataclass(frozen=True)
class ClassList:
    """An ordered list of detection classes; a class's id is its position.

    Attributes
    ----------
    name : str
        ``vindr-cxr-challenge`` or a schema name.
    names : tuple of str
        Class names by id.
    no_finding : int or None
        Id of "No finding" (scored as a box ``0 0 1 1``), if the list has one.
    aliases : mapping of str to int
        Other accepted spellings (compared case-insensitively, like the names).
    """

    name: str
    names: tuple[str, ...]
    no_finding: int | None = None
    aliases: Mapping[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        lookup = {n.casefold(): i for i, n in enumerate(self.names)}
        lookup.update({a.casefold(): i for a, i in self.aliases.items()})
        object.__setattr__(self, "_lookup", lookup)

    def id_of(self, name: str) -> int | None:
        """Class id of *name* (any accepted spelling, case-insensitive), or None when it is not in the list."""
        return self._lookup.get(str(name).strip().casefold())  # type: ignore[attr-defined]

    def __len__(self) -> int:
        return len(self.names)

    @property
    def ids_text(self) -> str:
        """The ids the list gives, as pages and messages name them: ``0-14, 14 = No finding``."""
        text = f"0-{len(self) - 1}"
        return text if self.no_finding is None else f"{text}, {self.no_finding} = No finding"


CHALLENGE = ClassList(
    "vindr-cxr-challenge",
    CHALLENGE_CLASSES,
    no_finding=14,
    aliases={"Interstitial lung disease (ILD)": 5},
)


#: The names :func:`get_class_list` knows (a benchmark's ``classes``).
CLASS_LISTS = ("vindr-cxr-challenge", "vindr-cxr", "vindr-pcxr")


def get_class_list(name: str) -> ClassList:
    """The class list called *name*: ``vindr-cxr-challenge`` or a label schema (``vindr-cxr``, ``vindr-pcxr``).

    Raises
    ------
    EvaluationError
        For an unknown name or a schema without local (boxed) labels.
    """
    if name == CHALLENGE.name:
        return CHALLENGE
    try:
        schema = get_schema(name)
    except KeyError as exc:
        raise EvaluationError(f"unknown class list {name!r} (known: {', '.join(CLASS_LISTS)})") from exc
    local = tuple(lb.name for lb in schema.local)
    if not local:
        raise EvaluationError(f"label schema {name!r} has no boxed (local) labels to score")
    names = local + ((schema.no_finding,) if schema.no_finding else ())
    return ClassList(schema.name, names, no_finding=len(local) if schema.no_finding else None)
