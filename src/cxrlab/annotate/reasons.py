"""The controlled vocabulary of reasons for setting an image aside as unusable in the labeling tool.

A reader picks one code; an optional free-text note may add detail. Only the code travels: it is what
``images.state_reason``, the audit ``events``, the dashboard and the default exports carry. The note is free
text typed by a person (it may hold PHI, e.g. a name read off the film), so it stays on the task row and leaves
the tool only in an export that asks for free text.

The codes follow the outliers the seeds drop before labeling (VinDr-CXR data descriptor, "Data filtering";
VinDr-PCXR data descriptor, "Data filtering": other body parts, lateral views, low quality, adults in a
pediatric set or children in an adult set) plus burned-in text, which the de-identification stage must catch
(PS3.15 Annex E, "Clean Pixel Data Option"). The filter stage writes descriptive sentences, not codes, so there
is no list to reuse there.
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["NOTE_MAX_CHARS", "UNUSABLE_CODES", "UNUSABLE_REASONS", "UnusableReason", "reason_title"]


class UnusableReason(NamedTuple):
    """One entry of the vocabulary: a stable ``code`` (stored and exported) and a ``title`` for people."""

    code: str
    title: str


#: Every reason a reader may give, in the order the viewer lists them.
UNUSABLE_REASONS: tuple[UnusableReason, ...] = (
    UnusableReason("not_chest", "not a chest radiograph"),
    UnusableReason("lateral", "lateral view"),
    UnusableReason("poor_quality", "poor image quality"),
    UnusableReason("burned_in_text", "burned-in text / PHI visible"),
    UnusableReason("wrong_age_group", "wrong age group (adult vs pediatric)"),
    UnusableReason("other", "other"),
)

#: The codes alone.
UNUSABLE_CODES: tuple[str, ...] = tuple(r.code for r in UNUSABLE_REASONS)

#: Longest free-text note accepted with a reason.
NOTE_MAX_CHARS = 500

_TITLES = dict(UNUSABLE_REASONS)


def reason_title(code: str | None) -> str | None:
    """The human title of *code*; None for None or an unknown code (never echoes the unknown value)."""
    return _TITLES.get(code) if code else None
