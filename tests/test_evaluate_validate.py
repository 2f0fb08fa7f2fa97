"""Submission validator: every kind of problem with its line number; a clean submission has none."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from cxrlab.evaluate import EvaluationError, Severity, score_submission, validate_submission

IDS = ["a", "b", "c", "d"]


def write(tmp_path: Path, body: str, name: str = "submission.csv") -> Path:
    path = tmp_path / name
    path.write_text("image_id,PredictionString\n" + body)
    return path


def codes(problems) -> list[tuple[int | None, str]]:  # noqa: ANN001
    return [(p.line, p.code) for p in problems]


class TestValidateSubmission:
    def test_clean_submission_has_no_problem(self, tmp_path: Path) -> None:
        sub = write(tmp_path, "a,14 1 0 0 1 1\nb,3 0.9 10 20 300 400 0 0.2 1.5 2 3 4\nc,14 1 0 0 1 1\nd,1 0 0 0 5 5\n")
        assert validate_submission(sub, gt_image_ids=IDS) == []

    def test_each_problem_has_its_line(self, tmp_path: Path) -> None:
        sub = write(
            tmp_path,
            "a,3 0.9 10 20 30\n"  # line 2: 5 numbers
            "b,3 0.9 10 20 30 abc\n"  # 3: not a number
            "a,15 0.9 1 1 2 2\n"  # 4: duplicate image, unknown class
            "zz,2.5 nan 1 1 2 2\n"  # 5: unknown image, class not integer, NaN confidence
            "c,\n"  # 6: empty (warning)
            "d,1 -0.1 5 5 1 9 14 1 0 0 2 2\n",  # 7: negative confidence, flipped box, No finding box (warning)
        )
        problems = validate_submission(sub, gt_image_ids=IDS)
        assert codes(problems) == [
            (2, "bad_count"),
            (3, "bad_number"),
            (4, "duplicate_image"),
            (4, "unknown_class"),
            (5, "unknown_image"),
            (5, "bad_class"),
            (5, "nan_confidence"),
            (6, "empty_prediction"),
            (7, "negative_confidence"),
            (7, "flipped_box"),
            (7, "no_finding_box"),
        ]
        assert problems[1].message == "number 6 ('abc', group 1) is not a number"
        assert problems[2].message == "image 'a' already has a row on line 2"
        assert problems[7].severity is Severity.WARNING and "14 1 0 0 1 1" in problems[7].message
        assert problems[0].format("submission.csv").startswith("submission.csv:2: error: 5 numbers")

    def test_missing_images_are_one_problem(self, tmp_path: Path) -> None:
        problems = validate_submission(write(tmp_path, "a,14 1 0 0 1 1\n"), gt_image_ids=IDS)
        assert codes(problems) == [(None, "missing_image")]
        assert problems[0].message == "3 test image(s) have no row: 'b', 'c', 'd'"

    def test_boxes_outside_the_image_with_meta(self, tmp_path: Path) -> None:
        meta = tmp_path / "meta.csv"
        meta.write_text("image_id,width,height\na,100,200\nb,100,200\n")
        sub = write(
            tmp_path, "a,1 0.5 10 10 100 200 1 0.5 10 10 101 50 1 0.4 0 0 5 201\nb,1 0.5 -1 0 5 5\nc,1 0.5 1 1 2 2\n"
        )
        problems = validate_submission(sub, meta=meta)
        assert codes(problems) == [(2, "outside_image"), (3, "outside_image"), (4, "no_size")]
        assert (
            problems[0].message.startswith("2 groups outside the image") and "(first: group 2)" in problems[0].message
        )
        without_meta = validate_submission(sub)
        assert codes(without_meta) == [(3, "outside_image")]  # only the negative coordinate

    def test_more_than_100_of_a_class_is_a_warning(self) -> None:
        sub = pd.DataFrame({"image_id": ["a"], "PredictionString": [" ".join(["3 0.5 1 1 5 5"] * 101)]})
        (problem,) = validate_submission(sub)
        assert problem.code == "too_many" and problem.severity is Severity.WARNING and problem.line == 2

    def test_missing_column_and_unreadable_meta(self, tmp_path: Path) -> None:
        bad = tmp_path / "bad.csv"
        bad.write_text("image_id,Prediction\na,1\n")
        assert codes(validate_submission(bad)) == [(1, "missing_column")]
        meta = tmp_path / "meta.csv"
        meta.write_text("image_id,width\na,100\n")
        with pytest.raises(EvaluationError, match="need columns image_id,width,height"):
            validate_submission(write(tmp_path, "a,14 1 0 0 1 1\n"), meta=meta)

    def test_white_space_variants_parse_like_str_split(self, tmp_path: Path) -> None:
        gt = pd.DataFrame({"image_id": ["a", "b"], "class_name": ["Cardiomegaly", "No finding"]})
        for col in ("x_min", "y_min", "x_max", "y_max"):
            gt[col] = [5.0, None]
        sub = write(tmp_path, 'a," 3  0.9\t5 5 20 20 "\nb,14 1 0 0 1 1\n')
        assert validate_submission(sub, gt_image_ids=["a", "b"]) == []
        assert score_submission(gt.assign(x_max=[20.0, None], y_max=[20.0, None]), sub, metric="voc").mAP == 1.0
