"""``cxrlab init``, ``cxrlab ingest folder``, ``cxrlab deid run|folder|verify|export-mapping``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cxrlab.cli.common import (
    SchedulerOpt,
    WorkersOpt,
    WorkspaceOpt,
    batch_executor,
    cli_errors,
    err,
    out,
    print_report,
    progress,
)

ingest_app = typer.Typer(help="Bring DICOM files into the workspace.", no_args_is_help=True)
deid_app = typer.Typer(help="De-identify ingested images.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Attach these commands to the root app."""
    app.command("init")(init)
    app.add_typer(ingest_app, name="ingest")
    app.add_typer(deid_app, name="deid")


def init(
    workspace: Annotated[Path, typer.Argument(help="Folder to create (or complete).")],
    schema: Annotated[str, typer.Option(help="Label schema: vindr-cxr, vindr-pcxr or nih14.")] = "vindr-cxr",
    population: Annotated[str, typer.Option(help="adult, pediatric or any.")] = "adult",
    database_url: Annotated[
        str, typer.Option(help="SQLAlchemy URL (default: SQLite in the workspace).")
    ] = "",
) -> None:
    """Create a workspace: settings, catalog (migrated), secret key and stage folders."""
    from cxrlab.catalog import init_workspace, parse_settings

    with cli_errors():
        settings = parse_settings({"schema": schema, "population": population, "database_url": database_url},
                                  source="cxrlab init")
        ws = init_workspace(workspace, settings=settings)
    out.print(
        f"workspace ready: {ws.root} (catalog {ws.database_url.split('://')[0]}, schema {ws.settings.schema})"
    )


@ingest_app.command("folder")
def ingest_folder_cmd(
    path: Annotated[Path, typer.Argument(help="Folder (searched recursively) or a single file.")],
    workspace: WorkspaceOpt = None,
    workers: WorkersOpt = None,
    scheduler: SchedulerOpt = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="List the duplicates and non-DICOM files "
                                          "skipped.")] = False,
    report_file: Annotated[Path | None, typer.Option("--report", help="Write every skipped or quarantined file "
                                                     "with its outcome and reason (CSV).")] = None,
) -> None:
    """Ingest DICOM files: non-DICOM files are skipped, duplicates ignored, bad files quarantined."""
    from cxrlab.catalog import open_workspace
    from cxrlab.errors import CxrlabError
    from cxrlab.ingest import run_ingest

    with cli_errors():
        ws = open_workspace(workspace)
        if report_file is not None and not report_file.parent.is_dir():
            raise CxrlabError(f"{report_file}: no such folder for the report")
        with batch_executor(workers, scheduler, paths=(ws.root, path)) as executor, progress("ingest") as cb:
            report = run_ingest(ws, path, executor=executor, on_progress=cb)
        if report_file is not None:
            report.write_csv(report_file)
    print_report(report, verbose=verbose, executor=executor)
    if report_file is not None:
        out.print(f"list of skipped and quarantined files -> {report_file}", highlight=False)


@deid_app.command("run")
def deid_run(
    workspace: WorkspaceOpt = None,
    workers: WorkersOpt = None,
    scheduler: SchedulerOpt = None,
    text: Annotated[bool | None, typer.Option("--text/--no-text", help="Scan for burned-in text "
                                              "(default: on when the \\[ocr] extra is installed).")] = None,
) -> None:
    """De-identify every ingested image with the workspace profile (VinDr 25-tag keep-list)."""
    from cxrlab.catalog import open_workspace
    from cxrlab.deid import run_deid

    with cli_errors():
        ws = open_workspace(workspace)
        with batch_executor(workers, scheduler, paths=(ws.root,)) as executor, progress("deid") as cb:
            report = run_deid(ws, executor=executor, on_progress=cb, text=text)
    print_report(report, executor=executor)


ProfileOpt = Annotated[str, typer.Option("--profile", "-p", help="vindr, basic, or a YAML profile file.")]
KeyOpt = Annotated[Path, typer.Option("--key-file", "-k", help="Secret key file (hex; keep it private).")]
SchemeOpt = Annotated[str, typer.Option("--id-scheme", help="hmac (keyed) or md5 (VinDr public; reversible).")]


TextOpt = Annotated[bool | None, typer.Option("--text/--no-text", help="Detect and redact burned-in text "
                                                "(default: on when the \\[ocr] extra is installed).")]


def _mapping_default(key_file: Path) -> Path:
    return key_file.with_name(key_file.name + ".mapping.sqlite")


def _text_options(enabled: bool | None, review_dir: Path):  # noqa: ANN202
    """TextOptions, or None when text scanning is off (or unavailable and not asked for)."""
    from cxrlab.deid.engine import TextOptions, ocr_available
    from cxrlab.errors import CxrlabError

    if enabled is False:
        return None
    if not ocr_available():
        if enabled:
            raise CxrlabError("burned-in text detection needs the OCR extra: pip install 'cxrlab[ocr]'")
        err.print("[yellow]warning:[/] burned-in text is NOT scanned (install the \\[ocr] extra, or pass --no-text)")
        return None
    return TextOptions(review_dir=review_dir)


