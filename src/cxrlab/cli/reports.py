"""``cxrlab reports import|label|evaluate|reference``: image labels mined from radiology reports, and their score.

Report text is PHI: nothing here prints it. Problems name the file and the line; unmatched reports their id.
"""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from cxrlab.cli.common import WorkspaceOpt, cli_errors, err, out, print_report, progress

app = typer.Typer(help="Labels mined from radiology reports (the NIH ChestX-ray14 method).", no_args_is_help=True)
reference_app = typer.Typer(help="Reference labels of public report collections.", no_args_is_help=True)
app.add_typer(reference_app, name="reference")


class Uncertain(StrEnum):
    """What an uncertain mention (-1) becomes: mirrors ``cxrlab.reports.UncertainPolicy``."""

    KEEP = "keep"
    POSITIVE = "positive"
    NEGATIVE = "negative"


class Scored(StrEnum):
    """What a predicted -1 counts as when scoring."""

    NEGATIVE = "negative"
    POSITIVE = "positive"


class Format(StrEnum):
    """Output formats."""

    TABLE = "table"
    JSON = "json"


class MatchBy(StrEnum):
    """The identifier that links a report to its images: mirrors ``cxrlab.reports.Match``."""

    ACCESSION = "accession"
    STUDY_UID = "study-uid"


IdColumnOpt = Annotated[str, typer.Option(help="Table column of the report id.")]
TextColumnOpt = Annotated[str, typer.Option(help="Table column of the report text.")]
EncodingOpt = Annotated[str, typer.Option(help="Text encoding of a table.")]


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.3f}"


def _print_skipped(items: list[tuple[str, str]], what: str, *, most: int = 20) -> None:
    """List the first *most* skipped items (report ids or file:line, never text) on stdout."""
    from rich.markup import escape

    if items:
        shown = ", ".join(escape(item) for item, _ in items[:most])
        more = f" ... and {len(items) - most} more" if len(items) > most else ""
        out.print(f"{len(items)} {what}: {shown}{more}", highlight=False, soft_wrap=True)


@app.command("import")
def import_reports(
    source: Annotated[Path, typer.Argument(help="A .csv/.tsv/.jsonl table (.gz accepted), or OpenI *.xml.")],
    match: Annotated[MatchBy, typer.Option(help="Link reports to images by the Accession Number or the Study "
                                           "Instance UID of the original headers.")],
    workspace: WorkspaceOpt = None,
    key_column: Annotated[str | None, typer.Option(help="Table column of the identifier (default: accession or "
                                                   "study_uid); an OpenI file's key is its name.")] = None,
    id_column: IdColumnOpt = "report_id",
    text_column: TextColumnOpt = "text",
    encoding: EncodingOpt = "utf-8",
    report_file: Annotated[Path | None, typer.Option("--report", help="Write every unmatched or failed report "
                                                     "(id or file:line) with its outcome (CSV).")] = None,
) -> None:
    """Store reports in the workspace catalog and link them to images (the text never leaves the catalog).

    Unmatched reports (no image with that identifier) are kept and counted, and listed by report id; records that
    cannot be read are listed by file and line, and the exit code is then 2. A re-import changes nothing.
    """
    from cxrlab.catalog import open_workspace
    from cxrlab.errors import CxrlabError
    from cxrlab.reports import KEY_COLUMNS, Match, open_reports, run_import

    with cli_errors():
        ws = open_workspace(workspace)
        if report_file is not None and not report_file.parent.is_dir():
            raise CxrlabError(f"{report_file}: no such folder for the report")
        how = Match(match.value)
        reports = open_reports(source, id_column=id_column, text_column=text_column, encoding=encoding,
                               key_column=key_column or KEY_COLUMNS[how])
        with progress("import") as cb:
            report = run_import(ws, reports, match=how, on_progress=cb)
        if report_file is not None:
            report.write_csv(report_file)
    print_report(report)
    _print_skipped(report.skipped, "unmatched report(s) (no image with that identifier)")
    if report.counts.get("failed"):
        raise typer.Exit(code=2)


