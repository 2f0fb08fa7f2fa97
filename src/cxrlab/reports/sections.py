"""Report sections: find the headed parts of a free-text radiology report and pick the ones to label.

Radiology reports are written in headed sections (ACR Practice Parameter for Communication of Diagnostic Imaging
Findings: "Findings", "Impression"; the OpenI collection stores COMPARISON, INDICATION, FINDINGS and IMPRESSION as
separate ``AbstractText`` elements). Only what the radiologist saw counts as a label: the findings and the
impression. The indication and the history say why the study was asked for ("rule out pneumonia") and are left out
unless asked for.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

__all__ = ["BODY", "DEFAULT_SECTIONS", "SECTION_NAMES", "normalise_sections", "select_text", "split_sections"]

#: Name of the text that comes before any heading (a report without headings is all body).
BODY = "body"

#: Sections labeled by default.
DEFAULT_SECTIONS: tuple[str, ...] = ("findings", "impression", BODY)

#: Heading spellings -> canonical section name.
SECTION_NAMES: dict[str, str] = {
    "findings": "findings",
    "finding": "findings",
    "report": "findings",
    "impression": "impression",
    "impressions": "impression",
    "conclusion": "impression",
    "conclusions": "impression",
    "opinion": "impression",
    "summary": "impression",
    "comparison": "comparison",
    "comparisons": "comparison",
    "indication": "indication",
    "indications": "indication",
    "reason for exam": "indication",
    "reason for examination": "indication",
    "reason for study": "indication",
    "clinical indication": "indication",
    "history": "history",
    "clinical history": "history",
    "clinical information": "history",
    "technique": "technique",
    "examination": "technique",
    "exam": "technique",
    "procedure": "technique",
    "recommendation": "recommendation",
    "recommendations": "recommendation",
}

# A heading is a known name followed by a colon at the start of a line or of a sentence.
_HEADING = re.compile(
    r"(?:^|(?<=\n)|(?<=[.!?]\s))[ \t]*(" + "|".join(sorted(map(re.escape, SECTION_NAMES), key=len, reverse=True))
    + r")[ \t]*:",
    re.IGNORECASE,
)


def split_sections(text: str) -> dict[str, str]:
    """Split free text at its headings (``FINDINGS:``, ``IMPRESSION:``, ...).

    Parameters
    ----------
    text : str
        One report.

    Returns
    -------
    dict of str to str
        Canonical section name (:data:`SECTION_NAMES`) -> text; text before the first heading is :data:`BODY`.
        A section that occurs twice is joined.
    """
    out: dict[str, list[str]] = {}
    last_name, last_end = BODY, 0
    for m in _HEADING.finditer(text):
        out.setdefault(last_name, []).append(text[last_end:m.start()])
        last_name, last_end = SECTION_NAMES[m.group(1).lower()], m.end()
    out.setdefault(last_name, []).append(text[last_end:])
    return {name: "\n".join(p.strip() for p in parts if p.strip()) for name, parts in out.items()}


def normalise_sections(names: Iterable[str]) -> tuple[str, ...]:
    """Canonical names of the sections asked for (``"Impression"`` -> ``"impression"``).

    Raises
    ------
    ValueError
        A name that is no known heading.
    """
    out = []
    for name in names:
        key = name.strip().lower()
        if key == BODY:
            out.append(BODY)
        elif key in SECTION_NAMES:
            out.append(SECTION_NAMES[key])
        else:
            known = sorted({*SECTION_NAMES.values(), BODY})
            raise ValueError(f"unknown report section {name!r} (known: {', '.join(known)})")
    return tuple(dict.fromkeys(out))


def select_text(sections: Mapping[str, str], wanted: Iterable[str] = DEFAULT_SECTIONS) -> str:
    """The text of the *wanted* sections, in the order asked, one section a paragraph."""
    return "\n\n".join(sections[name] for name in wanted if sections.get(name, "").strip())
