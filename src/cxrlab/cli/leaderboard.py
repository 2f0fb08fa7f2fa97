"""``cxrlab leaderboard create|list|upload-labels|upload-sizes|remove-sizes|close|reopen|scores|score-pending``:
benchmarks of the web app's leaderboard from the command line (the same services as ``/api/benchmarks``), and
``cxrlab leaderboard submit``: a participant's upload to a running server, over its API."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cxrlab.cli.common import SEED_MAX, WorkspaceOpt, cli_errors, out

app = typer.Typer(help="Benchmarks on hidden test labels (the leaderboard of `cxrlab serve`).", no_args_is_help=True)

NameArg = Annotated[str, typer.Argument(help="Benchmark name.")]


@app.command("create")
def create(
    name: NameArg,
    metric: Annotated[str, typer.Option(help="kaggle, voc or coco.")] = "kaggle",
    iou: Annotated[float | None, typer.Option(help="IoU threshold (default: the metric's).")] = None,
    classes: Annotated[str | None, typer.Option(
        help="Class ids: vindr-cxr-challenge, vindr-cxr or vindr-pcxr (default: the workspace's schema when it is "
             "one of these, as the web form; else vindr-cxr-challenge).")] = None,
    public_fraction: Annotated[float, typer.Option(help="Share of test images on the public board.")] = 0.5,
    daily_limit: Annotated[int, typer.Option(help="Submissions per user per UTC day.")] = 5,
    seed: Annotated[
        int | None, typer.Option(min=0, max=SEED_MAX, help="Seed of the public/private split (default: random).")
    ] = None,
    description: Annotated[str | None, typer.Option(help="Shown on the page.")] = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """Create an open benchmark; upload its hidden labels with `upload-labels`."""
    from cxrlab.benchmark import create_benchmark
    from cxrlab.catalog import open_workspace
    from cxrlab.evaluate import CHALLENGE, CLASS_LISTS

    with cli_errors():
        ws = open_workspace(workspace)
        if classes is None:
            classes = ws.settings.schema if ws.settings.schema in CLASS_LISTS else CHALLENGE.name
        with ws.sessions() as session:
            b = create_benchmark(session, name=name, metric=metric, iou=iou, classes=classes, seed=seed,
                                 public_fraction=public_fraction, daily_limit=daily_limit, description=description)
    out.print(f"created benchmark {b.name} (id {b.id}, {b.metric}, class ids {b.classes}, split seed {b.seed})")


@app.command("list")
def list_(workspace: WorkspaceOpt = None) -> None:
    """List benchmarks."""
    from rich.table import Table

    from cxrlab.benchmark import list_benchmarks, part_counts
    from cxrlab.catalog import open_workspace

    table = Table("id", "name", "metric", "state", "public", "private", "daily limit", title_justify="left")
    with cli_errors(), open_workspace(workspace).sessions() as session:
        for b in list_benchmarks(session):
            n = part_counts(session, b)
            table.add_row(str(b.id), b.name, b.metric, b.state.value, str(n["public"]), str(n["private"]),
                          str(b.daily_limit))
    out.print(table)


def _upload(name: str, path: Path, workspace: Path | None, what: str):  # noqa: ANN202 - the library's report
    """Send *path* to ``cxrlab.benchmark.upload_<what>`` for the benchmark called *name*; return its report."""
    from cxrlab import benchmark as lb
    from cxrlab.catalog import open_workspace

    with cli_errors():
        ws = open_workspace(workspace)
        with ws.sessions() as session:
            upload = getattr(lb, f"upload_{what}")
            return upload(session, ws, benchmark=lb.get_benchmark_by_name(session, name), data=path.read_bytes(),
                          filename=path.name)


@app.command("upload-labels")
def upload_labels(
    name: NameArg,
    labels: Annotated[Path, typer.Argument(exists=True, dir_okay=False,
                                           help="annotations_test.csv (or .csv.gz) in the seeds' layout.")],
    workspace: WorkspaceOpt = None,
) -> None:
    """Store (or replace) the hidden test labels; splits the images into public and private once."""
    report = _upload(name, labels, workspace, "labels")
    out.print(f"{report.images} test images ({report.public} public, {report.private} private), {report.boxes} "
              f"boxes; {report.rescored} submission(s) queued for scoring again")
    for note in report.notes:
        out.print(note)


@app.command("upload-sizes")
def upload_sizes(
    name: NameArg,
    sizes: Annotated[Path, typer.Argument(exists=True, dir_okay=False,
                                          help="image_id,width,height (or image_id,columns,rows), CSV or .csv.gz.")],
    workspace: WorkspaceOpt = None,
) -> None:
    """Store (or replace) the test images' sizes: submitted boxes beyond their image (1 px tolerance) are errors."""
    report = _upload(name, sizes, workspace, "sizes")
    out.print(f"{report.images} image sizes stored; submissions are now checked against them")
    for note in report.notes:
        out.print(note)


