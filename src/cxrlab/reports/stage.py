"""``run_label``, ``run_reference``, ``run_evaluate``: the reports stage on plain files (no workspace).

Report text is PHI. It goes from the reader to the labeler and nowhere else: the outputs hold report ids and
labels, problems name the file and the line. An unexpected error inside the labeler is reported by its type only
(its message could quote the text).
"""

from __future__ import annotations

import csv
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cxrlab.reports.exceptions import ReportError, ReportFileError
from cxrlab.reports.labeler import Labeler, UncertainPolicy
from cxrlab.reports.metrics import LabelScores, score_labels
from cxrlab.reports.readers import ReportSource
from cxrlab.reports.reference import OPENI_NIH14, read_openi_reference
from cxrlab.reports.sections import select_text
from cxrlab.runtime.files import atomic_path
from cxrlab.runtime.report import ProgressCallback, StageReport

__all__ = ["Evaluation", "LabelRun", "read_label_csv", "run_evaluate", "run_label", "run_reference"]

ID_COLUMN = "report_id"
_PROGRESS_EVERY = 64


@dataclass
class LabelRun:
    """What :func:`run_label` did: the stage report, and per label how many reports got 1, 0 and -1."""

    report: StageReport
    labels: list[str]
    counts: dict[str, Counter] = field(default_factory=dict)


def _progress(on_progress: ProgressCallback | None, done: int, total: int | None, *, last: bool = False) -> None:
    if on_progress is not None and (last or done % _PROGRESS_EVERY == 0):
        on_progress(done, total if total is not None else done)


