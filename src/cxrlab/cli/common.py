"""Helpers shared by the CLI commands: workspace option, progress bar, report table, error exit.

Rich is imported only here and in the command modules; the library never imports it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from cxrlab.errors import CxrlabError

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

#: Largest seed an option takes: seeds are stored in 32-bit catalog columns (``catalog.models.INT_MAX``).
SEED_MAX = 2**31 - 1

WorkspaceOpt = Annotated[
    Path | None,
    typer.Option(
        "--workspace", "-w", help="Workspace folder (default: $CXRLAB_WORKSPACE or the current folder)."
    ),
]
WorkersOpt = Annotated[
    int | None, typer.Option("--workers", "-j", min=1, help="Processes (default: all cores).")
]
SchedulerOpt = Annotated[
    str | None,
    typer.Option("--scheduler", envvar="CXRLAB_SCHEDULER", metavar="ADDRESS",
                 help="Run the per-file work on this Dask cluster, e.g. tcp://host:8786 (needs the \\[dask] "
                      "extra; default: $CXRLAB_SCHEDULER, else a local process pool)."),
]


def _size(text: str) -> int:
    from cxrlab.runtime.unpack import parse_size

    try:
        return parse_size(text)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


MaxUnpackedOpt = Annotated[
    int | None,
    typer.Option("--max-unpacked", parser=_size, metavar="SIZE",
                 help="Largest size a .gz table may unpack to, e.g. 4GiB (default: 2GiB)."),
]


def _bar() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=not sys.stderr.isatty(),
        disable=not err.is_terminal,  # no bar, and no blank line before a message, when stderr is not a terminal
    )


@contextmanager
def progress(label: str) -> Iterator[Callable[[int, int], None]]:
    """A Rich progress bar on stderr; yields the ``on_progress(done, total)`` callback."""
    with multi_progress() as add:
        yield add(label)


@contextmanager
def multi_progress() -> Iterator[Callable[[str], Callable[[int, int], None]]]:
    """One Rich display with a bar per stage; yields ``add(label) -> on_progress`` ."""
    bar = _bar()

    def add(label: str) -> Callable[[int, int], None]:
        task = bar.add_task(label, total=None)
        return lambda done, total: bar.update(task, completed=done, total=total)

    with bar:
        yield add


@contextmanager
def batch_executor(workers: int | None, scheduler: str | None, *, paths: tuple[Path, ...] = ()) -> Iterator:
    """The executor of a batch command: a local process pool, or with *scheduler* (``--scheduler`` or
    ``$CXRLAB_SCHEDULER``) a :class:`~cxrlab.runtime.DaskExecutor` connected to it whose workers were checked to
    see every folder of *paths* (the workspace, the input and output folders). Use inside :func:`cli_errors`: a
    scheduler that does not answer is one line and exit code 2."""
    from cxrlab.runtime import DaskExecutor, Executor

    if not scheduler:
        yield Executor(workers)
        return
    if workers is not None:
        err.print("[yellow]warning:[/] --workers is ignored with --scheduler (the cluster's workers run the batch)",
                  highlight=False)
    with DaskExecutor(scheduler) as executor:
        executor.check_paths(paths)
        yield executor


def print_report(report, *, max_problems: int = 20, verbose: bool = False,  # noqa: ANN001 - StageReport
                 executor=None) -> None:  # noqa: ANN001 - Executor or DaskExecutor
    """Print a StageReport: the summary table (or "nothing to do") and its notes on stdout, its problems on
    stderr; with *verbose*, also every item passed over (duplicates, non-DICOM files, ...). The table's caption
    names where the work ran when *executor* is given."""
    if any(report.counts.values()):
        table = Table(title=report.stage, caption=f"{report.seconds:.1f} s", title_justify="left")
        table.add_column("outcome")
        table.add_column("count", justify="right")
        for key, value in sorted(report.counts.items()):
            table.add_row(key, str(value))
        if executor is not None:
            table.add_section()
            table.add_row("ran on", escape(executor.describe()))
        out.print(table)
    elif not report.problems:
        out.print(f"{report.stage}: nothing to do")
    for note in report.notes:
        out.print(escape(note), highlight=False, soft_wrap=True)
    if verbose:
        for item, outcome in report.skipped:
            out.print(f"{outcome}: {escape(item)}", highlight=False, soft_wrap=True)
    for path, reason in report.problems[:max_problems]:
        err.print(f"[yellow]{escape(path)}[/]: {escape(reason)}", highlight=False)
    if len(report.problems) > max_problems:
        err.print(f"... and {len(report.problems) - max_problems} more (see the quarantine/ folder)")


@contextmanager
def cli_errors(*, max_unpacked: int | None = None) -> Iterator[None]:
    """Turn a cxrlab error into a one-line message on stderr and its exit code (1; 2 for input over a size
    limit), and so an OSError (a path that cannot be read or written: exit 1). *max_unpacked* is the
    ``--max-unpacked`` limit for the readers called inside."""
    from cxrlab.runtime.unpack import UnpackedTooLargeError, unpack_limit

    try:
        with unpack_limit(max_unpacked):
            yield
    except CxrlabError as exc:
        hint = "; raise the limit with --max-unpacked" if isinstance(exc, UnpackedTooLargeError) else ""
        err.print(f"[red]error:[/] {escape(str(exc))}{hint}", highlight=False)
        raise typer.Exit(code=exc.exit_code) from None
    except OSError as exc:  # a path that cannot be read or written: the file and the system's reason
        where = f"{exc.filename}: " if exc.filename else ""
        err.print(f"[red]error:[/] {escape(where + (exc.strerror or type(exc).__name__))}", highlight=False)
        raise typer.Exit(code=1) from None


@contextmanager
def ml_errors() -> Iterator[None]:
    """A missing optional library (torch, onnx, onnxruntime) becomes one line and exit code 1."""
    try:
        with cli_errors():
            yield
    except ImportError as exc:
        err.print(f"[red]error:[/] {exc}", highlight=False)
        raise typer.Exit(code=1) from None
