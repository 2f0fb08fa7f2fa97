"""Importers of public releases: CSV tables by column name, VinDr layouts, NIH Data_Entry/BBox_List/lists."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cxrlab.ingest import (
    CsvFormatError,
    read_bbox_list,
    read_data_entry,
    read_nih,
    read_split_list,
    read_vindr,
    read_vindr_challenge,
    read_vindr_release,
)
from cxrlab.ingest.tables import Column, read_table
from tests.support.data import real_data

SPEC = [Column("image_id", nullable=False), Column("x", kind="float"), Column("n", required=False, kind="int")]


def write(path: Path, text: str, *, gz: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if gz:
        with gzip.open(path, "wt", encoding="utf-8") as fh:
            fh.write(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


class TestReadTable:
    def test_columns_found_by_name_in_any_order_and_gzip(self, tmp_path: Path) -> None:
        p = write(tmp_path / "t.csv.gz", "extra, X ,IMAGE_ID\n9,1.5,a\n9,2,b\n", gz=True)
        table = read_table(p, SPEC)
        frame = table.finish()
        assert list(frame["image_id"]) == ["a", "b"] and list(frame["x"]) == [1.5, 2.0]
        assert table.extra_columns == ["extra"]
        assert frame["n"].isna().all()  # optional column absent

    def test_gzip_recognised_by_content_and_bom_tolerated(self, tmp_path: Path) -> None:
        p = tmp_path / "t.csv"
        p.write_bytes(gzip.compress("\ufeffimage_id,x\na,1\n".encode()))
        assert list(read_table(p, SPEC).finish()["image_id"]) == ["a"]

    def test_bad_rows_reported_with_line_numbers_raises(self, tmp_path: Path) -> None:
        p = write(tmp_path / "t.csv", "image_id,x,n\na,1,2\nb,zz,3\n\nc,1,2,9,9\n,4,5\nd,1,2.5\n")
        with pytest.raises(CsvFormatError, match=r"t\.csv: 4 bad row\(s\)") as info:
            read_table(p, SPEC).finish()
        assert info.value.lines == [
            (3, "x is not a number"),
            (5, "expected 3 fields, saw 5"),
            (6, "image_id is empty"),
            (7, "n is not a whole number"),
        ]
        assert "zz" not in str(info.value)  # values are never quoted

    def test_warn_policy_keeps_good_rows(self, tmp_path: Path) -> None:
        p = write(tmp_path / "t.csv", "image_id,x\na,1\nb,oops\nc,3\n")
        table = read_table(p, SPEC, on_bad_rows="warn")
        assert list(table.finish()["image_id"]) == ["a", "c"]
        assert table.problems == [(3, "x is not a number")]

    @pytest.mark.parametrize(
        ("content", "msg"),
        [
            ("", "empty file"),
            ("image_id,y\na,1\n", r"missing column\(s\) x \(header has: image_id, y\)"),
            ('image_id,x\n"a,1\n', "not a well-formed CSV"),
        ],
    )
    def test_unusable_files_raise(self, tmp_path: Path, content: str, msg: str) -> None:
        p = write(tmp_path / "t.csv", content)
        with pytest.raises(CsvFormatError, match=msg):
            read_table(p, SPEC).finish()

    def test_binary_and_missing_files_raise(self, tmp_path: Path) -> None:
        p = tmp_path / "t.csv"
        p.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe\x00garbage")
        with pytest.raises(CsvFormatError, match="t.csv"):
            read_table(p, SPEC)
        with pytest.raises(CsvFormatError, match="file not found"):
            read_table(tmp_path / "nope.csv", SPEC)
        (tmp_path / "bad.csv.gz").write_bytes(b"\x1f\x8b\x08\x00truncated")
        with pytest.raises(CsvFormatError, match="corrupt or truncated"):
            read_table(tmp_path / "bad.csv.gz", SPEC)

    def test_header_only_is_an_empty_table(self, tmp_path: Path) -> None:
        p = write(tmp_path / "t.csv", "image_id,x\n")
        assert read_table(p, SPEC).finish().empty


ANN = (
    "image_id,rad_id,class_name,x_min,y_min,x_max,y_max,class_id\n"
    "img1,R1,Cardiomegaly,10,20,110,220,2\n"
    "img1,R2,Cardiomegaly,12,22,112,222,2\n"
    "img1,R3,No finding,,,,,22\n"
    "img2,R1,No finding,,,,,22\n"
)
LAB_HEADER = "image_id,rad_ID,Cardiomegaly,Pneumonia,Other diseases,No finding\n"


class TestReadVindr:
    def test_annotations_and_labels(self, tmp_path: Path) -> None:
        a = write(tmp_path / "annotations_train.csv", ANN)
        lab = write(tmp_path / "image_labels_train.csv.gz",
                    LAB_HEADER + "img1,R1,1,0,1,0\nimg1,R2,1,0,0,0\nimg1,R3,0,0,0,1\nimg2,R1,0,0,0,1\n", gz=True)
        t = read_vindr([a], [lab])
        assert t.schema.name == "vindr-cxr"
        assert len(t.reader_boxes) == 2 and set(t.reader_boxes["rad_id"]) == {"R1", "R2"}
        assert t.split_ids("train") == ["img1", "img2"]
        lab1 = t.reader_labels.set_index(["image_id", "rad_id"])
        assert lab1.loc[("img1", "R1"), "Other diseases"] == 1
        assert lab1.loc[("img1", "R3"), "No finding"] == 1
        assert lab1.loc[("img1", "R1"), "Aortic enlargement"] == 0  # absent column: 0
        assert "Aortic enlargement" in t.known_labels  # known from annotations (no box drawn)
        assert "Tuberculosis" not in t.known_labels  # a global label absent from both files

    def test_labels_derived_from_annotations_alone(self, tmp_path: Path) -> None:
        t = read_vindr([write(tmp_path / "annotations_train.csv", ANN)])
        lab = t.reader_labels.set_index(["image_id", "rad_id"])
        assert lab.loc[("img1", "R1"), "Cardiomegaly"] == 1 and lab.loc[("img2", "R1"), "No finding"] == 1
        assert "Pneumonia" not in t.known_labels

    def test_consensus_rows_have_empty_rad_id(self, tmp_path: Path) -> None:
        a = write(tmp_path / "annotations_test.csv",
                  "image_id,rad_id,class_name,x_min,y_min,x_max,y_max,class_id\n"
                  "t1,,Pleural effusion,1,2,30,40,19\nt2,,No finding,,,,,22\n")
        t = read_vindr([a])
        assert t.split_ids("test") == ["t1", "t2"]
        assert t.reader_boxes.empty and len(t.consensus_boxes) == 1
        assert t.consensus_labels.set_index("image_id").at["t2", "No finding"] == 1

    def test_challenge_file_spellings_and_column_order(self, tmp_path: Path) -> None:
        p = write(tmp_path / "train.csv",
                  "image_id,class_name,class_id,rad_id,x_min,y_min,x_max,y_max\n"
                  "i1,ILD,5,R8,691.0,1375.0,1653.0,1831.0\n"
                  "i1,Lung Opacity,7,R9,10.0,20.0,30.0,40.0\n"
                  "i2,No finding,14,R10,,,,\n")
        t = read_vindr_challenge(p)
        assert set(t.reader_boxes["class_name"]) == {"Interstitial lung disease (ILD)", "Lung opacity"}
        assert t.reader_boxes["x_min"].iloc[0] == 691.0

    def test_pcxr_schema_guessed(self, tmp_path: Path) -> None:
        a = write(tmp_path / "annotations_train.csv",
                  "image_id,rad_id,class_name,x_min,y_min,x_max,y_max\n"
                  "p1,R1,Boot-shaped heart,1,1,9,9\np2,R1,No finding,,,,\n")
        assert read_vindr([a]).schema.name == "vindr-pcxr"

    def test_garbage_rows_raise_with_lines(self, tmp_path: Path) -> None:
        a = write(tmp_path / "annotations_train.csv",
                  "image_id,rad_id,class_name,x_min,y_min,x_max,y_max\n"
                  "i1,R1,Cardiomegaly,1,1,9,9\n"
                  "i1,R2,Unicorn,1,1,9,9\n"
                  "i1,R3,Cardiomegaly,,,,\n"
                  "i2,R1,Cardiomegaly,50,1,9,9\n"
                  "i3,R1,Pneumonia,1,1,9,9\n"
                  "completely garbage row without commas\n")
        with pytest.raises(CsvFormatError) as info:
            read_vindr([a], schema="vindr-cxr")
        lines = dict(info.value.lines)
        assert lines[3] == "class_name is not a label of schema vindr-cxr"
        assert lines[4] == "box coordinates missing"
        assert lines[5] == "x_max < x_min or y_max < y_min"
        assert lines[6].startswith("class_name is a global label")
        assert 7 in lines

    def test_bad_label_values_and_unknown_columns_raise(self, tmp_path: Path) -> None:
        lab = write(tmp_path / "image_labels_train.csv", LAB_HEADER + "i1,R1,2,0,0,0\ni1,R1,1,0,0,0\n")
        with pytest.raises(CsvFormatError, match="line 2: label value is not 0 or 1"):
            read_vindr([], [lab])
        lab = write(tmp_path / "image_labels_train.csv", "image_id,rad_id,Cardiomegaly,Unicorn\ni1,R1,1,0\n")
        with pytest.raises(CsvFormatError, match="Unicorn are not labels of schema vindr-cxr"):
            read_vindr([], [lab], schema="vindr-cxr")

    def test_warn_policy_collects_problems(self, tmp_path: Path) -> None:
        a = write(tmp_path / "annotations_train.csv", ANN + "img3,R1,Unicorn,1,1,2,2,0\n")
        t = read_vindr([a], on_bad_rows="warn")
        assert t.problems == [(f"{a}:6", "class_name is not a label of schema vindr-cxr")]


DE_2017 = (
    "Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,View Position,"
    "OriginalImage[Width,Height],OriginalImagePixelSpacing[x,y],\n"
    "00000001_000.png,Cardiomegaly,0,1,058Y,M,PA,2682,2749,0.143,0.143,\n"
    "00000001_001.png,Cardiomegaly|Emphysema,1,1,058Y,M,PA,2894,2729,0.143,0.143,\n"
    "00000002_000.png,No Finding,0,2,081Y,F,AP,2500,2048,0.171,0.171,\n"
)
DE_2020 = (
    "Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,View Position,"
    "OriginalImage[Width,Height],OriginalImagePixelSpacing[x,y]\n"
    "00000001_000.png,Cardiomegaly,0,1,57,M,PA,2682,2749,0.14300000000000002,0.14300000000000002\n"
    "00000001_001.png,Cardiomegaly|Emphysema,1,1,58,M,PA,2894,2729,0.143,0.143\n"
    "00000002_000.png,No Finding,0,2,80,F,AP,2500,2048,0.171,0.171\n"
)


class TestReadVindrRelease:
    def test_train_and_test_folders_both_give_image_paths(self, tmp_path: Path) -> None:
        # Regression: the second DICOM folder's path/file_size went to path_dir/file_size_dir columns, so a
        # re-export (`cxrlab export --from-vindr`) left out the images of the first folder read.
        write(tmp_path / "annotations_train.csv", "image_id,rad_id,class_name,x_min,y_min,x_max,y_max,class_id\n"
              "a1,R1,No finding,,,,,22\n")
        write(tmp_path / "annotations_test.csv", "image_id,rad_id,class_name,x_min,y_min,x_max,y_max,class_id\n"
              "b1,,No finding,,,,,22\n")
        for split, image_id in (("train", "a1"), ("test", "b1")):
            (tmp_path / split).mkdir()
            (tmp_path / split / f"{image_id}.dicom").write_bytes(b"\0" * (10 if split == "train" else 20))
        images = read_vindr_release(tmp_path).images.set_index("image_id")
        assert not [c for c in images.columns if c.endswith("_dir")]
        assert images.loc["a1", "path"] == str(tmp_path / "train" / "a1.dicom")
        assert images.loc["b1", "path"] == str(tmp_path / "test" / "b1.dicom")
        assert list(images["file_size"]) == [10, 20] and list(images["split"]) == ["train", "test"]


class TestReadNih:
    @pytest.mark.parametrize("text", [DE_2017, DE_2020], ids=["2017", "2020"])
    def test_both_variants(self, tmp_path: Path, text: str) -> None:
        frame, problems = read_data_entry(write(tmp_path / "Data_Entry_2017.csv.gz", text, gz=True))
        assert problems == []
        assert list(frame["columns"]) == [2682, 2894, 2500] and list(frame["rows"]) == [2749, 2729, 2048]
        assert frame["age_years"].iloc[2] in (80, 81) and list(frame["sex"]) == ["M", "M", "F"]
        assert frame["Cardiomegaly"].tolist() == [1, 1, 0] and frame["Emphysema"].tolist() == [0, 1, 0]
        assert frame["spacing_x"].iloc[2] == 0.171

    def test_quoted_bracket_headers(self, tmp_path: Path) -> None:
        text = ('Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Sex,View Position,'
                '"OriginalImage[Width,Height]","OriginalImagePixelSpacing[x,y]"\n'
                '"a.png","Effusion|Mass",0,"123",55,"F","PA","1024,1000","0.143,0.15"\n')
        frame, _ = read_data_entry(write(tmp_path / "d.csv", text))
        assert frame.loc[0, "columns"] == 1024 and frame.loc[0, "rows"] == 1000 and frame.loc[0, "spacing_y"] == 0.15

    def test_bad_rows(self, tmp_path: Path) -> None:
        text = DE_2020 + "x.png,Unicorn,0,3,40,M,PA,1,1,1,1\ny.png,Mass,0,3,old,M,PA,1,1,1,1\n"
        with pytest.raises(CsvFormatError) as info:
            read_data_entry(write(tmp_path / "d.csv", text))
        assert [n for n, _ in info.value.lines] == [5, 6]

    def test_real_bbox_list(self) -> None:
        path = real_data("nih", "BBox_List_2017.csv.gz")
        boxes, problems = read_bbox_list(path)
        assert problems == [] and len(boxes) == 984 and boxes["image_id"].nunique() == 880
        assert set(boxes["class_name"]) <= {"Atelectasis", "Cardiomegaly", "Effusion", "Infiltration", "Mass",
                                            "Nodule", "Pneumonia", "Pneumothorax"}
        first = boxes.iloc[0]
        assert first["image_id"] == "00013118_008.png"
        assert np.isclose(first["x_max"], 225.084745762712 + 86.7796610169491)

    def test_release_with_lists(self, tmp_path: Path) -> None:
        de = write(tmp_path / "Data_Entry_2017.csv", DE_2017)
        tv = write(tmp_path / "train_val_list.txt", "00000001_000.png\n00000001_001.png\n")
        te = write(tmp_path / "test_list.txt", "00000002_000.png\n\n")
        t = read_nih(de, train_val_list=tv, test_list=te)
        assert t.split_ids("test") == ["00000002_000.png"] and len(t.split_ids("train")) == 2
        assert read_split_list(te) == ["00000002_000.png"]
        with pytest.raises(CsvFormatError, match="line 1: expected one image name"):
            read_split_list(write(tmp_path / "bad.txt", "a.png b.png\n"))

    @pytest.mark.slow  # 112,120 rows
    def test_112120_rows_read_quickly(self, tmp_path: Path) -> None:
        rng = np.random.default_rng(0)
        n = 112_120
        labels = np.array(["No Finding", "Atelectasis", "Effusion|Infiltration", "Mass|Nodule|Pneumonia"])
        frame = pd.DataFrame({
            "i": [f"{k // 4:08d}_{k % 4:03d}.png" for k in range(n)], "f": labels[rng.integers(0, 4, n)],
            "u": 0, "p": np.arange(n) // 4, "a": rng.integers(1, 90, n), "g": "M", "v": "PA", "w": 2500,
            "h": 2048, "sx": 0.143, "sy": 0.143,
        })
        path = tmp_path / "Data_Entry_2017_v2020.csv"
        path.write_text(DE_2020.splitlines()[0] + "\n" + frame.to_csv(index=False, header=False))
        entries, _ = read_data_entry(path)
        assert len(entries) == n
        assert entries["Nodule"].sum() == (frame["f"] == "Mass|Nodule|Pneumonia").sum()


class TestImageBounds:
    """Image sizes are DICOM's (whole numbers 1-65,535) and boxes stay inside their image (issue 10)."""

    def test_data_entry_sizes(self, tmp_path: Path) -> None:
        text = DE_2020 + "x.png,Mass,0,3,40,M,PA,0,100,0.1,0.1\ny.png,Mass,0,3,40,M,PA,100,70000,0.1,0.1\n"
        with pytest.raises(CsvFormatError) as info:
            read_data_entry(write(tmp_path / "d.csv", text))
        assert info.value.lines == [
            (5, "OriginalImage width is not a whole number from 1 to 65,535 (DICOM Rows/Columns)"),
            (6, "OriginalImage height is not a whole number from 1 to 65,535 (DICOM Rows/Columns)"),
        ]

    def test_nih_boxes_stay_on_the_1024_png(self, tmp_path: Path) -> None:
        text = ("Image Index,Finding Label,Bbox [x,y,w,h],,,\n"
                "a.png,Mass,10,10,30,30\nb.png,Mass,1000,10,30,30\nc.png,Mass,-5,10,30,30\nd.png,Mass,995,994,30,30\n")
        with pytest.raises(CsvFormatError) as info:
            read_bbox_list(write(tmp_path / "b.csv", text))
        assert info.value.lines == [(3, "coordinate beyond the image (its width or height)"),
                                    (4, "negative coordinate")]

    def test_vindr_boxes_against_row_sizes_and_the_dicom_limit(self, tmp_path: Path) -> None:
        text = ("image_id,rad_id,class_name,x_min,y_min,x_max,y_max,width,height\n"
                "a,R1,Cardiomegaly,10,10,90,90,100,100\n"
                "b,R1,Cardiomegaly,10,10,190,90,100,100\n"
                "c,R1,Cardiomegaly,10,10,90,1e9,,\n"
                "d,R1,Cardiomegaly,10,10,90,90,-5,100\n"
                "e,R1,Cardiomegaly,-1e9,10,90,90,,\n")
        with pytest.raises(CsvFormatError) as info:
            read_vindr([write(tmp_path / "annotations_train.csv", text)])
        assert info.value.lines == [
            (3, "coordinate beyond the image (its width or height)"),
            (4, "coordinate beyond 65,535 (the largest image side DICOM allows)"),
            (5, "width is not a whole number from 1 to 65,535 (DICOM Rows/Columns)"),
            (6, "negative coordinate"),
        ]
