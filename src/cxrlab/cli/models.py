"""``cxrlab train classifier|detector|export``, ``cxrlab predict`` and ``cxrlab cam``: baseline models for a release
(the ``[ml]`` extra)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from cxrlab.cli.common import SEED_MAX, ml_errors, multi_progress, out, progress

app = typer.Typer(help="Train baseline models on a release (needs the \\[ml] extra; nothing is downloaded).",
                  no_args_is_help=True)

#: Mirrors ``cxrlab.models.ARCHS`` so that ``--help`` imports nothing heavy.
ARCH_NAMES = ("small", "resnet50", "densenet121")


def register(root: typer.Typer) -> None:
    """Add ``train`` (sub-app), ``predict`` and ``cam`` to the root app."""
    root.add_typer(app, name="train")
    root.command("predict")(predict)
    root.command("cam")(cam)


def _train_command(task: str) -> Callable[..., None]:
    """The ``cxrlab train classifier|detector`` command: both take the same options (the detector: ``--size`` a
    multiple of 32)."""

    def command(
        release: Annotated[Path, typer.Argument(help="A VinDr-layout release or cxrlab export (an NIH ChestX-ray14 "
                                                "root for the classifier).")],
        output: Annotated[Path, typer.Option("--output", "-o", help="The run folder.")],
        arch: Annotated[str, typer.Option(help="small, resnet50 or densenet121.")] = "small",
        size: Annotated[int, typer.Option(min=32, max=4096, help="Input side in pixels (detector: a multiple of "
                                          "32).")] = 512,
        epochs: Annotated[int, typer.Option(min=1, max=10_000, help="Total epochs.")] = 10,
        batch_size: Annotated[int, typer.Option("--batch-size", min=2, max=4096, help="Images per step.")] = 16,
        lr: Annotated[float, typer.Option(min=1e-7, max=1.0, help="Peak learning rate (AdamW).")] = 1e-3,
        seed: Annotated[int, typer.Option(min=0, max=SEED_MAX, help="Seed of split, order, augmentation, init.")] = 0,
        window: Annotated[str, typer.Option(help="Display window: file, full or auto.")] = "file",
        init: Annotated[Path | None, typer.Option("--init", help="Start from this weights file (a state_dict); "
                                                  "nothing is ever downloaded.")] = None,
        resume: Annotated[bool, typer.Option("--resume", help="Continue the run from its last.pt.")] = False,
        threads: Annotated[int | None, typer.Option(min=1, max=256, help="Torch CPU threads.")] = None,
        device: Annotated[str | None, typer.Option(help="cuda or cpu (default: cuda when present).")] = None,
    ) -> None:
        if arch not in ARCH_NAMES:
            raise typer.BadParameter(f"unknown architecture {arch!r}: {', '.join(ARCH_NAMES)}", param_hint="--arch")
        if window not in ("file", "full", "auto"):
            raise typer.BadParameter("file, full or auto", param_hint="--window")
        if task == "detector" and (size % 32 or size < 64):
            raise typer.BadParameter("a multiple of 32, at least 64", param_hint="--size")
        with ml_errors(), multi_progress() as add:
            from cxrlab import models

            train = models.train_classifier if task == "classifier" else models.train_detector
            side = train(release, output, arch=arch, size=size, epochs=epochs, batch_size=batch_size, lr=lr,
                         seed=seed, window=window, init=init, resume=resume, threads=threads, device=device,
                         on_progress=add)
        m = side["metrics"]
        if task == "classifier":
            auc = "-" if m.get("val_mean_auc") is None else f"{m['val_mean_auc']:.4f}"
            what, score = f"{len(side['classes'])} label(s)", f", mean AUC {auc}"
        else:
            what, score = f"{len(side['classes'])} box class(es) ({', '.join(side['classes'])})", ""
        out.print(f"trained a {side['network']['arch']} {task} on {side['training']['images']} image(s), {what}; "
                  f"best epoch {side['training']['best_epoch']} (validation loss {m['val_loss']}{score}); wrote "
                  f"{output / 'model.onnx'}", highlight=False)

    return command


app.command("classifier", help="Train a multi-label classifier of the release's image labels into a run folder "
            "(config, metrics CSV and PNG, checkpoints, ONNX export).")(_train_command("classifier"))
app.command("detector", help="Train a one-stage anchor-free detector (CenterNet-style) of the release's boxed "
            "(local) labels into a run folder (config, metrics CSV and PNG, checkpoints, ONNX export).")(
    _train_command("detector"))


def predict(
    run: Annotated[Path, typer.Argument(help="A run folder of cxrlab train classifier|detector (or its "
                                        "model.onnx).")],
    images: Annotated[Path, typer.Argument(help="An image file or a folder of them (.dicom, .dcm, .png, .jpg).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="probs.csv (classifier) or submission.csv "
                                         "(detector) to write: cxrlab evaluate classification|detection's --pred.")],
    threads: Annotated[int, typer.Option(min=1, max=256, help="onnxruntime threads.")] = 1,
    image_labels: Annotated[bool, typer.Option("--image-labels", help="A detector run writes probs.csv instead: "
                                               "each label's highest heatmap score, No finding 1 - the highest "
                                               "(a classifier run always does).")] = False,
) -> None:
    """Predict with a trained run on onnxruntime, deterministic: a classifier writes probs.csv (image_id + one
    column per label), a detector a detection submission (image_id,PredictionString), or with --image-labels
    its image-level probs.csv."""
    with ml_errors(), progress("predict") as cb:
        from cxrlab.models import predict_run

        done = predict_run(run, images, output, threads=threads, image_labels=image_labels, on_progress=cb)
    if "boxes" in done:
        out.print(f"wrote {output}: {done['boxes']} box(es) on {done['images']} image(s); score it with cxrlab "
                  f"evaluate detection --classes {done['schema']}", highlight=False)
        return
    out.print(f"wrote {output}: {done['images']} image(s) x {len(done['classes'])} label(s)", highlight=False)


@app.command("export")
def export(run: Annotated[Path, typer.Argument(help="A run folder of cxrlab train classifier.")]) -> None:
    """Export a classifier run's best.pt again to model.onnx + model.json (needs torch; the release is not needed):
    a run trained before cxrlab cam has no class activation output until it is re-exported."""
    with ml_errors():
        from cxrlab.models import export_classifier

        side = export_classifier(run)
    out.print(f"wrote {run / 'model.onnx'} (best epoch {side['training']['best_epoch']}, outputs "
              f"{', '.join(side['outputs'])})", highlight=False)


def cam(
    run: Annotated[Path, typer.Argument(help="A run folder of cxrlab train classifier (or its model.onnx).")],
    images: Annotated[Path, typer.Argument(help="An image file or a folder of them (.dicom, .dcm, .png, .jpg).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="boxes.csv to write (BBox_List_2017.csv layout "
                                         "plus a score column): cxrlab evaluate localization's --pred.")],
    labels: Annotated[str | None, typer.Option("--labels", help="Comma-separated labels to localize (default: "
                                               "every label of the run but No finding).")] = None,
    threshold: Annotated[float, typer.Option(min=0.01, max=1.0, help="Keep the map's cells of at least this "
                                             "fraction of its maximum (ChestX-ray8: 60/255 and 180/255).")] = 0.7,
    max_boxes: Annotated[int, typer.Option("--max-boxes-per-label", min=1, max=1000, help="Most boxes per image "
                                           "and label (regions ranked by their peak).")] = 1,
    min_prob: Annotated[float, typer.Option("--min-prob", min=0.0, max=1.0, help="Localize a label only where the "
                                            "classifier gives it at least this probability (0: always).")] = 0.0,
    threads: Annotated[int, typer.Option(min=1, max=256, help="onnxruntime threads.")] = 1,
) -> None:
    """Turn a classifier's class activation maps into boxes (ChestX-ray8 section 3.2) on onnxruntime,
    deterministic: per image and label, the map upsampled to the original image, thresholded at a fraction of
    its maximum, one box per connected region, in NIH's box-list layout for cxrlab evaluate localization."""
    names = [n.strip() for n in labels.split(",") if n.strip()] if labels else None
    with ml_errors(), progress("cam") as cb:
        from cxrlab.models import run_cam

        done = run_cam(run, images, output, labels=names, threshold=threshold, max_boxes=max_boxes,
                       min_prob=min_prob, threads=threads, on_progress=cb)
    out.print(f"wrote {output}: {done['boxes']} box(es) on {done['images']} image(s) for {len(done['labels'])} "
              f"label(s); score it with cxrlab evaluate localization --gt BBox_List_2017.csv --pred {output}",
              highlight=False)
