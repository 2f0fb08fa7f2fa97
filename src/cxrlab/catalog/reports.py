"""The repository of radiology reports and the image labels mined from them (``source = report``).

Reports (``reports``) are stored with their text by section, which is PHI: it is read back only by
:func:`iter_reports` for the labeler, and no other function here returns it. A report is linked to its images by
the keyed hash of an identifier, never by the identifier itself: ``match_key`` against ``images.accession_key``
(match ``accession``) or ``images.study_key`` (match ``study-uid``). The labels (``report_labels``) are a label
source of their own: the readers' and consensus tables (:mod:`cxrlab.catalog.release`) never see them.

Every function takes an open session and never commits: run it inside ``transaction(...)``
(:func:`cxrlab.catalog.db.transaction`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
from sqlalchemy import delete, func, insert, or_, select, update
from sqlalchemy.orm import Session

from cxrlab.catalog.models import Event, Image, ImageState, RadiologyReport, ReportLabel
from cxrlab.catalog.release import CHUNK, release_images

__all__ = [
    "MATCHES",
    "REPORT_RELEASE_STATES",
    "ReportLabelRows",
    "StoredReport",
    "count_reports",
    "image_keys",
    "images_without_keys",
    "iter_reports",
    "load_report_labels",
    "record_label_events",
    "replace_report_labels",
    "set_image_keys",
    "store_reports",
]

#: How a report finds its images: ``accession`` (0008,0050) *Accession Number*, ``study-uid`` (0020,000D)
#: *Study Instance UID*; each is compared through its keyed hash column of ``images``.
MATCHES = {"accession": Image.accession_key, "study-uid": Image.study_key}

#: Image states whose report labels a release may show: past the filter, never an image held for burned-in
#: text or filtered out (docs, "Image states").
REPORT_RELEASE_STATES = (ImageState.ACCEPTED, ImageState.ASSIGNED, ImageState.LABELED, ImageState.REVIEWED,
                         ImageState.RELEASED)


@dataclass(frozen=True)
class StoredReport:
    """A report as the labeler reads it back from the catalog: ``sections`` is PHI (never print it; the repr
    leaves it out)."""

    pk: int
    match: str
    match_key: str
    source: str
    sections: Mapping[str, str] = field(repr=False)


def _match_column(match: str):  # noqa: ANN202 - an InstrumentedAttribute
    try:
        return MATCHES[match]
    except KeyError:
        raise ValueError(f"unknown report match {match!r} (one of {', '.join(MATCHES)})") from None


def images_without_keys(session: Session) -> list[tuple[int, str]]:
    """``(images.id, raw_path)`` of the images whose identifiers were never hashed: ingested before migration
    0009 from an original that the workspace keeps in ``raw/``.

    Images imported from a public release (their ``raw_path`` is the de-identified file itself) are left out:
    their original identifiers are gone.
    """
    return [
        (pk, path) for pk, path in session.execute(
            select(Image.id, Image.raw_path)
            .where(Image.accession_key.is_(None), Image.study_key.is_(None), Image.raw_path != "",
                   or_(Image.deid_path.is_(None), Image.deid_path != Image.raw_path))
            .order_by(Image.id)
        )
    ]


def set_image_keys(session: Session, keys: Mapping[int, tuple[str | None, str | None]]) -> None:
    """Store ``images.id -> (accession_key, study_key)``."""
    for pk, (accession, study) in keys.items():
        session.execute(update(Image).where(Image.id == pk).values(accession_key=accession, study_key=study))


def image_keys(session: Session, match: str) -> dict[str, list[int]]:
    """Key -> the ``images.id`` that carry it (a study's images share one), for *match* ``accession`` or
    ``study-uid``.

    Raises
    ------
    ValueError
        Unknown *match*.
    """
    column = _match_column(match)
    out: dict[str, list[int]] = {}
    for pk, key in session.execute(select(Image.id, column).where(column.is_not(None)).order_by(Image.id)):
        out.setdefault(key, []).append(pk)
    return out


def store_reports(session: Session, rows: Sequence[Mapping]) -> Counter:
    """Insert or update reports by ``report_key`` (a re-import of the same report changes nothing).

    Parameters
    ----------
    rows : sequence of mapping
        ``report_key, match, match_key, sections, source`` (at most one row per ``report_key``).

    Returns
    -------
    Counter
        ``imported`` (new), ``updated`` (other text or link) and ``unchanged``.
    """
    counts: Counter = Counter()
    for start in range(0, len(rows), CHUNK):
        chunk = rows[start:start + CHUNK]
        known = {r.report_key: r for r in session.scalars(
            select(RadiologyReport).where(RadiologyReport.report_key.in_([row["report_key"] for row in chunk])))}
        for row in chunk:
            old = known.get(row["report_key"])
            if old is None:
                session.add(RadiologyReport(**row))
                counts["imported"] += 1
                continue
            changed = (old.match, old.match_key, old.sections) != (row["match"], row["match_key"], row["sections"])
            counts["updated" if changed else "unchanged"] += 1
            if changed or old.source != row["source"]:
                old.match, old.match_key, old.sections, old.source = (
                    row["match"], row["match_key"], dict(row["sections"]), row["source"])
    session.flush()
    return counts


def count_reports(session: Session) -> int:
    """Number of stored reports."""
    return session.scalar(select(func.count(RadiologyReport.id))) or 0


def iter_reports(session: Session) -> Iterator[StoredReport]:
    """Every stored report in import order, read in pages (the text of a large archive never sits in memory
    at once)."""
    last = 0
    while True:
        page = session.execute(
            select(RadiologyReport.id, RadiologyReport.match, RadiologyReport.match_key, RadiologyReport.source,
                   RadiologyReport.sections)
            .where(RadiologyReport.id > last).order_by(RadiologyReport.id).limit(CHUNK)
        ).all()
        if not page:
            return
        for row in page:
            yield StoredReport(*row)
        last = page[-1][0]


def replace_report_labels(session: Session, rows: Iterable[Mapping]) -> int:
    """Replace every report label by *rows* (``image_pk, schema, label, value, reports``); returns the count.

    Readers' labels and the consensus are not touched.
    """
    session.execute(delete(ReportLabel))
    now = datetime.now(UTC)
    batch: list[dict] = []
    stored = 0
    for row in rows:
        batch.append({**row, "labeled_at": now})
        if len(batch) == CHUNK:
            session.execute(insert(ReportLabel), batch)
            stored, batch = stored + len(batch), []
    if batch:
        session.execute(insert(ReportLabel), batch)
        stored += len(batch)
    return stored


def record_label_events(session: Session, reports_per_image: Mapping[int, int], *, schema: str) -> None:
    """One ``events`` row per labeled image (stage ``reports``, action ``labeled``): the vocabulary and how many
    reports its labels came from."""
    now = datetime.now(UTC)
    rows = [{"image_pk": pk, "stage": "reports", "action": "labeled", "author": "system", "at": now,
             "detail": {"schema": schema, "reports": n}} for pk, n in sorted(reports_per_image.items())]
    for start in range(0, len(rows), CHUNK):
        session.execute(insert(Event), rows[start:start + CHUNK])


@dataclass
class ReportLabelRows:
    """The report labels of the images a release may show.

    Attributes
    ----------
    images : DataFrame
        The images (columns of :func:`cxrlab.catalog.release.release_images`), by ``image_id``.
    labels : DataFrame
        ``image_id, schema, label, value`` (1, 0 or -1), one row per image and label.
    withheld : int
        Images with report labels that a release may not show yet (not past the filter, or never
        de-identified).
    """

    images: pd.DataFrame
    labels: pd.DataFrame
    withheld: int


def load_report_labels(
    session: Session, *, states: Sequence[ImageState] = REPORT_RELEASE_STATES, root: Path | None = None
) -> ReportLabelRows:
    """The report labels of the images in *states* that have an ``image_id`` (see :class:`ReportLabelRows`)."""
    labeled = select(ReportLabel.image_pk).distinct()
    pk_to_id, images = release_images(session, states=states, root=root, where=Image.id.in_(labeled))
    labels = pd.DataFrame(
        session.execute(
            select(Image.image_id, ReportLabel.schema, ReportLabel.label, ReportLabel.value)
            .join(Image, Image.id == ReportLabel.image_pk)
            .where(Image.state.in_(states), Image.image_id.is_not(None))
            .order_by(ReportLabel.image_pk, ReportLabel.id)
        ).all(),
        columns=["image_id", "schema", "label", "value"],
    )
    total = session.scalar(select(func.count()).select_from(labeled.subquery())) or 0
    images = images.sort_values("image_id").reset_index(drop=True)
    return ReportLabelRows(images, labels, total - len(pk_to_id))