@deid_app.command("folder")
def deid_folder_cmd(
    src: Annotated[Path, typer.Argument(help="Folder of DICOM files (searched recursively).")],
    out: Annotated[Path, typer.Argument(help="Output folder: <image_id>.dicom files.")],
    key_file: KeyOpt,
    profile: ProfileOpt = "vindr",
    id_scheme: SchemeOpt = "hmac",
    mapping: Annotated[Path | None, typer.Option(help="Mapping store (default: beside the key file).")] = None,
    workers: WorkersOpt = None,
    scheduler: SchedulerOpt = None,
    text: TextOpt = None,
    review: Annotated[Path | None, typer.Option(help="Review folder (default: OUT/../review).")] = None,
    sync: Annotated[bool, typer.Option("--sync", help="Return only when every output is on disk.")] = False,
) -> None:
    """De-identify a folder without a workspace (streaming, parallel, resumable after a kill). Images with doubtful
    burned-in text are held back in the review folder with a preview."""
    from cxrlab.deid import deid_folder, get_profile, load_key
    from cxrlab.deid.identifiers import ID_SCHEMES

    if id_scheme not in ID_SCHEMES:
        raise typer.BadParameter(f"one of {', '.join(ID_SCHEMES)}", param_hint="--id-scheme")
    with cli_errors():
        prof = get_profile(profile)
        key = load_key(key_file)
        review_dir = review or out.resolve().parent / "review"
        text_opts = _text_options(text, review_dir)
        shared = (src, out) if text_opts is None else (src, out, review_dir)
        with batch_executor(workers, scheduler, paths=shared) as executor, progress("deid") as cb:
            report = deid_folder(src, out, profile=prof, key=key, id_scheme=id_scheme,
                                 mapping=mapping or _mapping_default(key_file), executor=executor,
                                 on_progress=cb, text=text_opts, sync=sync)
    print_report(report, executor=executor)
    if report.counts.get("failed"):
        raise typer.Exit(code=2)


@deid_app.command("verify")
def deid_verify(
    folder: Annotated[Path | None, typer.Argument(help="Folder of de-identified *.dicom files "
                                                    "(default: the workspace's images).")] = None,
    profile: Annotated[str | None, typer.Option("--profile", "-p", help="vindr, basic, or a YAML profile file "
                                                "(default: vindr, or the workspace's).")] = None,
    source: Annotated[Path | None, typer.Option(help="Source folder: also check pixels and source PHI.")] = None,
    key_file: Annotated[Path | None, typer.Option("--key-file", "-k", help="Key used (with --source).")] = None,
    id_scheme: SchemeOpt = "hmac",
    phi_file: Annotated[Path | None, typer.Option(help="Known PHI strings, one per line.")] = None,
    report: Annotated[Path | None, typer.Option(help="Report JSON (default: FOLDER/../verify-report.json).")] = None,
    mapping: Annotated[Path | None, typer.Option(help="Mapping store (default: beside the key file); every "
                                                 "output must have its rows there.")] = None,
    review: Annotated[Path | None, typer.Option(help="Review folder: held-back images are not missing.")] = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """Re-read every output and fail (exit 1) if any element outside the profile, any known PHI string, an output
    without its image (no Pixel Data, another size), any pixel change outside redacted boxes, or a missing mapping
    row is found. With --workspace (or without FOLDER), FOLDER defaults to its images/, --source to its raw/, and
    the key and the mapping are the workspace's."""
    from cxrlab.catalog import open_workspace
    from cxrlab.deid import get_profile, load_key, verify_folder
    from cxrlab.deid.batch import mapping_engine
    from cxrlab.errors import CxrlabError

    with cli_errors():
        key = load_key(key_file) if key_file else None
        engine = None
        if folder is None or workspace is not None:
            ws = open_workspace(workspace)
            folder, source, key = folder or ws.path("images"), source or ws.path("raw"), key or ws.secret_key()
            engine = None if mapping else ws.engine
            profile, review = profile or ws.settings.deid_profile, review or ws.path("review")
        if not folder.is_dir():
            raise CxrlabError(f"{folder}: no such folder")
        if source is not None and key is None:
            raise CxrlabError("--source needs --key-file to match outputs to sources")
        store = mapping or (_mapping_default(key_file) if key_file else None)
        if engine is None and store is not None:
            if not store.exists():
                raise CxrlabError(f"{store}: no such mapping store (give --mapping)")
            engine = mapping_engine(store)
        phi = phi_file.read_text(encoding="utf-8").splitlines() if phi_file else []
        review = review or folder.resolve().parent / "review"
        held = {p.stem for p in review.glob("*.json")} if review.is_dir() else set()
        result = verify_folder(folder, profile=get_profile(profile or "vindr"), phi_strings=phi, source_dir=source,
                               key=key, id_scheme=id_scheme,
                               report_path=report or folder.resolve().parent / "verify-report.json",
                               redactions=_redactions(engine), held_back=held, mapping=engine)
    out.print(f"verified {result.files} file(s): {result.clean} clean, {len(result.findings)} finding(s)")
    if engine is None:
        out.print("mapping not checked (give --key-file or --mapping)")
    for f in result.findings[:20]:
        out.print(f"  {f.image_id}: {f.check}: {f.detail}", highlight=False)
    if not result.ok:
        raise typer.Exit(code=1)


def _redactions(engine) -> dict[str, list]:  # noqa: ANN001 - a SQLAlchemy Engine or None
    """``image_id -> boxes`` from a mapping store or catalog (empty when there is none)."""
    from cxrlab.deid.batch import read_redactions

    return {} if engine is None else read_redactions(engine)


@deid_app.command("export-mapping")
def deid_export_mapping(
    output: Annotated[Path, typer.Argument(help="CSV to write (original,kind,new). Keep it inside the hospital.")],
    workspace: WorkspaceOpt = None,
    mapping: Annotated[Path | None, typer.Option(help="A folder-mode mapping store instead of a workspace.")] = None,
) -> None:
    """Export the original -> de-identified identifier mapping, for the hospital's own records only."""
    from cxrlab.catalog import open_workspace
    from cxrlab.deid.batch import export_mapping, mapping_engine

    with cli_errors():
        engine = mapping_engine(mapping) if mapping else open_workspace(workspace).engine
        n = export_mapping(engine, output)
    out.print(f"wrote {n} mapping row(s) to {output} (mode 0600)")
