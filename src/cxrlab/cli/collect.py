"""``cxrlab collect pacs|listen|dicomweb`` and ``cxrlab send pacs|dicomweb``: DICOM networking (the ``[pacs]``
extra). Every command is one call into :mod:`cxrlab.collect`; a peer that refuses or does not answer ends the
command with one line naming it (exit 1)."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from cxrlab.cli.common import WorkspaceOpt, cli_errors, err, multi_progress, print_report

collect_app = typer.Typer(help="Collect DICOM instances from a PACS, a modality or a DICOMweb server.",
                          no_args_is_help=True)
send_app = typer.Typer(help="Send DICOM objects (e.g. the SRs of `export --format sr`) to a PACS or DICOMweb.",
                       no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Attach these commands to the root app."""
    app.add_typer(collect_app, name="collect")
    app.add_typer(send_app, name="send")


class Method(StrEnum):
    """How instances come back from the PACS."""

    get = "get"
    move = "move"


HostOpt = Annotated[str, typer.Option("--host", help="The PACS host name or address.")]
PortOpt = Annotated[int, typer.Option("--port", min=1, max=65535, help="The PACS DICOM port.")]
CalledOpt = Annotated[str, typer.Option("--called-aet", help="The PACS AE title.")]
CallingOpt = Annotated[str, typer.Option("--calling-aet", help="cxrlab's AE title (the PACS must know it).")]
TimeoutOpt = Annotated[float, typer.Option("--timeout", min=0.1, help="Seconds to wait for the peer's answers.")]
ModalityOpt = Annotated[list[str] | None, typer.Option("--modality", help="Series modality to keep (repeatable; "
                                                        "default: CR and DX).")]
DateOpt = Annotated[str | None, typer.Option("--study-date", help="Study date or range: 20200101-20201231, "
                                             "20200101-, -20201231.")]
BodyPartOpt = Annotated[str | None, typer.Option("--body-part", help="Body Part Examined of the series to keep "
                                                 "(e.g. CHEST).")]
LimitOpt = Annotated[int | None, typer.Option("--limit", min=1, help="At most this many studies.")]
TokenOpt = Annotated[str | None, typer.Option("--token", envvar="CXRLAB_DICOMWEB_TOKEN",
                                              help="Bearer token (or $CXRLAB_DICOMWEB_TOKEN).")]
UserOpt = Annotated[str | None, typer.Option("--user", help="HTTP basic user; the password is read from "
                                             "$CXRLAB_DICOMWEB_PASSWORD.")]


@contextmanager
def _pacs_errors() -> Iterator[None]:
    """:func:`cli_errors`, and a missing ``[pacs]`` extra as one line."""
    with cli_errors():
        try:
            yield
        except ImportError as exc:
            from cxrlab.errors import CxrlabError

            raise CxrlabError(f"DICOM networking needs the pacs extra ({exc.name} is missing): "
                              "pip install 'cxrlab[pacs]'") from None


def _filters(modality: list[str] | None, study_date: str | None, body_part: str | None, limit: int | None):  # noqa: ANN202
    from cxrlab.collect import QueryFilters

    return QueryFilters(modalities=tuple(modality) if modality else ("CR", "DX"), study_date=study_date,
                        body_part=body_part, limit=limit)


@collect_app.command("pacs")
def collect_pacs(
    host: HostOpt,
    port: PortOpt,
    called_aet: CalledOpt,
    calling_aet: CallingOpt = "CXRLAB",
    modality: ModalityOpt = None,
    study_date: DateOpt = None,
    body_part: BodyPartOpt = None,
    method: Annotated[Method, typer.Option("--method", help="get: C-GET on the same association; move: C-MOVE "
                                           "to cxrlab's own C-STORE SCP (--move-port).")] = Method.get,
    move_port: Annotated[int, typer.Option("--move-port", min=1, max=65535, help="Port of cxrlab's C-STORE SCP "
                                           "for C-MOVE (the PACS must know it).")] = 11113,
    limit: LimitOpt = None,
    timeout: TimeoutOpt = 30.0,
    workspace: WorkspaceOpt = None,
) -> None:
    """Query a PACS (C-FIND) and retrieve the matching CR/DX instances (C-GET or C-MOVE) into the workspace.

    Resumable: a rerun retrieves only what is missing.
    """
    with _pacs_errors():
        from cxrlab.catalog import open_workspace
        from cxrlab.collect import Peer, run_collect_pacs

        ws = open_workspace(workspace)
        peer = Peer(host, port, called_aet, calling_aet, timeout=timeout)
        filters = _filters(modality, study_date, body_part, limit)
        with multi_progress() as add:
            report = run_collect_pacs(ws, peer, filters, method=method.value, move_port=move_port,
                                      on_study=add("studies"), on_progress=add("instances"))
    print_report(report)