def _write_rows(output: Path, header: Sequence[str], rows: Callable[[csv.writer], None]) -> None:
    """Write a CSV atomically (temp file, then rename): a crash leaves the old file or none, never half of one."""
    with atomic_path(output) as tmp, open(tmp, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(header)
        rows(writer)


def run_label(
    source: ReportSource,
    *,
    labeler: Labeler,
    output: Path | str,
    uncertain: UncertainPolicy | str = UncertainPolicy.KEEP,
    on_progress: ProgressCallback | None = None,
) -> LabelRun:
    """Label every report of *source* and write ``report_id,<label>...`` rows (1, 0, -1) to *output*.

    Parameters
    ----------
    source : ReportSource
        From :func:`cxrlab.reports.open_reports`.
    labeler : Labeler
        The schema's labeler.
    output : path
        CSV to write (atomically).
    uncertain : UncertainPolicy
        ``keep`` writes -1, ``positive`` 1, ``negative`` 0.
    on_progress : callable, optional
        ``on_progress(done, total)``; *total* is None-free (the count so far for a table).

    Returns
    -------
    LabelRun
        Counts ``labeled`` and ``failed``; one problem (``file:line``, reason) per report not labeled.

    Raises
    ------
    ReportError
        The input cannot be read at all, or no report could be labeled (nothing is written then).
    """
    policy = UncertainPolicy(uncertain)
    t0 = time.perf_counter()
    run = LabelRun(StageReport("reports label"), labeler.names, {n: Counter() for n in labeler.names})
    report = run.report
    output = Path(output)
    done = 0

    def rows(writer: csv.writer) -> None:
        nonlocal done
        for item in source:
            done += 1
            _progress(on_progress, done, source.total)
            if isinstance(item, ReportFileError):
                report.counts["failed"] += 1
                report.problems.append((item.where, item.reason))
                continue
            try:
                text = select_text(item.sections, labeler.sections)
                if not text.strip():
                    raise ReportFileError(item.source, f"empty report (no text in {', '.join(labeler.sections)})")
                values = labeler.label_text(text)
            except ReportFileError as exc:
                report.counts["failed"] += 1
                report.problems.append((item.source, exc.reason))
                continue
            except Exception as exc:  # noqa: BLE001 - a bug must not stop the batch nor print the text
                report.counts["failed"] += 1
                report.problems.append((item.source, f"internal error ({type(exc).__name__}); please report it"))
                continue
            out = [policy.apply(values[n]) for n in labeler.names]
            for n, v in zip(labeler.names, out, strict=True):
                run.counts[n][v] += 1
            writer.writerow([item.report_id, *out])
            report.counts["labeled"] += 1
        _progress(on_progress, done, source.total, last=True)
        if not report.counts["labeled"]:
            raise ReportError(f"{source.path}: no report could be labeled ({report.counts['failed']} failed)")

    _write_rows(output, [ID_COLUMN, *labeler.names], rows)
    report.seconds = time.perf_counter() - t0
    return run


def run_reference(
    folder: Path | str, *, output: Path | str, on_progress: ProgressCallback | None = None
) -> StageReport:
    """Write the NIH-14 reference labels of an OpenI folder (their ``<major>`` MeSH terms mapped by
    :data:`cxrlab.reports.OPENI_NIH14`) as ``report_id,<label>...`` rows of 1/0.

    Raises
    ------
    ReportError
        *folder* holds no OpenI XML file, or none could be read.
    """
    t0 = time.perf_counter()
    report = StageReport("reports reference")
    items = read_openi_reference(folder)
    labels = list(OPENI_NIH14)

    def rows(writer: csv.writer) -> None:
        for done, item in enumerate(items, start=1):
            _progress(on_progress, done, None)
            if isinstance(item, ReportFileError):
                report.counts["failed"] += 1
                report.problems.append((item.where, item.reason))
                continue
            rid, values = item
            writer.writerow([rid, *(values[n] for n in labels)])
            report.counts["written"] += 1
            report.counts.update(n for n in labels if values[n])
        if not report.counts["written"]:
            raise ReportError(f"{folder}: no OpenI report could be read")

    _write_rows(Path(output), [ID_COLUMN, *labels], rows)
    report.seconds = time.perf_counter() - t0
    return report


def read_label_csv(path: Path | str) -> tuple[list[str], dict[str, dict[str, int]]]:
    """Read a labels CSV (``report_id`` first, then one column per label, values 1, 0, -1; an empty cell is 0).

    Raises
    ------
    ReportError
        Missing file, no ``report_id`` column, a value other than 1/0/-1, or a duplicate id (with the line).
    """
    path = Path(path)
    if not path.is_file():
        raise ReportError(f"{path}: no such file")
    with open(path, newline="", encoding="utf-8-sig") as fh:
        return _read_label_rows(path, csv.reader(fh))


def _read_label_rows(path: Path, reader) -> tuple[list[str], dict[str, dict[str, int]]]:  # noqa: ANN001
    """The rows of :func:`read_label_csv` from a ``csv.reader``."""
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        raise ReportError(f"{path}: empty file") from None
    except (csv.Error, UnicodeDecodeError):
        raise ReportError(f"{path}:1: malformed header") from None
    if ID_COLUMN not in header:
        raise ReportError(f"{path}: no {ID_COLUMN!r} column")
    i_id = header.index(ID_COLUMN)
    labels = [h for i, h in enumerate(header) if i != i_id and h]
    out: dict[str, dict[str, int]] = {}
    line = reader.line_num + 1
    try:
        for row in reader:
            if row and any(c.strip() for c in row):
                out_row = _label_row(path, line, header, i_id, row)
                if out_row[0] in out:
                    raise ReportError(f"{path}:{line}: duplicate {ID_COLUMN}")
                out[out_row[0]] = out_row[1]
            line = reader.line_num + 1
    except (csv.Error, UnicodeDecodeError):
        raise ReportError(f"{path}:{line}: malformed CSV (expected UTF-8)") from None
    return labels, out


def _label_row(path: Path, line: int, header: list[str], i_id: int, row: list[str]) -> tuple[str, dict[str, int]]:
    rid = row[i_id].strip() if i_id < len(row) else ""
    if not rid:
        raise ReportError(f"{path}:{line}: empty {ID_COLUMN}")
    values = {}
    for i, h in enumerate(header):
        if i == i_id or not h:
            continue
        cell = row[i].strip() if i < len(row) else ""
        try:
            f = float(cell) if cell else 0.0
            v = int(f) if f.is_integer() else None  # "1", "1.0" (pandas writes floats), not "0.5"
        except ValueError:
            v = None
        if v not in (-1, 0, 1):
            raise ReportError(f"{path}:{line}: column {h!r} must be 1, 0 or -1")
        values[h] = v
    return rid, values


@dataclass
class Evaluation:
    """Scores plus the id bookkeeping of :func:`run_evaluate`."""

    scores: LabelScores
    missing: int
    extra: int
    labels_skipped: list[str]

    def to_dict(self) -> dict:
        """Plain values (``--format json``)."""
        return {**self.scores.to_dict(), "missing_predictions": self.missing, "extra_predictions": self.extra,
                "labels_not_scored": self.labels_skipped}


def run_evaluate(
    reference: Path | str, predicted: Path | str, *, uncertain: UncertainPolicy | str = UncertainPolicy.NEGATIVE
) -> Evaluation:
    """Score a labels CSV against a reference CSV, over the reference's reports and the labels of both files.

    A reference report without a prediction counts as all 0 (and is counted in ``missing``). *uncertain*
    says what a predicted -1 counts as: ``negative`` (default, ChestX-ray8's rule of dropping uncertain findings)
    or ``positive``.

    Raises
    ------
    ReportError
        Unreadable files, no label in common, or no report id in common.
    """
    policy = UncertainPolicy(uncertain)
    if policy is UncertainPolicy.KEEP:
        raise ReportError("an uncertain prediction must count as positive or negative to be scored")
    ref_labels, ref = read_label_csv(reference)
    pred_labels, pred = read_label_csv(predicted)
    labels = [n for n in ref_labels if n in pred_labels]
    if not labels:
        raise ReportError(f"{predicted}: no label column in common with {reference}")
    common = ref.keys() & pred.keys()
    if not common:
        raise ReportError(f"{predicted}: no {ID_COLUMN} in common with {reference}")
    scores = score_labels(ref, pred, labels, uncertain_positive=policy is UncertainPolicy.POSITIVE)
    skipped = [n for n in ref_labels if n not in labels]
    return Evaluation(scores, len(ref.keys() - pred.keys()), len(pred.keys() - ref.keys()), skipped)

