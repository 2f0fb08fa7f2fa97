"""Catalog migration 0009 (radiology reports) on a catalog that already holds images: up, down and up again."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import create_engine, inspect, text

from cxrlab.catalog.db import current_revision, upgrade


def test_0009_adds_report_tables_and_image_keys_and_goes_back(tmp_path: Path) -> None:
    from alembic import command

    from cxrlab.catalog.db import _alembic_config

    engine = create_engine(f"sqlite:///{tmp_path / 'old.db'}")
    upgrade(engine, "0008")
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO images (sop_instance_uid, raw_sha256, raw_path, state, created_at, updated_at) "
                          "VALUES ('1.2.3', 'ab', 'raw/ab/ab.dcm', 'ingested', '2026-01-01', '2026-01-01')"))
    upgrade(engine, "0009")
    assert current_revision(engine) == "0009"
    tables = set(inspect(engine).get_table_names())
    assert {"reports", "report_labels"} <= tables
    with engine.begin() as conn:  # the image is kept, without keys until `reports import` hashes them
        assert conn.execute(text("SELECT sop_instance_uid, accession_key, study_key FROM images")).all() == [
            ("1.2.3", None, None)]
    config = _alembic_config()
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0008")
    assert current_revision(engine) == "0008"
    assert "reports" not in inspect(engine).get_table_names()
    assert "study_key" not in {c["name"] for c in inspect(engine).get_columns("images")}
    upgrade(engine, "0009")
    assert current_revision(engine) == "0009"
    engine.dispose()
