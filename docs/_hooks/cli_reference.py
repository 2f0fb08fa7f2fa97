"""MkDocs hook: the CLI reference page (``reference/cli.md``), generated from the Typer app at build time.

Each command's text comes from Typer's own markdown generator (``typer.cli.get_docs_for_click``, what ``typer
... utils docs`` prints), so the page always matches ``cxrlab --help``; this hook adds one or more examples per
top-level command (:data:`EXAMPLES`; ``tests/integration/test_docs.py`` checks that every command has one and
that each example names only existing commands and options) and escapes help text for Markdown.
"""

from __future__ import annotations

import re

import typer
from mkdocs.structure.files import File, Files

PAGE = "reference/cli.md"

#: Examples per top-level command, in the order of ``cxrlab --help``.
EXAMPLES: dict[str, list[str]] = {
    "init": ["cxrlab init ws --schema vindr-pcxr --population pediatric",
             "cxrlab init ws --database-url postgresql+psycopg://cxrlab@localhost/cxrlab"],
    "render": ["cxrlab render RG1_UNCI.dcm -o out.png --window 15000,30000 --max-size 1024"],
    "phantom": ["cxrlab phantom phantoms -n 50 --seed 1 --min-size 1024 --max-size 3000",
                "cxrlab phantom outliers -n 200 --outlier-prob 0.5 --mislabel-prob 1",
                "cxrlab phantom phantom-release -n 300 --vindr --findings 0.35 --test-share 0.2"],
    "consensus": ["cxrlab consensus -w ws",
                  "cxrlab consensus --annotations annotations_train.csv --method wbf --iou 0.4 -o consensus.csv"],
    "split": ["cxrlab split -w ws --test-size 1397 --method stratified --seed 0",
              "cxrlab split --nih Data_Entry_2017.csv --method group --test-size 0.2 -o lists/"],
    "export": ["cxrlab export v1 -w ws --format coco --format yolo --format png --png-size 1024",
               "cxrlab export v1 -w ws --format sr",
               "cxrlab export weak-v1 -w ws --format nih --source report",
               "cxrlab export r1 --from-vindr vindr-cxr/ -o releases/",
               "cxrlab export v1 -w /shared/ws --format png --png-size 512 --scheduler tcp://10.0.0.1:8786"],
    "serve": ["cxrlab serve -w ws --host 127.0.0.1 --port 8000"],
    "demo": ["cxrlab demo -w demo-workspace -n 60 --no-serve"],
    "ingest": ["cxrlab ingest folder /mnt/archive -w ws",
               "cxrlab ingest folder /shared/archive -w /shared/ws --scheduler tcp://10.0.0.1:8786"],
    "collect": ["cxrlab collect pacs --host pacs --port 104 --called-aet PACS --study-date 20200101-20201231 "
                "--body-part CHEST -w ws",
                "cxrlab collect pacs --host pacs --port 104 --called-aet PACS --method move --move-port 11113 -w ws",
                "cxrlab collect listen --port 11112 --aet CXRLAB --allow-aet MODALITY1 -w ws",
                "cxrlab collect dicomweb https://pacs/dicom-web --modality DX --limit 100 -w ws"],
    "send": ["cxrlab send pacs ws/exports/v1/sr --host pacs --port 104 --called-aet PACS",
             "cxrlab send dicomweb https://pacs/dicom-web ws/exports/v1/sr"],
    "deid": ["cxrlab deid run -w ws",
             "cxrlab deid run -w /shared/ws --scheduler tcp://10.0.0.1:8786",
             "cxrlab deid folder /mnt/in /mnt/out --profile vindr --key-file site.key",
             "cxrlab deid verify /mnt/out --profile vindr --source /mnt/in --key-file site.key",
             "cxrlab deid export-mapping map.csv --mapping site.key.mapping.sqlite"],
    "filter": ["cxrlab filter train --phantoms 1200 --seed 0 -o filter.onnx",
               "cxrlab filter predict filter.onnx images/ extra.png --format csv > decisions.csv",
               "cxrlab filter run -w ws --model filter.onnx --threshold 0.8 --audit 0.02",
               "cxrlab filter run -w /shared/ws --scheduler tcp://10.0.0.1:8786",
               "cxrlab filter queue -w ws",
               "cxrlab filter verify 588bdc491982bb513faed3440b90e13c --outlier lateral --author vera -w ws",
               "cxrlab filter queue -w ws --queue text",
               "cxrlab filter verify 6b55b8aa06c699ce8d4b22a5168b6a67 --text redact --box 20,24,120,56 --author vera "
               "-w ws",
               "cxrlab filter verify da8567e0ca40c44173e90e61c2a62dfe --set-aside return --author vera -w ws",
               "cxrlab filter train -w ws --epochs 8 -o ws/models/filter.onnx"],
    "stats": ["cxrlab stats table2 v1 -w ws",
              "cxrlab stats table2 --annotations annotations_train.csv.gz --image-labels image_labels_train.csv "
              "--meta meta.csv --format json",
              "cxrlab stats figures -a annotations_train.csv -l image_labels_train.csv -o figures/",
              "cxrlab stats cooccurrence --nih Data_Entry_2017.csv.gz --format png -o cooc.png"],
    "reports": ["cxrlab reports label openi-dev --schema nih14 -o labels.csv",
                "cxrlab reports label reports.csv --id-column accession --text-column text --schema vindr-cxr-global "
                "--uncertain positive -o labels.csv",
                "cxrlab reports import ris-export.csv --match accession --key-column AccessionNumber -w ws",
                "cxrlab reports import reports.jsonl --match study-uid --id-column id -w ws --report unmatched.csv",
                "cxrlab reports label -w ws --schema nih14 --uncertain positive",
                "cxrlab reports reference openi openi-dev -o ref.csv",
                "cxrlab reports evaluate --reference ref.csv --pred labels.csv --format json"],
    "import": ["cxrlab import vindr /data/vindr-cxr -w ws", "cxrlab import nih /data/nih -w ws"],
    "annotate": ["cxrlab annotate assign -p study -w ws --readers 3 --reviewers 2 --test-fraction 0.2",
                 "cxrlab annotate status -p study -w ws",
                 "cxrlab annotate gold -p study -w ws --source consensus 4f9c0e2a7b1d 9a3e55c0d8f1",
                 "cxrlab annotate assign -p study -w ws --gold-rate 0.05",
                 "cxrlab annotate quality -p study -w ws",
                 "cxrlab annotate record readings.json -w ws",
                 "cxrlab annotate simulate -w ws --readers 3 --seed 0",
                 "cxrlab annotate assign -p study -w ws --suggest runs/detector",
                 "cxrlab annotate suggest -p study -w ws runs/detector",
                 "cxrlab annotate suggest -p study -w ws --off"],
    "users": ["cxrlab users add alice --role annotator -w ws", "cxrlab users list -w ws",
              "cxrlab users disable alice -w ws", "cxrlab users password alice -w ws"],
    "evaluate": ["cxrlab evaluate detection --gt annotations_test.csv --pred submission.csv --metric kaggle "
                 "--format json",
                 "cxrlab evaluate classification --gt image_labels_test.csv --pred probs.csv --n-boot 1000 --seed 0",
                 "cxrlab evaluate localization --gt BBox_List_2017.csv --pred boxes.csv",
                 "cxrlab evaluate validate submission.csv --gt annotations_test.csv --meta sizes.csv"],
    "leaderboard": ["cxrlab leaderboard create vindr-test --metric kaggle --public-fraction 0.5 --daily-limit 5 -w ws",
                    "cxrlab leaderboard upload-labels vindr-test annotations_test.csv -w ws",
                    "cxrlab leaderboard upload-sizes vindr-test image_sizes.csv -w ws",
                    "cxrlab leaderboard scores vindr-test -w ws",
                    "cxrlab leaderboard score-pending -w ws"],
    "cluster": ["cxrlab cluster local --workers 2",
                "cxrlab cluster local --workers 4 --port 8786 --dashboard-port 8787"],
    "train": ["cxrlab train classifier phantom-release -o run --arch small --size 192 --epochs 20 --lr 3e-3",
              "cxrlab train classifier vindr-cxr/ -o run --arch densenet121 --size 512 --epochs 30 --init w.pt",
              "cxrlab train classifier vindr-cxr/ -o run --arch densenet121 --size 512 --epochs 40 --resume",
              "cxrlab train detector phantom-release -o det --arch small --size 192 --epochs 20 --lr 2e-3",
              "cxrlab train export run"],
    "predict": ["cxrlab predict run phantom-release/test -o probs.csv",
                "cxrlab predict det held-out/test -o submission.csv"],
    "cam": ["cxrlab cam run held-out/test -o boxes.csv --labels Cardiomegaly,'Pleural effusion'",
            "cxrlab cam nih-run nih/images -o boxes.csv --threshold 0.235 --max-boxes-per-label 3 --min-prob 0.5"],
}

