"""Collecting from a DICOMweb server: QIDO-RS search, WADO-RS retrieve (PS3.18 10.6 and 10.4), by dicomweb-client.

The same filters and the same resumable loop as the DIMSE path (:func:`cxrlab.collect.stage.collect_into`): QIDO-RS
finds the studies (one search per modality, since a multi-valued Modalities in Study match is not portable),
their series (Modality and Body Part Examined filtered here) and instances; WADO-RS fetches each missing series
(or instance) as it is stored (``transfer-syntax=*``), and every instance goes through the receiver's spool and
ingest's path.
"""

from __future__ import annotations

import io
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pydicom
import requests
from dicomweb_client import DICOMwebClient

from cxrlab.catalog.workspace import Workspace
from cxrlab.collect.peer import PeerError
from cxrlab.collect.query import NO_BODY_PART, FoundSeries, FoundStudy, QueryFilters
from cxrlab.collect.scp import Receiver
from cxrlab.collect.stage import RetrieveStudy, StudyPlan, collect_into
from cxrlab.runtime.report import ProgressCallback, StageReport

__all__ = ["DicomwebPeer", "run_collect_dicomweb"]

#: Ask for each instance in the transfer syntax it is stored in (PS3.18 8.7.3.5.2: ``*`` = no conversion).
ORIGINAL_SYNTAX = (("application/dicom", "*"),)


