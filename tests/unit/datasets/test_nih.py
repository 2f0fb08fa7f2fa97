"""NIHDataset on the real NIH ChestX-ray14 PNGs of the shared test data (skipped without them), with a
``Data_Entry`` and split lists written here (the shared folder holds the images and the box list only)."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import numpy as np
import pytest

from cxrlab.datasets import MissingImagesWarning, NIHDataset
from cxrlab.errors import CxrlabError
from cxrlab.ingest import read_nih_release
from cxrlab.stats import table2_from_tables
from tests.support.data import real_data

HEADER = ("Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,View Position,"
          "OriginalImage[Width,Height],OriginalImagePixelSpacing[x,y],")
#: Labels chosen for the test (not the release's); one row names an image that is not on disk.
LABELS = {
    "00000001_000.png": "Cardiomegaly", "00000001_001.png": "Cardiomegaly|Emphysema",
    "00000001_002.png": "Cardiomegaly|Effusion", "00000002_000.png": "No Finding", "00000003_000.png": "Hernia",
    "00000003_001.png": "Hernia", "00000003_002.png": "Hernia", "00000003_003.png": "Hernia|Infiltration",
    "00000003_004.png": "Hernia", "00000003_005.png": "Hernia", "00000003_006.png": "Hernia",
    "00000003_007.png": "Hernia", "00000004_000.png": "Mass|Nodule", "00000005_000.png": "No Finding",
}
TEST = {"00000003_000.png", "00000003_001.png", "00000004_000.png"}


def _root(tmp_path: Path, *, box: str | None = None, partial: bool = False) -> Path:
    """An NIH folder of the shared PNGs; with *partial*, ``Data_Entry`` also lists 00000005_000.png, not on disk."""
    src = real_data("nih")
    root = tmp_path / "nih"
    (root / "images").mkdir(parents=True)
    for name in LABELS:
        if (src / name).is_file():
            shutil.copyfile(src / name, root / "images" / name)
    names = [n for n in LABELS if partial or n != "00000005_000.png"]
    rows = [HEADER] + [f"{n},{LABELS[n]},0,{int(n[:8])},058Y,M,PA,2500,2048,0.168,0.168," for n in names]
    (root / "Data_Entry_2017.csv").write_text("\n".join(rows) + "\n")
    (root / "train_val_list.txt").write_text("\n".join(n for n in names if n not in TEST) + "\n")
    (root / "test_list.txt").write_text("\n".join(sorted(TEST)) + "\n")
    boxes = gzip.decompress((src / "BBox_List_2017.csv.gz").read_bytes()).decode()
    if box:
        boxes = boxes.rstrip("\n") + "\n" + box + "\n"
    (root / "BBox_List_2017.csv").write_text(boxes)
    return root


def test_labels_ids_and_counts_are_table2s(tmp_path: Path) -> None:
    root = _root(tmp_path, partial=True)
    tables = read_nih_release(root)
    with pytest.warns(MissingImagesWarning) as caught:
        everything = NIHDataset(root, "all", size=64)
    assert len(caught) == 1 and "1 of 14" in str(caught[0].message)  # 00000005_000.png is not on disk
    assert "00000005_000.png" not in everything.image_ids and "00000001_000.png" in everything.image_ids
    on_disk = tables.images.loc[tables.images["path"].notna()]
    want = table2_from_tables(tables.subset(list(on_disk["image_id"])))
    got = dict(zip(everything.label_names, everything.label_matrix().sum(axis=0).tolist(), strict=True))
    assert {lb["name"]: got[lb["name"]] for lb in want.labels if lb["name"] in got} == {
        lb["name"]: lb["count"] for lb in want.labels if lb["name"] in got}
    assert len(everything.label_names) == 14
    with pytest.warns(MissingImagesWarning):
        train = NIHDataset(root, "train", size=64)
    test = NIHDataset(root, "test", size=64)  # every test image is on disk: no warning
    assert sorted(test.image_ids) == sorted(TEST) and len(train) + len(test) == len(everything)
    image, target = everything[everything.image_ids.index("00000001_002.png")]
    assert image.shape == (64, 64) and image.dtype == np.float32
    assert target["image_id"] == "00000001_002.png"
    assert {k for k, v in target["labels"].items() if v} == {"Cardiomegaly", "Effusion"}
    with pytest.raises(CxrlabError, match="absent on disk"):
        NIHDataset(root, "all", strict=True)


def test_the_rgba_png_and_the_windows(tmp_path: Path) -> None:
    root = _root(tmp_path)
    ds = NIHDataset(root, "test", size=None)
    image, _ = ds[ds.image_ids.index("00000004_000.png")]  # RGBA in the release: read as grey
    assert image.shape == (1024, 1024)
    from PIL import Image

    with Image.open(root / "images" / "00000004_000.png") as im:
        grey = np.asarray(im.convert("L"), dtype=np.float32) / 255
    np.testing.assert_array_equal(image, grey)
    auto, _ = NIHDataset(root, "test", size=128, window="auto")[0]
    assert auto.min() == 0.0 and auto.max() == 1.0


def test_boxes_in_the_1024_frame_are_scaled(tmp_path: Path) -> None:
    root = _root(tmp_path, box="00000001_000.png,Cardiomegaly,256,512,512,256")
    ds = NIHDataset(root, "train", size=(128, 64))
    target = ds.target(ds.image_ids.index("00000001_000.png"))
    assert target["boxes"] == [{"label": "Cardiomegaly", "x_min": 16.0, "y_min": 64.0, "x_max": 48.0,
                                "y_max": 96.0}]
    assert NIHDataset(root, "train", bbox=False, size=8).target(0)["boxes"] == []


def test_a_split_needs_its_lists(tmp_path: Path) -> None:
    root = _root(tmp_path)
    (root / "train_val_list.txt").unlink()
    (root / "test_list.txt").unlink()
    with pytest.raises(CxrlabError, match="split='all'"):
        NIHDataset(root, "train")
    with pytest.raises(CxrlabError, match="split must be"):
        NIHDataset(root, "val")
