"""VinDrDataset and ReleaseDataset on phantom releases: label fusion as Table 2 counts it, boxes in the resized
frame, per-reader marks, partial downloads, and the exports of ``cxrlab.export``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cxrlab.consensus import fuse_reader_boxes
from cxrlab.datasets import MissingImagesWarning, ReleaseDataset, VinDrDataset
from cxrlab.dicom.display import to_uint8
from cxrlab.errors import CxrlabError
from cxrlab.export import write_release
from cxrlab.ingest import read_vindr_release
from cxrlab.stats import table2_from_tables


def _counts(table2: object) -> dict[str, int]:
    return {lb["name"]: lb["count"] for lb in table2.labels if lb["count"] is not None}  # type: ignore[attr-defined]


def _truth(root: Path) -> dict[str, list[dict]]:
    """The planted boxes by image id, from truth.json."""
    return {Path(r["file"]).stem: r["findings"] for r in json.loads((root / "truth.json").read_text())}


class TestLabelFusion:
    def test_majority_counts_are_table2s(self, phantom_release) -> None:  # noqa: ANN001
        root, _ = phantom_release
        tables = read_vindr_release(root)
        for split in ("train", "test"):
            ds = VinDrDataset(root, split, labels="majority", size=32)
            got = dict(zip(ds.label_names, ds.label_matrix().sum(axis=0).tolist(), strict=True))
            want = _counts(table2_from_tables(tables, split))
            assert {k: got[k] for k in want} == want
            assert len(ds) == table2_from_tables(tables, split).n_images

    def test_any_counts_are_table2s_at_threshold_zero_and_at_least_majority(self, phantom_release) -> None:  # noqa: ANN001
        root, _ = phantom_release
        tables = read_vindr_release(root)
        anyone = VinDrDataset(root, "train", labels="any", size=32)
        majority = VinDrDataset(root, "train", labels="majority", size=32)
        want = _counts(table2_from_tables(tables, "train", threshold=0.0))
        got = dict(zip(anyone.label_names, anyone.label_matrix().sum(axis=0).tolist(), strict=True))
        assert {k: got[k] for k in want} == want
        assert (anyone.label_matrix() >= majority.label_matrix()).all()
        assert anyone.label_matrix().sum() > majority.label_matrix().sum()  # the readers disagree somewhere

    def test_reader_choice_is_that_readers_images_and_labels(self, phantom_release) -> None:  # noqa: ANN001
        root, _ = phantom_release
        tables = read_vindr_release(root)
        rl = tables.reader_labels
        rad = rl["rad_id"].value_counts().index[0]
        ds = VinDrDataset(root, "train", labels=f"reader:{rad}", size=32)
        mine = rl.loc[rl["rad_id"] == rad].sort_values("image_id")
        assert ds.image_ids == list(mine["image_id"])
        assert (ds.label_matrix() == mine[ds.label_names].to_numpy()).all()
        own = tables.reader_boxes.loc[tables.reader_boxes["rad_id"] == rad]
        assert sum(len(ds.target(i)["boxes"]) for i in range(len(ds))) == len(own)
        with pytest.raises(CxrlabError, match="R99"):
            VinDrDataset(root, "train", labels="reader:R99")

    def test_consensus_is_the_test_sets_truth_and_refused_on_train(self, phantom_release) -> None:  # noqa: ANN001
        root, truth = phantom_release
        ds = VinDrDataset(root, "test", labels="consensus", size=32)
        test = truth.loc[truth["split"] == "test"].set_index("image_id")
        for i, iid in enumerate(ds.image_ids):
            labels = ds.target(i)["labels"]
            for name in ("Nodule/Mass", "Cardiomegaly", "Pleural effusion"):
                assert labels[name] == test.loc[iid, name]
            assert labels["No finding"] == int(not test.loc[iid, ["Nodule/Mass", "Cardiomegaly",
                                                                  "Pleural effusion"]].any())
        with pytest.raises(CxrlabError, match="consensus"):
            VinDrDataset(root, "train", labels="consensus")

    def test_unknown_choices_and_splits_are_refused(self, phantom_release) -> None:  # noqa: ANN001
        root, _ = phantom_release
        with pytest.raises(CxrlabError, match="labels must be"):
            VinDrDataset(root, "train", labels="median")
        with pytest.raises(CxrlabError, match="boxes must be"):
            VinDrDataset(root, "train", boxes="nms")
        with pytest.raises(CxrlabError, match="no image in split 'val'"):
            VinDrDataset(root, "val")
        with pytest.raises(CxrlabError, match="no annotations"):
            VinDrDataset(root / "train")


class TestBoxes:
    def test_test_boxes_are_the_planted_ones_scaled_per_axis(self, phantom_release) -> None:  # noqa: ANN001
        root, truth = phantom_release
        planted = _truth(root)
        sizes = truth.set_index("image_id")
        ds = VinDrDataset(root, "test", size=(64, 48))
        full = VinDrDataset(root, "test", size=None)
        assert sum(len(planted[i]) for i in ds.image_ids) > 0
        for i, iid in enumerate(ds.image_ids):
            image, target = ds[i]
            assert image.shape == (64, 48) and image.dtype == np.float32
            sx, sy = 48 / sizes.loc[iid, "columns"], 64 / sizes.loc[iid, "rows"]
            want = sorted((f["label"], f["box"][0] * sx, f["box"][1] * sy, f["box"][2] * sx, f["box"][3] * sy)
                          for f in planted[iid])
            got = sorted((b["label"], b["x_min"], b["y_min"], b["x_max"], b["y_max"]) for b in target["boxes"])
            assert [g[0] for g in got] == [w[0] for w in want]
            if got:
                np.testing.assert_allclose([g[1:] for g in got], [w[1:] for w in want], atol=0.02)
            original = full[i][1]["boxes"]
            assert sorted((b["label"], b["x_min"]) for b in original) == sorted(
                (f["label"], f["box"][0]) for f in planted[iid])

    def test_wbf_and_majority_boxes_are_the_consensus_packages(self, phantom_release) -> None:  # noqa: ANN001
        root, _ = phantom_release
        tables = read_vindr_release(root)
        train = set(tables.split_ids("train"))
        rb = tables.reader_boxes.loc[tables.reader_boxes["image_id"].isin(train)]
        readers = tables.reader_labels.groupby("image_id")["rad_id"].nunique()
        for method in ("wbf", "majority"):
            want = fuse_reader_boxes(rb, iou_thr=0.4, method=method, readers=readers)
            ds = VinDrDataset(root, "train", boxes=method, size=None)
            got = [(ds.image_ids[i], b["label"], round(b["x_min"], 6)) for i in range(len(ds))
                   for b in ds.target(i)["boxes"]]
            assert sorted(got) == sorted(zip(want["image_id"], want["class_name"], want["x_min"].round(6),
                                             strict=True))
            assert all("votes" in b for i in range(len(ds)) for b in ds.target(i)["boxes"])
        everything = VinDrDataset(root, "train", boxes="all", size=None)
        assert sum(len(everything.target(i)["boxes"]) for i in range(len(everything))) == len(rb)

    def test_per_reader_marks_when_asked(self, phantom_release) -> None:  # noqa: ANN001
        root, _ = phantom_release
        tables = read_vindr_release(root)
        ds = VinDrDataset(root, "train", readers=True, size=(50, 50))
        assert "readers" not in VinDrDataset(root, "train", size=8).target(0)
        marks = [ds.target(i)["readers"] for i in range(len(ds))]
        assert all(len(m) == 3 for m in marks)
        assert sum(len(r["boxes"]) for m in marks for r in m) == len(tables.reader_boxes.loc[
            tables.reader_boxes["image_id"].isin(set(ds.image_ids))])
        assert all(0 <= b["x_max"] <= 50 for m in marks for r in m for b in r["boxes"])


class TestImages:
    def test_windows_and_the_display_pipeline(self, phantom_release) -> None:  # noqa: ANN001
        root, _ = phantom_release
        path = sorted((root / "train").glob("*.dicom"))[0]
        native = VinDrDataset(root, "train", size=None)
        i = native.image_ids.index(path.stem)
        image, _ = native[i]
        assert np.abs(np.round(image * 255) - to_uint8(path).astype(float)).max() <= 1  # the viewer's pixels
        for window in ("full", "auto"):
            img, _ = VinDrDataset(root, "train", size=40, window=window)[i]
            assert img.shape == (40, 40) and img.min() >= 0.0 and img.max() <= 1.0
        full = VinDrDataset(root, "train", size=40, window="full")[i][0]
        auto = VinDrDataset(root, "train", size=40, window="auto")[i][0]
        assert (auto == 0).mean() + (auto == 1).mean() >= (full == 0).mean() + (full == 1).mean()
        with pytest.raises(ValueError, match="window"):
            VinDrDataset(root, "train", window="lung")

    def test_transforms_follow_torchvisions_conventions(self, phantom_release) -> None:  # noqa: ANN001
        root, _ = phantom_release

        def flip(image: np.ndarray, target: dict) -> tuple[np.ndarray, dict]:
            w = image.shape[1]
            target["boxes"] = [{**b, "x_min": w - b["x_max"], "x_max": w - b["x_min"]} for b in target["boxes"]]
            return image[:, ::-1], target

        plain = VinDrDataset(root, "test", size=32)
        ds = VinDrDataset(root, "test", size=32, transform=lambda im: im * 2, target_transform=lambda t: {**t, "x": 1},
                          transforms=flip)
        for i in range(len(ds)):
            (a, ta), (b, tb) = plain[i], ds[i]
            np.testing.assert_array_equal(b, (a * 2)[:, ::-1])
            assert tb["x"] == 1
            assert [round(32 - x["x_max"], 6) for x in ta["boxes"]] == [round(x["x_min"], 6) for x in tb["boxes"]]


class TestPartialDownload:
    def test_absent_images_skipped_with_one_warning_or_refused(self, phantom_release, tmp_path: Path) -> None:  # noqa: ANN001
        root = tmp_path / "r"
        shutil.copytree(phantom_release[0], root)
        full = VinDrDataset(root, "train", size=8)
        files = sorted((root / "train").glob("*.dicom"))
        for p in files[:2]:
            p.unlink()
        with pytest.warns(MissingImagesWarning) as caught:
            ds = VinDrDataset(root, "train", size=8)
        assert len(caught) == 1 and "2 of" in str(caught[0].message) and "partial download" in str(caught[0].message)
        assert len(ds) == len(full) - 2 and files[0].stem not in ds.image_ids
        with pytest.raises(CxrlabError, match="2 of .* absent on disk"):
            VinDrDataset(root, "train", size=8, strict=True)


class TestReleaseDataset:
    @pytest.mark.slow  # writes an export
    def test_a_cxrlab_export_reads_with_table2_counts(self, phantom_release, tmp_path: Path) -> None:  # noqa: ANN001
        root, _ = phantom_release
        tables = read_vindr_release(root, read_headers=True)
        out = tmp_path / "exports" / "v1"
        write_release(tables, out, link=False)
        table2 = json.loads((out / "table2.json").read_text())
        sets = {s["title"]: s for s in table2["sets"]}
        for split, title in (("train", "Training set"), ("test", "Test set")):
            ds = ReleaseDataset(out, split, size=16)
            assert ds.schema.name == "vindr-cxr"
            got = dict(zip(ds.label_names, ds.label_matrix().sum(axis=0).tolist(), strict=True))
            want = {lb["name"]: lb["count"] for lb in sets[title]["labels"] if lb["count"] is not None}
            assert {k: got[k] for k in want} == want
            assert len(ds) == sets[title]["n_images"]
            image, target = ds[0]
            assert image.shape == (16, 16) and set(target["labels"]) == set(ds.label_names)
        assert len(ReleaseDataset(out, "test", labels="consensus", size=16)) == sets["Test set"]["n_images"]

    def test_a_folder_without_manifest_is_not_an_export(self, phantom_release) -> None:  # noqa: ANN001
        with pytest.raises(CxrlabError, match="manifest.json"):
            ReleaseDataset(phantom_release[0])


@pytest.mark.slow  # a second phantom release
def test_the_phantom_release_is_deterministic(phantom_release, tmp_path: Path) -> None:  # noqa: ANN001
    from cxrlab.datasets import write_phantom_release

    root, truth = phantom_release
    again = write_phantom_release(tmp_path / "again", 18, seed=5, size_range=(200, 260), finding_prob=0.4,
                                  test_share=0.25)
    pd.testing.assert_frame_equal(truth, again)
    for name in ("annotations_train.csv", "image_labels_train.csv", "annotations_test.csv"):
        assert (root / name).read_bytes() == (tmp_path / "again" / name).read_bytes()
    with pytest.raises(CxrlabError, match="already exists"):
        write_phantom_release(tmp_path / "again", 2, size_range=(200, 260))
