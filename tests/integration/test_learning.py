"""The learning test that can fail (issue 16): a classifier trained for a few CPU minutes on phantoms with planted
findings (a nodule, an enlarged heart, a pleural effusion; ``cxrlab phantom --vindr``) scores mean AUC >= 0.9 on
phantoms of another seed, as ``cxrlab evaluate classification`` computes it. Everything goes through the CLI, as a
researcher would run it; everything is seeded (phantoms, split, order, augmentation, initialisation)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

pytest.importorskip("torch")
pytest.importorskip("onnxruntime")
pytest.importorskip("sklearn")

import torch  # noqa: E402

from cxrlab.cli.main import app  # noqa: E402

runner = CliRunner()
#: What the test asserts (issue 16, "Tests and benchmark").
MIN_MEAN_AUC = 0.9


def _ok(args: list[str]) -> str:
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.slow  # about 1.5 CPU minutes: 420 phantoms, 20 epochs of the small network at 192 px
def test_classifier_learns_the_planted_findings(tmp_path: Path) -> None:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train, held_out = tmp_path / "train", tmp_path / "held_out"
        common = ["--vindr", "--min-size", "256", "--max-size", "320", "--findings", "0.35"]
        _ok(["phantom", str(train), "-n", "300", "--seed", "11", "--test-share", "0", *common])
        _ok(["phantom", str(held_out), "-n", "120", "--seed", "12", "--test-share", "1", *common])
        run = tmp_path / "run"
        _ok(["train", "classifier", str(train), "-o", str(run), "--arch", "small", "--size", "192", "--epochs",
             "20", "--batch-size", "16", "--lr", "3e-3", "--seed", "0", "--threads", "1"])
        probs = tmp_path / "probs.csv"
        _ok(["predict", str(run), str(held_out / "test"), "-o", str(probs)])
        scored = json.loads(_ok(["evaluate", "classification", "--gt", str(held_out / "image_labels_test.csv"),
                                 "--pred", str(probs), "--n-boot", "200", "-f", "json"]))
    finally:
        torch.set_num_threads(before)
    aucs = {k: round(v["auc"], 3) for k, v in scored["per_class"].items() if v["auc"] is not None}
    assert set(aucs) == {"Cardiomegaly", "Nodule/Mass", "Pleural effusion", "No finding"}, aucs
    assert scored["mean_auc"] >= MIN_MEAN_AUC, aucs
