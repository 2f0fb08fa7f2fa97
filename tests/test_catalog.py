"""Workspace and catalog: init, migrations, settings, errors."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from sqlalchemy import inspect

from cxrlab.catalog import Settings, current_revision, head_revision, init_workspace, open_workspace
from cxrlab.errors import WorkspaceError


class TestInitWorkspace:
    def test_creates_layout_catalog_and_key(self, tmp_path: Path) -> None:
        ws = init_workspace(tmp_path / "ws", settings=Settings(schema="vindr-pcxr"))
        for sub in ("raw", "images", "quarantine", "review", "exports"):
            assert (ws.root / sub).is_dir()
        assert (ws.root / "catalog.db").is_file()
        assert current_revision(ws.engine) == head_revision() == "0006"
        tables = set(inspect(ws.engine).get_table_names())
        assert {"images", "events", "quarantine", "readings", "reading_labels", "reading_boxes"} <= tables
        key = ws.root / "secret.key"
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
        assert len(ws.secret_key()) == 32

    def test_is_idempotent_and_keeps_key(self, tmp_path: Path) -> None:
        first = init_workspace(tmp_path / "ws")
        key = first.secret_key()
        second = init_workspace(tmp_path / "ws", settings=Settings(schema="nih14"))
        assert second.secret_key() == key
        assert second.settings.schema == "vindr-cxr"  # existing settings win

    def test_settings_round_trip(self, tmp_path: Path) -> None:
        init_workspace(tmp_path / "ws", settings=Settings(schema="vindr-pcxr", population="pediatric"))
        ws = open_workspace(tmp_path / "ws")
        assert (ws.settings.schema, ws.settings.population) == ("vindr-pcxr", "pediatric")

    def test_database_url_setting_is_used(self, tmp_path: Path) -> None:
        url = f"sqlite:///{tmp_path / 'elsewhere.db'}"
        ws = init_workspace(tmp_path / "ws", settings=Settings(database_url=url))
        assert ws.database_url == url
        assert (tmp_path / "elsewhere.db").is_file()


    def test_catalog_holding_the_mapping_is_private(self, tmp_path: Path) -> None:
        """The SQLite catalog holds ``uid_map`` (the way back to the patient): 0600 like the key, and a catalog
        an older version created 0644 is narrowed when the workspace is opened."""
        ws = init_workspace(tmp_path / "ws")
        db = ws.root / "catalog.db"
        assert stat.S_IMODE(db.stat().st_mode) == 0o600
        ws.engine.dispose()
        db.chmod(0o644)
        reopened = open_workspace(ws.root)
        with reopened.engine.connect():
            pass
        assert stat.S_IMODE(db.stat().st_mode) == 0o600


class TestOpenWorkspace:
    def test_not_a_workspace_raises(self, tmp_path: Path) -> None:
        with pytest.raises(WorkspaceError, match="not a cxrlab workspace"):
            open_workspace(tmp_path)

    def test_invalid_toml_raises(self, tmp_path: Path) -> None:
        (tmp_path / "cxrlab.toml").write_text("[cxrlab\nbroken")
        with pytest.raises(WorkspaceError, match="invalid TOML"):
            open_workspace(tmp_path)

    def test_missing_key_raises(self, tmp_path: Path) -> None:
        ws = init_workspace(tmp_path / "ws")
        (ws.root / "secret.key").unlink()
        with pytest.raises(WorkspaceError, match="secret key file missing"):
            ws.secret_key()


class TestMigrations:
    def test_migrated_schema_matches_models(self, tmp_path: Path) -> None:
        """Every model change comes with a migration: alembic finds nothing to autogenerate at head."""
        from alembic.autogenerate import compare_metadata
        from alembic.migration import MigrationContext

        from cxrlab.catalog.models import Base

        ws = init_workspace(tmp_path / "ws")
        with ws.engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
        assert diff == []
