"""Detection metrics: kaggle and coco equal pycocotools, voc equals a plain loop implementation (to 1e-9), on
random sets (hypothesis) and on hand-made cases that pin each rule down."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cxrlab.evaluate import (
    CHALLENGE,
    EvaluationError,
    SubmissionError,
    parse_predictions,
    read_annotations,
    read_submission,
    score_submission,
)
from tests.support.coco_reference import community_kaggle, reference_voc, standard_coco

pytest.importorskip("pycocotools", reason="pycocotools is a dev dependency (pip install -e '.[dev]')")

TOL = 1e-9
NF = CHALLENGE.no_finding


# -- random sets -------------------------------------------------------------------------------------------------


@st.composite
def scenarios(draw) -> tuple[pd.DataFrame, pd.DataFrame]:  # noqa: ANN001
    """A ground truth (seed layout, "No finding" rows with empty coordinates) and a submission.

    Covers: images with only "No finding", classes with no ground truth, integer coordinates (exact IoU ties at
    the thresholds), float coordinates, jittered copies of ground-truth boxes, duplicates, confidence ties, more
    than 100 predictions for one image and class, images missing from the submission or with an empty string.
    """
    n_images = draw(st.integers(1, 7))
    classes = draw(st.lists(st.integers(0, 14), min_size=1, max_size=15, unique=True))
    integer = draw(st.booleans())
    coord = st.integers(0, 40).map(float) if integer else st.floats(0, 40, allow_nan=False, allow_infinity=False)
    extent = st.integers(1, 20).map(float) if integer else st.floats(0.5, 20, allow_nan=False, allow_infinity=False)
    score = st.sampled_from([0.25, 0.5, 0.75, 1.0]) | st.floats(0, 1, allow_nan=False)
    ids = [f"im{i}" for i in range(n_images)]
    rows = []
    for iid in ids:
        n = draw(st.integers(0, 5))
        if n == 0:
            rows.append((iid, NF, None))
        for _ in range(n):
            c = draw(st.sampled_from(classes))
            if c == NF:
                rows.append((iid, NF, None))
            else:
                x, y, w, h = draw(coord), draw(coord), draw(extent), draw(extent)
                rows.append((iid, c, (x, y, x + w, y + h)))
    rows = draw(st.permutations(rows))  # images interleave: numbering is by first appearance
    gt = pd.DataFrame(
        {
            "image_id": [r[0] for r in rows],
            "rad_id": "",
            "class_name": [CHALLENGE.names[r[1]] for r in rows],
            "x_min": [r[2][0] if r[2] else None for r in rows],
            "y_min": [r[2][1] if r[2] else None for r in rows],
            "x_max": [r[2][2] if r[2] else None for r in rows],
            "y_max": [r[2][3] if r[2] else None for r in rows],
            "class_id": [r[1] for r in rows],
        }
    )
    boxed = [r for r in rows if r[2] is not None]
    strings = []
    submitted = draw(st.lists(st.sampled_from(ids), unique=True, min_size=0, max_size=n_images))
    for iid in submitted:
        groups = []
        mine = [r for r in boxed if r[0] == iid]
        for _, c, (x1, y1, x2, y2) in mine:
            for _ in range(draw(st.integers(0, 3))):
                jitter = draw(st.integers(-3, 3).map(float) if integer else st.floats(-3, 3))
                cls = c if draw(st.integers(0, 4)) else draw(st.sampled_from(classes))
                groups.append((cls, draw(score), x1 + jitter, y1, x2 + jitter, y2 + jitter / 2))
            if draw(st.integers(0, 3)) == 0:  # IoU at (or a rounding away from) a threshold
                f = draw(st.sampled_from([0.1, 0.3, 0.4, 0.5, 0.75]))
                groups.append((c, draw(score), x1, y1, x2, y1 + f * (y2 - y1)))
        for _ in range(draw(st.integers(0, 6))):
            x, y, w, h = draw(coord), draw(coord), draw(extent), draw(extent)
            groups.append((draw(st.integers(0, 14)), draw(score), x, y, x + w, y + h))
        if draw(st.booleans()):
            groups.append((NF, draw(score), 0.0, 0.0, 1.0, 1.0))
        if draw(st.integers(0, 15)) == 0:  # crowd one image and class past maxDets=100
            c = draw(st.sampled_from(classes))
            x, y = draw(coord), draw(coord)
            for i in range(draw(st.integers(95, 130))):
                groups.append((c, round((i * 37 % 101) / 101, 2), x + i % 5, y, x + 10 + i % 7, y + 8))
        groups = draw(st.permutations(groups))
        strings.append(" ".join(f"{c} {s!r} {a!r} {b!r} {cc!r} {d!r}" for c, s, a, b, cc, d in groups))
    sub = pd.DataFrame({"image_id": submitted, "PredictionString": strings})
    return gt, sub


def reference_gt(gt: pd.DataFrame) -> pd.DataFrame:
    """The ground truth as the reference scorers read it: "No finding" as the box 0 0 1 1."""
    out = gt.copy()
    out.loc[out["class_id"] == NF, ["x_min", "y_min", "x_max", "y_max"]] = [0.0, 0.0, 1.0, 1.0]
    for c in ("x_min", "y_min", "x_max", "y_max"):
        out[c] = out[c].astype(float)
    return out


def assert_same(result, ref: dict) -> None:  # noqa: ANN001
    assert abs(result.mAP - ref["mAP"]) <= TOL, (result.mAP, ref["mAP"])
    for c, name in enumerate(CHALLENGE.names):
        mine, theirs = result.per_class[name], ref["per_class"].get(c)
        if theirs is None:
            assert mine is None, name
        else:
            assert mine is not None and abs(mine - theirs) <= TOL, (name, mine, theirs)


SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.slow  # against pycocotools and the reference loops
class TestAgainstReferences:
    @SETTINGS
    @given(scenarios())
    def test_kaggle_equals_community_pycocotools(self, case) -> None:  # noqa: ANN001
        gt, sub = case
        assert_same(score_submission(gt, sub, metric="kaggle"), community_kaggle(reference_gt(gt), sub))

    @SETTINGS
    @given(scenarios())
    def test_coco_equals_pycocotools(self, case) -> None:  # noqa: ANN001
        gt, sub = case
        result = score_submission(gt, sub, metric="coco")
        ref = standard_coco(reference_gt(gt), sub)
        assert_same(result, ref)
        assert abs(result.extra["AP50"] - ref["AP50"]) <= TOL
        assert abs(result.extra["AP75"] - ref["AP75"]) <= TOL

    @SETTINGS
    @given(scenarios(), st.sampled_from([0.1, 0.4, 0.5]))
    def test_voc_equals_loop_reference(self, case, iou: float) -> None:  # noqa: ANN001
        gt, sub = case
        assert_same(score_submission(gt, sub, metric="voc", iou=iou), reference_voc(reference_gt(gt), sub, iou=iou))

    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(scenarios())
    def test_coco_at_one_iou_equals_pycocotools(self, case) -> None:  # noqa: ANN001
        gt, sub = case
        result = score_submission(gt, sub, metric="coco", iou=0.4)
        assert_same(result, standard_coco(reference_gt(gt), sub, iou=0.4))
        assert result.extra == {} and result.iou == (0.4,)

    @SETTINGS
    @given(scenarios(), st.sampled_from([0.3, 0.5, 0.75]))
    def test_kaggle_other_iou_equals_community(self, case, iou: float) -> None:  # noqa: ANN001
        gt, sub = case
        assert_same(
            score_submission(gt, sub, metric="kaggle", iou=iou), community_kaggle(reference_gt(gt), sub, iou=iou)
        )


# -- hand-made cases ---------------------------------------------------------------------------------------------


def gt_frame(rows: list[tuple]) -> pd.DataFrame:
    """``(image_id, class_name, x_min, y_min, x_max, y_max)`` rows; "No finding" with empty coordinates."""
    return pd.DataFrame(rows, columns=["image_id", "class_name", "x_min", "y_min", "x_max", "y_max"])


def sub_frame(preds: dict[str, str]) -> pd.DataFrame:
    return pd.DataFrame({"image_id": list(preds), "PredictionString": list(preds.values())})


class TestKaggleQuirks:
    def test_perfect_prediction_of_the_first_gt_box_is_a_false_positive(self) -> None:
        gt = gt_frame([("a", "Cardiomegaly", 10, 10, 50, 50), ("b", "Cardiomegaly", 10, 10, 50, 50)])
        sub = sub_frame({"a": "3 0.9 10 10 50 50", "b": "3 0.8 10 10 50 50"})
        # box 0 (image a) can never be found; the prediction on it is ranked first and counts as a false positive
        kaggle = score_submission(gt, sub, metric="kaggle")
        assert kaggle.mAP == pytest.approx(community_kaggle(reference_gt_ids(gt), sub)["mAP"], abs=TOL)
        assert kaggle.mAP < 0.5
        assert score_submission(gt, sub, metric="coco").mAP == pytest.approx(1.0)

    def test_first_prediction_leaves_its_box_free_for_a_duplicate(self) -> None:
        gt = gt_frame([("a", "No finding", None, None, None, None), ("b", "Atelectasis", 10, 10, 50, 50)])
        # prediction id 0 matches box 1; the duplicate (id 1) matches it again and is a second true positive
        sub = sub_frame({"b": "1 0.9 10 10 50 50 1 0.8 10 10 50 50", "a": "14 1 0 0 1 1"})
        kaggle = score_submission(gt, sub, metric="kaggle")
        ref = community_kaggle(reference_gt_ids(gt), sub)
        assert kaggle.per_class["Atelectasis"] == pytest.approx(ref["per_class"][1], abs=TOL)
        assert kaggle.per_class["Atelectasis"] == pytest.approx(1.0)
        assert score_submission(gt, sub, metric="coco").per_class["Atelectasis"] == pytest.approx(1.0)

    def test_box_quirk_lets_an_offset_prediction_pass(self) -> None:
        gt = gt_frame([("a", "No finding", None, None, None, None), ("a", "Nodule/Mass", 900, 900, 930, 930)])
        sub = sub_frame({"a": "8 0.9 915 915 945 945"})  # true IoU 0.14; stretched boxes overlap by 0.94
        assert score_submission(gt, sub, metric="voc").per_class["Nodule/Mass"] == 0.0
        assert score_submission(gt, sub, metric="kaggle").per_class["Nodule/Mass"] == pytest.approx(1.0)

    def test_thresholds_voc_strict_coco_inclusive(self) -> None:
        gt = gt_frame([("a", "No finding", None, None, None, None), ("a", "Atelectasis", 0, 0, 10, 10)])
        sub = sub_frame({"a": "1 0.9 0 0 10 4"})  # IoU exactly 0.4
        assert score_submission(gt, sub, metric="voc").per_class["Atelectasis"] == 0.0
        assert score_submission(gt, sub, metric="kaggle").per_class["Atelectasis"] == pytest.approx(1.0)
        assert score_submission(gt, sub, metric="voc", iou=0.39).per_class["Atelectasis"] == 1.0

    def test_no_finding_box_is_scored_as_class_14(self) -> None:
        gt = gt_frame([("x", "Aortic enlargement", 1, 1, 9, 9), ("a", "No finding", None, None, None, None)])
        sub = sub_frame({"a": "14 1 0 0 1 1", "x": "0 0.5 1 1 9 9"})
        result = score_submission(gt, sub, metric="kaggle")
        assert result.per_class["No finding"] == pytest.approx(1.0)
        assert result.per_class["Aortic enlargement"] == pytest.approx(0.0)  # the first box: never found


def reference_gt_ids(gt: pd.DataFrame) -> pd.DataFrame:
    out = gt.copy()
    out["class_id"] = [CHALLENGE.id_of(n) for n in out["class_name"]]
    return reference_gt(out)


class TestScoreSubmission:
    def test_classes_without_ground_truth_are_excluded(self) -> None:
        gt = gt_frame([("a", "No finding", None, None, None, None), ("b", "Pneumothorax", 5, 5, 20, 20)])
        sub = sub_frame({"a": "14 1 0 0 1 1 0 0.9 1 1 5 5", "b": "12 0.9 5 5 20 20"})
        for metric in ("kaggle", "voc", "coco"):
            result = score_submission(gt, sub, metric=metric)
            assert result.per_class["Aortic enlargement"] is None
            assert set(k for k, v in result.per_class.items() if v is not None) == {"No finding", "Pneumothorax"}

    def test_no_predictions_scores_zero(self) -> None:
        gt = gt_frame([("a", "Cardiomegaly", 5, 5, 20, 20)])
        for metric in ("kaggle", "voc", "coco"):
            assert score_submission(gt, sub_frame({}), metric=metric).mAP == 0.0

    def test_image_subset_scores_only_those_images(self) -> None:
        gt = gt_frame([("a", "Cardiomegaly", 5, 5, 20, 20), ("b", "Cardiomegaly", 5, 5, 20, 20)])
        sub = sub_frame({"a": "3 0.9 5 5 20 20", "b": "3 0.9 100 100 120 120"})
        only_a = score_submission(gt, sub, metric="voc", image_ids=["a"])
        assert only_a.mAP == 1.0 and only_a.images == 1
        assert "1 prediction(s) on images outside the scored set ignored" in only_a.notes
        assert score_submission(gt, sub, metric="voc").mAP == 0.5

    def test_public_and_private_parts_from_one_parse(self) -> None:
        gt = read_annotations(gt_frame([("a", "Cardiomegaly", 5, 5, 20, 20), ("b", "Cardiomegaly", 5, 5, 20, 20)]))
        frame, _ = read_submission(sub_frame({"a": "3 0.9 5 5 20 20", "b": "3 0.8 50 50 60 60"}))
        parsed = parse_predictions(frame)
        public = score_submission(gt, parsed, metric="voc", image_ids=["a"])
        private = score_submission(gt, parsed, metric="voc", image_ids=["b"])
        assert (public.mAP, private.mAP) == (1.0, 0.0)

    def test_unknown_image_subset_raises(self) -> None:
        gt = gt_frame([("a", "Cardiomegaly", 5, 5, 20, 20)])
        with pytest.raises(EvaluationError, match="not in the ground truth"):
            score_submission(gt, sub_frame({}), image_ids=["zzz"])

    def test_seed_spellings_and_other_classes(self) -> None:
        gt = gt_frame(
            [
                ("a", "Interstitial lung disease (ILD)", 5, 5, 20, 20),
                ("a", "Lung opacity", 30, 30, 40, 40),
                ("a", "Rib fracture", 1, 1, 2, 2),
            ]
        )
        sub = sub_frame({"a": "5 0.9 5 5 20 20 7 0.8 30 30 40 40"})
        result = score_submission(gt, sub, metric="voc")
        assert result.per_class["ILD"] == 1.0 and result.per_class["Lung Opacity"] == 1.0
        assert any("Rib fracture" in n for n in result.notes)

    def test_bad_iou_and_metric_raise(self) -> None:
        gt = gt_frame([("a", "Cardiomegaly", 5, 5, 20, 20)])
        with pytest.raises(EvaluationError, match="between 0 and 1"):
            score_submission(gt, sub_frame({}), metric="voc", iou=1.5)
        with pytest.raises(EvaluationError, match="unknown metric 'map'"):
            score_submission(gt, sub_frame({}), metric="map")

    def test_files_on_disk(self, tmp_path: Path) -> None:
        gt = tmp_path / "annotations_test.csv"
        gt.write_text(
            "image_id,rad_id,class_name,x_min,y_min,x_max,y_max,class_id\n"
            "a,,Cardiomegaly,5,5,20,20,2\n"
            "b,,No finding,,,,,27\n"
        )
        sub = tmp_path / "submission.csv"
        sub.write_text("image_id,PredictionString\na,3 0.9 5 5 20 20\nb,14 1 0 0 1 1\n")
        result = score_submission(gt, sub, metric="voc")
        assert result.mAP == 1.0 and result.gt_boxes == 2 and result.predictions == 2

    def test_bad_prediction_string_raises_with_line(self, tmp_path: Path) -> None:
        sub = tmp_path / "s.csv"
        sub.write_text("image_id,PredictionString\na,3 0.9 5 5 20 20\nb,3 0.9 5 5 20\n")
        with pytest.raises(SubmissionError, match=r"s\.csv:3: PredictionString has 5 numbers"):
            score_submission(gt_frame([("a", "Cardiomegaly", 5, 5, 20, 20)]), sub)

    def test_comma_inside_a_token_is_not_a_number(self) -> None:
        # Decimal commas (a spreadsheet in a comma locale): the CSV reader under the vectorised parse took every
        # "a,b" for two fields and silently kept b.
        frame = pd.DataFrame({"image_id": ["a"], "PredictionString": ["3,0 0,9 5,0 5,0 20,0 20,0"]})
        with pytest.raises(SubmissionError, match=r"s\.csv:2: '3,0' is not a number"):
            parse_predictions(frame, name="s.csv")

    def test_flipped_gt_box_raises_with_line(self) -> None:
        with pytest.raises(EvaluationError, match=r"<ground truth>:3: x_max < x_min"):
            read_annotations(gt_frame([("a", "Cardiomegaly", 5, 5, 20, 20), ("a", "Cardiomegaly", 50, 5, 20, 20)]))


class TestGroundTruthBounds:
    """Ground-truth boxes lie inside their image, or inside DICOM's largest image when its size is unknown."""

    @pytest.mark.parametrize(("box", "reason"), [
        ((5, 5, 1e9, 20), "coordinate beyond 65,535"),
        ((-1e9, 5, 20, 20), "negative coordinate"),
    ])
    def test_box_beyond_dicom_limits_raises_with_line(self, box: tuple, reason: str) -> None:
        frame = gt_frame([("a", "Cardiomegaly", 5, 5, 20, 20), ("b", "Cardiomegaly", *box)])
        with pytest.raises(EvaluationError, match=rf"<ground truth>:3: {reason}.*\(1 such row\(s\)\)"):
            read_annotations(frame)

    def test_box_beyond_its_image_raises_with_line(self) -> None:
        frame = gt_frame([("a", "Cardiomegaly", 5, 5, 20, 20), ("b", "Cardiomegaly", 5, 5, 60, 20),
                          ("c", "Cardiomegaly", 5, 5, 5000, 20), ("d", "No finding", None, None, None, None)])
        meta = pd.DataFrame({"image_id": ["a", "b", "d"], "width": [100, 58, 10], "height": [100, 100, 10]})
        with pytest.raises(EvaluationError, match=r"<ground truth>:3: coordinate beyond the image"):
            read_annotations(frame, meta=meta)
        meta.loc[1, "width"] = 59  # 1 px past the border is tolerated; c has no size: 65,535 is its bound
        assert len(read_annotations(frame, meta=meta).image_ids) == 4

    @pytest.mark.parametrize("size", ["-5", "1e12", "2.5", "0", "65536", ""])
    def test_image_sizes_must_be_dicom_rows_and_columns(self, tmp_path: Path, size: str) -> None:
        from cxrlab.evaluate.formats import read_meta

        path = tmp_path / "sizes.csv"
        path.write_text(f"image_id,width,height\na,100,100\nb,{size},100\n")
        with pytest.raises(EvaluationError, match=r"sizes\.csv:3: width and height must be positive whole numbers "
                                                  r"up to 65,535"):
            read_meta(path)
        path.write_text("image_id,width,height\na,65535,1\n")
        assert read_meta(path).loc["a"].tolist() == [65535, 1]
