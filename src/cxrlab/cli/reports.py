"""``cxrlab reports label|evaluate|reference``: image labels mined from radiology reports, and their score.

Report text is PHI: nothing here prints it. Problems name the file and the line.
"""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from cxrlab.cli.common import cli_errors, err, out, print_report, progress

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


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.3f}"


@app.command("label")
def label(
    source: Annotated[Path, typer.Argument(help="Folder of OpenI *.xml, one .xml, or a .csv/.tsv/.jsonl table.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Labels CSV to write: report_id,<label>...")],
    schema: Annotated[str, typer.Option(help="Vocabulary: nih14, vindr-cxr-global, vindr-cxr-local.")] = "nih14",
    uncertain: Annotated[Uncertain, typer.Option(help="Write uncertain labels as -1 (keep), 1 or 0.")] = Uncertain.KEEP,
    vocabulary: Annotated[
        list[Path] | None, typer.Option("--vocabulary", help="Site YAML extending the vocabulary (repeatable).")
    ] = None,
    id_column: Annotated[str, typer.Option(help="Table column of the report id.")] = "report_id",
    text_column: Annotated[str, typer.Option(help="Table column of the report text.")] = "text",
    encoding: Annotated[str, typer.Option(help="Text encoding of a table.")] = "utf-8",
    sections: Annotated[
        str, typer.Option(help="Sections to read, comma-separated (body = text outside any heading).")
    ] = "findings,impression,body",
) -> None:
    """Label every report: 1 positive, 0 negative or not mentioned, -1 uncertain; print label counts.

    Reports that cannot be read are listed on stderr (file and line) and left out; the exit code is then 2.
    """
    from rich.table import Table

    from cxrlab.reports import Labeler, UncertainPolicy, open_reports, run_label
    from cxrlab.reports.sections import normalise_sections

    with cli_errors():
        try:
            wanted = normalise_sections(s for s in sections.split(",") if s.strip())
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--sections") from None
        labeler = Labeler.from_schema(schema, extra=vocabulary or (), sections=wanted)
        reports = open_reports(source, id_column=id_column, text_column=text_column, encoding=encoding)
        with progress("reports") as cb:
            run = run_label(reports, labeler=labeler, output=output, uncertain=UncertainPolicy(uncertain.value),
                            on_progress=cb)
    print_report(run.report)
    table = Table(title=f"labels ({schema})", title_justify="left")
    for col in ("label", "positive", "uncertain", "negative"):
        table.add_column(col, justify="left" if col == "label" else "right")
    for name in run.labels:
        c = run.counts[name]
        table.add_row(name, str(c[1]), str(c[-1]), str(c[0]))
    out.print(table)
    rate = run.report.total / run.report.seconds if run.report.seconds else 0.0
    out.print(f"{run.report.counts['labeled']} reports labeled -> {output} ({rate:,.0f} reports/s, reading included)")
    if run.report.counts.get("failed"):
        raise typer.Exit(code=2)


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
