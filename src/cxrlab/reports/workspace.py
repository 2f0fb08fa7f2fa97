"""``run_import`` and ``run_label_workspace``: the reports stage in a workspace.

A report is linked to its images by an identifier the catalog kept from the original header before
de-identification: the (0008,0050) *Accession Number* (one per order, so one per study in most RIS) or the
(0020,000D) *Study Instance UID*. The catalog keeps neither in clear, only their keyed hashes
(:func:`cxrlab.dicom.metadata.identifier_key`, computed at ingest), so the report's identifier is hashed the same
way and compared. The report's text is PHI: it is stored in the catalog (``reports``) and read back only by the
labeler; what leaves is the labels (``report_labels``, ``source = report``), the counts, and for a report that
cannot be used its id (unmatched) or its file and line (unreadable), never a word of its text.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping
from enum import StrEnum

from cxrlab.catalog.reports import (
    MATCHES,
    count_reports,
    image_keys,
    images_without_keys,
    iter_reports,
    record_label_events,
    replace_report_labels,
    set_image_keys,
    store_reports,
)
from cxrlab.catalog.workspace import Workspace
from cxrlab.dicom.io import DicomReadError, read_dataset
from cxrlab.dicom.metadata import identifier_key
from cxrlab.reports.exceptions import ReportError, ReportFileError
from cxrlab.reports.labeler import Labeler, Status, UncertainPolicy
from cxrlab.reports.readers import Report, ReportSource
from cxrlab.reports.sections import select_text
from cxrlab.reports.stage import LabelRun
from cxrlab.runtime.report import ProgressCallback, StageReport

__all__ = ["KEY_COLUMNS", "Match", "key_images", "run_import", "run_label_workspace"]

_BATCH = 500
_PROGRESS_EVERY = 64


class Match(StrEnum):
    """The identifier that links a report to its images."""

    ACCESSION = "accession"
    STUDY_UID = "study-uid"

    @property
    def kind(self) -> str:
        """The purpose of its keyed hash (:data:`cxrlab.dicom.metadata.IDENTIFIER_KINDS`)."""
        return "accession" if self is Match.ACCESSION else "study"


#: The table column read for each match unless another is named.
KEY_COLUMNS = {Match.ACCESSION: "accession", Match.STUDY_UID: "study_uid"}


def _tick(on_progress: ProgressCallback | None, done: int, total: int | None, *, last: bool = False) -> None:
    if on_progress is not None and (last or done % _PROGRESS_EVERY == 0):
        on_progress(done, total if total is not None else done)


def key_images(ws: Workspace) -> tuple[int, int]:
    """Hash the Accession Number and Study Instance UID of the images ingested before cxrlab kept them (catalog
    migration 0009), from their originals in ``raw/`` (headers only).

    Returns
    -------
    tuple of int
        Images keyed, and images whose original could not be read (left without keys).
    """
    with ws.sessions() as session:
        todo = images_without_keys(session)
    if not todo:
        return 0, 0
    secret = ws.secret_key()
    keys: dict[int, tuple[str | None, str | None]] = {}
    unreadable = 0
    for pk, raw_path in todo:
        try:
            ds = read_dataset(ws.path(raw_path), header_only=True)
        except DicomReadError:
            unreadable += 1
            continue
        keys[pk] = (identifier_key(secret, "accession", ds.get("AccessionNumber")),
                    identifier_key(secret, "study", ds.get("StudyInstanceUID")))
    with ws.transaction() as session:
        set_image_keys(session, keys)
    return len(keys), unreadable


def _note_keyed(report: StageReport, keyed: int, unreadable: int) -> None:
    if keyed:
        report.notes.append(f"{keyed} image(s) ingested before reports were supported: their identifiers were "
                            "hashed from the originals in raw/")
    if unreadable:
        report.notes.append(f"{unreadable} image(s) without a readable original in raw/ cannot be linked to a "
                            "report")


def run_import(
    ws: Workspace,
    source: ReportSource,
    *,
    match: Match | str,
    on_progress: ProgressCallback | None = None,
) -> StageReport:
    """Store the reports of *source* in the catalog and link them to the images by *match*.

    Parameters
    ----------
    ws : Workspace
        The workspace.
    source : ReportSource
        From :func:`cxrlab.reports.open_reports` with a ``key_column`` (the Accession Number or Study Instance
        UID column of a table; an OpenI file's id is its key).
    match : Match
        ``accession`` or ``study-uid``.
    on_progress : callable, optional
        ``on_progress(done, total)``.

    Returns
    -------
    StageReport
        Counts ``imported`` (new), ``updated`` (text or identifier changed), ``unchanged`` (a re-import),
        ``failed``, ``matched`` and ``unmatched`` (reports with and without an image in the catalog) and
        ``images_linked``; ``skipped`` lists each unmatched report by its id, ``problems`` each failed record by
        file and line. A re-import of the same file changes nothing.

    Raises
    ------
    ReportError
        *source* has no key column, or cannot be read at all.
    """
    match = Match(match)
    if source.key_column is None:
        raise ReportError(f"{source.path}: open the reports with the column of the {match.value} (key_column)")
    t0 = time.perf_counter()
    report = StageReport("reports import")
    _note_keyed(report, *key_images(ws))
    secret = ws.secret_key()
    with ws.sessions() as session:
        images = image_keys(session, match.value)
    linked: set[int] = set()
    batch: list[dict] = []

    def flush() -> None:
        if batch:
            with ws.transaction() as session:
                report.counts.update(store_reports(session, batch))
            batch.clear()

    done = 0
    for item in source:
        done += 1
        _tick(on_progress, done, source.total)
        row = _import_row(item, secret, match, report)
        if row is None:
            continue
        batch.append(row)
        pks = images.get(row["match_key"], [])
        if pks:
            report.counts["matched"] += 1
            linked.update(pks)
        else:
            report.counts["unmatched"] += 1
            report.skipped.append((item.report_id, "unmatched"))
        if len(batch) >= _BATCH:
            flush()
    flush()
    _tick(on_progress, done, source.total, last=True)
    report.counts["images_linked"] = len(linked)
    report.seconds = time.perf_counter() - t0
    return report


def _import_row(item: Report | ReportFileError, secret: bytes, match: Match, report: StageReport) -> dict | None:
    """The ``reports`` row of one item, or None (and a problem) for a record that cannot be stored."""
    if isinstance(item, ReportFileError):
        report.counts["failed"] += 1
        report.problems.append((item.where, item.reason))
        return None
    if not any(text.strip() for text in item.sections.values()):
        report.counts["failed"] += 1
        report.problems.append((item.source, "empty report (no text)"))
        return None
    return {
        "report_key": identifier_key(secret, "report", item.report_id),
        "match": match.value,
        "match_key": identifier_key(secret, match.kind, item.key),
        "sections": dict(item.sections),
        "source": item.source,
    }


def _combine(old: dict[str, int] | None, new: Mapping[str, int], no_finding: str | None) -> dict[str, int]:
    """The labels of an image from two of its reports: a label is 1 when one report says so, else -1 when one is
    uncertain, else 0 (the mention aggregation of :mod:`cxrlab.reports.labeler`, over reports); "No finding" is
    1 only when every report says so."""
    if old is None:
        return dict(new)
    out = {}
    for name, value in new.items():
        pair = (old[name], value)
        if name == no_finding:
            out[name] = min(pair)
        else:
            out[name] = next((int(s) for s in (Status.POSITIVE, Status.UNCERTAIN) if s in pair), int(Status.NEGATIVE))
    return out


def run_label_workspace(
    ws: Workspace,
    *,
    labeler: Labeler,
    uncertain: UncertainPolicy | str = UncertainPolicy.KEEP,
    on_progress: ProgressCallback | None = None,
) -> LabelRun:
    """Label every imported report and store the labels of its images (``report_labels``), replacing the labels
    of an earlier run.

    An image linked to several reports (an addendum, two orders of one study) gets their combination: a label
    is 1 when one report says so, else -1 when one is uncertain, else 0. *uncertain* then says what -1 becomes.
    The readers' labels and the consensus are not touched, and no image changes state.

    Returns
    -------
    LabelRun
        ``counts`` per label over the images; the report counts ``labeled``, ``unmatched`` (no image in the
        catalog; listed by the file and line the report was imported from), ``failed`` (no text in the sections
        read) and ``images_labeled``.

    Raises
    ------
    ReportError
        No report was imported.
    """
    policy = UncertainPolicy(uncertain)
    t0 = time.perf_counter()
    run = LabelRun(StageReport("reports label"), labeler.names, {n: Counter() for n in labeler.names})
    report = run.report
    no_finding = labeler.vocabulary.no_finding
    values: dict[int, dict[str, int]] = {}
    per_image: Counter = Counter()
    with ws.sessions() as session:
        total = count_reports(session)
        if not total:
            raise ReportError("no report in the catalog: run `cxrlab reports import` first")
        images = {m: image_keys(session, m) for m in MATCHES}
        done = 0
        for stored in iter_reports(session):
            done += 1
            _tick(on_progress, done, total)
            pks = images[stored.match].get(stored.match_key)
            if not pks:
                report.counts["unmatched"] += 1
                report.skipped.append((stored.source, "unmatched"))
                continue
            labels = _label_one(labeler, stored.sections, stored.source, report)
            if labels is None:
                continue
            report.counts["labeled"] += 1
            for pk in pks:
                values[pk] = _combine(values.get(pk), labels, no_finding)
                per_image[pk] += 1
        _tick(on_progress, done, total, last=True)
    schema = labeler.vocabulary.schema
    rows = []
    for pk in sorted(values):
        for name in labeler.names:
            value = policy.apply(values[pk][name])
            run.counts[name][value] += 1
            rows.append({"image_pk": pk, "schema": schema, "label": name, "value": value, "reports": per_image[pk]})
    with ws.transaction() as session:
        replace_report_labels(session, rows)
        record_label_events(session, per_image, schema=schema)
    report.counts["images_labeled"] = len(values)
    report.seconds = time.perf_counter() - t0
    return run


def _label_one(labeler: Labeler, sections: Mapping[str, str], source: str, report: StageReport) -> dict | None:
    """The labels of one stored report, or None (and a text-free problem)."""
    try:
        text = select_text(sections, labeler.sections)
        if not text.strip():
            raise ReportFileError(source, f"empty report (no text in {', '.join(labeler.sections)})")
        return labeler.label_text(text)
    except ReportFileError as exc:
        report.problems.append((source, exc.reason))
    except Exception as exc:  # noqa: BLE001 - a bug must not stop the batch nor print the text
        report.problems.append((source, f"internal error ({type(exc).__name__}); please report it"))
    report.counts["failed"] += 1
    return None
