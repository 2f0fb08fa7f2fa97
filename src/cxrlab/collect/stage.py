"""The collect stage: query a PACS or a DICOMweb server, retrieve what is missing, or listen for C-STORE.

Resumable (the design notes, "Stage contract"): the query's answer is kept in the catalog (``collect_studies``,
``collect_instances``) with each study's progress, and every received instance is recorded through the spool of
:class:`~cxrlab.collect.scp.Receiver`. A rerun after ``kill -9`` first records what the killed run had received,
asks the peer which studies match (one C-FIND), and retrieves only the instances still missing: nothing lost,
nothing twice.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from typing import TypeVar

from pynetdicom import AE
from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelFind
from sqlalchemy import select, update

from cxrlab.catalog.models import CollectInstance, CollectState, CollectStudy, Image
from cxrlab.catalog.workspace import Workspace
from cxrlab.collect.peer import Peer, PeerLostError
from cxrlab.collect.query import FoundStudy, QueryFilters, _find, find_studies
from cxrlab.collect.retrieve import RetrieveOutcome, Retriever
from cxrlab.collect.scp import Receiver, start_store_scp
from cxrlab.runtime.executor import Executor
from cxrlab.runtime.report import ProgressCallback, StageReport

log = logging.getLogger(__name__)
_T = TypeVar("_T")

__all__ = ["StudyPlan", "collect_into", "record_query", "run_collect_pacs", "run_listen", "settle_study", "study_plans"]


@dataclass
class StudyPlan:
    """What is still to retrieve of one study: ``series`` maps a Series Instance UID to its missing SOP Instance
    UIDs, ``whole`` tells the series of which every instance is missing (retrieved at SERIES level)."""

    id: int
    uid: str
    series: dict[str, list[str]] = field(default_factory=dict)
    whole: set[str] = field(default_factory=set)

    @property
    def missing(self) -> int:
        return sum(len(v) for v in self.series.values())


def known_studies(ws: Workspace, source: str) -> dict[str, CollectState]:
    """Study Instance UID -> state of every study the catalog holds for *source*."""
    with ws.sessions() as session:
        rows = session.execute(select(CollectStudy.study_uid, CollectStudy.state)
                               .where(CollectStudy.source == source)).all()
    return {uid: state for uid, state in rows}


def record_query(ws: Workspace, source: str, studies: Iterable[FoundStudy]) -> None:
    """Record newly found studies and their instances, each study in one transaction (a study is in the catalog
    with all its instances, or not at all)."""
    for study in studies:
        with ws.transaction() as session:
            row = CollectStudy(source=source, study_uid=study.uid, state=CollectState.PENDING,
                               instances=study.n_instances)
            session.add(row)
            session.flush()
            session.add_all(CollectInstance(study_id=row.id, series_uid=series.uid, sop_instance_uid=sop,
                                            state=CollectState.PENDING)
                            for series in study.series for sop in series.instances)


def study_plans(ws: Workspace, source: str, uids: Iterable[str], report: StageReport) -> list[StudyPlan]:
    """The studies among *uids* still to retrieve, in that order. Instances already in the catalog (ingested
    from a folder, or sent by another run) are marked done first, and studies with nothing missing settle."""
    plans = []
    for uid in uids:
        with ws.transaction() as session:
            study = session.scalar(select(CollectStudy).where(CollectStudy.source == source,
                                                              CollectStudy.study_uid == uid))
            if study is None or study.state in (CollectState.DONE, CollectState.VANISHED):
                continue
            rows = session.execute(select(CollectInstance.id, CollectInstance.series_uid,
                                          CollectInstance.sop_instance_uid, CollectInstance.state)
                                   .where(CollectInstance.study_id == study.id)).all()
            present = set(session.scalars(select(Image.sop_instance_uid).where(
                Image.sop_instance_uid.in_([r.sop_instance_uid for r in rows if r.state == CollectState.PENDING])
            )))
            if present:
                session.execute(update(CollectInstance).where(CollectInstance.study_id == study.id,
                                                              CollectInstance.sop_instance_uid.in_(present))
                                .values(state=CollectState.DONE))
                report.counts["already in the catalog"] += len(present)
            plan = StudyPlan(study.id, uid)
            per_series: dict[str, int] = {}
            for r in rows:
                per_series[r.series_uid] = per_series.get(r.series_uid, 0) + 1
                if r.state == CollectState.PENDING and r.sop_instance_uid not in present:
                    plan.series.setdefault(r.series_uid, []).append(r.sop_instance_uid)
            plan.whole = {s for s, missing in plan.series.items() if len(missing) == per_series[s]}
            if not plan.missing:
                study.state, study.status, study.reason = CollectState.DONE, None, None
                report.counts["studies done"] += 1
            else:
                plans.append(plan)
    return plans


def settle_study(
    ws: Workspace, plan: StudyPlan, report: StageReport, *, failure: str | None, gone: Callable[[], bool]
) -> CollectState:
    """Set a study's state after its retrieval (the receiver has committed what came): ``done`` when nothing is
    pending, else ``vanished`` when ``gone()`` (the peer no longer has it) or ``failed`` with the peer's *failure*
    status."""
    with ws.sessions() as session:
        pending = session.scalars(select(CollectInstance.id).where(
            CollectInstance.study_id == plan.id, CollectInstance.state == CollectState.PENDING)).all()
    vanished = bool(pending) and gone()
    with ws.transaction() as session:
        study = session.get(CollectStudy, plan.id)
        if not pending:
            study.state, study.status, study.reason = CollectState.DONE, None, None
        elif vanished:
            study.state, study.status = CollectState.VANISHED, None
            study.reason = "the peer no longer has this study"
            session.execute(update(CollectInstance).where(CollectInstance.id.in_(pending))
                            .values(state=CollectState.VANISHED))
        else:
            study.state, study.status = CollectState.FAILED, failure or "incomplete"
            study.reason = f"{len(pending)} instance(s) not received"
            report.counts[f"failure status {study.status}"] += 1
        state = study.state
    report.counts[f"studies {state.value}"] += 1
    return state


def _study_exists(assoc, peer: Peer, uid: str) -> bool:  # noqa: ANN001 - pynetdicom Association
    from pydicom.dataset import Dataset

    query = Dataset()
    query.QueryRetrieveLevel = "STUDY"
    query.StudyInstanceUID = uid
    return any(True for _ in _find(assoc, peer, query))


#: ``retrieve(plan) -> failures``: fetch one study's missing instances into the receiver; return the failure
#: statuses the peer answered (``0xA702``, ``HTTP 404``), empty when every request succeeded.
RetrieveStudy = Callable[[StudyPlan], list[str]]


def collect_into(
    ws: Workspace,
    report: StageReport,
    *,
    source: str,
    find: Callable[[list[str]], tuple[list[FoundStudy], list[str]]],
    retrieving: Callable[[Receiver], AbstractContextManager[RetrieveStudy]],
    gone: Callable[[str], bool],
    on_progress: ProgressCallback | None = None,
    on_study: ProgressCallback | None = None,
) -> StageReport:
    """The collect loop shared by DIMSE and DICOMweb: query, record the query, plan, retrieve each study, settle.

    Parameters
    ----------
    source : str
        The peer as the catalog names it (``pacs AE@host:port``, ``dicomweb URL``).
    find : callable
        ``find(known_uids) -> (new studies with their instances, known studies that match again)``.
    retrieving : callable
        ``retrieving(receiver)``: a context manager (an open association, a session) yielding a
        :data:`RetrieveStudy`.
    gone : callable
        ``gone(study_uid)``: whether the peer no longer has a study (asked only when instances are missing).
    """
    t0 = time.perf_counter()
    done, total = [0], [0]

    def recorded(n: int) -> None:
        done[0] += n
        if on_progress:
            on_progress(min(done[0], total[0]), total[0])

    with Receiver(ws, report, on_recorded=recorded) as receiver:
        new, again = find(list(known_studies(ws, source)))
        record_query(ws, source, new)
        order = [s.uid for s in sorted(new, key=lambda s: (s.date, s.uid))] + again
        report.counts["studies found"] = len(order)
        plans = study_plans(ws, source, order, report)
        total[0] = sum(p.missing for p in plans)
        if not plans:
            report.notes.append("nothing to retrieve: every matching study is in the catalog")
        settled = len(order) - len(plans)
        if plans:
            with retrieving(receiver) as retrieve:
                for plan in plans:
                    failures = retrieve(plan)
                    receiver.flush()
                    settle_study(ws, plan, report, failure=failures[0] if failures else None,
                                 gone=lambda uid=plan.uid: gone(uid))
                    settled += 1
                    if on_study:
                        on_study(settled, len(order))
        receiver.flush()
    report.seconds = time.perf_counter() - t0
    return report


def run_collect_pacs(
    ws: Workspace,
    peer: Peer,
    filters: QueryFilters | None = None,
    *,
    method: str = "get",
    move_aet: str | None = None,
    move_port: int = 11113,
    bind: str = "0.0.0.0",
    executor: Executor | None = None,
    on_progress: ProgressCallback | None = None,
    on_study: ProgressCallback | None = None,
) -> StageReport:
    """Query *peer* (C-FIND) and retrieve the matching instances (C-GET, or C-MOVE to cxrlab's own SCP).

    Parameters
    ----------
    peer : Peer
        The PACS, and cxrlab's calling AE title.
    filters : QueryFilters
        Modalities, study date range, body part, limit (default: CR and DX, every date).
    method : {"get", "move"}
        C-GET (default) or C-MOVE; for C-MOVE the PACS must know *move_aet* (default: the calling AE title) at
        this host and *move_port*.
    executor : Executor, optional
        Unused: instances arrive one at a time over one association (kept for the stage contract).
    on_progress, on_study : callable, optional
        ``(done, total)`` of instances recorded and of studies settled.

    Returns
    -------
    StageReport
        Counts ``studies found``, ``studies done|vanished|failed``, ``ingested``, ``already_ingested``,
        ``duplicate``, ``quarantined``, ``already in the catalog`` and ``failure status 0x....`` per study.

    Raises
    ------
    PeerError
        The PACS cannot be reached, rejects the association or a query, or drops it: one line naming it.
    """
    del executor
    filters = filters or QueryFilters()
    report = StageReport("collect")

    def find(known: list[str]) -> tuple[list[FoundStudy], list[str]]:
        def attempt() -> tuple[list[FoundStudy], list[str], Counter]:
            counts: Counter = Counter()  # a lost first attempt's counts are not kept
            with peer.associate(_find_ae(peer)) as assoc:
                return (*find_studies(assoc, peer, filters, known=known, counts=counts), counts)

        new, again, counts = query_twice(peer, attempt)
        report.counts.update(counts)
        return new, again

    @contextmanager
    def retrieving(receiver: Receiver) -> Iterator[RetrieveStudy]:
        retriever = Retriever(peer, receiver, method=method, move_aet=move_aet, move_port=move_port, bind=bind,
                              modalities=filters.modalities)
        with retriever.open() as r:
            yield lambda plan: [o.status_text for o in _retrieve_study(r, plan) if not o.ok]

    def gone(uid: str) -> bool:
        def attempt() -> bool:
            with peer.associate(_find_ae(peer)) as assoc:
                return not _study_exists(assoc, peer, uid)

        return query_twice(peer, attempt)

    return collect_into(ws, report, source=peer.source, find=find, retrieving=retrieving, gone=gone,
                        on_progress=on_progress, on_study=on_study)


def query_twice(peer: Peer, attempt: Callable[[], _T]) -> _T:
    """Run the C-FIND exchange *attempt* (it opens its own association), and once more on a fresh association when
    the first one is lost: queries change nothing, and pynetdicom sometimes drops a C-FIND response among several
    C-FINDs on one association ("Received unexpected C-FIND service message", then the DIMSE timeout; pynetdicom
    issue 875, seen against Orthanc). A second loss is raised."""
    try:
        return attempt()
    except PeerLostError as exc:
        log.warning("%s; querying again on a new association", exc)
        return attempt()


def _find_ae(peer: Peer) -> AE:
    ae = peer.new_ae()
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelFind)
    return ae


def _retrieve_study(r: Retriever, plan: StudyPlan) -> list[RetrieveOutcome]:
    outcomes = []
    for series_uid, missing in plan.series.items():
        if series_uid in plan.whole:
            outcomes.append(r.retrieve("SERIES", plan.uid, series_uid))
        else:
            outcomes.extend(r.retrieve("IMAGE", plan.uid, series_uid, sop) for sop in missing)
    return outcomes


def run_listen(
    ws: Workspace,
    *,
    aet: str,
    port: int,
    bind: str = "0.0.0.0",
    allow_aets: Iterable[str] = (),
    stop: threading.Event,
    on_progress: Callable[[int], None] | None = None,
    on_ready: Callable[[], None] | None = None,
) -> StageReport:
    """Run a C-STORE SCP that ingests what it receives until *stop* is set.

    On *stop* (the CLI sets it on SIGTERM or Ctrl-C): no new association is accepted, the open ones are aborted
    after the instance in hand, everything received is committed, and the report returned.

    Parameters
    ----------
    aet, port, bind : str, int, str
        The SCP's AE title and address.
    allow_aets : iterable of str
        Only these calling AE titles may send (others are rejected: "calling AE title not recognised").
    on_progress : callable, optional
        ``on_progress(recorded)``: instances recorded so far.
    on_ready : callable, optional
        Called once the port is open.
    """
    t0 = time.perf_counter()
    report = StageReport("listen")
    count = [0]

    def recorded(n: int) -> None:
        count[0] += n
        if on_progress:
            on_progress(count[0])

    with Receiver(ws, report, on_recorded=recorded) as receiver:
        server = start_store_scp(receiver, aet=aet, port=port, bind=bind, allow_aets=allow_aets)
        try:
            if on_ready:
                on_ready()
            stop.wait()
        finally:
            active = list(server.active_associations)
            server.shutdown()
            for assoc in active:
                assoc.abort()
            for assoc in active:
                assoc.join(timeout=60)
    report.seconds = time.perf_counter() - t0
    return report
