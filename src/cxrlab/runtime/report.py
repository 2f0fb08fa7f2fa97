"""The report every stage returns: counts, timing and per-file problems (PHI-free)."""

from __future__ import annotations

import csv
import io
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from cxrlab.runtime.files import atomic_write_text

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
    notes : list of str
        What the user should know about the run as a whole (a step that was left out, nothing to do).
    skipped : list of (str, str)
        ``(file or image id, outcome)`` for every item passed over on purpose (a duplicate, a file that is not
        DICOM), for ``--verbose`` and ``--report``.
    """

    stage: str
    counts: Counter = field(default_factory=Counter)
    problems: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)

    @property
    def total(self) -> int:
        """Number of items seen."""
        return sum(self.counts.values())

    def write_csv(self, path: Path | str) -> None:
        """Write the items that were passed over or failed as CSV (``item,outcome,reason``), atomically.

        Items are file paths or image ids, reasons the PHI-free ones of :attr:`problems`; failed items have the
        outcome ``problem``.
        """
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(["item", "outcome", "reason"])
        writer.writerows([item, outcome, ""] for item, outcome in self.skipped)
        writer.writerows([item, "problem", reason] for item, reason in self.problems)
        atomic_write_text(path, buf.getvalue())
