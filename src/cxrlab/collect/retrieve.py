"""Retrieval from a PACS: C-GET (the instances come back on the same association) or C-MOVE (the PACS opens an
association to cxrlab's own C-STORE SCP), PS3.4 C.4.2 and C.4.3, Study Root.

C-GET needs no configuration on the PACS beyond knowing cxrlab's AE title; C-MOVE needs the PACS to know where
the move destination AE title listens (Orthanc: ``DicomModalities``; dcmqrscp: ``HostTable``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from pydicom.dataset import Dataset
from pynetdicom import build_role, evt
from pynetdicom.association import Association
from pynetdicom.sop_class import (
    ComputedRadiographyImageStorage,
    CTImageStorage,
    DigitalMammographyXRayImageStorageForPresentation,
    DigitalMammographyXRayImageStorageForProcessing,
    DigitalXRayImageStorageForPresentation,
    DigitalXRayImageStorageForProcessing,
    EnhancedCTImageStorage,
    EnhancedMRImageStorage,
    MRImageStorage,
    NuclearMedicineImageStorage,
    PositronEmissionTomographyImageStorage,
    SecondaryCaptureImageStorage,
    StudyRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelMove,
    UltrasoundImageStorage,
    UltrasoundMultiFrameImageStorage,
    XRayAngiographicImageStorage,
    XRayRadiofluoroscopicImageStorage,
)

from cxrlab.collect.peer import Peer, status_text
from cxrlab.collect.scp import Receiver, accepted_transfer_syntaxes, receive_to_files, start_store_scp, store_handler

__all__ = ["GET_STORAGE_CLASSES", "MODALITY_STORAGE_CLASSES", "RetrieveOutcome", "Retriever", "get_contexts"]

#: Storage SOP classes always offered for C-GET sub-operations (a C-GET SCU must propose each one it accepts,
#: with the SCP role, PS3.4 C.4.3.1): projection radiography and Secondary Capture (digitised films), each in a
#: presentation context per transfer syntax, so the PACS sends every instance as it is stored.
GET_STORAGE_CLASSES = (
    ComputedRadiographyImageStorage,
    DigitalXRayImageStorageForPresentation,
    DigitalXRayImageStorageForProcessing,
    SecondaryCaptureImageStorage,
)
#: Further storage classes offered for C-GET when the filters ask for these modalities (or for every modality),
#: one presentation context each with every transfer syntax (the PACS picks one, and converts if it must). C-MOVE
#: accepts every storage class (PS3.4 Annex B.5); other modalities need ``--method move``.
MODALITY_STORAGE_CLASSES = {
    "MG": (DigitalMammographyXRayImageStorageForPresentation, DigitalMammographyXRayImageStorageForProcessing),
    "CT": (CTImageStorage, EnhancedCTImageStorage),
    "MR": (MRImageStorage, EnhancedMRImageStorage),
    "US": (UltrasoundImageStorage, UltrasoundMultiFrameImageStorage),
    "PT": (PositronEmissionTomographyImageStorage,),
    "NM": (NuclearMedicineImageStorage,),
    "XA": (XRayAngiographicImageStorage,),
    "RF": (XRayRadiofluoroscopicImageStorage,),
}
#: At most 128 presentation contexts per association (PS3.8 9.3.2.2: odd context IDs 1-255).
MAX_CONTEXTS = 128


def get_contexts(modalities: tuple[str, ...]) -> list[tuple[str, list[str]]]:
    """The ``(SOP class, transfer syntaxes)`` presentation contexts a C-GET proposes for *modalities* (empty: every
    modality of :data:`MODALITY_STORAGE_CLASSES`), besides the query/retrieve model's own."""
    syntaxes = accepted_transfer_syntaxes()
    contexts = [(cls, [ts]) for cls in GET_STORAGE_CLASSES for ts in syntaxes]
    wanted = modalities or tuple(MODALITY_STORAGE_CLASSES)
    extra = dict.fromkeys(cls for m in wanted for cls in MODALITY_STORAGE_CLASSES.get(m.upper(), ()))
    contexts += [(cls, syntaxes) for cls in extra]
    assert len(contexts) < MAX_CONTEXTS
    return contexts


#: Statuses after which the sub-operations may go on (pending) or ended well (PS3.4 Table C.4-2, C.4-3).
_PENDING = (0xFF00,)
_SUCCESS = 0x0000
_WARNING = 0xB000


@dataclass
class RetrieveOutcome:
    """The final answer of one C-GET or C-MOVE: status and sub-operation counts (PS3.4 C.4.2.1.7)."""

    status: int | None
    completed: int = 0
    failed: int = 0
    warning: int = 0

    @property
    def ok(self) -> bool:
        return self.status in (_SUCCESS, _WARNING)

    @property
    def status_text(self) -> str:
        return "no answer" if self.status is None else status_text(self.status)