@app.command("label")
def label(
    source: Annotated[Path | None, typer.Argument(help="Folder of OpenI *.xml, one .xml, or a .csv/.tsv/.jsonl "
                                                  "table; none: the reports imported into the workspace.")] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Labels CSV to write: "
                                                "report_id,<label>... (with INPUT).")] = None,
    workspace: WorkspaceOpt = None,
    schema: Annotated[str, typer.Option(help="Vocabulary: nih14, vindr-cxr-global, vindr-cxr-local.")] = "nih14",
    uncertain: Annotated[Uncertain, typer.Option(help="Write uncertain labels as -1 (keep), 1 or 0.")] = Uncertain.KEEP,
    vocabulary: Annotated[
        list[Path] | None, typer.Option("--vocabulary", help="Site YAML extending the vocabulary (repeatable).")
    ] = None,
    id_column: IdColumnOpt = "report_id",
    text_column: TextColumnOpt = "text",
    encoding: EncodingOpt = "utf-8",
    sections: Annotated[
        str, typer.Option(help="Sections to read, comma-separated (body = text outside any heading).")
    ] = "findings,impression,body",
) -> None:
    """Label every report: 1 positive, 0 negative or not mentioned, -1 uncertain; print label counts.

    With INPUT -o OUT: the reports of a file or folder, written to a CSV. Without INPUT: the reports imported
    into the workspace (-w), stored as image labels (source: report) that replace those of an earlier run.
    Reports that cannot be read are listed on stderr (file and line) and left out; the exit code is then 2.
    """
    from cxrlab.reports import Labeler, UncertainPolicy
    from cxrlab.reports.sections import normalise_sections

    if source is not None and workspace is not None:
        raise typer.BadParameter("give INPUT -o OUT (files) or -w WORKSPACE (imported reports), not both")
    if source is not None and output is None:
        raise typer.BadParameter("INPUT needs -o OUT.csv", param_hint="--output")
    if source is None and output is not None:
        raise typer.BadParameter("-o is for INPUT; the labels of imported reports are stored in the workspace",
                                 param_hint="--output")
    with cli_errors():
        try:
            wanted = normalise_sections(s for s in sections.split(",") if s.strip())
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--sections") from None
        labeler = Labeler.from_schema(schema, extra=vocabulary or (), sections=wanted)
        policy = UncertainPolicy(uncertain.value)
        if source is None:
            run = _label_workspace(workspace, labeler, policy)
        else:
            from cxrlab.reports import open_reports, run_label

            reports = open_reports(source, id_column=id_column, text_column=text_column, encoding=encoding)
            with progress("reports") as cb:
                run = run_label(reports, labeler=labeler, output=output, uncertain=policy, on_progress=cb)
    _print_label_run(run, schema, per="images" if source is None else "reports")
    rate = run.report.total / run.report.seconds if run.report.seconds else 0.0
    if source is None:
        _print_skipped(run.report.skipped, "report(s) without an image in the catalog (file:line of the import)")
        out.print(f"{run.report.counts['labeled']} reports labeled -> {run.report.counts['images_labeled']} "
                  "images (report labels stored in the workspace)")
    else:
        out.print(f"{run.report.counts['labeled']} reports labeled -> {output} ({rate:,.0f} reports/s, reading "
                  "included)")
    if run.report.counts.get("failed"):
        raise typer.Exit(code=2)


def _label_workspace(workspace: Path | None, labeler, policy):  # noqa: ANN001, ANN202 - Labeler, UncertainPolicy
    from cxrlab.catalog import open_workspace
    from cxrlab.reports import run_label_workspace

    ws = open_workspace(workspace)
    with progress("reports") as cb:
        return run_label_workspace(ws, labeler=labeler, uncertain=policy, on_progress=cb)


