"""The report labeler: sentences, label mentions from the vocabulary, and their assertion (1, 0 or -1).

This is the NIH ChestX-ray14 method (Wang et al., "ChestX-ray8: Hospital-scale chest X-ray database and benchmarks
on weakly-supervised classification and localization of common thorax diseases", CVPR 2017, section 3: disease
concepts found in the report, then negation and uncertainty removed) with a rule-based concept matcher and
NegEx/ConText context rules (:mod:`cxrlab.reports.context`). A label is 1 when one mention of it is asserted,
else -1 when one is uncertain, else 0 (negated, hypothetical, or not mentioned): the aggregation of CheXpert
(Irvin et al., AAAI 2019, "Mention aggregation").
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import IntEnum, StrEnum
from pathlib import Path

from cxrlab.reports.context import ContextMatcher
from cxrlab.reports.phrases import PhraseTrie, Tokens, tokenize
from cxrlab.reports.sections import DEFAULT_SECTIONS, select_text
from cxrlab.reports.vocabulary import Near, Vocabulary, load_vocabulary

__all__ = ["Labeler", "Mention", "Status", "UncertainPolicy", "normalise_text", "sentence_ends"]


class Status(IntEnum):
    """A label's value for one report (the CheXpert convention)."""

    POSITIVE = 1
    NEGATIVE = 0
    UNCERTAIN = -1


class UncertainPolicy(StrEnum):
    """What an uncertain label (-1) becomes in the output."""

    KEEP = "keep"
    POSITIVE = "positive"
    NEGATIVE = "negative"

    def apply(self, value: int) -> int:
        """The output value of *value* under this policy."""
        if value != Status.UNCERTAIN or self is UncertainPolicy.KEEP:
            return value
        return int(Status.POSITIVE if self is UncertainPolicy.POSITIVE else Status.NEGATIVE)


@dataclass(frozen=True)
class Mention:
    """One mention of a label: character span in the normalised text, and what the context says of it.

    ``context`` is None for an asserted mention, else ``negated``, ``uncertain`` or ``hypothetical``. No text is
    kept: slice :func:`normalise_text` of the report to see it.
    """

    label: str
    start: int
    end: int
    context: str | None

    @property
    def status(self) -> Status:
        """POSITIVE when asserted, UNCERTAIN when uncertain, else NEGATIVE."""
        if self.context is None:
            return Status.POSITIVE
        return Status.UNCERTAIN if self.context == "uncertain" else Status.NEGATIVE


_SPACE = re.compile(r"[ \t\r\f\v\u00a0]+")
_PARAGRAPH = re.compile(r"\s*\n\s*\n\s*|\s*\n(?=\s*(?:\d{1,2}[.)]|[-*\u2022])\s)")
# Sentence ends: ".", "!" or "?" and a space (not the point of "vs." or "e.g."), a paragraph break, a list item
# ("1. ..."), a ";" is a scope terminator, not a sentence end.
_SENTENCE_END = re.compile(
    r"(?<=[.!?])(?<!\bvs\.)(?<!\bv\.)(?<!\be\.g\.)(?<!\bi\.e\.)(?<!\bdr\.)(?<!\bapprox\.)\s+"
    r"|\n|\s+(?=\d{1,2}[.)]\s)"
)


def normalise_text(text: str) -> str:
    """Lower case, one space between words, a single ``\\n`` for each paragraph break or list item."""
    text = _PARAGRAPH.sub("\n", text.strip())
    text = text.replace("\n", "\x00")
    text = " ".join(text.split())
    return text.replace(" \x00 ", "\n").replace("\x00", "\n").lower()


def sentence_ends(text: str) -> list[int]:
    """Sorted offsets where the sentences of normalised *text* end."""
    return [m.start() for m in _SENTENCE_END.finditer(text)]


# Words that end the gap of a "near" pair: a new clause or a negation starts there.
_GAP_STOP = frozenset({"and", "or", "but", "with", "while", "whereas", "although", "however", "without", "no", "nor"})


