"""The thin stages end to end on small real DICOMs: deid, filter, readings + QC, consensus, export, Table 2."""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd
import pydicom
import pytest
from sqlalchemy import select

from cxrlab.annotate.readings import BoxInput, QCError, ReadingInput, record_reading, simulate_readers
from cxrlab.catalog.models import ConsensusLabel, Image, ImageState
from cxrlab.consensus import majority_vote, run_consensus
from cxrlab.deid import VINDR_KEEP, image_id_for, run_deid
from cxrlab.export import ANNOTATION_COLUMNS, run_export
from cxrlab.filter import FilterRules, check_header, run_filter
from cxrlab.ingest import run_ingest
from cxrlab.runtime import Executor
from cxrlab.schemas import SCHEMAS, get_schema
from tests.support.dicom import make_dicom


def _accept(workspace, src: Path):  # noqa: ANN001, ANN202 - Workspace in, Workspace out
    """Ingest, de-identify and filter 4 chest images (accepted) and 2 outliers (filtered out) written to *src*."""
    for i in range(4):
        make_dicom(src / f"chest{i}.dcm", seed=i, sop_uid=f"1.2.826.0.1.{i}", rows=100, columns=80)
    make_dicom(src / "hand.dcm", body_part="HAND", seed=9)
    make_dicom(src / "child.dcm", age="004Y", seed=10)
    run_ingest(workspace, src, executor=Executor(1))
    run_deid(workspace, executor=Executor(2))
    run_filter(workspace)
    return workspace


@pytest.fixture
def accepted(workspace, tmp_path: Path):
    """A workspace with 4 chest images accepted and 2 outliers filtered out."""
    return _accept(workspace, tmp_path / "in")


@pytest.fixture(scope="module")
def accepted_shared(tmp_path_factory: pytest.TempPathFactory):
    """:func:`accepted` built once for the tests that only read it (a refused reading is rolled back, a rerun of
    deid finds nothing to do)."""
    from cxrlab.catalog import init_workspace

    root = tmp_path_factory.mktemp("accepted")
    ws = _accept(init_workspace(root / "ws"), root / "in")
    yield ws
    ws.engine.dispose()


class TestDeid:
    def test_only_keep_list_survives_and_ids_are_keyed(self, accepted_shared) -> None:
        allowed = {int(tag) for tag, _ in VINDR_KEEP} | {0x00120062, 0x00120063}
        key = accepted_shared.secret_key()
        files = sorted((accepted_shared.root / "images").glob("*.dicom"))
        assert len(files) == 6
        for f in files:
            raw = f.read_bytes()
            for phi in (b"DOE^JOHN", b"PID123456", b"SECRET HOSPITAL", b"19700101", b"ACME_PRIVATE"):
                assert phi not in raw
            ds = pydicom.dcmread(f)
            assert {int(e.tag) for e in ds} <= allowed
            assert ds.PatientIdentityRemoved == "YES"
            assert ds.file_meta.MediaStorageSOPInstanceUID.startswith("2.25.")
        with accepted_shared.sessions() as s:
            img = s.scalar(select(Image).where(Image.sop_instance_uid == "1.2.826.0.1.0"))
        assert img.image_id == image_id_for("1.2.826.0.1.0", key)
        assert len(img.image_id) == 32
        out = pydicom.dcmread(accepted_shared.root / img.deid_path)
        src = pydicom.dcmread(accepted_shared.root / img.raw_path)
        assert out.PixelData == src.PixelData

    def test_rerun_does_nothing(self, accepted_shared) -> None:
        report = run_deid(accepted_shared, executor=Executor(1))
        assert report.total == 0


class TestFilter:
    def test_rules(self) -> None:
        rules = FilterRules(population="adult")
        ok = {"modality": "CR", "body_part": "CHEST", "view_position": "PA", "age_years": 40.0}
        assert check_header(**ok, rules=rules) is None
        assert "modality" in check_header(**{**ok, "modality": "CT"}, rules=rules)
        assert "body part" in check_header(**{**ok, "body_part": "ABDOMEN"}, rules=rules)
        assert "PA/AP" in check_header(**{**ok, "view_position": "LL"}, rules=rules)
        assert "adult" in check_header(**{**ok, "age_years": 5.0}, rules=rules)
        assert "pediatric" in check_header(**ok, rules=FilterRules(population="pediatric"))
        assert check_header(**{**ok, "age_years": None}, rules=rules) is None

    def test_bad_population_raises(self) -> None:
        with pytest.raises(ValueError, match="population must be"):
            FilterRules(population="elderly")

    def test_stage_sets_states(self, accepted_shared) -> None:
        with accepted_shared.sessions() as s:
            states = [(i.body_part, i.state, i.state_reason) for i in s.scalars(select(Image))]
        assert [st for _, st, _ in states].count(ImageState.ACCEPTED) == 4
        out = sorted(reason for _, st, reason in states if st == ImageState.FILTERED_OUT)
        assert len(out) == 2 and "age 4.0 y" in out[0] and "body part HAND" in out[1]