@dataclass(frozen=True)
class DicomwebPeer:
    """A DICOMweb service root and how to authenticate (a bearer token, or a user and password: HTTP basic).

    The URL is shown and recorded without credentials or query string (:attr:`source`).
    """

    url: str
    token: str | None = None
    user: str | None = None
    password: str | None = None
    timeout: float = 30.0

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise PeerError(f"{self}: not an http(s) URL")

    def __str__(self) -> str:
        parts = urlsplit(self.url)
        netloc = parts.hostname or ""
        if parts.port:
            netloc += f":{parts.port}"
        return urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))

    @property
    def source(self) -> str:
        """What the catalog records as the origin (no credentials)."""
        return f"dicomweb {self}"

    def client(self) -> DICOMwebClient:
        """A dicomweb-client session with the credentials."""
        session = requests.Session()
        parts = urlsplit(self.url)
        if parts.username and not self.user:
            session.auth = (parts.username, parts.password or "")
        if self.user:
            session.auth = (self.user, self.password or "")
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else None
        client = DICOMwebClient(str(self), session=session, headers=headers, timeout=self.timeout)
        # dicomweb-client retries a request 5 times with a back-off of 2, 4, 8, 16 s, on 429/408/503/504 and on
        # every network error: a refused connection would take 30 s to report. Three tries, 0.5 and 1 s apart.
        client.set_http_retry_params(retry=True, max_attempts=3, wait_exponential_multiplier=250)
        return client

    def call(self, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run one dicomweb-client call; turn HTTP and network errors into a one-line :class:`PeerError`."""
        try:
            return fn(*args, **kwargs)
        except requests.HTTPError as exc:
            code = exc.response.status_code if exc.response is not None else 0
            raise PeerError(f"{self}: {what} failed: HTTP {code}{_hint(code)}", ) from None
        except requests.Timeout:
            raise PeerError(f"{self}: {what}: no answer within {self.timeout:g} s") from None
        except requests.ConnectionError:
            raise PeerError(f"{self}: {what}: cannot connect (connection refused or host unreachable)") from None
        except requests.RequestException as exc:
            raise PeerError(f"{self}: {what} failed ({type(exc).__name__})") from None


def _hint(code: int) -> str:
    return {401: " (give --token or --user)", 403: " (not allowed for these credentials)",
            404: " (not found: check the service root URL)"}.get(code, "")


def _value(item: dict, tag: str) -> str:
    """First value of *tag* (``"0020000D"``) in a DICOM JSON object (PS3.18 F.2), or ""."""
    values = item.get(tag, {}).get("Value") or [""]
    return str(values[0]).strip()


#: QIDO-RS page size (``limit``, ``offset``: PS3.18 8.3.4.4).
PAGE = 1000


def _search(peer: DicomwebPeer, what: str, fn: Callable[..., list[dict]], *args: Any, key: str,
            **kwargs: Any) -> list[dict]:
    """Every match of a QIDO-RS search, page by page, without repeats (by the UID in *key*).

    Paging ends on a short or empty page, or on a page with nothing new: some servers (Orthanc's DICOMweb plugin)
    ignore ``offset`` and answer the same page again, where dicomweb-client's ``get_remaining`` would loop for ever.
    """
    found: dict[str, dict] = {}
    offset = 0
    while True:
        items = peer.call(what, fn, *args, limit=PAGE, offset=offset, **kwargs) or []
        fresh = {_value(i, key): i for i in items if _value(i, key) and _value(i, key) not in found}
        found.update(fresh)
        if len(items) < PAGE or not fresh:
            return list(found.values())
        offset += len(items)


def find_studies_web(peer: DicomwebPeer, client: DICOMwebClient, filters: QueryFilters,
                     known: list[str], counts: Counter | None = None) -> tuple[list[FoundStudy], list[str]]:
    """QIDO-RS: the studies matching *filters*, their series and instances (as :func:`~cxrlab.collect.query.
    find_studies` does over C-FIND)."""
    base = {"StudyDate": filters.study_date} if filters.study_date else {}
    candidates: set[tuple[str, str]] = set()
    for modality in filters.modalities or (None,):
        search = dict(base, ModalitiesInStudy=modality) if modality else base
        for item in _search(peer, "QIDO-RS study search", client.search_for_studies, search_filters=search,
                            key="0020000D"):
            if _value(item, "0020000D"):
                candidates.add((_value(item, "00080020"), _value(item, "0020000D")))
    known_set = set(known)
    new: list[FoundStudy] = []
    again: list[str] = []
    for date, uid in sorted(candidates):
        if filters.limit is not None and len(new) + len(again) >= filters.limit:
            break
        if uid in known_set:
            again.append(uid)
            continue
        study = FoundStudy(uid, date)
        series_items = _search(peer, "QIDO-RS series search", client.search_for_series, uid,
                               fields=["BodyPartExamined"], key="0020000E")
        for item in sorted(series_items, key=lambda i: _value(i, "0020000E")):
            series_uid = _value(item, "0020000E")
            modality, body_part = _value(item, "00080060"), _value(item, "00180015")
            if not series_uid:
                continue
            if not filters.keeps_series(modality, body_part):
                if counts is not None and filters.left_out_for_body_part(modality, body_part):
                    counts[NO_BODY_PART] += 1
                continue
            instances = _search(peer, "QIDO-RS instance search", client.search_for_instances, uid, series_uid,
                                key="00080018")
            sops = sorted({_value(i, "00080018") for i in instances} - {""})
            if sops:
                study.series.append(FoundSeries(series_uid, _value(item, "00080060"), sops))
        if study.series:
            new.append(study)
    return new, again


def _writer(ds: pydicom.Dataset) -> Callable:
    """Write a WADO-RS part back to the DICOM File Format (dicomweb-client hands over decoded data sets)."""

    def write(path) -> None:  # noqa: ANN001 - a Path
        buf = io.BytesIO()
        pydicom.dcmwrite(buf, ds, enforce_file_format=True)
        path.write_bytes(buf.getvalue())

    return write


def run_collect_dicomweb(
    ws: Workspace,
    peer: DicomwebPeer,
    filters: QueryFilters | None = None,
    *,
    on_progress: ProgressCallback | None = None,
    on_study: ProgressCallback | None = None,
) -> StageReport:
    """Search *peer* (QIDO-RS) and retrieve the matching instances (WADO-RS) into the workspace; resumable like
    :func:`~cxrlab.collect.stage.run_collect_pacs`, whose report it returns.

    Raises
    ------
    PeerError
        The server cannot be reached, refuses the credentials, or answers a search with an HTTP error.
    """
    filters = filters or QueryFilters()
    client = peer.client()
    report = StageReport("collect")

    @contextmanager
    def retrieving(receiver: Receiver) -> Iterator[RetrieveStudy]:
        def retrieve(plan: StudyPlan) -> list[str]:
            failures = []
            for series_uid, missing in plan.series.items():
                try:
                    if series_uid in plan.whole:
                        parts = client.iter_series(plan.uid, series_uid, media_types=ORIGINAL_SYNTAX)
                    else:
                        parts = (client.retrieve_instance(plan.uid, series_uid, sop, media_types=ORIGINAL_SYNTAX)
                                 for sop in missing)
                    for ds in parts:
                        receiver.store(_writer(ds), origin=f"{peer.source} study {plan.uid}",
                                       sop_uid=str(ds.get("SOPInstanceUID", "")), peer=str(peer))
                except requests.HTTPError as exc:
                    failures.append(f"HTTP {exc.response.status_code if exc.response is not None else 0}")
                except requests.RequestException as exc:
                    raise PeerError(f"{peer}: WADO-RS retrieve failed ({type(exc).__name__})") from None
            return failures

        yield retrieve

    def gone(uid: str) -> bool:
        return not peer.call("QIDO-RS study search", client.search_for_studies,
                             search_filters={"StudyInstanceUID": uid})

    return collect_into(ws, report, source=peer.source,
                        find=lambda known: find_studies_web(peer, client, filters, known, report.counts),
                        retrieving=retrieving, gone=gone, on_progress=on_progress, on_study=on_study)
