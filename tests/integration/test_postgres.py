"""The catalog on a real PostgreSQL server: Alembic migrations, ingest, and the whole pipeline to a release.

Uses the throwaway cluster of :mod:`tests.support.pg` (one per session, a fresh database per test); skipped when the
server binaries or psycopg are missing. The pipeline test also runs on SQLite with the same secret key and
checks that both backends export byte-identical CSVs.
"""

from __future__ import annotations

import csv
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, inspect, select

from cxrlab.annotate.readings import simulate_readers
from cxrlab.catalog import Settings, init_workspace, open_workspace
from cxrlab.catalog.db import current_revision, head_revision
from cxrlab.catalog.models import Base, ConsensusLabel, Event, Image, ImageState, Reading
from cxrlab.consensus import run_consensus
from cxrlab.deid import run_deid
from cxrlab.export import ANNOTATION_COLUMNS, run_export
from cxrlab.filter import run_filter
from cxrlab.ingest import run_ingest
from cxrlab.runtime import Executor
from tests.support.dicom import make_dicom

RELEASE_FILES = ("annotations_train.csv", "image_labels_train.csv", "table2.md", "table2.json", "manifest.json")


@pytest.fixture
def pg_workspace(tmp_path: Path, pg_database_url: str):  # noqa: F811 - fixture
    """A workspace whose catalog is a fresh PostgreSQL database."""
    ws = init_workspace(tmp_path / "ws", settings=Settings(database_url=pg_database_url))
    yield ws
    ws.engine.dispose()


def _sources(folder: Path) -> Path:
    """4 adult chest images (kept) plus a hand and a child (filtered out)."""
    for i in range(4):
        make_dicom(folder / f"chest{i}.dcm", seed=i, sop_uid=f"1.2.826.0.1.{i}", rows=100, columns=80)
    make_dicom(folder / "hand.dcm", body_part="HAND", seed=9, sop_uid="1.2.826.0.1.9")
    make_dicom(folder / "child.dcm", age="004Y", seed=10, sop_uid="1.2.826.0.1.10")
    return folder


def _run_pipeline(ws, src: Path) -> dict:  # noqa: ANN001
    reports = {"ingest": run_ingest(ws, src, executor=Executor(2))}
    reports["reingest"] = run_ingest(ws, src, executor=Executor(2))
    reports["deid"] = run_deid(ws, executor=Executor(2))
    reports["filter"] = run_filter(ws)
    reports["annotate"] = simulate_readers(ws, readers=3, seed=1)
    reports["consensus"] = run_consensus(ws)
    reports["consensus_again"] = run_consensus(ws)  # delete + re-insert path
    reports["export"] = run_export(ws, "pg")
    return reports


class TestMigrations:
    def test_init_creates_schema_at_head(self, pg_workspace) -> None:
        assert pg_workspace.engine.dialect.name == "postgresql"
        tables = set(inspect(pg_workspace.engine).get_table_names())
        assert set(Base.metadata.tables) | {"alembic_version"} <= tables
        assert current_revision(pg_workspace.engine) == head_revision()
        assert not (pg_workspace.root / "catalog.db").exists()

    def test_reopen_is_idempotent(self, pg_workspace) -> None:
        url = pg_workspace.database_url
        again = open_workspace(pg_workspace.root)
        try:
            assert again.database_url == url
            assert current_revision(again.engine) == head_revision()
            again2 = init_workspace(pg_workspace.root)
            assert current_revision(again2.engine) == head_revision()
            again2.engine.dispose()
        finally:
            again.engine.dispose()

    def test_columns_have_expected_types(self, pg_workspace) -> None:
        cols = {c["name"]: c for c in inspect(pg_workspace.engine).get_columns("images")}
        assert cols["created_at"]["type"].timezone is True
        assert cols["state"]["type"].length == 20  # non-native enum: VARCHAR(20) + no CREATE TYPE
        events = {c["name"]: c for c in inspect(pg_workspace.engine).get_columns("events")}
        assert events["detail"]["type"].__class__.__name__ in {"JSON", "JSONB"}