@app.command("remove-sizes")
def remove_sizes(name: NameArg, workspace: WorkspaceOpt = None) -> None:
    """Forget the image sizes (boxes are then checked for negative coordinates only)."""
    from cxrlab import benchmark as lb
    from cxrlab.catalog import open_workspace

    with cli_errors():
        ws = open_workspace(workspace)
        with ws.sessions() as session:
            existed = lb.remove_sizes(ws, benchmark=lb.get_benchmark_by_name(session, name))
    out.print("image sizes removed" if existed else "the benchmark had no image sizes")


def _set_state(name: str, state: str, workspace: Path | None) -> None:
    from cxrlab import benchmark as lb
    from cxrlab.catalog import open_workspace

    with cli_errors(), open_workspace(workspace).sessions() as session:
        lb.set_state(session, benchmark=lb.get_benchmark_by_name(session, name), state=state)
    out.print(f"benchmark {name} {state}")


@app.command("close")
def close(name: NameArg, workspace: WorkspaceOpt = None) -> None:
    """Close: no more submissions; private scores and ranking shown to everyone."""
    _set_state(name, "closed", workspace)


@app.command("reopen")
def reopen(name: NameArg, workspace: WorkspaceOpt = None) -> None:
    """Reopen a closed benchmark (private scores hidden again)."""
    _set_state(name, "open", workspace)


@app.command("scores")
def scores(name: NameArg, workspace: WorkspaceOpt = None) -> None:
    """The public ranking (best public score per user), and the private one once the benchmark is closed."""
    from rich.table import Table

    from cxrlab import benchmark as lb
    from cxrlab.catalog import open_workspace

    with cli_errors(), open_workspace(workspace).sessions() as session:
        board = lb.leaderboard(session, benchmark=lb.get_benchmark_by_name(session, name))
    for title, entries, key in (("public", board.public, "public_score"), ("private", board.private, "private_score")):
        if entries is None:
            out.print("private scores are shown when the benchmark is closed")
            continue
        table = Table("rank", "user", f"{title} score", "submitted (UTC)", "entries", title=f"{name}: {title}",
                      title_justify="left")
        for e in entries:
            value = getattr(e, key)
            table.add_row(str(e.rank), e.username, "-" if value is None else f"{value:.4f}",
                          f"{e.submitted_at:%Y-%m-%d %H:%M}", str(e.entries))
        out.print(table)


@app.command("score-pending")
def score_pending(workspace: WorkspaceOpt = None) -> None:
    """Score the queued submissions now (what a running `cxrlab serve` does in the background)."""
    from cxrlab.benchmark import ScoringWorker
    from cxrlab.catalog import open_workspace

    with cli_errors():
        n = ScoringWorker(open_workspace(workspace)).run_once()
    out.print(f"scored {n} submission(s)")


@app.command("submit")
def submit(
    submission: Annotated[Path, typer.Argument(exists=True, dir_okay=False,
                                               help="image_id,PredictionString (CSV or .csv.gz), e.g. from "
                                                    "`cxrlab predict` with a detector run.")],
    benchmark: Annotated[str, typer.Option("--benchmark", "-b", help="Benchmark name (or id) on the server.")],
    password: Annotated[str, typer.Option(envvar="CXRLAB_PASSWORD", prompt=True, hide_input=True,
                                          help="Asked for when not in CXRLAB_PASSWORD.")],
    server: Annotated[str, typer.Option(envvar="CXRLAB_SERVER", help="The web app's URL.")] = (
        "http://127.0.0.1:8000"),
    user: Annotated[str, typer.Option("--user", "-u", envvar="CXRLAB_USER", help="Your user name there.")] = "",
    wait: Annotated[bool, typer.Option(help="Wait until the server has scored it, and print the score.")] = True,
    timeout: Annotated[float, typer.Option(min=1, help="Seconds to wait for the score.")] = 600.0,
) -> None:
    """Upload a submission to a running `cxrlab serve` (any user may submit) and print its public score.

    The server validates it at once (the problems, with their lines, are printed and the exit code is 1) and
    scores it in the background; private scores show once the benchmark is closed.
    """
    from cxrlab.benchmark.remote import LeaderboardClient, RemoteError

    with cli_errors():
        if not user:
            raise RemoteError("give your user name with --user (or CXRLAB_USER)")
        client = LeaderboardClient(server)
        client.login(user, password)
        bench = client.benchmark(benchmark)
        sub = client.submit(int(bench["id"]), submission)
        out.print(f"submission {sub.id} to {bench['name']} ({bench['metric']}): {sub.state}")
        for message in sub.messages:
            out.print(f"  {message}", highlight=False)
        if wait:
            sub = client.wait(sub, timeout=timeout)
            if sub.state != "scored":
                raise RemoteError(f"submission {sub.id} {sub.state}: " + "; ".join(sub.messages))
            out.print(f"public score {sub.public_score:.4f}" if sub.public_score is not None else
                      "scored (no public score: the public part has no images)")
            if sub.private_score is not None:
                out.print(f"private score {sub.private_score:.4f}")
        out.print(f"ranking: {client.server}/benchmarks/{bench['id']}")