_SPECIAL = re.compile(r"[<>*]")


def _escape(text: str) -> str:
    """Escape Markdown/HTML specials outside ``code`` spans (help text may say ``<image_id>.dicom``)."""
    parts = text.split("`")
    return "`".join(p if i % 2 else _SPECIAL.sub(lambda m: "\\" + m.group(0), p) for i, p in enumerate(parts))


def _markdown(generated: str) -> str:
    out, in_code = [], False
    for line in generated.splitlines():
        if line.startswith("```"):
            in_code = not in_code
        elif not in_code and not line.startswith("#"):
            line = ("* " + _escape(line[2:])) if line.startswith("* ") else _escape(line)
        out.append(line)
    return "\n".join(out)


def root_command():  # noqa: ANN201 - Typer's click group (typer >= 0.2x vendors click)
    """The ``cxrlab`` command group built from the Typer app."""
    from cxrlab.cli.main import app

    return typer.main.get_command(app)


def cli_reference() -> str:
    """The whole page: an overview, then each top-level command with its examples and its sub-commands."""
    from typer.cli import get_docs_for_click

    root = root_command()
    ctx = typer.Context(root, info_name="cxrlab")
    names = root.list_commands(ctx)
    missing = sorted(set(names) - set(EXAMPLES))
    if missing:
        raise ValueError(f"docs/_hooks/cli_reference.py: no example for cxrlab {', '.join(missing)}")
    page = [
        "# CLI reference",
        "",
        "Generated from the Typer app (`cxrlab.cli.main`) when the site is built: the same text as "
        "`cxrlab COMMAND --help`. Commands that work on a workspace take `-w/--workspace DIR` (default: "
        "`$CXRLAB_WORKSPACE`, else the current folder). Batch stages use every core unless `--workers N` says "
        "otherwise, show a progress bar on stderr and print a summary table on stdout.",
        "",
        "| command | what it does |",
        "|---|---|",
    ]
    for name in names:
        command = root.get_command(ctx, name)
        page.append(f"| [`cxrlab {name}`](#cxrlab-{name}) | {_escape(command.get_short_help_str(limit=100))} |")
    page.append("")
    for name in names:
        command = root.get_command(ctx, name)
        text = _markdown(get_docs_for_click(obj=command, ctx=ctx, indent=1, call_prefix="cxrlab"))
        heading, _, rest = text.partition("\n")
        examples = "\n".join(EXAMPLES[name])
        page += [heading, "", "**Examples**:", "", "```console", examples, "```", rest.rstrip(), ""]
    return "\n".join(page) + "\n"


def on_files(files: Files, config) -> Files:  # noqa: ANN001 - mkdocs' MkDocsConfig
    """Add the generated page to the site (it exists only in the build, never in ``docs/``)."""
    files.append(File.generated(config, PAGE, content=cli_reference()))
    return files
