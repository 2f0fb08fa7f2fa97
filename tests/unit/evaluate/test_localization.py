"""NIH localization: Acc. and AFP at T(IoU) and T(IoBB) on the real BBox_List_2017.csv, against a loop
reference, and on hand-computed cases."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cxrlab.evaluate import EvaluationError
from cxrlab.evaluate.localization import IOBB_THRESHOLDS, IOU_THRESHOLDS, score_localization
from tests.support.data import real_data

HEADER = "Image Index,Finding Label,Bbox [x,y,w,h],,,\n"


@pytest.fixture
def nih_boxes(tmp_path: Path) -> Path:
    """The real NIH box list (984 boxes on 880 images), unpacked; skip when it is absent."""
    src = real_data("nih", "BBox_List_2017.csv.gz")
    out = tmp_path / "BBox_List_2017.csv"
    out.write_bytes(gzip.decompress(src.read_bytes()))
    return out


def loop_reference(gt: pd.DataFrame, pred: pd.DataFrame, criterion: str, t: float) -> dict[str, tuple]:
    """Acc. and AFP per disease with plain loops over boxes (x, y, w, h columns 2-5)."""

    def ratio(p, g):  # noqa: ANN001, ANN202
        iw = min(p[0] + p[2], g[0] + g[2]) - max(p[0], g[0])
        ih = min(p[1] + p[3], g[1] + g[3]) - max(p[1], g[1])
        if iw <= 0 or ih <= 0:
            return 0.0
        inter = iw * ih
        return inter / (p[2] * p[3] + g[2] * g[3] - inter) if criterion == "iou" else inter / (p[2] * p[3])

    def key(s: str) -> str:
        return "infiltrate" if s.lower() == "infiltration" else s.lower()

    def rows(frame: pd.DataFrame) -> list[tuple]:
        return [(r[0], key(r[1]), [float(v) for v in r[2:6]]) for r in frame.itertuples(index=False)]

    truth, guess = rows(gt), rows(pred)
    out = {}
    for disease in sorted(set(gt.iloc[:, 1])):
        g = [r for r in truth if r[1] == key(disease)]
        p = [r for r in guess if r[1] == key(disease)]
        found = sum(any(ratio(pb, gb) > t for pi, _, pb in p if pi == gi) for gi, _, gb in g)
        imgs = {gi for gi, _, _ in g}
        fp = sum(not any(ratio(pb, gb) > t for gi, _, gb in g if gi == pi) for pi, _, pb in p if pi in imgs)
        out[disease] = (found / len(g), fp / len(imgs))
    return out


class TestScoreLocalization:
    def test_ground_truth_as_prediction_is_perfect(self, nih_boxes: Path) -> None:
        result = score_localization(nih_boxes, nih_boxes)
        assert sum(result.gt_boxes.values()) == 984
        assert result.diseases[3] == "Infiltrate"
        for criterion, thresholds in (("iou", IOU_THRESHOLDS), ("iobb", IOBB_THRESHOLDS)):
            for t in thresholds:
                assert result.table[criterion][t]["mean"] == {"acc": 1.0, "afp": 0.0}

    def test_equals_loop_reference_on_real_boxes(self, nih_boxes: Path) -> None:
        gt = pd.read_csv(nih_boxes).iloc[:, :6]
        rng = np.random.default_rng(0)
        sample = gt.sample(300, random_state=1)
        pred = pd.concat([sample, sample.iloc[:100]], ignore_index=True)  # duplicates -> false positives
        pred.iloc[:, 2:4] += rng.normal(0, 25, (len(pred), 2))
        pred.iloc[:, 4:6] *= rng.uniform(0.4, 1.6, (len(pred), 2))
        pred.iloc[:40, 1] = "Infiltration"  # the label list's spelling
        result = score_localization(gt, pred)
        for criterion, t in (("iou", 0.1), ("iou", 0.5), ("iobb", 0.25), ("iobb", 0.75)):
            ref = loop_reference(gt, pred, criterion, t)
            for disease, (acc, afp) in ref.items():
                assert result.table[criterion][t][disease]["acc"] == pytest.approx(acc, abs=1e-12), disease
                assert result.table[criterion][t][disease]["afp"] == pytest.approx(afp, abs=1e-12), disease

    def test_small_box_inside_passes_iobb_not_iou(self, tmp_path: Path) -> None:
        (tmp_path / "gt.csv").write_text(HEADER + "a.png,Mass,0,0,100,100\nb.png,Mass,0,0,10,10\n")
        (tmp_path / "p.csv").write_text(HEADER + "a.png,Mass,10,10,20,20\na.png,Mass,500,500,5,5\nc.png,Mass,0,0,1,1\n")
        result = score_localization(tmp_path / "gt.csv", tmp_path / "p.csv")
        assert result.table["iou"][0.1]["Mass"] == {"acc": 0.0, "afp": 1.0}  # IoU 0.04; two misses / 2 images
        assert result.table["iobb"][0.9]["Mass"] == {"acc": 0.5, "afp": 0.5}  # IoBB 1.0
        assert result.notes == ["1 predicted box(es) on images without a ground-truth box of their disease not scored"]

    def test_bad_row_raises_with_line(self, tmp_path: Path) -> None:
        (tmp_path / "gt.csv").write_text(HEADER + "a.png,Mass,0,0,100,100\na.png,Mass,0,0,-1,3\n")
        with pytest.raises(EvaluationError, match=r"gt\.csv:3: x, y, w, h must be numbers"):
            score_localization(tmp_path / "gt.csv", tmp_path / "gt.csv")
