"""The report every stage returns: counts, timing and per-file problems (PHI-free)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Protocol

__all__ = ["ProgressCallback", "StageReport"]


class ProgressCallback(Protocol):
    """Called after each item: ``on_progress(done, total)``."""

    def __call__(self, done: int, total: int) -> None: ...


@dataclass
class StageReport:
    """Outcome of one stage run.

    Attributes
    ----------
    stage : str
        Stage name (``ingest``, ``deid``, ...).
    counts : Counter
        Items per outcome (``ingested``, ``duplicate``, ``quarantined``, ...).
    problems : list of (str, str)
        ``(file or image id, reason)`` for every item that failed; reasons never quote file values.
    seconds : float
        Wall time.
    """

    stage: str
    counts: Counter = field(default_factory=Counter)
    problems: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        """Number of items seen."""
        return sum(self.counts.values())
