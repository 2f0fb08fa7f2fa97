"""``cxrlab render`` and ``cxrlab phantom``: plain-file tools that need no workspace."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cxrlab.cli.common import SEED_MAX, cli_errors, out, progress


def register(app: typer.Typer) -> None:
    """Attach these commands to the root app."""
    app.command("render")(render)
    app.command("phantom")(phantom)


def _parse_window(text: str | None) -> tuple[float, float] | None:
    from cxrlab.dicom.display import parse_window

    try:
        return parse_window(text)
    except ValueError as exc:
        raise typer.BadParameter(f"expected CENTER,WIDTH, e.g. 2048,4096 ({exc})", param_hint="--window") from None


def render(
    file: Annotated[Path, typer.Argument(help="A DICOM file.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="PNG or JPEG file to write.")],
    window: Annotated[
        str | None, typer.Option(help="CENTER,WIDTH in modality units (default: the file's).")
    ] = None,
    max_size: Annotated[int | None, typer.Option(min=16, help="Longest side in pixels.")] = None,
) -> None:
    """Render what a radiologist sees: modality LUT -> VOI LUT/window -> MONOCHROME1 inversion -> 8 bit."""
    from cxrlab.dicom.display import render_file
    from cxrlab.errors import CxrlabError

    if output.suffix.lower() not in (".png", ".jpg", ".jpeg"):
        raise typer.BadParameter("output must end in .png, .jpg or .jpeg", param_hint="--output")
    with cli_errors():
        if not file.exists():
            raise CxrlabError(f"{file}: file not found")
        try:
            render_file(file, output, window=_parse_window(window), max_size=max_size)
        except OSError as exc:
            if exc.filename and Path(exc.filename).resolve() == file.resolve():
                raise CxrlabError(f"{file}: cannot read ({exc.strerror or type(exc).__name__})") from None
            raise CxrlabError(f"{output}: cannot write ({exc.strerror or type(exc).__name__})") from None
    out.print(f"wrote {output}")


def phantom(
    out_dir: Annotated[Path, typer.Argument(help="Folder to write the phantoms and truth.json into.")],
    n: Annotated[int, typer.Option("-n", min=1, help="Number of images.")] = 10,
    seed: Annotated[int, typer.Option(min=0, max=SEED_MAX, help="Random seed (same seed, same bytes).")] = 0,
    min_size: Annotated[int, typer.Option(min=64, help="Smallest side.")] = 1024,
    max_size: Annotated[int, typer.Option(min=64, help="Largest side.")] = 3000,
    text_prob: Annotated[float, typer.Option(min=0, max=1, help="Share with burned-in text.")] = 0.3,
    outlier_prob: Annotated[float, typer.Option(min=0, max=1, help="Share of outliers.")] = 0.15,
    mislabel_prob: Annotated[float, typer.Option(min=0, max=1, help="Share of the outliers whose header looks like "
                                                 "an adult frontal chest film's (only the pixels tell).")] = 0.0,
    findings: Annotated[float, typer.Option(min=0, max=1, help="Probability of each planted finding (a nodule, an "
                                            "enlarged heart, a pleural effusion) on adult frontal chests; boxes "
                                            "in truth.json.")] = 0.0,
    vindr: Annotated[bool, typer.Option("--vindr", help="Write a phantom release in the VinDr layout instead: "
                                        "train/ and test/ <image_id>.dicom, annotations_*.csv and image_labels_*.csv "
                                        "with simulated readers (no outliers, no burned-in text).")] = False,
    test_share: Annotated[float, typer.Option(min=0, max=1, help="With --vindr: share of images in test/.")] = 0.2,
    readers: Annotated[int, typer.Option(min=1, max=17, help="With --vindr: readers per training image.")] = 3,
) -> None:
    """Write synthetic chest X-ray DICOMs with planted PHI, burned-in text, outliers and findings (ground truth in
    truth.json), or with --vindr a phantom release in the VinDr layout for training and testing models."""
    from cxrlab.dicom.phantom import generate_phantoms

    if min_size > max_size:
        raise typer.BadParameter("--min-size must not exceed --max-size")
    if vindr:
        from cxrlab.datasets import write_phantom_release

        with cli_errors(), progress("phantoms") as cb:
            frame = write_phantom_release(out_dir, n, seed=seed, size_range=(min_size, max_size),
                                          finding_prob=findings, test_share=test_share, readers=readers,
                                          on_progress=cb)
        counts = ", ".join(f"{c} {int(frame[c].sum())}" for c in frame.columns[4:])
        out.print(f"wrote a phantom release of {len(frame)} image(s) to {out_dir} (train "
                  f"{int((frame['split'] == 'train').sum())}, test {int((frame['split'] == 'test').sum())}; "
                  f"planted: {counts})")
        return
    with cli_errors(), progress("phantoms") as cb:
        truths = generate_phantoms(
            out_dir,
            n,
            seed=seed,
            size_range=(min_size, max_size),
            text_prob=text_prob,
            outlier_prob=outlier_prob,
            mislabel_prob=mislabel_prob,
            finding_prob=findings,
            on_progress=cb,
        )
    out.print(f"wrote {len(truths)} phantom(s) and truth.json to {out_dir}")
