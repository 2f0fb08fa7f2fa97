"""Collect: DICOM networking into the workspace (C-FIND/C-GET/C-MOVE SCU, a C-STORE SCP, DICOMweb) and back out
(C-STORE, STOW-RS). Everything received goes through ingest's path (:func:`cxrlab.ingest.check_file`,
:func:`cxrlab.ingest.store_raw`, :func:`cxrlab.ingest.record_result`). Needs the ``[pacs]`` extra (pynetdicom,
dicomweb-client)."""

from cxrlab.collect.dicomweb import DicomwebPeer, run_collect_dicomweb
from cxrlab.collect.peer import DEFAULT_AET, Peer, PeerError
from cxrlab.collect.query import QueryFilters
from cxrlab.collect.send import send_dicomweb, send_pacs
from cxrlab.collect.stage import run_collect_pacs, run_listen

__all__ = [
    "DEFAULT_AET",
    "DicomwebPeer",
    "Peer",
    "PeerError",
    "QueryFilters",
    "run_collect_dicomweb",
    "run_collect_pacs",
    "run_listen",
    "send_dicomweb",
    "send_pacs",
]
