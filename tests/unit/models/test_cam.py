"""``cxrlab cam`` (issue 16): class activation maps turned into boxes for ``cxrlab evaluate localization``.

A hand-made network whose map is known (a bright square's cells) checks the boxes; a real tiny run checks the
re-export of a run exported before the ``cam`` output; NIH's real PNGs check the layout on real films.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

pytest.importorskip("torch")
pytest.importorskip("onnxruntime")
pytest.importorskip("scipy")

import torch  # noqa: E402
from torch import nn  # noqa: E402

from cxrlab.cli.main import app  # noqa: E402
from cxrlab.errors import CxrlabError  # noqa: E402
from cxrlab.evaluate import score_localization  # noqa: E402
from cxrlab.evaluate.localization import read_nih_boxes  # noqa: E402
from cxrlab.models import run_cam  # noqa: E402
from cxrlab.models.cam import CAM_HEADER, cam_boxes, heatmap_boxes, upsample  # noqa: E402
from cxrlab.models.networks import Classifier, ExportWrapper, build  # noqa: E402
from cxrlab.models.train import CLASSIFIER_FORMAT, TRAIN_HINT  # noqa: E402
from cxrlab.runtime.onnx import export_onnx  # noqa: E402
from tests.support.data import real_data  # noqa: E402

runner = CliRunner()
#: The hand-made network's input side, and the phantom image's side and bright square (x0, y0, x1, y1).
SIZE, SIDE, SQUARE = 64, 256, (128, 64, 192, 128)
#: Its classes: NIH names, so the box list's spelling ("Infiltrate") is checked too.
CLASSES = ["Infiltration", "Mass", "No Finding"]


class _CellMeans(nn.Module):
    """A trunk whose one feature channel is the mean of each 8 x 8 cell of the (standardised) image."""

    channels = 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.avg_pool2d(x, 8)


def _square_net() -> Classifier:
    """A classifier whose map of "Infiltration" is the image's brightness, of "Mass" its darkness (a bias of -1
    keeps the probability of "Mass" below 0.5 on the dark film; maps have no bias)."""
    net = Classifier("small", len(CLASSES))
    net.trunk = _CellMeans()
    net.fc = nn.Linear(1, len(CLASSES))
    with torch.no_grad():
        net.fc.weight[:] = torch.tensor([[1.0], [-1.0], [1.0]])
        net.fc.bias[:] = torch.tensor([0.0, -1.0, 0.0])
    return net.eval()


def _export(run: Path, *, with_cam: bool = True, schema: str | None = "nih14") -> Path:
    """Write a run folder's model.onnx + model.json for the hand-made network (without the cam output: as a run
    exported before cxrlab cam)."""
    net = _square_net()
    wrapper: nn.Module = ExportWrapper(net)
    names = ["probabilities", "cam"]
    if not with_cam:
        wrapper, names = nn.Sequential(net, nn.Sigmoid()), ["probabilities"]
    side = {"format": CLASSIFIER_FORMAT, "classes": CLASSES, "schema": schema,
            "input": {"name": "image", "size": SIZE, "window": "file"}}
    export_onnx(wrapper, torch.zeros(1, 1, SIZE, SIZE), run / "model.onnx", side, input_names=["image"],
                output_names=names, hint=TRAIN_HINT)
    return run


@pytest.fixture(scope="module")
def square_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _export(tmp_path_factory.mktemp("cam") / "run")


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two PNGs: a dark film with the bright square, and the same film twice as wide (boxes scale with it)."""
    root = tmp_path_factory.mktemp("images")
    x0, y0, x1, y1 = SQUARE
    img = np.full((SIDE, SIDE), 40, np.uint8)
    img[y0:y1, x0:x1] = 220
    Image.fromarray(img).save(root / "a.png")
    Image.fromarray(np.repeat(img, 2, axis=1)).save(root / "b.png")
    return root


def _rows(path: Path) -> list[list[str]]:
    with path.open(newline="") as fh:
        return list(csv.reader(fh))


def _iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


class TestUpsample:
    def test_matches_torch_bilinear_with_half_pixel_centres(self) -> None:
        cam = np.random.default_rng(0).normal(size=(3, 5))
        ours = upsample(cam, (17, 23))
        ref = nn.functional.interpolate(torch.from_numpy(cam)[None, None], size=(17, 23), mode="bilinear",
                                        align_corners=False)[0, 0].numpy()
        np.testing.assert_allclose(ours, ref, atol=1e-12)


