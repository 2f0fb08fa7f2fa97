"""Exports: VinDr CSV round trip, COCO in pycocotools, YOLO within 1 px, NIH files, JSON, PNG, manifest,
and a workspace release with a train/test split."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cxrlab.consensus import consensus_tables
from cxrlab.errors import CxrlabError
from cxrlab.export import write_release, write_vindr_csvs
from cxrlab.ingest import read_nih, read_vindr
from cxrlab.schemas import BOX_COLUMNS
from cxrlab.schemas.synthetic import synthetic_release
from tests.support.data import real_data


def sorted_lines(path: Path) -> tuple[str, list[str]]:
    lines = path.read_text().splitlines()
    return lines[0], sorted(lines[1:])


@pytest.fixture(scope="module")
def release() -> object:
    """300 synthetic images, 3 readers, 60 of them moved to a consensus test set."""
    t = synthetic_release(300, seed=5)
    cons = consensus_tables(t, method="majority")
    test_ids = set(t.images["image_id"].iloc[:60])
    t.images.loc[t.images["image_id"].isin(test_ids), "split"] = "test"
    t.reader_labels = t.reader_labels.loc[~t.reader_labels["image_id"].isin(test_ids)]
    t.reader_boxes = t.reader_boxes.loc[~t.reader_boxes["image_id"].isin(test_ids)]
    t.consensus_labels = cons.consensus_labels.loc[cons.consensus_labels["image_id"].isin(test_ids)]
    t.consensus_boxes = cons.consensus_boxes.loc[cons.consensus_boxes["image_id"].isin(test_ids)]
    return t


class TestVindrRoundTrip:
    def test_import_export_files_equal_up_to_row_order(self, release, tmp_path: Path) -> None:  # noqa: ANN001
        first = tmp_path / "first"
        counts = write_vindr_csvs(release, first)
        assert set(counts) == {"annotations_train.csv", "image_labels_train.csv", "annotations_test.csv",
                               "image_labels_test.csv"}
        again = read_vindr(sorted(first.glob("annotations_*.csv")), sorted(first.glob("image_labels_*.csv")))
        second = tmp_path / "second"
        write_vindr_csvs(again, second)
        for name in counts:
            assert sorted_lines(first / name) == sorted_lines(second / name), name
        test_rows = pd.read_csv(first / "annotations_test.csv", keep_default_na=False)
        assert (test_rows["rad_id"] == "").all() and len(test_rows)
        train_rows = pd.read_csv(first / "annotations_train.csv", keep_default_na=False)
        assert (train_rows["rad_id"] != "").all()
        nf = train_rows.loc[train_rows["class_name"] == "No finding"]
        assert (nf["x_min"] == "").all() and (nf["class_id"] == 22).all()

    def test_public_number_formats_keep_their_values(self, tmp_path: Path) -> None:
        src = tmp_path / "annotations_train.csv"
        src.write_text("image_id,class_name,class_id,rad_id,x_min,y_min,x_max,y_max\n"
                       "i1,Aortic enlargement,0,R10,691.0,1375.0,1653.0,1831.0\n"
                       "i1,No finding,14,R9,,,,\n")
        t = read_vindr([src])
        write_vindr_csvs(t, tmp_path / "out")
        back = read_vindr([tmp_path / "out" / "annotations_train.csv"])
        pd.testing.assert_frame_equal(t.reader_boxes.reset_index(drop=True),
                                      back.reader_boxes.reset_index(drop=True))
        text = (tmp_path / "out" / "annotations_train.csv").read_text()
        assert "i1,R10,Aortic enlargement,691,1375,1653,1831,0" in text


class TestFormats:
    def test_coco_yolo_nih_json_manifest(self, release, tmp_path: Path) -> None:  # noqa: ANN001
        out = tmp_path / "v1"
        report = write_release(release, out, formats=("coco", "yolo", "nih", "json"), profile="vindr")
        assert report.counts["images_train"] == 240 and report.counts["images_test"] == 60
        # COCO loads in pycocotools and gives back the consensus boxes as [x, y, w, h].
        coco_mod = pytest.importorskip("pycocotools.coco")
        coco = coco_mod.COCO(str(out / "coco" / "test.json"))
        assert len(coco.getImgIds()) == 60
        boxes = release.consensus_boxes
        assert len(coco.getAnnIds()) == len(boxes.loc[boxes["class_name"] != "No finding"])
        ann = coco.loadAnns(coco.getAnnIds())[0]
        img = coco.loadImgs(ann["image_id"])[0]
        cat = coco.loadCats(ann["category_id"])[0]["name"]
        src = boxes.loc[(boxes["image_id"] == img["file_name"].split("/")[-1].split(".")[0])
                        & (boxes["class_name"] == cat)]
        x, y, w, h = ann["bbox"]
        assert np.isclose(src["x_min"], x, atol=0.01).any() and np.isclose(src["x_max"], x + w, atol=0.02).any()
        # YOLO: every box back within 1 px after denormalisation.
        images = release.images.set_index("image_id")
        worst = 0.0
        for txt in (out / "labels").rglob("*.txt"):
            iid = txt.stem
            W, H = images.at[iid, "columns"], images.at[iid, "rows"]  # noqa: N806
            split = images.at[iid, "split"]
            src = (release.reader_boxes if split == "train" else boxes)
            src = boxes.loc[boxes["image_id"] == iid, BOX_COLUMNS].to_numpy()
            for line in txt.read_text().splitlines():
                _, cx, cy, bw, bh = (float(v) for v in line.split())
                got = np.array([(cx - bw / 2) * W, (cy - bh / 2) * H, (cx + bw / 2) * W, (cy + bh / 2) * H])
                worst = max(worst, np.abs(src - got).max(axis=1).min())
        assert len(list((out / "labels").rglob("*.txt"))) > 0 and worst <= 1.0
        assert "names:" in (out / "data.yaml").read_text()
        # NIH-style files.
        header = (out / "nih" / "Data_Entry.csv").read_text().splitlines()[0]
        assert header.endswith("OriginalImage[Width,Height],OriginalImagePixelSpacing[x,y]")
        assert len((out / "nih" / "test_list.txt").read_text().splitlines()) == 60
        # Full-fidelity JSON has every reader of a train image.
        data = json.loads((out / "release.json").read_text())
        first = next(i for i in data["images"] if i["split"] == "train")
        assert len(first["readings"]) == 3
        # Manifest: sha256 of every file, counts, schema, version, profile.
        manifest = json.loads((out / "manifest.json").read_text())
        assert manifest["deid_profile"] == "vindr" and manifest["cxrlab_version"]
        files = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()} - {"manifest.json"}
        assert set(manifest["files"]) == files
        for name, entry in list(manifest["files"].items())[:5]:
            assert hashlib.sha256((out / name).read_bytes()).hexdigest() == entry["sha256"]
        assert "Training set" in (out / "table2.md").read_text() and "Test set" in (out / "table2.md").read_text()

    def test_existing_tag_refused_and_nothing_half_written(self, release, tmp_path: Path) -> None:  # noqa: ANN001
        out = tmp_path / "v1"
        write_release(release, out)
        with pytest.raises(CxrlabError, match="already exists"):
            write_release(release, out)
        with pytest.raises(CxrlabError, match="unknown export format"):
            write_release(release, tmp_path / "v2", formats=("tiff",))
        assert not (tmp_path / "v2").exists() and not list(tmp_path.glob(".v2*"))
        write_release(release, out, overwrite=True)
        assert (out / "manifest.json").exists()

    def test_nih_bbox_round_trip_of_the_real_file(self, tmp_path: Path) -> None:
        real = real_data("nih", "BBox_List_2017.csv.gz")
        boxes = pd.read_csv(real)
        ids = sorted(boxes["Image Index"].unique())
        entry = tmp_path / "Data_Entry_2017.csv"
        entry.write_text("Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,View Position,"
                         "OriginalImage[Width,Height],OriginalImagePixelSpacing[x,y]\n"
                         + "".join(f"{i},No Finding,0,{i[:8]},50,M,PA,1024,1024,0.143,0.143\n" for i in ids))
        t = read_nih(entry, bbox_list=real)
        write_release(t, tmp_path / "r", formats=("nih",), copy_images=False)
        import gzip

        original = gzip.decompress(real.read_bytes()).decode().splitlines()
        written = (tmp_path / "r" / "nih" / "BBox_List.csv").read_text().splitlines()
        assert written[0] == original[0] == "Image Index,Finding Label,Bbox [x,y,w,h],,,"
        assert sorted(written[1:]) == sorted(original[1:])

    def test_png_copies(self, tmp_path: Path, shared_dicom: Path) -> None:
        t = synthetic_release(3, seed=9)
        t.images["path"] = [str(shared_dicom / n) for n in ("siim_cr_jpeg_baseline.dcm", "Fake_MONOHR1.dcm",
                                                              "chrJapMulti.dcm")]  # the last has no pixel data
        report = write_release(t, tmp_path / "p", formats=("png",), png_size=256)
        from PIL import Image

        pngs = sorted((tmp_path / "p" / "images" / "train").glob("*.png"))
        assert report.counts["png_files"] == 2 and len(pngs) == 2
        assert [reason for _, reason in report.problems] == ["cannot render to PNG (DicomReadError)"]
        assert max(Image.open(pngs[0]).size) == 256
        assert len(list((tmp_path / "p" / "train").glob("*.dicom"))) == 3


class TestWorkspaceRelease:
    @pytest.mark.slow  # a workspace through every stage
    def test_split_then_export_train_and_test(self, workspace, tmp_path: Path) -> None:  # noqa: ANN001
        from sqlalchemy import select

        from cxrlab.annotate.readings import simulate_readers
        from cxrlab.catalog.models import Image, ImageState
        from cxrlab.consensus import run_consensus
        from cxrlab.deid import run_deid
        from cxrlab.export import run_export
        from cxrlab.filter import run_filter
        from cxrlab.ingest import run_ingest
        from cxrlab.runtime import Executor
        from cxrlab.split import run_split
        from tests.support.dicom import make_dicom

        for i in range(10):
            make_dicom(tmp_path / "in" / f"c{i}.dcm", seed=i, rows=300, columns=260, patient_id=f"P{i // 2}")
        run_ingest(workspace, tmp_path / "in", executor=Executor(1))
        run_deid(workspace, executor=Executor(1))
        run_filter(workspace)
        simulate_readers(workspace, readers=3, seed=2)
        run_consensus(workspace)
        report = run_split(workspace, test_size=4, method="group", seed=0)
        assert report.counts["train"] + report.counts["test"] == 10
        with pytest.raises(CxrlabError, match="already have a split"):
            run_split(workspace, test_size=4)
        report = run_export(workspace, "v1", formats=("coco",))
        out = workspace.root / "exports" / "v1"
        n_test = len(list((out / "test").glob("*.dicom")))
        assert n_test == report.counts["images_test"] and n_test + len(list((out / "train").glob("*.dicom"))) == 10
        test_labels = pd.read_csv(out / "image_labels_test.csv", keep_default_na=False)
        assert len(test_labels) == n_test and (test_labels["rad_id"] == "").all()
        train_labels = pd.read_csv(out / "image_labels_train.csv")
        assert train_labels.groupby("image_id").size().eq(3).all()
        with workspace.sessions() as s:
            rows = s.execute(select(Image.patient_key, Image.split, Image.state)).all()
        assert {st for *_, st in rows} == {ImageState.RELEASED}
        by_patient = pd.DataFrame(rows, columns=["p", "split", "state"]).groupby("p")["split"].nunique()
        assert by_patient.max() == 1
        manifest = json.loads((out / "manifest.json").read_text())
        assert manifest["deid_profile"] == "vindr" and manifest["counts"]["images"] == 10
        with pytest.raises(CxrlabError, match="already exists"):
            run_export(workspace, "v1")


@pytest.mark.slow  # a workspace through every stage
class TestImportIntoWorkspace:
    def test_vindr_folder_import_then_export_round_trip(self, workspace, tmp_path: Path) -> None:  # noqa: ANN001
        from cxrlab.consensus import run_consensus
        from cxrlab.export import run_export
        from cxrlab.ingest.release import import_release, load_release_files
        from tests.support.dicom import make_dicom

        t = synthetic_release(12, seed=11)
        test_ids = list(t.images["image_id"].iloc[:4])
        cons = consensus_tables(t, method="majority")
        t.images.loc[t.images["image_id"].isin(test_ids), "split"] = "test"
        t.reader_labels = t.reader_labels.loc[~t.reader_labels["image_id"].isin(test_ids)]
        t.reader_boxes = t.reader_boxes.loc[~t.reader_boxes["image_id"].isin(test_ids)]
        t.consensus_labels = cons.consensus_labels.loc[cons.consensus_labels["image_id"].isin(test_ids)]
        t.consensus_boxes = cons.consensus_boxes.loc[cons.consensus_boxes["image_id"].isin(test_ids)]
        src = tmp_path / "vindr"
        write_vindr_csvs(t, src)
        for i, (iid, split) in enumerate(zip(t.images["image_id"], t.images["split"], strict=True)):
            make_dicom(src / split / f"{iid}.dicom", seed=i, rows=3200, columns=3200, pixels=False)
        tables = load_release_files(vindr_dir=src)
        report = import_release(workspace, tables)
        assert report.counts["images"] == 12 and report.counts["readings"] == 24
        assert import_release(workspace, tables).counts["already_imported"] == 12  # idempotent
        run_consensus(workspace)  # must keep the imported test consensus (method "review")
        run_export(workspace, "r")
        out = workspace.root / "exports" / "r"
        for name in ("annotations_train.csv", "image_labels_train.csv", "annotations_test.csv",
                     "image_labels_test.csv"):
            assert sorted_lines(src / name) == sorted_lines(out / name), name
        assert len(list((out / "test").glob("*.dicom"))) == 4

    def test_schema_mismatch_refused(self, workspace) -> None:  # noqa: ANN001
        from cxrlab.ingest.release import import_release

        with pytest.raises(CxrlabError, match="label schema vindr-pcxr"):
            import_release(workspace, synthetic_release(2, schema="vindr-pcxr"))
