"""What to collect: the query filters, and C-FIND at STUDY, SERIES and IMAGE level (PS3.4 Annex C, Study Root).

The study level asks the peer to match Study Date and Modalities in Study (both standard keys: a peer that does not
support an optional key ignores it, PS3.4 C.2.2.1); the series level returns Modality and Body Part Examined,
which are filtered here, so the result is the same whatever the peer supports. The image level lists the SOP
Instance UIDs, so a rerun knows what is missing.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from pydicom.dataset import Dataset
from pynetdicom.association import Association
from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelFind

from cxrlab.collect.peer import Peer, PeerError, status_text
from cxrlab.errors import CxrlabError

__all__ = ["NO_BODY_PART", "FoundSeries", "FoundStudy", "QueryFilters", "find_studies", "parse_date_range"]

#: C-FIND pending statuses (PS3.4 Table C.4-1): a match follows.
_PENDING = (0xFF00, 0xFF01)
_DATE_RANGE = re.compile(r"^(\d{8})?(-)?(\d{8})?$")


def parse_date_range(text: str) -> str:
    """Check a DICOM date or date range (PS3.4 C.2.2.2.5: ``YYYYMMDD``, ``A-B``, ``A-``, ``-B``) and return it.

    Raises
    ------
    CxrlabError
        Not a date or range, an impossible date, or a range that ends before it starts.
    """
    m = _DATE_RANGE.match(text.strip())
    if not text.strip() or m is None or (m.group(2) is None and m.group(3)) or text.strip() == "-":
        raise CxrlabError(f"invalid study date {text!r}: use YYYYMMDD, YYYYMMDD-YYYYMMDD, YYYYMMDD- or -YYYYMMDD")
    dates = []
    for part in (m.group(1), m.group(3)):
        if part:
            try:
                dates.append(dt.date(int(part[:4]), int(part[4:6]), int(part[6:])))
            except ValueError:
                raise CxrlabError(f"invalid study date {part!r}: no such day") from None
    if len(dates) == 2 and dates[1] < dates[0]:
        raise CxrlabError(f"invalid study date range {text!r}: it ends before it starts")
    return text.strip()


@dataclass(frozen=True)
class QueryFilters:
    """Which studies and series to collect.

    Attributes
    ----------
    modalities : tuple of str
        Series modalities (0008,0060) to keep; empty keeps every modality.
    study_date : str, optional
        Study Date (0008,0020) or range, as :func:`parse_date_range` accepts.
    body_part : str, optional
        Body Part Examined (0018,0015) of the series to keep (case-insensitive); a series without one is not kept.
    limit : int, optional
        Keep the first *limit* matching studies (by study date, then UID).
    """

    modalities: tuple[str, ...] = ("CR", "DX")
    study_date: str | None = None
    body_part: str | None = None
    limit: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "modalities", tuple(m.strip().upper() for m in self.modalities if m.strip()))
        if self.study_date:
            parse_date_range(self.study_date)
        if self.limit is not None and self.limit < 1:
            raise CxrlabError(f"invalid limit {self.limit}: at least 1")

    def keeps_series(self, modality: str, body_part: str) -> bool:
        """Whether a series with this Modality and Body Part Examined is collected."""
        if self.modalities and modality.strip().upper() not in self.modalities:
            return False
        return not self.body_part or body_part.strip().upper() == self.body_part.strip().upper()

    def left_out_for_body_part(self, modality: str, body_part: str) -> bool:
        """Whether a series is left out only because it has no Body Part Examined."""
        return bool(self.body_part) and not body_part.strip() and self.keeps_series(modality, self.body_part)


@dataclass
class FoundSeries:
    """A series that matched, and its instances' SOP Instance UIDs."""

    uid: str
    modality: str
    instances: list[str] = field(default_factory=list)


@dataclass
class FoundStudy:
    """A study that matched: its date (for ordering) and its matching series."""

    uid: str
    date: str
    series: list[FoundSeries] = field(default_factory=list)

    @property
    def n_instances(self) -> int:
        return sum(len(s.instances) for s in self.series)


