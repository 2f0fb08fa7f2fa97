"""Classification metrics: AUC equals scikit-learn's, bootstrap resamples equal scikit-learn on the resampled
images, intervals are reproducible by seed, thresholds and errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cxrlab.evaluate import EvaluationError
from cxrlab.evaluate.classification import bootstrap_auc, resamples, score_classification

metrics = pytest.importorskip("sklearn.metrics", reason="scikit-learn is the [eval] extra")

LABELS = ["Aortic enlargement", "Lung tumor", "Pneumonia", "No finding"]


def tables(n: int = 300, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """image_labels_test.csv-like labels and informative, tied probabilities."""
    rng = np.random.default_rng(seed)
    ids = [f"{i:032x}" for i in range(n)]
    y = (rng.random((n, len(LABELS))) < [0.1, 0.05, 0.2, 0.6]).astype(int)
    p = np.round(np.clip(rng.normal(0.3 + 0.3 * y, 0.2), 0, 1), 2)
    gt = pd.DataFrame(y, columns=LABELS)
    gt.insert(0, "rad_id", "")
    gt.insert(0, "image_id", ids)
    probs = pd.DataFrame(p, columns=LABELS)
    probs.insert(0, "image_id", ids)
    return gt, probs.sample(frac=1.0, random_state=seed).reset_index(drop=True)  # any row order


class TestScoreClassification:
    def test_auc_equals_sklearn(self) -> None:
        gt, probs = tables()
        result = score_classification(gt, probs, n_boot=200, seed=3)
        aligned = probs.set_index("image_id").loc[gt["image_id"]]
        for score in result.per_class:
            expected = metrics.roc_auc_score(gt[score.name], aligned[score.name])
            assert score.auc == pytest.approx(expected, abs=1e-12)
            assert score.ci_low < score.auc < score.ci_high
        assert result.mean_auc == pytest.approx(np.mean([c.auc for c in result.per_class]))

    def test_intervals_reproducible_by_seed(self) -> None:
        gt, probs = tables()
        a = score_classification(gt, probs, n_boot=300, seed=7).to_dict()
        b = score_classification(gt, probs, n_boot=300, seed=7).to_dict()
        c = score_classification(gt, probs, n_boot=300, seed=8).to_dict()
        assert a == b
        assert a["per_class"]["Pneumonia"]["ci_low"] != c["per_class"]["Pneumonia"]["ci_low"]

    def test_youden_threshold_maximises_j(self) -> None:
        gt, probs = tables()
        result = score_classification(gt, probs, n_boot=0)
        aligned = probs.set_index("image_id").loc[gt["image_id"]]
        for score in result.per_class:
            fpr, tpr, _ = metrics.roc_curve(gt[score.name], aligned[score.name])
            assert score.sensitivity + score.specificity - 1 == pytest.approx(np.max(tpr - fpr))
            assert score.ci_low is None  # no resamples

    def test_fixed_threshold_counts(self) -> None:
        gt = pd.DataFrame({"image_id": list("abcd"), "Pneumonia": [1, 1, 0, 0]})
        probs = pd.DataFrame({"image_id": list("abcd"), "Pneumonia": [0.9, 0.4, 0.6, 0.1]})
        (score,) = score_classification(gt, probs, threshold=0.5, n_boot=10).per_class
        assert (score.sensitivity, score.specificity, score.f1) == (0.5, 0.5, 0.5)
        assert score.auc == 0.75

    def test_label_without_positives_has_no_auc(self) -> None:
        gt = pd.DataFrame({"image_id": list("abc"), "COPD": [0, 0, 0], "Pneumonia": [1, 0, 0]})
        probs = pd.DataFrame({"image_id": list("abc"), "COPD": [0.1, 0.2, 0.3], "Pneumonia": [0.9, 0.1, 0.2]})
        result = score_classification(gt, probs, n_boot=20)
        copd = result.per_class[0]
        assert copd.auc is None and copd.threshold is None  # no ROC curve, no Youden point
        assert result.mean_auc == 1.0
        copd = score_classification(gt, probs, n_boot=20, threshold=0.25).per_class[0]
        assert copd.auc is None and copd.sensitivity is None and copd.specificity == pytest.approx(2 / 3)

    def test_files_and_unscored_labels(self, tmp_path: Path) -> None:
        gt, probs = tables(50)
        gt.to_csv(tmp_path / "image_labels_test.csv", index=False)
        probs.drop(columns=["Lung tumor"]).to_csv(tmp_path / "probs.csv", index=False)
        result = score_classification(tmp_path / "image_labels_test.csv", tmp_path / "probs.csv", n_boot=20)
        assert [c.name for c in result.per_class] == ["Aortic enlargement", "Pneumonia", "No finding"]
        assert result.notes == ["not scored (no predictions): Lung tumor"]

    def test_missing_image_raises(self, tmp_path: Path) -> None:
        gt, probs = tables(20)
        probs.iloc[1:].to_csv(tmp_path / "p.csv", index=False)
        with pytest.raises(EvaluationError, match=r"p\.csv: 1 image\(s\) of <labels> have no prediction"):
            score_classification(gt, tmp_path / "p.csv")

    def test_repeated_image_raises_with_line(self, tmp_path: Path) -> None:
        gt, _ = tables(5)
        pd.concat([gt, gt.iloc[[2]]]).to_csv(tmp_path / "labels.csv", index=False)
        with pytest.raises(EvaluationError, match=r"labels\.csv:7: image id repeated .*majority vote"):
            score_classification(tmp_path / "labels.csv", gt.drop(columns="rad_id"))

    def test_unknown_column_and_bad_values_raise(self, tmp_path: Path) -> None:
        gt, probs = tables(5)
        with pytest.raises(EvaluationError, match="not among the labels"):
            score_classification(gt, probs.assign(Fracture=0.5))
        probs.loc[3, "Pneumonia"] = np.nan
        probs.to_csv(tmp_path / "p.csv", index=False)
        with pytest.raises(EvaluationError, match=r"p\.csv:5: probability is empty"):
            score_classification(gt, tmp_path / "p.csv")
        gt.loc[0, "Pneumonia"] = 2
        with pytest.raises(EvaluationError, match=r"<labels>:2: label 'Pneumonia' is not 0 or 1"):
            score_classification(gt, probs.fillna(0))


class TestBootstrapAuc:
    @pytest.mark.slow  # every resample against scikit-learn
    @settings(max_examples=25, deadline=None)
    @given(st.integers(2, 60), st.integers(0, 2**16), st.booleans())
    def test_each_resample_equals_sklearn(self, n: int, seed: int, ties: bool) -> None:
        rng = np.random.default_rng(seed)
        y = (rng.random((n, 2)) < 0.4).astype(int)
        s = rng.random((n, 2))
        if ties:
            s = np.round(s, 1)
        boot = bootstrap_auc(y, s, n_boot=60, seed=seed)
        draws = np.vstack(list(resamples(n, n_boot=60, seed=seed)))
        for b in range(60):
            for j in range(2):
                yy, ss = y[draws[b], j], s[draws[b], j]
                if yy.min() == yy.max():
                    assert np.isnan(boot[b, j])
                else:
                    assert boot[b, j] == pytest.approx(metrics.roc_auc_score(yy, ss), abs=1e-12)
