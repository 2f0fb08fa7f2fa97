"""Splits: exact sizes and fractions, multilabel stratification on 15,000 images, patient groups."""

from __future__ import annotations

import builtins
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cxrlab.errors import CxrlabError
from cxrlab.split import count_test_images, split_images, split_summary, write_split_lists


def synthetic_labels(n: int = 15_000, n_labels: int = 28, seed: int = 0) -> pd.DataFrame:
    """Correlated multilabel data with prevalences from 30% down to 0.08% (like VinDr-CXR's Table 2)."""
    rng = np.random.default_rng(seed)
    p = np.geomspace(0.3, 0.0008, n_labels)
    latent = rng.random(n) < 0.35
    y = (rng.random((n, n_labels)) < np.where(latent[:, None], p * 2.2, p * 0.3)).astype(int)
    frame = pd.DataFrame(y, columns=[f"L{i}" for i in range(n_labels)])
    frame.insert(0, "image_id", [f"img{i:05d}" for i in range(n)])
    return frame


class TestCountTestImages:
    def test_sizes(self) -> None:
        assert count_test_images(9125, 1397) == 1397
        assert count_test_images(100, 0.2) == 20

    @pytest.mark.parametrize(("n", "size", "msg"), [(10, 10, "leaves no image"), (10, 0, "must be > 0"),
                                                    (10, 2.5, "neither a whole number")])
    def test_bad_sizes_raise(self, n: int, size: float, msg: str) -> None:
        with pytest.raises(ValueError, match=msg):
            count_test_images(n, size)


class TestStratified:
    def test_prevalence_within_1_5_points_on_15000_images(self) -> None:
        labels = synthetic_labels()
        split = split_images(labels["image_id"], test_size=1397, labels=labels, seed=0)
        assert (split == "test").sum() == 1397 and (split == "train").sum() == 15_000 - 1397
        summary = split_summary(labels, split)
        frequent = summary.loc[summary["positives"] >= 10]
        assert len(frequent) >= 20
        assert frequent["diff_pp"].max() <= 1.5, frequent.sort_values("diff_pp").tail(3)

    def test_random_split_is_worse_than_stratified(self) -> None:
        labels = synthetic_labels(3000, seed=2)
        strat = split_summary(labels, split_images(labels["image_id"], test_size=0.3, labels=labels, seed=1))
        rand = split_summary(labels, split_images(labels["image_id"], test_size=0.3, method="random", seed=1))
        assert strat["diff_pp"].sum() < rand["diff_pp"].sum()

    def test_seeded(self) -> None:
        labels = synthetic_labels(500, seed=3)
        a = split_images(labels["image_id"], test_size=0.2, labels=labels, seed=7)
        b = split_images(labels["image_id"], test_size=0.2, labels=labels, seed=7)
        c = split_images(labels["image_id"], test_size=0.2, labels=labels, seed=8)
        assert a.equals(b) and not a.equals(c)

    def test_missing_package_names_the_extra(self, monkeypatch: pytest.MonkeyPatch) -> None:
        real_import = builtins.__import__

        def fake(name, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
            if name.startswith("iterstrat"):
                raise ImportError(name)
            return real_import(name, *args, **kwargs)

        monkeypatch.setattr(builtins, "__import__", fake)
        labels = synthetic_labels(100, seed=4)
        with pytest.raises(CxrlabError, match=r"cxrlab\[release\]"):
            split_images(labels["image_id"], test_size=0.2, labels=labels)


class TestGroup:
    @pytest.mark.parametrize("seed", [0, 1, 2, 3])
    def test_no_patient_on_both_sides(self, seed: int) -> None:
        rng = np.random.default_rng(seed)
        labels = synthetic_labels(4000, seed=seed)
        patients = pd.Series(rng.integers(0, 900, len(labels)).astype(str), index=labels["image_id"])
        patients.iloc[:50] = None  # unknown patients: each image is its own group
        split = split_images(labels["image_id"], test_size=0.25, method="group", labels=labels, groups=patients,
                             seed=seed)
        sides = pd.DataFrame({"patient": patients.to_numpy(), "split": split.to_numpy()}).dropna()
        assert sides.groupby("patient")["split"].nunique().max() == 1
        assert abs((split == "test").sum() - 1000) <= 20

    def test_without_labels(self) -> None:
        ids = [f"i{k}" for k in range(100)]
        groups = pd.Series([f"p{k // 3}" for k in range(100)], index=ids)
        split = split_images(ids, test_size=30, method="group", groups=groups)
        assert 27 <= (split == "test").sum() <= 33

    def test_needs_groups(self) -> None:
        with pytest.raises(ValueError, match="patient per image"):
            split_images(["a", "b", "c"], test_size=1, method="group")


class TestListFiles:
    def test_writes_nih_lists(self, tmp_path: Path) -> None:
        split = pd.Series(["train", "test", "train"], index=["b.png", "a.png", "c.png"])
        counts = write_split_lists(split, tmp_path)
        assert counts == {"train": 2, "test": 1}
        assert (tmp_path / "train_val_list.txt").read_text() == "b.png\nc.png\n"
        assert (tmp_path / "test_list.txt").read_text() == "a.png\n"
        assert (tmp_path / "split.csv").read_text().splitlines()[0] == "image_id,split"