class Labeler:
    """Label reports with one vocabulary.

    Parameters
    ----------
    vocabulary : Vocabulary
        From :func:`cxrlab.reports.load_vocabulary`.
    sections : sequence of str
        Sections to read (default findings, impression and text outside any heading).
    """

    def __init__(self, vocabulary: Vocabulary, *, sections: Sequence[str] = DEFAULT_SECTIONS) -> None:
        self.vocabulary = vocabulary
        self.sections = tuple(sections)
        self._context = ContextMatcher(vocabulary.context)
        self._trie = PhraseTrie()
        self._near: dict[tuple[str, int], Near] = {}
        self._patterns: list[tuple[str, re.Pattern[str]]] = []
        for name, lv in {**vocabulary.labels, **vocabulary.hidden}.items():
            for term in lv.terms:
                self._trie.add(term, ("term", name, 0))
            for term in lv.exclude:
                self._trie.add(term, ("exclude", name, 0))
            for k, near in enumerate(lv.near):
                self._near[name, k] = near
                for term in near.anchors:
                    self._trie.add(term, ("anchor", name, k))
                for term in near.modifiers:
                    self._trie.add(term, ("modifier", name, k))
            self._patterns += [(name, re.compile(p)) for p in lv.patterns]

    @classmethod
    def from_schema(
        cls, schema: str, *, extra: Iterable[Path | str] = (), sections: Sequence[str] = DEFAULT_SECTIONS
    ) -> Labeler:
        """The labeler of a built-in schema, extended by a site's YAML files."""
        return cls(load_vocabulary(schema, list(extra)), sections=sections)

    @property
    def names(self) -> list[str]:
        """Label names (output columns) in order."""
        return self.vocabulary.names

    def _spans(self, text: str, tokens: Tokens) -> list[tuple[str, int, int]]:
        """``(label, first token, end token)`` of every mention, exclusions removed."""
        words = tokens.words
        spans: list[tuple[str, int, int]] = []
        excluded: dict[str, list[tuple[int, int]]] = {}
        parts: dict[tuple[str, int], tuple[list, list]] = {}
        for i, j, (kind, name, k) in self._trie.all_matches(words):
            if kind == "term":
                spans.append((name, i, j))
            elif kind == "exclude":
                excluded.setdefault(name, []).append((i, j))
            else:
                parts.setdefault((name, k), ([], []))[kind == "modifier"].append((i, j))
        if parts:
            # Prefix count of tokens a gap may not hold (punctuation, clause words).
            stops = [0]
            for w in words:
                stops.append(stops[-1] + (not w[0].isalnum() or w in _GAP_STOP))
            for (name, k), (anchors, modifiers) in parts.items():
                near = self._near[name, k]
                for a in anchors:
                    for m in modifiers:
                        if near.order != "modifier-first" and a[1] <= m[0] and _gap_ok(stops, a[1], m[0], near):
                            spans.append((name, a[0], m[1]))
                        if near.order != "anchor-first" and m[1] <= a[0] and _gap_ok(stops, m[1], a[0], near):
                            spans.append((name, m[0], a[1]))
        for name, rx in self._patterns:
            for mt in rx.finditer(text):
                i = bisect_left(tokens.ends, mt.start() + 1)
                j = bisect_left(tokens.starts, mt.end())
                if i < j:
                    spans.append((name, i, j))
        if excluded:
            spans = [s for s in spans if not any(a < s[2] and s[1] < b for a, b in excluded.get(s[0], ()))]
        return spans

    def mentions(self, text: str) -> list[Mention]:
        """Every label mention of *text* (already normalised with :func:`normalise_text`), in text order.

        Mentions of the vocabulary's hidden labels (see :attr:`Vocabulary.hidden`) are named ``schema/label``.
        """
        tokens = tokenize(text)
        spans = self._spans(text, tokens)
        if not spans:
            return []
        word_index = [0]
        for w in tokens.words:
            word_index.append(word_index[-1] + w[0].isalnum())
        sentence_starts = [0] + [bisect_left(tokens.starts, e) for e in sentence_ends(text)]
        triggers = self._context.find(tokens.words, word_index, sentence_starts)
        out = {
            Mention(name, tokens.starts[i], tokens.ends[j - 1], ContextMatcher.assert_span(triggers, i, j))
            for name, i, j in spans
        }
        return sorted(out, key=lambda m: (m.start, m.end, m.label))

    def label_text(self, text: str) -> dict[str, int]:
        """Labels of one report's text (all of it: no section selection): 1, 0 or -1 for every label."""
        values = dict.fromkeys([*self.vocabulary.labels, *self.vocabulary.hidden], int(Status.NEGATIVE))
        for m in self.mentions(normalise_text(text)):
            status = m.status
            if status == Status.POSITIVE or (status == Status.UNCERTAIN and values[m.label] == Status.NEGATIVE):
                values[m.label] = int(status)
        no_finding = self.vocabulary.no_finding
        if no_finding is not None:
            values[no_finding] = int(not any(values.values()))
        for name in self.vocabulary.hidden:
            del values[name]
        return values

    def label_sections(self, sections: Mapping[str, str]) -> dict[str, int]:
        """Labels of one report given as sections; only :attr:`sections` are read."""
        return self.label_text(select_text(sections, self.sections))


def _gap_ok(stops: list[int], start: int, end: int, near: Near) -> bool:
    """The tokens ``[start, end)`` between the two parts of a near pair: at most ``near.window`` words and no
    punctuation or clause word."""
    return end - start <= near.window and stops[end] == stops[start]