def _find(assoc: Association, peer: Peer, query: Dataset) -> Iterator[Dataset]:
    """Yield the matches of one C-FIND; raise :class:`PeerError` on a failure status or a lost association."""
    model = StudyRootQueryRetrieveInformationModelFind
    for status, identifier in assoc.send_c_find(query, model):
        code = status.get("Status") if status else None
        if code is None:
            raise peer.lost(f"C-FIND at {query.QueryRetrieveLevel} level")
        if code in _PENDING:
            if identifier is not None:
                yield identifier
        elif code != 0x0000:
            raise PeerError(f"{peer}: C-FIND at {query.QueryRetrieveLevel} level failed with status "
                            f"{status_text(code)}")


def _text(ds: Dataset, keyword: str) -> str:
    value = ds.get(keyword)
    return "" if value is None else str(value).strip()


#: The count a series left out for want of Body Part Examined goes to (a PACS that does not return the key).
NO_BODY_PART = "series left out: no Body Part Examined"


def find_studies(
    assoc: Association, peer: Peer, filters: QueryFilters, *, known: Sequence[str] = (),
    counts: Counter | None = None,
) -> tuple[list[FoundStudy], list[str]]:
    """C-FIND the studies matching *filters*, then their series and instances.

    Parameters
    ----------
    known : sequence of str
        Study Instance UIDs already in the catalog for this peer: they are matched at study level, but their series
        and instances are not asked again (a rerun's query is one C-FIND).
    counts : Counter, optional
        Gets :data:`NO_BODY_PART` for each series left out because the PACS gave no Body Part Examined
        (0018,0015) while *filters* ask for one (an optional key, PS3.4 C.6.2.1.2: not every PACS returns it).

    Returns
    -------
    new : list of FoundStudy
        The matching studies not in *known*, with their series and instances, sorted by date then UID.
    again : list of str
        The matching studies in *known*.
    """
    query = Dataset()
    query.QueryRetrieveLevel = "STUDY"
    query.StudyInstanceUID = ""
    query.StudyDate = filters.study_date or ""
    query.ModalitiesInStudy = "\\".join(filters.modalities) if filters.modalities else ""
    candidates = sorted({(_text(m, "StudyDate"), _text(m, "StudyInstanceUID")) for m in _find(assoc, peer, query)
                         if _text(m, "StudyInstanceUID")})
    known_set = set(known)
    new: list[FoundStudy] = []
    again: list[str] = []
    for date, uid in candidates:
        if filters.limit is not None and len(new) + len(again) >= filters.limit:
            break
        if uid in known_set:
            again.append(uid)
            continue
        study = FoundStudy(uid, date)
        for series in _series(assoc, peer, uid, filters, counts):
            series.instances = _instances(assoc, peer, uid, series.uid)
            if series.instances:
                study.series.append(series)
        if study.series:
            new.append(study)
    return new, again


def _series(
    assoc: Association, peer: Peer, study_uid: str, filters: QueryFilters, counts: Counter | None
) -> list[FoundSeries]:
    query = Dataset()
    query.QueryRetrieveLevel = "SERIES"
    query.StudyInstanceUID = study_uid
    query.SeriesInstanceUID = ""
    query.Modality = ""
    query.BodyPartExamined = ""
    found = []
    for m in _find(assoc, peer, query):
        uid = _text(m, "SeriesInstanceUID")
        if not uid:
            continue
        if filters.keeps_series(_text(m, "Modality"), _text(m, "BodyPartExamined")):
            found.append(FoundSeries(uid, _text(m, "Modality")))
        elif counts is not None and filters.left_out_for_body_part(_text(m, "Modality"), _text(m, "BodyPartExamined")):
            counts[NO_BODY_PART] += 1
    return sorted(found, key=lambda s: s.uid)


def _instances(assoc: Association, peer: Peer, study_uid: str, series_uid: str) -> list[str]:
    query = Dataset()
    query.QueryRetrieveLevel = "IMAGE"
    query.StudyInstanceUID = study_uid
    query.SeriesInstanceUID = series_uid
    query.SOPInstanceUID = ""
    return sorted({_text(m, "SOPInstanceUID") for m in _find(assoc, peer, query)} - {""})
