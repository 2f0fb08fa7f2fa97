"""NegEx/ConText-style assertion of findings: is a mention negated, uncertain, hypothetical or asserted?

Hand-written on purpose: medspacy's ConText (spaCy + PyRuSH) labels about 80 OpenI reports a second on one core
and pins spaCy < 3.8; negspacy has no uncertainty category; the labeler must do over 1,000 reports a second and
load nothing at run time (bench/reports.py compares them). The algorithm is NegEx's (Chapman et al., "A simple
algorithm for identifying negated findings and diseases in discharge summaries", J Biomed Inform 2001) with
ConText's categories and scope rules (Harkema et al., "ConText: an algorithm for determining negation,
experiencer, and temporal status from clinical reports", J Biomed Inform 2009): a trigger modifies the findings
after it (forward) or before it (backward) up to a window of words, a termination term or the end of the
sentence, whichever comes first; pseudo-triggers ("no change") are no trigger; of several triggers whose scope
holds a finding, the nearest wins.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from dataclasses import dataclass

from cxrlab.reports.phrases import PhraseTrie
from cxrlab.reports.vocabulary import ContextRules

__all__ = ["ContextMatcher", "Trigger"]

_TERMINATE = ("terminate", "")


@dataclass(frozen=True)
class Trigger:
    """One trigger in a token list: tokens ``[start, end)``, category (``negated``, ``uncertain``,
    ``hypothetical``), direction, and the tokens ``[scope_start, scope_end)`` it modifies."""

    start: int
    end: int
    category: str
    direction: str
    scope_start: int
    scope_end: int


class ContextMatcher:
    """Find the triggers of a :class:`ContextRules` in a token list and tell what they say of a span."""

    def __init__(self, rules: ContextRules) -> None:
        self.rules = rules
        self._trie = PhraseTrie()
        for phrase in rules.pseudo:
            self._trie.add(phrase, None)
        for phrase, meaning in rules.triggers.items():
            self._trie.add(phrase, meaning)
        for phrase in rules.terminate:
            self._trie.add(phrase, _TERMINATE)

    def find(self, words: list[str], word_index: list[int], sentence_starts: list[int]) -> list[Trigger]:
        """Every trigger of a token list, with its scope.

        Parameters
        ----------
        words : list of str
            Tokens (:func:`cxrlab.reports.phrases.tokenize`).
        word_index : list of int
            For each token, the number of word tokens before it, plus a last item for the end (windows count
            words, not punctuation).
        sentence_starts : list of int
            Sorted first tokens of the sentences (0 included); a scope never crosses a sentence.
        """
        found, stops = [], []
        # Leftmost-longest, so "no change" (pseudo) hides "no" and "cannot be excluded" hides "not".
        for start, end, payloads in self._trie.longest_matches(words):
            meaning = payloads[-1]
            if meaning is None:
                continue
            if meaning == _TERMINATE:
                stops.append(start)
                stops.append(end)
            else:
                found.append((start, end, *meaning))
        n = len(words)
        fwd, bwd = self.rules.forward_window, self.rules.backward_window
        out = []
        for start, end, category, direction in found:
            k = bisect_right(sentence_starts, start)
            sent_start = sentence_starts[k - 1] if k else 0
            sent_end = sentence_starts[k] if k < len(sentence_starts) else n
            scope_start, scope_end = start, end
            if direction in ("forward", "both"):
                j = bisect_left(stops, end)
                limit = bisect_right(word_index, word_index[end] + fwd - 1)  # first token past the window
                scope_end = min(sent_end, stops[j] if j < len(stops) else n, limit)
            if direction in ("backward", "both"):
                j = bisect_right(stops, start) - 1
                limit = bisect_left(word_index, word_index[start] - bwd)
                scope_start = max(sent_start, stops[j] if j >= 0 else 0, limit)
            out.append(Trigger(start, end, category, direction, scope_start, scope_end))
        return out

    @staticmethod
    def assert_span(triggers: list[Trigger], start: int, end: int) -> str | None:
        """The category of the nearest trigger whose scope holds the tokens ``[start, end)`` (None: asserted)."""
        best, best_distance = None, None
        for t in triggers:
            if t.start >= start and t.end <= end:
                distance = 0  # inside the mention: "heart is not enlarged"
            elif t.end <= start < t.scope_end:
                distance = start - t.end
            elif t.scope_start < end <= t.start:
                distance = t.start - end
            else:
                continue
            if best_distance is None or distance < best_distance:
                best, best_distance = t.category, distance
        return best