class TestRecordReading:
    def _image_id(self, ws) -> str:  # noqa: ANN001
        with ws.sessions() as s:
            return s.scalar(select(Image.image_id).where(Image.state == ImageState.ACCEPTED))

    @pytest.mark.parametrize(
        ("labels", "boxes", "msg"),
        [
            (["Cardiomegaly"], [BoxInput("Cardiomegaly", 10, 10, 40, 40)], "at least one global label"),
            (["No finding", "Pneumonia"], [], "excludes every box"),
            (["No finding"], [BoxInput("Cardiomegaly", 10, 10, 40, 40)], "excludes every box"),
            (["Pneumonia", "Unicorn"], [], "not in schema"),
            (["Pneumonia"], [BoxInput("Pneumonia", 10, 10, 40, 40)], "not a local label"),
            (["Pneumonia"], [BoxInput("Cardiomegaly", 10, 10, 12, 40)], "smaller than"),
            (["Pneumonia"], [BoxInput("Cardiomegaly", 10, 10, 90, 40)], "outside the image"),
        ],
    )
    def test_qc_rules_raise(self, accepted_shared, labels, boxes, msg) -> None:  # noqa: ANN001
        schema = get_schema("vindr-cxr")
        with accepted_shared.sessions() as s, pytest.raises(QCError, match=msg):
            record_reading(s, schema, ReadingInput(self._image_id(accepted_shared), "R1", labels, boxes))

    def test_valid_reading_is_stored_and_replaced(self, accepted) -> None:
        schema = get_schema("vindr-cxr")
        image_id = self._image_id(accepted)
        with accepted.sessions() as s:
            record_reading(s, schema, ReadingInput(image_id, "R1", ["Other diseases"],
                                                   [BoxInput("Cardiomegaly", 10, 10, 40, 40)]))
            row = record_reading(s, schema, ReadingInput(image_id, "R1", ["No finding"]))
            s.commit()
            assert [lb.label for lb in row.labels] == ["No finding"] and row.boxes == []


class TestConsensusAndExport:
    def test_majority_vote(self) -> None:
        votes = pd.DataFrame({"image_id": ["a"] * 3 + ["b"] * 4, "rad_id": list("xyzwxyz"),
                              "L1": [1, 1, 0, 1, 1, 0, 0], "L2": [0, 0, 1, 1, 1, 1, 1]})
        out = majority_vote(votes).set_index("image_id")
        assert out.loc["a"].tolist() == [1, 0]
        assert out.loc["b"].tolist() == [0, 1]  # a 2-of-4 tie is negative

    @pytest.mark.slow  # a workspace through every stage
    def test_release_files_in_seed_layout(self, accepted) -> None:
        simulate_readers(accepted, readers=3, seed=1)
        run_consensus(accepted)
        report = run_export(accepted, "v1")
        out = accepted.root / "exports" / "v1"
        assert report.counts["images"] == 4
        schema = SCHEMAS["vindr-cxr"]
        with open(out / "annotations_train.csv") as fh:
            rows = list(csv.DictReader(fh))
        assert list(rows[0].keys()) == ANNOTATION_COLUMNS
        for row in rows:
            assert row["class_id"] == str(schema.class_id(row["class_name"]))
            if row["class_name"] == "No finding":
                assert row["x_min"] == row["y_max"] == ""
        labels = pd.read_csv(out / "image_labels_train.csv")
        assert list(labels.columns) == ["image_id", "rad_id", *schema.names]
        assert len(labels) == 12 and set(labels["rad_id"]) == {"R1", "R2", "R3"}
        assert len(list((out / "train").glob("*.dicom"))) == 4
        # Table 2 counts equal the majority vote recomputed from the exported per-reader CSV.
        expected = majority_vote(labels).drop(columns="image_id").sum()
        table = (out / "table2.md").read_text()
        for name in schema.names:
            assert f"{name} (%) | {int(expected[name])} (" in table
        with accepted.sessions() as s:
            n_pos = s.scalar(select(ConsensusLabel).where(ConsensusLabel.label == "No finding").limit(1))
        assert n_pos is not None
        assert "Number of human annotators per scan | 3" in table


class _LosesAWorker(Executor):
    """The pool, but a 'worker' dies mid-write while the batch runs: it leaves a temporary in ``images/`` (as a
    Dask worker killed with -9 does), and its item's result still comes back from elsewhere."""

    def __init__(self, images: Path) -> None:
        super().__init__(1)
        self.images = images

    def map(self, fn, items, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN201
        for i, result in enumerate(super().map(fn, items, *args, **kwargs)):
            if i == 0:
                (self.images / ".lost.dicom.abc123.tmp").write_bytes(b"")
            yield result


def test_deid_removes_the_temporaries_of_a_lost_worker(workspace, tmp_path: Path) -> None:  # noqa: ANN001
    src = tmp_path / "src"
    src.mkdir()
    for i in range(3):
        make_dicom(src / f"{i}.dcm", sop_uid=f"1.2.3.{i}")
    run_ingest(workspace, src, executor=Executor(1))
    report = run_deid(workspace, executor=_LosesAWorker(workspace.path("images")), text=False)
    assert report.counts["deidentified"] == 3
    assert not list(workspace.path("images").glob(".*.tmp"))
    assert "removed 1 temporary file(s) left by a lost worker" in report.notes