class TestHeatmapBoxes:
    def test_one_box_per_region_ranked_by_peak(self) -> None:
        heat = np.zeros((20, 30))
        heat[2:5, 3:9] = 0.6  # region 1: peak 0.6
        heat[10:18, 20:25] = 0.8
        heat[12, 22] = 1.0  # region 2: peak 1.0
        heat[15, 2] = 0.4  # below the threshold
        assert heatmap_boxes(heat, 0.5, 5) == [(1.0, 20, 10, 25, 18), (0.6, 3, 2, 9, 5)]
        assert heatmap_boxes(heat, 0.5, 1) == [(1.0, 20, 10, 25, 18)]
        assert heatmap_boxes(heat, 0.3, 5)[-1] == (0.4, 2, 15, 3, 16)

    def test_diagonal_cells_are_one_region(self) -> None:
        heat = np.zeros((4, 4))
        heat[0, 0] = heat[1, 1] = 1.0
        assert heatmap_boxes(heat, 0.5, 5) == [(1.0, 0, 0, 2, 2)]


class TestCamBoxes:
    def test_a_hot_cell_gives_its_box_in_the_original_pixels(self) -> None:
        cam = np.zeros((4, 4))
        cam[1, 2] = 3.0  # the cell spanning x 200-300, y 50-100 of a 400 x 200 image
        [(peak, x0, y0, x1, y1)] = cam_boxes(cam, (200, 400), threshold=0.5)
        assert peak == pytest.approx(1.0)
        assert (x0, y0, x1, y1) == (200, 50, 300, 100)  # bilinear: half of the way to the neighbours' centres

    def test_a_map_with_nothing_positive_gives_no_box(self) -> None:
        assert cam_boxes(-np.ones((3, 3)), (30, 30)) == []

    def test_bad_options_raise(self) -> None:
        with pytest.raises(ValueError, match="threshold must be in"):
            cam_boxes(np.ones((2, 2)), (4, 4), threshold=0.0)
        with pytest.raises(ValueError, match="max_boxes must be >= 1"):
            cam_boxes(np.ones((2, 2)), (4, 4), max_boxes=0)


class TestRunCam:
    def test_the_box_of_the_hot_region_in_the_box_list_layout(self, square_run: Path, images: Path,
                                                              tmp_path: Path) -> None:
        out = tmp_path / "boxes.csv"
        done = run_cam(square_run, images, out, threshold=0.5)  # half-way between a hot and a cold cell's centres
        rows = _rows(out)
        assert tuple(rows[0]) == CAM_HEADER
        assert done["labels"] == ["Infiltrate", "Mass"]  # NIH's box-list spelling; "No Finding" never localized
        by = {(r[0], r[1]): tuple(float(v) for v in r[2:6]) for r in rows[1:]}
        assert sorted(by) == [("a.png", "Infiltrate"), ("a.png", "Mass"), ("b.png", "Infiltrate"),
                              ("b.png", "Mass")]
        x, y, w, h = by[("a.png", "Infiltrate")]
        assert _iou((x, y, x + w, y + h), SQUARE) > 0.8, by
        x, y, w, h = by[("b.png", "Infiltrate")]  # the wide film: x doubles
        assert _iou((x, y, x + w, y + h), (2 * SQUARE[0], SQUARE[1], 2 * SQUARE[2], SQUARE[3])) > 0.8, by
        x, y, w, h = by[("a.png", "Mass")]  # the dark part: not the square
        assert _iou((x, y, x + w, y + h), SQUARE) < 0.2, by
        assert float(rows[1][6]) > 0.9  # the probability of "Infiltration" times the peak, 1

    def test_the_scorer_reads_it(self, square_run: Path, images: Path, tmp_path: Path) -> None:
        out = tmp_path / "boxes.csv"
        run_cam(square_run, images / "a.png", out, labels=["infiltrate"])
        gt = tmp_path / "gt.csv"
        x0, y0, x1, y1 = SQUARE
        gt.write_text(f"Image Index,Finding Label,Bbox [x,y,w,h],,,\na.png,Infiltrate,{x0},{y0},{x1 - x0},{y1 - y0}\n")
        assert len(read_nih_boxes(out)) == 1
        result = score_localization(gt, out)
        assert result.table["iou"][0.5]["Infiltrate"]["acc"] == 1.0
        assert result.table["iou"][0.5]["Infiltrate"]["afp"] == 0.0

    def test_reruns_are_byte_identical_and_options_apply(self, square_run: Path, images: Path,
                                                         tmp_path: Path) -> None:
        a, b, c = tmp_path / "a.csv", tmp_path / "b.csv", tmp_path / "c.csv"
        run_cam(square_run, images, a)
        run_cam(square_run, images, b)
        assert a.read_bytes() == b.read_bytes()
        run_cam(square_run, images, c, labels=["Mass"], min_prob=0.5)  # the square net gives Mass < 0.5
        assert _rows(c) == [list(CAM_HEADER)]

    def test_unknown_label_raises(self, square_run: Path, images: Path, tmp_path: Path) -> None:
        with pytest.raises(CxrlabError, match="the run has no label 'Nodule'"):
            run_cam(square_run, images, tmp_path / "x.csv", labels=["Nodule"])
        assert not (tmp_path / "x.csv").exists()

    def test_a_model_without_the_cam_output_raises_saying_how_to_reexport(self, images: Path,
                                                                           tmp_path: Path) -> None:
        run = _export(tmp_path / "old", with_cam=False)
        with pytest.raises(CxrlabError, match=r"old/model.onnx: has no class activation output.*cxrlab train export"):
            run_cam(run, images, tmp_path / "x.csv")


