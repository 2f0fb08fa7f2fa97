"""Scores of report labels against reference labels: per-label precision, recall and F1, micro and macro."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

__all__ = ["NIH8", "LabelScore", "LabelScores", "score_labels"]

#: The eight labels of ChestX-ray8 (Wang et al., CVPR 2017, Table 1), the first release of ChestX-ray14, over
#: which the NIH labeler was measured on OpenI.
NIH8 = ("Atelectasis", "Cardiomegaly", "Effusion", "Infiltration", "Mass", "Nodule", "Pneumonia", "Pneumothorax")


def _ratio(a: int, b: int) -> float | None:
    return a / b if b else None


@dataclass(frozen=True)
class LabelScore:
    """Counts and scores of one label (or of a micro average): true/false positives, false negatives."""

    tp: int
    fp: int
    fn: int

    @property
    def support(self) -> int:
        """Positive reference reports."""
        return self.tp + self.fn

    @property
    def precision(self) -> float | None:
        """TP / (TP + FP); None without any positive prediction."""
        return _ratio(self.tp, self.tp + self.fp)

    @property
    def recall(self) -> float | None:
        """TP / (TP + FN); None without any positive reference."""
        return _ratio(self.tp, self.tp + self.fn)

    @property
    def f1(self) -> float | None:
        """2 TP / (2 TP + FP + FN); None when both are empty."""
        return _ratio(2 * self.tp, 2 * self.tp + self.fp + self.fn)

    def to_dict(self) -> dict:
        """Counts and scores as plain values."""
        return {"tp": self.tp, "fp": self.fp, "fn": self.fn, "support": self.support,
                "precision": self.precision, "recall": self.recall, "f1": self.f1}


@dataclass(frozen=True)
class LabelScores:
    """Per-label scores, and their averages over every label and over named groups (e.g. :data:`NIH8`)."""

    per_label: dict[str, LabelScore]
    reports: int
    groups: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def micro(self, labels: Sequence[str] | None = None) -> LabelScore:
        """Counts summed over *labels* (default all)."""
        scores = [self.per_label[n] for n in (labels or self.per_label)]
        return LabelScore(sum(s.tp for s in scores), sum(s.fp for s in scores), sum(s.fn for s in scores))

    def macro(self, labels: Sequence[str] | None = None) -> dict[str, float | None]:
        """Unweighted means of precision, recall and F1 over *labels* (default all) where each is defined."""
        scores = [self.per_label[n] for n in (labels or self.per_label)]
        out: dict[str, float | None] = {}
        for key in ("precision", "recall", "f1"):
            values = [v for s in scores if (v := getattr(s, key)) is not None]
            out[key] = sum(values) / len(values) if values else None
        return out

    def to_dict(self) -> dict:
        """Everything as plain values (the ``--format json`` output)."""
        averages = {"all": list(self.per_label), **self.groups}
        return {
            "reports": self.reports,
            "per_label": {n: s.to_dict() for n, s in self.per_label.items()},
            "micro": {g: self.micro(labels).to_dict() for g, labels in averages.items()},
            "macro": {g: self.macro(labels) for g, labels in averages.items()},
        }


def score_labels(
    reference: Mapping[str, Mapping[str, int]],
    predicted: Mapping[str, Mapping[str, int]],
    labels: Sequence[str],
    *,
    uncertain_positive: bool = False,
) -> LabelScores:
    """Score *predicted* against *reference* over the report ids of *reference*.

    Parameters
    ----------
    reference, predicted : mapping of report id to (label -> 1/0/-1)
        A report id of *reference* missing from *predicted* counts as all labels 0.
    labels : sequence of str
        The labels to score.
    uncertain_positive : bool
        Count an uncertain prediction (-1) as positive (default: as negative, the ChestX-ray8 rule of dropping
        uncertain findings). A reference -1 is always positive.
    """
    counts = {n: [0, 0, 0] for n in labels}
    for rid, ref in reference.items():
        pred = predicted.get(rid, {})
        for n in labels:
            r = ref.get(n, 0) != 0
            p = pred.get(n, 0)
            p = p == 1 or (uncertain_positive and p == -1)
            c = counts[n]
            if p and r:
                c[0] += 1
            elif p:
                c[1] += 1
            elif r:
                c[2] += 1
    groups = {"NIH-8": NIH8} if all(n in counts for n in NIH8) and len(counts) > len(NIH8) else {}
    return LabelScores({n: LabelScore(*c) for n, c in counts.items()}, len(reference), groups)
