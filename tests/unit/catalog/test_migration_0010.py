"""Catalog migration 0010 (gold-standard tasks) on a catalog that already holds tasks: up, down and up again."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import create_engine, inspect, text

from cxrlab.catalog.db import current_revision, upgrade


def test_0010_adds_gold_flag_and_table_and_goes_back(tmp_path: Path) -> None:
    from alembic import command

    from cxrlab.catalog.db import _alembic_config

    engine = create_engine(f"sqlite:///{tmp_path / 'old.db'}")
    upgrade(engine, "0009")
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO images (id, sop_instance_uid, raw_sha256, raw_path, state, created_at, "
                          "updated_at) VALUES (1, '1.2.3', 'ab', 'raw/ab.dcm', 'assigned', '2026-01-01', "
                          "'2026-01-01')"))
        conn.execute(text("INSERT INTO users (id, username, password_hash, role, rad_id, active, created_at) "
                          "VALUES (1, 'ann', 'x', 'annotator', 'R1', 1, '2026-01-01')"))
        conn.execute(text("INSERT INTO projects (id, name, schema_name, readers_per_image, reviewers_per_test, seed, "
                          "created_at) VALUES (1, 'p', 'vindr-cxr', 3, 2, 0, '2026-01-01')"))
        conn.execute(text("INSERT INTO tasks (project_id, image_pk, user_id, kind, state, order_key, version, "
                          "created_at, updated_at) VALUES (1, 1, 1, 'read', 'pending', 7, 0, '2026-01-01', "
                          "'2026-01-01')"))
    upgrade(engine, "0010")
    assert current_revision(engine) == "0010"
    assert "gold_standards" in inspect(engine).get_table_names()
    with engine.begin() as conn:  # the existing task is a normal one
        assert conn.execute(text("SELECT order_key, gold FROM tasks")).all() == [(7, 0)]
    config = _alembic_config()
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0009")
    assert current_revision(engine) == "0009"
    assert "gold_standards" not in inspect(engine).get_table_names()
    assert "gold" not in {c["name"] for c in inspect(engine).get_columns("tasks")}
    upgrade(engine, "0010")
    assert current_revision(engine) == "0010"
    engine.dispose()