def test_cli_cam_on_real_nih_pngs(square_run: Path, tmp_path: Path) -> None:
    """The 13 real NIH films (one of them RGBA): one row per image and label in NIH's layout, in the 1024 x 1024
    frame of ``BBox_List_2017.csv``."""
    nih = real_data("nih")
    out = tmp_path / "boxes.csv"
    result = runner.invoke(app, ["cam", str(square_run), str(nih), "-o", str(out), "--max-boxes-per-label", "2"])
    assert result.exit_code == 0, result.output
    rows = _rows(out)
    names = sorted(p.name for p in nih.glob("*.png"))
    assert rows[0] == list(CAM_HEADER)
    assert sorted({r[0] for r in rows[1:]}) == names
    assert {r[1] for r in rows[1:]} == {"Infiltrate", "Mass"}
    for r in rows[1:]:
        x, y, w, h = (int(v) for v in r[2:6])
        assert 0 <= x < x + w <= 1024 and 0 <= y < y + h <= 1024, r
        assert 0.0 <= float(r[6]) <= 1.0
    boxes = read_nih_boxes(out)
    assert len(boxes) == len(rows) - 1


def test_cli_train_export_gives_an_old_run_its_cam_output(tmp_path: Path) -> None:
    from cxrlab.datasets import write_phantom_release
    from cxrlab.models import train_classifier

    release = tmp_path / "release"
    write_phantom_release(release, 12, seed=3, size_range=(64, 72), finding_prob=0.5, test_share=0.0)
    run = tmp_path / "run"
    train_classifier(release, run, arch="small", size=32, epochs=1, batch_size=4, seed=1, threads=1)
    shutil.rmtree(release)  # re-exporting needs no release
    old = tmp_path / "old"
    shutil.copytree(run, old)
    side = json.loads((run / "model.json").read_text())  # the same network, exported as before cxrlab cam
    side["outputs"].pop("cam")
    net = build("small", len(side["classes"]))
    net.load_state_dict(torch.load(run / "best.pt", weights_only=True)["model"])
    export_onnx(nn.Sequential(net, nn.Sigmoid()).eval(), torch.zeros(1, 1, 32, 32), old / "model.onnx", side,
                input_names=["image"], output_names=["probabilities"], hint=TRAIN_HINT)
    result = runner.invoke(app, ["cam", str(old), str(tmp_path), "-o", str(tmp_path / "x.csv")])
    assert result.exit_code == 1 and "cxrlab train export" in " ".join(result.output.split()), result.output
    result = runner.invoke(app, ["train", "export", str(old)])
    assert result.exit_code == 0, result.output
    assert (old / "model.onnx").read_bytes() == (run / "model.onnx").read_bytes()
    assert (old / "model.json").read_bytes() == (run / "model.json").read_bytes()


def test_cli_defaults_mirror_the_library() -> None:
    """``cxrlab cam`` repeats the library's defaults (so that ``--help`` imports nothing heavy): they must agree."""
    import inspect

    from cxrlab.cli.models import cam
    from cxrlab.models.cam import DEFAULT_MAX_BOXES, DEFAULT_THRESHOLD

    params = inspect.signature(cam).parameters
    assert params["threshold"].default == DEFAULT_THRESHOLD
    assert params["max_boxes"].default == DEFAULT_MAX_BOXES
