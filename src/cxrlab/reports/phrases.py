"""Tokens and a phrase trie: find many phrases in a text in one pass over its words.

Hand-written because the phrase lists are small data files and the labeler must stay fast without spaCy: one
alternation regex of a few hundred phrases is tried at every character (about 100 reports a second here), while
a trie walk starts only at word starts (spaCy's ``PhraseMatcher`` and the FlashText algorithm, Singh 2017, work the
same way).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Hashable
from dataclasses import dataclass

__all__ = ["PhraseTrie", "Tokens", "expand_term", "tokenize"]

# A word (letters/digits, with an inner apostrophe: "can't") or one punctuation mark. A hyphen is a space:
# "mass-like" = "mass like", "follow-up" = "follow up".
_TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)?|[^\sa-z0-9\-]")


@dataclass(frozen=True)
class Tokens:
    """The tokens of a normalised text: words and punctuation, with their character spans."""

    words: list[str]
    starts: list[int]
    ends: list[int]

    def __len__(self) -> int:
        return len(self.words)


def tokenize(text: str) -> Tokens:
    """Split lower-case *text* into tokens (words and single punctuation marks; hyphens dropped)."""
    words, starts, ends = [], [], []
    for m in _TOKEN.finditer(text):
        words.append(m.group())
        starts.append(m.start())
        ends.append(m.end())
    return Tokens(words, starts, ends)


def expand_term(term: str) -> list[tuple[str, ...]]:
    """The token sequences a vocabulary term stands for: ``"effusion(s)"`` -> ``effusion``, ``effusions``.

    Raises
    ------
    ValueError
        An empty term.
    """
    pieces = re.split(r"\(([^()\s]*)\)", term.strip().lower())
    literal, optional = pieces[0::2], pieces[1::2]
    out = []
    for choice in itertools.product(*[("", opt) for opt in optional]):
        text = "".join(itertools.chain.from_iterable(itertools.zip_longest(literal, choice, fillvalue="")))
        words = tuple(tokenize(text).words)
        if words and words not in out:
            out.append(words)
    if not out:
        raise ValueError(f"empty term {term!r}")
    return out


class PhraseTrie:
    """Phrases (token tuples) with payloads, matched on token lists."""

    def __init__(self) -> None:
        self._root: dict = {}

    def add(self, term: str, payload: Hashable) -> None:
        """Add every expansion of *term* (see :func:`expand_term`) with *payload*."""
        for words in expand_term(term):
            node = self._root
            for w in words:
                node = node.setdefault(w, {})
            node.setdefault(None, []).append(payload)

    def all_matches(self, words: list[str]) -> list[tuple[int, int, Hashable]]:
        """Every ``(first token, end token, payload)`` match, overlapping ones included."""
        out = []
        root, n = self._root, len(words)
        for i in range(n):
            node = root.get(words[i])
            j = i + 1
            while node is not None:
                for payload in node.get(None, ()):
                    out.append((i, j, payload))
                if j >= n:
                    break
                node = node.get(words[j])
                j += 1
        return out

    def longest_matches(self, words: list[str]) -> list[tuple[int, int, list]]:
        """Leftmost-longest matches that do not overlap: ``(first token, end token, payloads)``."""
        out = []
        root, n, i = self._root, len(words), 0
        while i < n:
            node, j, best = root.get(words[i]), i + 1, None
            while node is not None:
                if None in node:
                    best = (i, j, node[None])
                if j >= n:
                    break
                node = node.get(words[j])
                j += 1
            if best is None:
                i += 1
            else:
                out.append(best)
                i = best[1]
        return out