class TestPipelineOnPostgres:
    def test_ingest_catalog_rows(self, pg_workspace, tmp_path: Path) -> None:
        src = _sources(tmp_path / "in")
        first = run_ingest(pg_workspace, src, executor=Executor(2))
        assert first.counts["ingested"] == 6
        second = run_ingest(pg_workspace, src, executor=Executor(2))
        assert second.counts["already_ingested"] == 6 and second.counts["ingested"] == 0
        with pg_workspace.sessions() as s:
            images = s.scalars(select(Image).order_by(Image.sop_instance_uid)).all()
            n_events = s.scalar(select(func.count()).select_from(Event).where(Event.stage == "ingest"))
        assert len(images) == 6 and n_events == 6
        by_uid = {i.sop_instance_uid: i for i in images}
        chest = by_uid["1.2.826.0.1.0"]
        assert chest.state is ImageState.INGESTED
        assert (chest.modality, chest.body_part, chest.view_position, chest.sex) == ("CR", "CHEST", "PA", "M")
        assert (chest.rows, chest.columns, chest.age_years) == (100, 80, 45.0)
        assert chest.pixel_spacing_row == pytest.approx(0.15)
        assert (pg_workspace.root / chest.raw_path).is_file()
        assert chest.raw_path.endswith(f"{chest.raw_sha256}.dcm")
        assert chest.created_at.utcoffset() == timedelta(0)
        assert by_uid["1.2.826.0.1.10"].age_years == 4.0
        assert by_uid["1.2.826.0.1.9"].body_part == "HAND"
        # the enum is stored as its value (native_enum=False), so raw SQL sees 'ingested'
        with pg_workspace.engine.connect() as conn:
            raw_states = {r[0] for r in conn.exec_driver_sql("SELECT DISTINCT state FROM images")}
        assert raw_states == {"ingested"}

    def test_whole_pipeline(self, pg_workspace, tmp_path: Path) -> None:
        src = _sources(tmp_path / "in")
        reports = _run_pipeline(pg_workspace, src)
        assert reports["reingest"].counts["already_ingested"] == 6
        assert reports["deid"].counts["deidentified"] == 6
        assert reports["annotate"].counts["images"] == 4 and reports["annotate"].counts["readings"] == 12
        assert reports["consensus"].counts["images"] == reports["consensus_again"].counts["images"] == 4
        assert reports["export"].counts["images"] == 4
        out = pg_workspace.root / "exports" / "pg"
        for name in RELEASE_FILES:
            assert (out / name).is_file(), name
        with open(out / "annotations_train.csv") as fh:
            rows = list(csv.DictReader(fh))
        assert rows and list(rows[0]) == ANNOTATION_COLUMNS
        with open(out / "image_labels_train.csv") as fh:
            assert len(list(csv.DictReader(fh))) == 12
        assert len(list((out / "train").glob("*.dicom"))) == 4
        with pg_workspace.sessions() as s:
            states = dict(s.execute(select(Image.state, func.count()).group_by(Image.state)).all())
            assert states == {ImageState.RELEASED: 4, ImageState.FILTERED_OUT: 2}
            assert s.scalar(select(func.count()).select_from(Reading)) == 12
            n_consensus = s.scalar(select(func.count()).select_from(ConsensusLabel))
            released = s.scalars(select(Event).where(Event.stage == "export")).all()
        assert n_consensus > 0 and n_consensus % 4 == 0  # one row per label per image, no duplicates
        assert [e.detail for e in released] == [{"tag": "pg"}] * 4  # JSON round trip

    def test_same_release_as_sqlite(self, pg_workspace, tmp_path: Path) -> None:
        src = _sources(tmp_path / "in")
        lite_root = tmp_path / "ws-sqlite"
        lite_root.mkdir()
        (lite_root / "secret.key").write_bytes((pg_workspace.root / "secret.key").read_bytes())
        lite = init_workspace(lite_root)
        try:
            _run_pipeline(pg_workspace, src)
            _run_pipeline(lite, src)
        finally:
            lite.engine.dispose()
        for name in ("annotations_train.csv", "image_labels_train.csv", "table2.md"):
            pg_bytes = (pg_workspace.root / "exports" / "pg" / name).read_bytes()
            assert pg_bytes == (lite_root / "exports" / "pg" / name).read_bytes(), name
