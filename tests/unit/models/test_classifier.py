"""The baseline classifier (issue 16): a run folder, resume, deterministic prediction, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

import torch  # noqa: E402

from cxrlab.cli.main import app  # noqa: E402
from cxrlab.datasets import write_phantom_release  # noqa: E402
from cxrlab.errors import CxrlabError  # noqa: E402
from cxrlab.models import predict_classifier, train_classifier  # noqa: E402

runner = CliRunner()
KW = {"arch": "small", "size": 48, "batch_size": 8, "seed": 5, "threads": 1}


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("rel") / "release"
    write_phantom_release(root, 24, seed=2, size_range=(64, 80), finding_prob=0.5, test_share=0.25)
    return root


@pytest.fixture(scope="module")
def trained(release: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("runs") / "straight"
    train_classifier(release, run, epochs=2, **KW)
    return run


def test_run_folder_holds_config_metrics_checkpoints_and_onnx(trained: Path) -> None:
    names = {p.name for p in trained.iterdir()}
    assert {"config.json", "metrics.csv", "metrics.png", "last.pt", "best.pt", "model.onnx", "model.json"} <= names
    assert not [n for n in names if n.startswith(".") or n.endswith(".tmp")]  # nothing half-written left
    side = json.loads((trained / "model.json").read_text())
    config = json.loads((trained / "config.json").read_text())
    assert side["format"] == "cxrlab-classifier/1" and side["classes"] == config["classes"]
    assert "Cardiomegaly" in side["classes"] and side["input"]["size"] == 48 and side["input"]["window"] == "file"
    assert len(side["sha256"]) == 64
    lines = (trained / "metrics.csv").read_text().splitlines()
    assert lines[0] == "epoch,train_loss,val_loss,val_mean_auc,lr,seconds" and len(lines) == 3


def test_resume_continues_from_the_checkpoint(release: Path, trained: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    train_classifier(release, run, epochs=1, **KW)
    assert len((run / "metrics.csv").read_text().splitlines()) == 2
    train_classifier(release, run, epochs=2, resume=True, **KW)
    rows = (run / "metrics.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in rows[1:]] == ["1", "2"]
    # each epoch is seeded by (seed, epoch): the resumed run computed what the uninterrupted one did
    got = torch.load(run / "last.pt", weights_only=True)
    want = torch.load(trained / "last.pt", weights_only=True)
    assert got["epoch"] == want["epoch"] == 2
    for key, value in want["model"].items():
        assert torch.allclose(got["model"][key].float(), value.float(), atol=1e-5), key
    straight = [r.rsplit(",", 1)[0] for r in (trained / "metrics.csv").read_text().splitlines()]
    assert [r.rsplit(",", 1)[0] for r in rows] == straight  # the same losses and AUC (seconds differ)


def test_resume_refuses_another_configuration_and_a_missing_checkpoint(release: Path, trained: Path,
                                                                      tmp_path: Path) -> None:
    with pytest.raises(CxrlabError, match="another size"):
        train_classifier(release, trained, epochs=3, resume=True, **{**KW, "size": 64})
    with pytest.raises(CxrlabError, match="no checkpoint to resume from"):
        train_classifier(release, tmp_path / "new", epochs=1, resume=True, **KW)
    with pytest.raises(CxrlabError, match="not empty"):
        train_classifier(release, trained, epochs=1, **KW)


def test_predict_is_deterministic_and_evaluate_reads_it(release: Path, trained: Path, tmp_path: Path) -> None:
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    done = predict_classifier(trained, release / "test", a)
    predict_classifier(trained, release / "test", b)
    assert a.read_bytes() == b.read_bytes()
    header = a.read_text().splitlines()[0].split(",")
    assert header[0] == "image_id" and header[1:] == done["classes"]
    assert done["images"] == len(list((release / "test").glob("*.dicom")))
    result = runner.invoke(app, ["evaluate", "classification", "--gt", str(release / "image_labels_test.csv"),
                                 "--pred", str(a), "--n-boot", "10", "-f", "json"])
    assert result.exit_code == 0, result.output
    assert np.isfinite(json.loads(result.output)["mean_auc"])


def test_init_starts_from_a_weights_file(release: Path, trained: Path, tmp_path: Path) -> None:
    weights = tmp_path / "w.pt"
    torch.save(torch.load(trained / "best.pt", weights_only=True)["model"], weights)
    train_classifier(release, tmp_path / "run", epochs=1, init=weights, **KW)
    assert json.loads((tmp_path / "run" / "config.json").read_text())["init"] == str(weights)
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CxrlabError, match="bad.pt: not a readable weights file"):
        train_classifier(release, tmp_path / "run2", epochs=1, init=bad, **KW)


def _one_line_error(args: list[str], code: int, *words: str) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == code, result.output
    text = " ".join(result.output.split())
    assert all(w in text for w in words), result.output
    assert "Traceback" not in result.output


def test_bad_inputs_give_one_line_errors(release: Path, trained: Path, tmp_path: Path) -> None:
    _one_line_error(["train", "classifier", str(tmp_path / "nope"), "-o", str(tmp_path / "r")], 1,
                    "nope: release folder not found")
    _one_line_error(["train", "classifier", str(release), "--arch", "vgg", "-o", str(tmp_path / "r")], 2,
                    "unknown architecture", "vgg")
    _one_line_error(["train", "classifier", str(tmp_path), "-o", str(tmp_path / "r")], 1,
                    "no annotations_*.csv or image_labels_*.csv")
    _one_line_error(["predict", str(tmp_path), str(release / "test"), "-o", str(tmp_path / "p.csv")], 1,
                    "model.onnx: no model here")
    _one_line_error(["predict", str(trained), str(tmp_path / "none"), "-o", str(tmp_path / "p.csv")], 1,
                    "none: no such file or folder")
    assert not (tmp_path / "p.csv").exists()
