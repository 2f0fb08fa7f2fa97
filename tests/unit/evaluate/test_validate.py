"""Submission validator: every kind of problem with its line number; a clean submission has none."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cxrlab.evaluate import EvaluationError, Severity, get_class_list, score_submission, validate_submission
from cxrlab.evaluate.formats import parse_prediction_strings
from tests.support.validate_reference import reference_validate

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
        # the message names the class id and the benchmark's numbering (a schema's own ids differ)
        assert problems[3].message == ("1 group with class_id 15 not in the vindr-cxr-challenge class list "
                                       "(0-14, 14 = No finding) (first: group 1)")
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
            tmp_path,
            "a,1 0.5 10 10 101 201 1 0.5 10 10 101.5 50 1 0.4 0 0 5 202\n"  # 1 px over is tolerated, not 1.5 px
            "b,1 0.5 -1 0 5 5 1 0.5 -1.01 0 5 5\n"  # -1 tolerated, -1.01 not
            "c,1 0.5 1 1 2 2 1 0.5 -3 1 2 2\n",  # no size: only the negative coordinate
        )
        problems = validate_submission(sub, meta=meta)
        assert codes(problems) == [(2, "outside_image"), (3, "outside_image"), (4, "no_size"), (4, "outside_image")]
        assert problems[0].message == (
            "2 groups outside the image (0 <= x <= width, 0 <= y <= height, 1 px tolerance) (first: group 2)"
        )
        assert problems[1].message.endswith("(first: group 2)") and problems[0].severity is Severity.ERROR
        without_meta = validate_submission(sub)
        assert codes(without_meta) == [(3, "outside_image"), (4, "outside_image")]  # only negative coordinates

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


# --- the vectorised validator reports exactly what the row-by-row reference reports ------------------------------

GOOD_TOKENS = st.one_of(
    st.integers(-3, 17).map(str),
    st.floats(-50, 3000, allow_nan=False).map(lambda v: f"{v:.1f}"),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.floats(0, 1).map(str),
    st.sampled_from(["0", "1", "14", "+1", ".5", "1.", "1e2", "-0", "2.50E+01", "1.00000000000000001", "1e400"]),
)
BAD_TOKENS = st.one_of(
    st.sampled_from(["abc", "nan", "NaN", "inf", "-Infinity", "1_0", "1,5", "\u0661", "0x10", "1e", "--1", "+", ".",
                     "1.5.5", "e5", '"1"', "#", "1d5"]),
    st.text(alphabet="0123456789.eE+-", min_size=1, max_size=12),
)
GROUP = st.one_of(
    st.just(["14", "1", "0", "0", "1", "1"]),
    st.lists(GOOD_TOKENS, min_size=6, max_size=6),
    st.tuples(st.integers(0, 14), st.floats(0, 1), st.floats(-3, 990), st.floats(-3, 990), st.floats(-3, 1010),
              st.floats(-3, 1010)).map(lambda g: [str(v) for v in g]),
)


@st.composite
def prediction_strings(draw: st.DrawFn) -> str | None:
    kind = draw(st.sampled_from(["groups", "groups", "groups", "garbage", "count", "empty", "none", "spaces"]))
    if kind == "empty":
        return ""
    if kind == "none":
        return None
    if kind == "spaces":
        return draw(st.sampled_from([" ", "  ", "\t", " \x1c "]))
    tokens = [t for g in draw(st.lists(GROUP, min_size=1, max_size=4)) for t in g]
    if kind == "garbage":
        tokens[draw(st.integers(0, len(tokens) - 1))] = draw(BAD_TOKENS)
    if kind == "count":
        del tokens[draw(st.integers(0, len(tokens) - 1))]
    seps = draw(st.lists(st.sampled_from([" ", " ", " ", "  ", "\t", " \u00a0"]), min_size=len(tokens),
                         max_size=len(tokens)))
    text = "".join(t + s for t, s in zip(tokens, seps, strict=True))
    return draw(st.sampled_from(["", " "])) + text[: -len(seps[-1])] + draw(st.sampled_from(["", " ", "\t"]))


POOL = ["a", "b", "c", "d", "e", " a", ""]


@st.composite
def submissions(draw: st.DrawFn) -> tuple[pd.DataFrame, list[str] | None, pd.DataFrame | None]:
    n = draw(st.integers(0, 12))
    frame = pd.DataFrame({
        "image_id": draw(st.lists(st.sampled_from(POOL), min_size=n, max_size=n)),
        "PredictionString": draw(st.lists(prediction_strings(), min_size=n, max_size=n)),
    })
    gt = draw(st.one_of(st.none(), st.lists(st.sampled_from(["a", "b", "c", "d", "x"]), unique=True)))
    sized = draw(st.lists(st.sampled_from(["a", "b", "c", "x"]), unique=True))
    meta = draw(st.one_of(st.none(), st.just(pd.DataFrame({"image_id": sized, "width": 1000, "height": 990}))))
    return frame, gt, meta


@pytest.mark.slow  # hypothesis against the row-by-row reference
@pytest.mark.filterwarnings("ignore:invalid value encountered in cast:RuntimeWarning")  # the reference
class TestVectorisedEqualsReference:
    @settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(submissions(), st.sampled_from(["vindr-cxr-challenge", "vindr-pcxr"]))
    def test_same_problems_in_the_same_order(self, case, class_list: str) -> None:  # noqa: ANN001
        frame, gt, meta = case
        classes = get_class_list(class_list)
        for source in (frame, io.BytesIO(frame.to_csv(index=False).encode())):
            expected = reference_validate(source, gt_image_ids=gt, meta=meta, classes=classes)
            if hasattr(source, "seek"):
                source.seek(0)
            assert validate_submission(source, gt_image_ids=gt, meta=meta, classes=classes) == expected

    def test_many_rows_and_crowded_classes(self) -> None:
        rng = np.random.default_rng(0)
        groups = [f"{rng.integers(0, 16)} {rng.uniform(-0.1, 1):.3f} {rng.uniform(-5, 500):.1f} "
                  f"{rng.uniform(-5, 500):.1f} {rng.uniform(0, 1100):.1f} {rng.uniform(0, 1100):.1f}"
                  for _ in range(3000)]
        strings = [" ".join(groups[k : k + int(n)]) for k, n in zip(range(0, 3000, 30), rng.integers(0, 60, 100),
                                                                      strict=True)]
        strings[5] = " ".join(["3 0.5 1 1 5 5"] * 120)
        strings[7] = strings[7] + " 1 0.5 1 x 2 2"  # read token by token
        strings[50] = strings[50] + " 1 0.5 1 1e 2 2"  # plain characters: found by splitting the block
        strings[51] = "1 0.5 1 1 2 2 " * 3 + "--1 1 1 1 1 1"
        frame = pd.DataFrame({"image_id": [f"i{k % 90}" for k in range(100)], "PredictionString": strings})
        meta = pd.DataFrame({"image_id": [f"i{k}" for k in range(0, 90, 2)], "width": 1000, "height": 1000})
        ids = [f"i{k}" for k in range(95)]
        expected = reference_validate(frame, gt_image_ids=ids, meta=meta)
        assert len(expected) > 100
        assert validate_submission(frame, gt_image_ids=ids, meta=meta) == expected

    @settings(max_examples=300, deadline=None)
    @given(st.lists(st.one_of(GOOD_TOKENS, st.text(alphabet="0123456789.eE+-", min_size=1, max_size=30),
                              st.from_regex(r"[+-]?[0-9]{1,30}(\.[0-9]{0,30})?([eE][+-]?[0-9]{1,3})?", fullmatch=True)),
                    min_size=6, max_size=6))
    def test_numbers_read_as_float_reads_them(self, tokens: list[str]) -> None:
        parsed = parse_prediction_strings([" ".join(tokens)])
        try:
            values = [float(t) for t in tokens]
        except ValueError:
            assert parsed.bad_row[0] and not len(parsed.rows)
            return
        assert not parsed.bad_row[0]
        assert np.array_equal(parsed.groups[0], values, equal_nan=True)
        assert [np.signbit(v) for v in parsed.groups[0]] == [np.signbit(v) for v in values]
