"""``cxrlab train detector`` and ``cxrlab predict`` on a detector run: targets, decoding, NMS, the run folder, a
deterministic submission that ``cxrlab evaluate detection`` accepts, resume, and refusals."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

import torch  # noqa: E402

from cxrlab.cli.main import app  # noqa: E402
from cxrlab.datasets import write_phantom_release  # noqa: E402
from cxrlab.errors import CxrlabError  # noqa: E402
from cxrlab.models import (  # noqa: E402
    DetectorModel,
    decode_detections,
    predict_detector,
    predict_run,
    train_classifier,
    train_detector,
)
from cxrlab.models.detector import STRIDE, Detector, detector_targets  # noqa: E402
from cxrlab.models.predict import nms  # noqa: E402

runner = CliRunner()
KW = {"arch": "small", "size": 64, "batch_size": 8, "seed": 3, "threads": 1}


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("rel") / "release"
    write_phantom_release(root, 24, seed=4, size_range=(64, 80), finding_prob=0.6, test_share=0.25)
    return root


@pytest.fixture(scope="module")
def trained(release: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("runs") / "det"
    train_detector(release, run, epochs=2, **KW)
    return run


def test_targets_peak_at_the_centre_cell_with_size_and_offset() -> None:
    heat, reg, mask = detector_targets([[(1, 8.0, 16.0, 40.0, 32.0)], []], 2, 64)
    assert heat.shape == (2, 2, 8, 8) and reg.shape == (2, 4, 8, 8) and mask.shape == (2, 1, 8, 8)
    # centre (24, 24) px = cell (3, 3), offset 0; size 32 x 16 px = 4 x 2 cells
    assert heat[0, 1, 3, 3] == 1.0 and heat[0, 1].max() == 1.0 and heat[0, 0].max() == 0.0
    assert reg[0, :, 3, 3].tolist() == [4.0, 2.0, 0.0, 0.0] and mask.sum() == 1.0 and heat[1].max() == 0.0
    shifted, _, m2 = detector_targets([[(0, 8.0, 16.0, 40.0, 32.0)]], 1, 64, shift=(0, STRIDE))
    assert shifted[0, 0, 3, 4] == 1.0 and m2[0, 0, 3, 4] == 1.0


def test_decoding_finds_the_peak_box_and_nms_keeps_the_best() -> None:
    out = np.zeros((2 + 4, 8, 8), np.float32)
    out[1, 3, 3] = 0.9
    out[2:, 3, 3] = (4.0, 2.0, 0.5, 0.5)  # 32 x 16 px around (28, 28)
    found = decode_detections(out, 2, STRIDE, 64)
    assert found == [(1, pytest.approx(0.9), 12.0, 20.0, 44.0, 36.0)]
    boxes = np.array([[0, 0, 10, 10], [1, 1, 10, 10], [20, 20, 30, 30]], np.float64)
    assert nms(boxes, np.array([0.5, 0.9, 0.4])).tolist() == [1, 2]
    thin = out.copy()
    thin[2, 3, 3] = 0.01  # 0.08 px wide: a box that could never match is not written
    thin[0, 5, 5], thin[2:, 5, 5] = 0.8, (2.0, 2.0, 0.0, 0.0)
    assert [d[0] for d in decode_detections(thin, 2, STRIDE, 64)] == [0]
    out[0] = 0.0  # below the score floor: nothing
    out[1, 3, 3] = 0.0
    assert decode_detections(out, 2, STRIDE, 64) == []


def test_run_folder_and_sidecar(trained: Path) -> None:
    names = {p.name for p in trained.iterdir()}
    assert {"config.json", "metrics.csv", "metrics.png", "last.pt", "best.pt", "model.onnx", "model.json"} <= names
    assert not [n for n in names if n.startswith(".") or n.endswith(".tmp")]
    side = json.loads((trained / "model.json").read_text())
    assert side["format"] == "cxrlab-detector/1" and side["schema"] == "vindr-cxr" and side["stride"] == STRIDE
    assert set(side["classes"]) <= {"Cardiomegaly", "Nodule/Mass", "Pleural effusion"} and side["classes"]
    assert side["class_ids"]["Cardiomegaly"] == 2 and side["no_finding_id"] == 22
    lines = (trained / "metrics.csv").read_text().splitlines()
    assert lines[0] == "epoch,train_loss,val_loss,lr,seconds" and len(lines) == 3


def test_predict_writes_a_deterministic_submission_evaluate_accepts(trained: Path, release: Path,
                                                                    tmp_path: Path) -> None:
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    done = predict_run(trained, release / "test", a)
    predict_detector(trained, release / "test", b)
    assert a.read_bytes() == b.read_bytes() and done["schema"] == "vindr-cxr"
    rows = a.read_text().splitlines()
    assert rows[0] == "image_id,PredictionString" and len(rows) == done["images"] + 1
    assert all(r.endswith(" 0 0 1 1") for r in rows[1:])  # No finding, 1 - best score
    result = runner.invoke(app, ["evaluate", "detection", "--gt", str(release / "annotations_test.csv"), "--pred",
                                 str(a), "--classes", "vindr-cxr", "-f", "json"])
    assert result.exit_code == 0, result.output
    assert 0.0 <= json.loads(result.stdout)["mAP"] <= 1.0


def test_image_labels_are_the_heatmap_maxima_evaluate_classification_reads(trained: Path, release: Path,
                                                                          tmp_path: Path) -> None:
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    result = runner.invoke(app, ["predict", str(trained), str(release / "test"), "-o", str(a), "--image-labels"])
    assert result.exit_code == 0, result.output
    predict_run(trained, release / "test", b, image_labels=True)
    assert a.read_bytes() == b.read_bytes()
    probs = pd.read_csv(a)
    model = DetectorModel(trained)
    assert list(probs.columns) == ["image_id", *model.classes, "No finding"]
    first = probs.iloc[0]
    path = next(p for p in (release / "test").iterdir() if p.stem == first["image_id"])
    heat = model.image_scores(path)
    assert [first[c] for c in model.classes] == pytest.approx(heat.tolist(), abs=1e-6)
    assert first["No finding"] == pytest.approx(1.0 - heat.max(), abs=1e-6)
    result = runner.invoke(app, ["evaluate", "classification", "--gt", str(release / "image_labels_test.csv"),
                                 "--pred", str(a), "--n-boot", "20", "-f", "json"])
    assert result.exit_code == 0, result.output


def test_resume_continues_to_the_same_weights(release: Path, trained: Path, tmp_path: Path) -> None:
    run = tmp_path / "resumed"
    train_detector(release, run, epochs=1, **KW)
    train_detector(release, run, epochs=2, resume=True, **KW)
    a = torch.load(trained / "last.pt", weights_only=True)["model"]
    b = torch.load(run / "last.pt", weights_only=True)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("arch", ["resnet50", "densenet121"])
def test_the_classifier_backbones_train_export_and_predict(arch: str, release: Path, tmp_path: Path) -> None:
    net = Detector(arch, 3)  # split at strides 8 / 16 / 32: the map is a stride-8 grid of classes + 4 channels
    assert tuple(net.eval()(torch.rand(1, 1, 96, 96)).shape) == (1, 3 + 4, 12, 12)
    run = tmp_path / arch
    result = runner.invoke(app, ["train", "detector", str(release), "-o", str(run), "--arch", arch, "--size", "64",
                                 "--epochs", "1", "--batch-size", "8", "--threads", "1"])
    assert result.exit_code == 0 and f"trained a {arch} detector" in result.output, result.output
    assert json.loads((run / "model.json").read_text())["network"]["arch"] == arch
    done = predict_run(run, release / "test", tmp_path / "sub.csv")
    assert done["images"] == len(list((release / "test").iterdir()))


def test_refusals(release: Path, trained: Path, tmp_path: Path) -> None:
    with pytest.raises(CxrlabError, match="not empty"):
        train_detector(release, trained, epochs=1, **KW)
    with pytest.raises(CxrlabError, match="architecture"):
        train_detector(release, tmp_path / "r", epochs=1, **{**KW, "arch": "vgg16"})
    with pytest.raises(CxrlabError, match="multiple of 32"):
        train_detector(release, tmp_path / "r", epochs=1, **{**KW, "size": 80})
    clf = tmp_path / "clf"
    train_classifier(release, clf, epochs=1, **{**KW, "size": 48})
    with pytest.raises(CxrlabError, match="detector"):
        DetectorModel(clf)
    started = tmp_path / "from-classifier"  # a small classifier's weights start the backbone (no match: refused)
    train_detector(release, started, epochs=1, init=clf / "best.pt", **KW)
    assert json.loads((started / "config.json").read_text())["init"] == str(clf / "best.pt")
    with pytest.raises(CxrlabError, match="another task"):
        train_detector(release, clf, epochs=2, resume=True, **KW)
    empty = tmp_path / "empty"
    write_phantom_release(empty, 12, seed=1, size_range=(64, 72), finding_prob=0.0, test_share=0.0,
                          false_prob=0.0)
    with pytest.raises(CxrlabError, match="no box"):
        train_detector(empty, tmp_path / "e", epochs=1, **KW)


def test_cli_train_detector_and_predict(release: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    result = runner.invoke(app, ["train", "detector", str(release), "-o", str(run), "--size", "64", "--epochs", "1",
                                 "--batch-size", "8", "--threads", "1"])
    assert result.exit_code == 0, result.output
    assert "detector" in result.output and (run / "model.onnx").is_file()
    result = runner.invoke(app, ["predict", str(run), str(release / "test"), "-o", str(tmp_path / "sub.csv")])
    assert result.exit_code == 0, result.output
    assert "evaluate detection --classes vindr-cxr" in result.output
    assert runner.invoke(app, ["train", "detector", str(release), "-o", str(tmp_path / "x"), "--size",
                               "80"]).exit_code == 2
