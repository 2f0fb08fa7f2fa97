"""Statistics from plain CSV files: Table 2 (known counts, ties, bad inputs), NIH co-occurrence, Figures 3-4,
and the file-mode CLI commands (stats, consensus, split, export)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from cxrlab.cli.main import app
from cxrlab.ingest import read_data_entry, read_vindr
from cxrlab.schemas import get_schema
from cxrlab.stats import cooccurrence, label_figures, render_table2, table2_from_tables

runner = CliRunner()
CXR = get_schema("vindr-cxr")


def invoke(*args: object):  # noqa: ANN201
    return runner.invoke(app, [str(a) for a in args])


def known_release(folder: Path) -> dict[str, int]:
    """Write annotations/image_labels for 20 images x 3 readers whose majority counts are known.

    - Cardiomegaly: images 0-5 marked by 2 of 3 readers (positive), images 6-8 by 1 of 3 (negative) -> 6.
    - Pneumonia (global): images 0-3 marked by all 3 -> 4.
    - Nodule/Mass: image 10 read by 4 readers, 2 of them marked it: a tie, negative -> 0.
    - No finding: images 9 and 11-19 (all readers) and 6-8 (the 2 readers who saw nothing) -> 13; images 4-5
      (1 of 3) and 10 (2 of 4, a tie) are negative.
    """
    ann = ["image_id,rad_id,class_name,x_min,y_min,x_max,y_max,class_id"]
    lab = ["image_id,rad_id," + ",".join(CXR.names)]
    col = {n: i for i, n in enumerate(CXR.names)}
    for i in range(20):
        readers = ["R1", "R2", "R3", "R4"] if i == 10 else ["R1", "R2", "R3"]
        for k, r in enumerate(readers):
            vec = [0] * len(CXR.names)
            if i <= 5 and k < 2 or 6 <= i <= 8 and k == 0:
                ann.append(f"img{i:02d},{r},Cardiomegaly,10,10,50,60,2")
                vec[col["Cardiomegaly"]] = 1
                vec[col["Other diseases"]] = 1
            if i <= 3:
                vec[col["Pneumonia"]] = 1
            if i == 10 and k < 2:
                ann.append(f"img{i:02d},{r},Nodule/Mass,5,5,9,9,15")
                vec[col["Nodule/Mass"]] = 1
                vec[col["Lung tumor"]] = 1
            if not any(vec):
                ann.append(f"img{i:02d},{r},No finding,,,,,22")
                vec[col["No finding"]] = 1
            lab.append(f"img{i:02d},{r}," + ",".join(map(str, vec)))
    (folder / "annotations_train.csv").write_text("\n".join(ann) + "\n")
    (folder / "image_labels_train.csv").write_text("\n".join(lab) + "\n")
    meta = ["image_id,height,width,Patient Age,sex,year,size"]
    for i in range(20):
        meta.append(f"img{i:02d},{1000 + i},{900 + i},{'040Y' if i % 2 else '60'},{'M' if i < 15 else 'F'},"
                    f"{2018 + i % 3},{10**9 // 20}")
    (folder / "meta.csv").write_text("\n".join(meta) + "\n")
    return {"Cardiomegaly": 6, "Pneumonia": 4, "Nodule/Mass": 0, "No finding": 13}


class TestTable2:
    def test_known_counts_from_files(self, tmp_path: Path) -> None:
        expected = known_release(tmp_path)
        result = invoke("stats", "table2", "--annotations", tmp_path / "annotations_train.csv",
                        "--image-labels", tmp_path / "image_labels_train.csv", "--meta", tmp_path / "meta.csv",
                        "--format", "json")
        assert result.exit_code == 0, result.output
        data = json.loads(result.output)
        counts = {x["name"]: x["count"] for x in data["labels"]}
        for name, n in expected.items():
            assert counts[name] == n, name
        assert all({"name", "kind", "count", "percent"} <= set(x) for x in data["labels"])
        assert [x["name"] for x in data["labels"]] == CXR.names
        pct = {x["name"]: x["percent"] for x in data["labels"]}
        assert pct["Cardiomegaly"] == pytest.approx(30.0)
        assert data["n_images"] == 20 and data["annotators_per_scan"] == "3-4"
        assert data["years"] == "2018 to 2020" and data["median_size"] == "1,010 × 910"
        assert data["male_pct"] == pytest.approx(75.0) and data["median_age"] == pytest.approx(50.0)
        assert data["data_size_gb"] == pytest.approx(1.0)

    def test_annotations_alone_leave_global_labels_unknown(self, tmp_path: Path) -> None:
        known_release(tmp_path)
        result = invoke("stats", "table2", "--annotations", tmp_path / "annotations_train.csv", "--format", "json")
        data = json.loads(result.output)
        counts = {x["name"]: x["count"] for x in data["labels"]}
        assert counts["Cardiomegaly"] == 6 and counts["No finding"] == 13 and counts["Pneumonia"] is None

    @pytest.mark.parametrize("fmt", ["md", "csv", "html"])
    def test_formats(self, tmp_path: Path, fmt: str) -> None:
        known_release(tmp_path)
        result = invoke("stats", "table2", "-a", tmp_path / "annotations_train.csv", "--format", fmt)
        assert result.exit_code == 0, result.output
        assert "3. Cardiomegaly (%)" in result.output and "6 (30.00%)" in result.output

    def test_train_and_test_columns(self, tmp_path: Path) -> None:
        known_release(tmp_path)
        (tmp_path / "annotations_test.csv").write_text(
            "image_id,rad_id,class_name,x_min,y_min,x_max,y_max,class_id\nt1,,Cardiomegaly,1,1,5,5,2\n"
            "t2,,No finding,,,,,22\n")
        t = read_vindr([tmp_path / "annotations_train.csv", tmp_path / "annotations_test.csv"])
        text = render_table2([("Training set", table2_from_tables(t, "train")),
                              ("Test set", table2_from_tables(t, "test"))], "md")
        assert "| Training set | Test set |" in text
        assert "| 6 (30.00%) | 1 (50.00%) |" in text

    @pytest.mark.parametrize(
        ("content", "msg"),
        [
            ("", "empty file"),
            ("image_id,rad_id,class_name\na,R1,Cardiomegaly\n", r"missing column\(s\) x_min, y_min, x_max, y_max"),
            ("image_id,rad_id,class_name,x_min,y_min,x_max,y_max\na,R1,Cardiomegaly,1,1,5,5\n#!garbage,\x01,,,\n"
             "b,R1,Cardiomegaly,one,1,5,5\n", r"line 3: .*line 4: x_min is not a number"),
        ],
    )
    def test_bad_files_exit_1_with_clear_errors(self, tmp_path: Path, content: str, msg: str) -> None:
        p = tmp_path / "annotations_train.csv"
        p.write_text(content)
        result = invoke("stats", "table2", "--annotations", p)
        assert result.exit_code == 1
        assert "annotations_train.csv" in result.output and pd.Series([result.output]).str.contains(msg).all(), \
            result.output

    def test_bad_rows_can_be_skipped(self, tmp_path: Path) -> None:
        p = tmp_path / "annotations_train.csv"
        p.write_text("image_id,rad_id,class_name,x_min,y_min,x_max,y_max\na,R1,Cardiomegaly,1,1,5,5\n"
                     "b,R1,Unicorn,1,1,5,5\n")
        result = invoke("stats", "table2", "--annotations", p, "--bad-rows", "warn", "--format", "json")
        assert result.exit_code == 0
        assert "skipped" in result.output and "annotations_train.csv:3" in result.output

    @pytest.mark.slow  # 112,120 rows
    def test_nih_table2_112120_rows(self, tmp_path: Path) -> None:
        path, y = nih_file(tmp_path, 112_120)
        result = invoke("stats", "table2", "--nih", path, "--format", "json")
        assert result.exit_code == 0, result.output[-500:]
        data = json.loads(result.output[result.output.index("{"):])
        counts = {x["name"]: x["count"] for x in data["labels"]}
        assert counts["Effusion"] == int(y[:, 2].sum()) and counts["No Finding"] == int((y.sum(axis=1) == 0).sum())


NIH = get_schema("nih14").names


def nih_file(folder: Path, n: int, seed: int = 0) -> tuple[Path, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = (rng.random((n, 14)) < np.geomspace(0.15, 0.002, 14)).astype(int)
    labels = ["|".join(np.array(NIH)[row == 1]) or "No Finding" for row in y]
    lines = ["Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,View Position,"
             "OriginalImage[Width,Height],OriginalImagePixelSpacing[x,y],"]
    lines += [f"{k:08d}_000.png,{lab},0,{k},{20 + k % 60:03d}Y,{'MF'[k % 2]},PA,2500,2048,0.143,0.143,"
              for k, lab in enumerate(labels)]
    path = folder / "Data_Entry_2017.csv"
    path.write_text("\n".join(lines) + "\n")
    return path, y


class TestCooccurrence:
    def test_known_matrix(self, tmp_path: Path) -> None:
        rows = ["Atelectasis", "Atelectasis", "Atelectasis|Effusion", "Effusion|Hernia|Mass", "No Finding", "Hernia"]
        lines = ["Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,View Position,"
                 "OriginalImage[Width,Height],OriginalImagePixelSpacing[x,y]"]
        lines += [f"{k}.png,{r},0,{k},40,M,PA,1,1,1,1" for k, r in enumerate(rows)]
        (tmp_path / "d.csv").write_text("\n".join(lines) + "\n")
        entries, _ = read_data_entry(tmp_path / "d.csv")
        m = cooccurrence(entries, NIH)
        assert m.shape == (15, 14) and list(m.columns) == NIH and m.index[-1] == "Total"
        assert m.loc["Atelectasis", "Atelectasis"] == 2  # alone
        assert m.loc["Atelectasis", "Effusion"] == m.loc["Effusion", "Atelectasis"] == 1
        assert m.loc["Effusion", "Effusion"] == 0 and m.loc["Hernia", "Hernia"] == 1
        assert m.loc["Hernia", "Mass"] == 1
        assert m.loc["Total"].tolist()[:3] == [3, 0, 2]

    @pytest.mark.slow  # draws the figure
    def test_cli_csv_json_png(self, tmp_path: Path) -> None:
        path, y = nih_file(tmp_path, 3000)
        result = invoke("stats", "cooccurrence", "--nih", path, "--format", "csv")
        assert result.exit_code == 0, result.output
        frame = pd.read_csv(pd.io.common.StringIO(result.output), index_col=0)
        assert frame.shape == (15, 14) and frame.loc["Total", "Atelectasis"] == y[:, 0].sum()
        result = invoke("stats", "cooccurrence", "--nih", path, "--format", "json")
        data = json.loads(result.output)
        assert len(data["matrix"]) == 14 and data["totals"][1] == y[:, 1].sum()
        result = invoke("stats", "cooccurrence", "--nih", path, "--format", "png", "-o", tmp_path / "c.png")
        assert result.exit_code == 0 and (tmp_path / "c.png").read_bytes()[:4] == b"\x89PNG"
        result = invoke("stats", "cooccurrence", "--nih", path, "--format", "png")
        assert result.exit_code == 1 and "needs -o" in result.output


class TestFigures:
    @pytest.mark.slow  # draws four figures
    def test_rare_labels_left_out(self, tmp_path: Path) -> None:
        known_release(tmp_path)
        t = read_vindr([tmp_path / "annotations_train.csv"], [tmp_path / "image_labels_train.csv"])
        paths = label_figures(table2_from_tables(t, "train"), tmp_path / "fig", min_count=5)
        assert sorted(p.name for p in paths) == ["figure3_findings.png", "figure3_findings.svg",
                                                  "figure4_diseases.png", "figure4_diseases.svg"]
        svg3 = (tmp_path / "fig" / "figure3_findings.svg").read_text()
        svg4 = (tmp_path / "fig" / "figure4_diseases.svg").read_text()
        assert "Cardiomegaly" in svg3 and "Nodule" not in svg3  # 0 images: under the cut
        assert "Other diseases" in svg4 and "Tuberculosis" not in svg4

    def test_cli(self, tmp_path: Path) -> None:
        known_release(tmp_path)
        result = invoke("stats", "figures", "-a", tmp_path / "annotations_train.csv", "-o", tmp_path / "f")
        assert result.exit_code == 0, result.output
        assert (tmp_path / "f" / "figure4_diseases.png").read_bytes()[:4] == b"\x89PNG"


class TestFileModeCommands:
    def test_consensus_split_export(self, tmp_path: Path) -> None:
        known_release(tmp_path)
        a, lab = tmp_path / "annotations_train.csv", tmp_path / "image_labels_train.csv"
        result = invoke("consensus", "--annotations", a, "--image-labels", lab, "--method", "wbf", "--iou", "0.4",
                        "-o", tmp_path / "cons.csv", "--labels-out", tmp_path / "cons_labels.csv", "--agreement",
                        tmp_path / "agree.json", "--scores")
        assert result.exit_code == 0, result.output
        cons = pd.read_csv(tmp_path / "cons.csv", keep_default_na=False)
        assert list(cons.columns[:8]) == ["image_id", "rad_id", "class_name", "x_min", "y_min", "x_max", "y_max",
                                          "class_id"]
        assert (cons["rad_id"] == "").all()
        cardio = cons.loc[cons["class_name"] == "Cardiomegaly"]
        assert len(cardio) == 9 and set(cardio["votes"]) == {"1", "2"}
        result = invoke("consensus", "-a", a, "-l", lab, "--method", "majority", "-o", tmp_path / "maj.csv")
        maj = pd.read_csv(tmp_path / "maj.csv")
        assert (maj["class_name"] == "Cardiomegaly").sum() == 6 and (maj["class_name"] == "No finding").sum() == 13
        labels = pd.read_csv(tmp_path / "cons_labels.csv")
        assert labels["Cardiomegaly"].sum() == 6 and len(labels) == 20
        agree = json.loads((tmp_path / "agree.json").read_text())
        assert {x["label"] for x in agree["labels"]} == set(CXR.names)
        result = invoke("split", "-a", a, "-l", lab, "--test-size", "5", "-o", tmp_path / "lists")
        assert result.exit_code == 0, result.output
        assert len((tmp_path / "lists" / "test_list.txt").read_text().splitlines()) == 5
        result = invoke("consensus", "-a", a)
        assert result.exit_code == 1 and "say where to write" in result.output

    def test_export_from_vindr_folder(self, tmp_path: Path) -> None:
        src = tmp_path / "src"
        src.mkdir()
        known_release(src)
        result = invoke("export", "r1", "--from-vindr", src, "-o", tmp_path / "out", "--format", "json")
        assert result.exit_code == 0, result.output
        for name in ("annotations_train.csv", "image_labels_train.csv"):
            assert sorted((src / name).read_text().splitlines()) == \
                sorted((tmp_path / "out" / "r1" / name).read_text().splitlines())
        assert (tmp_path / "out" / "r1" / "release.json").exists()