@collect_app.command("dicomweb")
def collect_dicomweb(
    url: Annotated[str, typer.Argument(help="The DICOMweb service root, e.g. https://pacs/dicom-web.")],
    modality: ModalityOpt = None,
    study_date: DateOpt = None,
    body_part: BodyPartOpt = None,
    limit: LimitOpt = None,
    token: TokenOpt = None,
    user: UserOpt = None,
    timeout: TimeoutOpt = 30.0,
    workspace: WorkspaceOpt = None,
) -> None:
    """Search a DICOMweb server (QIDO-RS) and retrieve the matching instances (WADO-RS) into the workspace.

    Resumable: a rerun retrieves only what is missing.
    """
    with _pacs_errors():
        from cxrlab.catalog import open_workspace
        from cxrlab.collect import DicomwebPeer, run_collect_dicomweb

        ws = open_workspace(workspace)
        peer = DicomwebPeer(url, token=token, user=user, password=os.environ.get("CXRLAB_DICOMWEB_PASSWORD"),
                            timeout=timeout)
        filters = _filters(modality, study_date, body_part, limit)
        with multi_progress() as add:
            report = run_collect_dicomweb(ws, peer, filters, on_study=add("studies"), on_progress=add("instances"))
    print_report(report)


@collect_app.command("listen")
def collect_listen(
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="Port to listen on.")] = 11112,
    aet: Annotated[str, typer.Option("--aet", help="The AE title callers must name.")] = "CXRLAB",
    allow_aet: Annotated[list[str] | None, typer.Option("--allow-aet", help="Accept only this calling AE title "
                                                        "(repeatable; default: any).")] = None,
    bind: Annotated[str, typer.Option("--bind", help="Address to listen on.")] = "0.0.0.0",
    workspace: WorkspaceOpt = None,
) -> None:
    """Receive instances by C-STORE and ingest them, until stopped (SIGTERM or Ctrl-C: the instance in hand is
    finished and committed, then exit 0)."""
    stop = threading.Event()

    def on_signal(_signum: int, _frame: object) -> None:
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        with _pacs_errors():
            from cxrlab.catalog import open_workspace
            from cxrlab.collect import run_listen

            ws = open_workspace(workspace)
            allowed = ", ".join(allow_aet) if allow_aet else "any calling AE title"
            with multi_progress() as add:
                bar = add("received")
                report = run_listen(
                    ws, aet=aet, port=port, bind=bind, allow_aets=allow_aet or (), stop=stop,
                    on_progress=lambda n: bar(n, None),
                    on_ready=lambda: err.print(f"listening as {aet} on {bind}:{port} ({allowed}); "
                                               "stop with Ctrl-C or SIGTERM", highlight=False),
                )
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    print_report(report)


@send_app.command("pacs")
def send_pacs_cmd(
    folder: Annotated[Path, typer.Argument(help="Folder of DICOM files (searched recursively), or one file.")],
    host: HostOpt,
    port: PortOpt,
    called_aet: CalledOpt,
    calling_aet: CallingOpt = "CXRLAB",
    timeout: TimeoutOpt = 30.0,
) -> None:
    """C-STORE every DICOM file of FOLDER to a PACS; one status per file."""
    with _pacs_errors():
        from cxrlab.collect import Peer, send_pacs

        peer = Peer(host, port, called_aet, calling_aet, timeout=timeout)
        with multi_progress() as add:
            report = send_pacs(folder, peer, on_progress=add("send"))
    print_report(report)
    if report.problems:
        raise typer.Exit(code=1)


@send_app.command("dicomweb")
def send_dicomweb_cmd(
    url: Annotated[str, typer.Argument(help="The DICOMweb service root, e.g. https://pacs/dicom-web.")],
    folder: Annotated[Path, typer.Argument(help="Folder of DICOM files (searched recursively), or one file.")],
    token: TokenOpt = None,
    user: UserOpt = None,
    timeout: TimeoutOpt = 30.0,
) -> None:
    """STOW-RS every DICOM file of FOLDER to a DICOMweb server; one status per file."""
    with _pacs_errors():
        from cxrlab.collect import DicomwebPeer, send_dicomweb

        peer = DicomwebPeer(url, token=token, user=user, password=os.environ.get("CXRLAB_DICOMWEB_PASSWORD"),
                            timeout=timeout)
        with multi_progress() as add:
            report = send_dicomweb(folder, peer, on_progress=add("send"))
    print_report(report)
    if report.problems:
        raise typer.Exit(code=1)