def _print_label_run(run, schema: str, *, per: str) -> None:  # noqa: ANN001 - LabelRun
    """The stage report, then the label counts (per report or per image)."""
    from rich.table import Table

    print_report(run.report)
    table = Table(title=f"labels ({schema}), {per}", title_justify="left")
    for col in ("label", "positive", "uncertain", "negative"):
        table.add_column(col, justify="left" if col == "label" else "right")
    for name in run.labels:
        c = run.counts[name]
        table.add_row(name, str(c[1]), str(c[-1]), str(c[0]))
    out.print(table)


@app.command("evaluate")
def evaluate(
    reference: Annotated[Path, typer.Option("--reference", help="Reference labels CSV (report_id,<label>...).")],
    pred: Annotated[Path, typer.Option("--pred", help="Predicted labels CSV (cxrlab reports label).")],
    uncertain: Annotated[Scored, typer.Option(help="Count a predicted -1 as negative or positive.")] = Scored.NEGATIVE,
    fmt: Annotated[Format, typer.Option("--format", "-f", help="table (Rich) or json (stdout).")] = Format.TABLE,
) -> None:
    """Per-label precision, recall and F1, with micro and macro averages (and over the NIH-8 when present)."""
    from rich.table import Table

    from cxrlab.reports import run_evaluate

    with cli_errors():
        result = run_evaluate(reference, pred, uncertain=uncertain.value)
    if result.missing:
        err.print(f"[yellow]warning:[/] {result.missing} reference report(s) have no prediction (counted as 0)")
    if result.labels_skipped:
        err.print(f"[yellow]warning:[/] not in the predictions, not scored: {', '.join(result.labels_skipped)}")
    if fmt is Format.JSON:
        typer.echo(json.dumps(result.to_dict(), indent=2))
        return
    scores = result.scores
    table = Table(title=f"{scores.reports} reports", title_justify="left")
    for col in ("label", "support", "TP", "FP", "FN", "precision", "recall", "F1"):
        table.add_column(col, justify="left" if col == "label" else "right")

    def row(name: str, s) -> None:  # noqa: ANN001 - LabelScore
        table.add_row(name, str(s.support), str(s.tp), str(s.fp), str(s.fn), _fmt(s.precision), _fmt(s.recall),
                      _fmt(s.f1))

    for name, s in scores.per_label.items():
        row(name, s)
    table.add_section()
    for group, labels in {**scores.groups, f"all {len(scores.per_label)}": None}.items():
        row(f"[bold]micro {group}", scores.micro(labels))
        m = scores.macro(labels)
        table.add_row(f"macro {group}", "", "", "", "", _fmt(m["precision"]), _fmt(m["recall"]), _fmt(m["f1"]))
    out.print(table)


@reference_app.command("openi")
def reference_openi(
    folder: Annotated[Path, typer.Argument(help="Folder of OpenI *.xml reports.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Reference CSV to write.")],
) -> None:
    """NIH-14 reference labels from the reports' manual MeSH indexing (<major> terms).

    Atelectasis = Pulmonary Atelectasis, Cardiomegaly, Effusion = Pleural Effusion, Infiltration = Infiltrate,
    Mass, Nodule, Pneumonia, Pneumothorax, Consolidation, Edema = Pulmonary Edema, Emphysema = Emphysema or
    Pulmonary Emphysema, Fibrosis = Pulmonary Fibrosis, Pleural_Thickening = Thickening with "pleura" in the term,
    Hernia = Hernia, Hiatal or Hernia, Diaphragmatic; a label is 1 when a <major> term starts with its heading.
    """
    from cxrlab.reports import run_reference

    with cli_errors(), progress("reference") as cb:
        report = run_reference(folder, output=output, on_progress=cb)
    print_report(report)
    out.print(f"{report.counts['written']} reports -> {output}")
    if report.counts.get("failed"):
        raise typer.Exit(code=2)