def _identifier(level: str, study_uid: str, series_uid: str = "", sop_uid: str = "") -> Dataset:
    ds = Dataset()
    ds.QueryRetrieveLevel = level
    ds.StudyInstanceUID = study_uid
    if level in ("SERIES", "IMAGE"):
        ds.SeriesInstanceUID = series_uid
    if level == "IMAGE":
        ds.SOPInstanceUID = sop_uid
    return ds


class Retriever:
    """C-GET or C-MOVE from *peer* into *receiver*, over one association opened by :meth:`open`.

    Parameters
    ----------
    method : {"get", "move"}
        C-GET, or C-MOVE to a C-STORE SCP that this object starts on *move_port* with the AE title *move_aet*
        (default: the calling AE title).
    modalities : tuple of str
        The modalities collected: a C-GET proposes their storage classes (:func:`get_contexts`).
    """

    def __init__(
        self, peer: Peer, receiver: Receiver, *, method: str = "get", move_aet: str | None = None,
        move_port: int = 11113, bind: str = "0.0.0.0", modalities: tuple[str, ...] = ("CR", "DX"),
    ) -> None:
        if method not in ("get", "move"):
            raise ValueError(f"method must be 'get' or 'move', got {method!r}")
        self.peer, self.receiver, self.method = peer, receiver, method
        self.move_aet = move_aet or peer.calling_aet
        self.move_port, self.bind, self.modalities = move_port, bind, modalities
        self.study = ""  # the study being retrieved: the catalog's origin names it
        self._assoc: Association | None = None

    def _origin(self, _event: object = None) -> str:
        return f"{self.peer.source} study {self.study}"

    def _peer(self, _event: object = None) -> str:
        return str(self.peer)

    @contextmanager
    def open(self) -> Iterator[Retriever]:
        """Associate with the peer (and start the move destination for C-MOVE); release both at the end."""
        ae = self.peer.new_ae()
        ae.maximum_pdu_size = 0
        server = None
        if self.method == "get":
            ae.add_requested_context(StudyRootQueryRetrieveInformationModelGet)
            contexts = get_contexts(self.modalities)
            for sop_class, syntaxes in contexts:
                ae.add_requested_context(sop_class, syntaxes)
            roles = [build_role(sop_class, scp_role=True) for sop_class in dict.fromkeys(c for c, _ in contexts)]
            handlers = [(evt.EVT_C_STORE, store_handler(self.receiver, self._origin, self._peer))]
            receive_to_files()
            kwargs = {"ext_neg": roles, "evt_handlers": handlers}
        else:
            ae.add_requested_context(StudyRootQueryRetrieveInformationModelMove)
            server = start_store_scp(self.receiver, aet=self.move_aet, port=self.move_port, bind=self.bind,
                                     origin_of=self._origin, peer_of=self._peer, timeout=self.peer.timeout)
            kwargs = {}
        try:
            with self.peer.associate(ae, **kwargs) as assoc:
                self._assoc = assoc
                yield self
        finally:
            self._assoc = None
            if server is not None:
                server.shutdown()

    def retrieve(self, level: str, study_uid: str, series_uid: str = "", sop_uid: str = "") -> RetrieveOutcome:
        """Retrieve one study, series or instance; return the peer's final answer (never raises for a failure
        status: the caller records it per study). Raises :class:`PeerError` when the association is lost."""
        assert self._assoc is not None, "call inside open()"
        self.study = study_uid
        ident = _identifier(level, study_uid, series_uid, sop_uid)
        if self.method == "get":
            responses = self._assoc.send_c_get(ident, StudyRootQueryRetrieveInformationModelGet)
        else:
            responses = self._assoc.send_c_move(ident, self.move_aet, StudyRootQueryRetrieveInformationModelMove)
        outcome = RetrieveOutcome(None)
        for status, _identifier_ds in responses:
            code = status.get("Status") if status else None
            if code is None:
                if not self._assoc.is_established:
                    raise self.peer.lost(f"C-{self.method.upper()}")
                continue
            outcome.status = code
            outcome.completed = int(status.get("NumberOfCompletedSuboperations", outcome.completed) or 0)
            outcome.failed = int(status.get("NumberOfFailedSuboperations", outcome.failed) or 0)
            outcome.warning = int(status.get("NumberOfWarningSuboperations", outcome.warning) or 0)
        if outcome.status is None and not self._assoc.is_established:
            raise self.peer.lost(f"C-{self.method.upper()}")
        return outcome
