"""``cxrlab evaluate``: each command on real files, JSON output, and exit 1 with line numbers on bad input."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from cxrlab.cli.main import app
from tests.support.data import real_data

runner = CliRunner()

GT = (
    "image_id,rad_id,class_name,x_min,y_min,x_max,y_max,class_id\n"
    "a,,No finding,,,,,14\n"
    "b,,Cardiomegaly,100,200,400,380,3\n"
    "b,,Pleural effusion,20,300,90,420,10\n"
    "c,,Cardiomegaly,120,220,420,390,3\n"
)


def invoke(*args: object):  # noqa: ANN201
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    gt = tmp_path / "annotations_test.csv"
    gt.write_text(GT)
    sub = tmp_path / "submission.csv"
    sub.write_text(
        "image_id,PredictionString\n"
        "a,14 1 0 0 1 1\n"
        "b,3 0.9 100 200 400 380 10 0.8 20 300 90 420\n"
        "c,3 0.7 500 500 600 600 3 0.6 120 220 420 390\n"
    )
    return gt, sub


class TestDetection:
    def test_table_and_json(self, files: tuple[Path, Path]) -> None:
        gt, sub = files
        result = invoke("evaluate", "detection", "--gt", gt, "--pred", sub, "--metric", "voc")
        assert result.exit_code == 0, result.output
        assert "voc mAP@0.4" in result.output and "Cardiomegaly" in result.output
        result = invoke("evaluate", "detection", "--gt", gt, "--pred", sub, "--metric", "coco", "--format", "json")
        assert result.exit_code == 0, result.output
        data = json.loads(result.stdout)
        assert set(data) >= {"mAP", "per_class", "AP50", "AP75"}
        assert data["per_class"]["No finding"] == pytest.approx(1.0)
        assert data["per_class"]["Aortic enlargement"] is None

    def test_kaggle_json_matches_library(self, files: tuple[Path, Path]) -> None:
        from cxrlab.evaluate import score_submission

        gt, sub = files
        result = invoke("evaluate", "detection", "--gt", gt, "--pred", sub, "--format", "json")
        assert json.loads(result.stdout)["mAP"] == score_submission(gt, sub).mAP

    def test_invalid_submission_exits_1_with_lines(self, files: tuple[Path, Path], tmp_path: Path) -> None:
        gt, _ = files
        bad = tmp_path / "bad.csv"
        bad.write_text("image_id,PredictionString\na,14 1 0 0 1 1\nb,3 0.9 100 200 400\nb,3 nan 1 1 2 2\n")
        result = invoke("evaluate", "detection", "--gt", gt, "--pred", bad)
        assert result.exit_code == 1
        assert "bad.csv:3: error: 5 numbers" in result.output
        assert "bad.csv:4: error: image 'b' already has a row on line 3" in result.output
        assert "bad.csv: error: 1 test image(s) have no row: 'c'" in result.output

    def test_missing_file_exits_1(self, tmp_path: Path) -> None:
        result = invoke("evaluate", "detection", "--gt", tmp_path / "nope.csv", "--pred", tmp_path / "x.csv")
        assert result.exit_code == 1 and "nope.csv: ground truth file not found" in result.output

    def test_image_subset(self, files: tuple[Path, Path], tmp_path: Path) -> None:
        gt, sub = files
        (tmp_path / "public.txt").write_text("a\nb\n")
        result = invoke(
            "evaluate",
            "detection",
            "--gt",
            gt,
            "--pred",
            sub,
            "--metric",
            "voc",
            "--image-ids",
            tmp_path / "public.txt",
            "--format",
            "json",
        )
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["images"] == 2 and json.loads(result.stdout)["mAP"] == 1.0


class TestValidate:
    def test_clean_and_dirty(self, files: tuple[Path, Path], tmp_path: Path) -> None:
        gt, sub = files
        result = invoke("evaluate", "validate", sub, "--gt", gt)
        assert result.exit_code == 0 and "0 error(s), 0 warning(s)" in result.output
        meta = tmp_path / "meta.csv"
        meta.write_text("image_id,width,height\na,500,500\nb,500,500\nc,500,500\n")
        result = invoke("evaluate", "validate", sub, "--gt", gt, "--meta", meta)
        assert result.exit_code == 1
        assert "submission.csv:4: error: 1 group outside the image" in result.output


class TestClassification:
    def test_table_and_json(self, tmp_path: Path) -> None:
        labels = pd.DataFrame({"image_id": list("abcdef"), "rad_id": "", "Pneumonia": [1, 1, 0, 0, 0, 1]})
        probs = pd.DataFrame({"image_id": list("fedcba"), "Pneumonia": [0.8, 0.3, 0.2, 0.75, 0.9, 0.7]})
        labels.to_csv(tmp_path / "image_labels_test.csv", index=False)
        probs.to_csv(tmp_path / "probs.csv", index=False)
        args = (
            "evaluate",
            "classification",
            "--gt",
            tmp_path / "image_labels_test.csv",
            "--pred",
            tmp_path / "probs.csv",
        )
        result = invoke(*args, "--n-boot", "50")
        assert result.exit_code == 0, result.output
        assert "Pneumonia" in result.output and "mean AUC" in result.output
        data = json.loads(invoke(*args, "--n-boot", "50", "--threshold", "0.5", "--format", "json").stdout)
        assert data["per_class"]["Pneumonia"]["auc"] == pytest.approx(8 / 9)
        assert data["per_class"]["Pneumonia"]["sensitivity"] == 1.0
        bad = invoke(*args, "--threshold", "high")
        assert bad.exit_code == 1 and "--threshold must be 'youden' or a number" in bad.output


class TestLocalization:
    def test_real_nih_boxes(self, tmp_path: Path) -> None:
        src = real_data("nih", "BBox_List_2017.csv.gz")
        gt = tmp_path / "BBox_List_2017.csv"
        gt.write_bytes(gzip.decompress(src.read_bytes()))
        result = invoke("evaluate", "localization", "--gt", gt, "--pred", gt)
        assert result.exit_code == 0, result.output
        assert "T(IoBB)" in result.output and "Infiltrate" in result.output
        data = json.loads(invoke("evaluate", "localization", "--gt", gt, "--pred", gt, "--format", "json").stdout)
        assert data["table"]["iou"]["0.5"]["mean"] == {"acc": 1.0, "afp": 0.0}
