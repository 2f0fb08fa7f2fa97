"""A DICOM peer (a PACS, a modality) and associations with it: one-line errors that name the peer.

pynetdicom does the protocol (PS3.7 DIMSE, PS3.8 upper layer); this module only opens associations, turns a
failure into a :class:`PeerError` that names ``AE@host:port`` and the reason (refused, rejected with the
standard's reason, no answer within the timeout), and keeps identifiers out of pynetdicom's log.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from pynetdicom import AE, _config, evt
from pynetdicom.association import Association
from pynetdicom.events import Event

from cxrlab.errors import CxrlabError

__all__ = ["DEFAULT_AET", "NO_DELAY", "Peer", "PeerError", "check_aet", "status_text"]

#: The AE title cxrlab calls with (and, for C-MOVE, receives as) unless told otherwise.
DEFAULT_AET = "CXRLAB"

# pynetdicom logs every C-FIND/C-GET/C-MOVE identifier at DEBUG level by default: a query answer carries
# Patient's Name. cxrlab never logs identifiers, whatever the log level.
_config.LOG_REQUEST_IDENTIFIERS = False
_config.LOG_RESPONSE_IDENTIFIERS = False


def _no_delay(event: Event) -> None:
    """Turn Nagle's algorithm off on an association's socket: a DIMSE request is several small PDUs (command,
    then identifier), and with Nagle each exchange waits for the peer's delayed acknowledgement (about 40 ms)."""
    sock = getattr(getattr(event.assoc.dul, "socket", None), "socket", None)
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


#: The ``EVT_CONN_OPEN`` handler that every cxrlab association (requested or accepted) binds.
NO_DELAY = (evt.EVT_CONN_OPEN, _no_delay)


class PeerError(CxrlabError):
    """A DICOM peer could not be reached or refused what was asked; the message names the peer."""

    default_message = "DICOM peer error"


class PeerLostError(PeerError):
    """A DIMSE exchange ended without a valid answer: the peer aborted the association or the DIMSE timeout
    passed."""


def check_aet(value: str, what: str = "AE title") -> str:
    """Return *value* if it is a valid AE title (PS3.5 Table 6.2-1, VR AE: 1-16 characters, no backslash or
    control character, not all spaces), else raise a one-line :class:`CxrlabError`."""
    text = value.strip()
    if not text or len(value) > 16 or "\\" in value or any(ord(c) < 32 or ord(c) > 126 for c in value):
        raise CxrlabError(f"invalid {what} {value!r}: 1 to 16 printable ASCII characters, no backslash")
    return text


@dataclass(frozen=True)
class Peer:
    """Where a DICOM application entity listens, and the AE titles of an association with it.

    Attributes
    ----------
    host, port : str, int
        The peer's address.
    called_aet : str
        The peer's AE title.
    calling_aet : str
        cxrlab's AE title (the PACS must know it: Orthanc's ``DicomModalities``, dcmqrscp's ``AETable``).
    timeout : float
        Seconds to wait for the TCP connection, the association answer and each DIMSE message.
    """

    host: str
    port: int
    called_aet: str
    calling_aet: str = DEFAULT_AET
    timeout: float = 30.0

    def __post_init__(self) -> None:
        check_aet(self.called_aet, "called AE title")
        check_aet(self.calling_aet, "calling AE title")
        if not 0 < self.port < 65536:
            raise CxrlabError(f"invalid port {self.port}: 1 to 65535")

    def __str__(self) -> str:
        return f"{self.called_aet}@{self.host}:{self.port}"

    @property
    def source(self) -> str:
        """What the catalog records as the origin of what comes from this peer (no PHI)."""
        return f"pacs {self}"

    def new_ae(self) -> AE:
        """A pynetdicom AE with this peer's calling AE title and timeouts."""
        ae = AE(ae_title=self.calling_aet)
        ae.connection_timeout = self.timeout
        ae.acse_timeout = self.timeout
        ae.dimse_timeout = self.timeout
        ae.network_timeout = self.timeout
        return ae

    @contextmanager
    def associate(self, ae: AE, *, ext_neg: Sequence | None = None, **kwargs: object) -> Iterator[Association]:
        """Open an association with the peer, yield it, release it (or abort it on error).

        Raises
        ------
        PeerError
            The peer cannot be reached, rejects the association (with the standard's reason, PS3.8 9.3.4), or
            does not answer within the timeout.
        """
        handlers = [*kwargs.pop("evt_handlers", []), NO_DELAY]
        assoc = ae.associate(self.host, self.port, ae_title=self.called_aet, ext_neg=ext_neg,
                             evt_handlers=handlers, **kwargs)
        if not assoc.is_established:
            raise PeerError(f"{self}: {self._why_not(assoc)}")
        try:
            yield assoc
        except BaseException:
            if assoc.is_established:
                assoc.abort()
            raise
        if assoc.is_established:
            assoc.release()

    def _why_not(self, assoc: Association) -> str:
        """Why an association was not established, in one line."""
        if assoc.is_rejected:
            rsp = assoc.acceptor.primitive
            reason = rsp.reason_str if rsp is not None else "no reason given"
            hint = ""
            if rsp is not None and rsp.diagnostic == 3:
                hint = f" (add {self.calling_aet!r} to the peer's known AE titles)"
            elif rsp is not None and rsp.diagnostic == 7:
                hint = " (check --called-aet)"
            return f"association rejected: {reason[:1].lower() + reason[1:]}{hint}"
        try:
            with socket.create_connection((self.host, self.port), timeout=self.timeout):
                pass
        except ConnectionRefusedError:
            return "connection refused (nothing listens on that port)"
        except TimeoutError:
            return f"no answer within {self.timeout:g} s (TCP connect)"
        except OSError as exc:
            return f"cannot connect ({exc.strerror or type(exc).__name__})"
        return f"no association answer within {self.timeout:g} s (is it a DICOM port?)"

    def lost(self, what: str) -> PeerLostError:
        """The error for a DIMSE exchange that ended without a valid answer (aborted or timed out)."""
        return PeerLostError(f"{self}: {what}: no valid answer within {self.timeout:g} s, or the peer aborted the "
                         f"association (does it know the AE title {self.calling_aet!r}?)")


def status_text(status: int) -> str:
    """``0xA702`` style text of a DIMSE status (PS3.7 Annex C)."""
    return f"0x{status:04X}"
