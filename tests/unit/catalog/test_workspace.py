"""Workspace and catalog: init, migrations, settings, errors."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from pydantic import ValidationError
from sqlalchemy import inspect

from cxrlab.catalog import Settings, current_revision, head_revision, init_workspace, open_workspace, parse_settings
from cxrlab.errors import WorkspaceError


class TestInitWorkspace:
    def test_creates_layout_catalog_and_key(self, tmp_path: Path) -> None:
        ws = init_workspace(tmp_path / "ws", settings=Settings(schema="vindr-pcxr"))
        for sub in ("raw", "images", "quarantine", "review", "exports"):
            assert (ws.root / sub).is_dir()
        assert (ws.root / "catalog.db").is_file()
        assert current_revision(ws.engine) == head_revision() == "0012"
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


    def test_catalog_that_cannot_be_made_leaves_nothing_raises(self, tmp_path: Path) -> None:
        """Issue 11: a failed init kept its cxrlab.toml, so every later command failed the same way."""
        url = f"sqlite:///{tmp_path / 'no' / 'such' / 'folder' / 'c.db'}"
        with pytest.raises(WorkspaceError, match="cannot open the catalog database at sqlite"):
            init_workspace(tmp_path / "ws", settings=Settings(database_url=url))
        assert list(tmp_path.iterdir()) == []
        (tmp_path / "mine").mkdir()
        (tmp_path / "mine" / "data.txt").write_text("kept")
        with pytest.raises(WorkspaceError):
            init_workspace(tmp_path / "mine", settings=Settings(database_url=url))
        assert [p.name for p in (tmp_path / "mine").iterdir()] == ["data.txt"]  # only what init made is removed

    def test_existing_file_raises(self, tmp_path: Path) -> None:
        (tmp_path / "f").write_text("x")
        with pytest.raises(WorkspaceError, match="exists and is not a folder"):
            init_workspace(tmp_path / "f")


class TestSettings:
    def test_values_that_need_quoting_round_trip(self, tmp_path: Path) -> None:
        """The hand-written TOML writer put values in quotes without escaping them."""
        project = 'St. "Mary\'s" \\ ward'
        init_workspace(tmp_path / "ws", settings=Settings(project=project))
        assert open_workspace(tmp_path / "ws").settings.project == project

    @pytest.mark.parametrize(
        ("values", "match"),
        [({"schema": "chexpert"}, "schema: unknown label schema 'chexpert'"),
         ({"population": "elderly"}, "population: Input should be 'adult', 'pediatric' or 'any'"),
         ({"database_url": "foo://u:pw@x/db"}, "database_url: foo://u:\\*\\*\\*@x/db: unsupported database 'foo'"),
         ({"database_url": "not a url"}, "database_url: not a database URL"),
         ({"project": 3}, "project: Input should be a valid string"),
         ({"key_file": " "}, "key_file: must not be empty")],
    )
    def test_bad_values_raise(self, values: dict, match: str) -> None:
        with pytest.raises(WorkspaceError, match=match):
            parse_settings(values, source="test")
        with pytest.raises(ValidationError):
            Settings(**values)

    def test_bad_settings_file_raises_at_open(self, tmp_path: Path) -> None:
        """A bad schema name in cxrlab.toml is an error when the workspace opens, not in a later stage."""
        init_workspace(tmp_path / "ws")
        (tmp_path / "ws" / "cxrlab.toml").write_text('[cxrlab]\nschema = "chexpert"\n')
        with pytest.raises(WorkspaceError, match="cxrlab.toml: invalid schema"):
            open_workspace(tmp_path / "ws")

    def test_unknown_keys_are_kept_aside(self) -> None:
        settings = parse_settings({"schema": "nih14", "future_option": 1}, source="test")
        assert settings.schema == "nih14" and settings.extra == {"future_option": 1}
        assert "future_option" not in settings.to_toml()


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

    def test_reader_ids_survive_the_0007_upgrade(self, tmp_path: Path) -> None:
        """0007 makes ``users.rad_id`` nullable; users created before keep their reader ids (a released
        ``rad_id`` never changes), users created after may have none."""
        from sqlalchemy import create_engine, text

        from cxrlab.catalog.db import upgrade

        engine = create_engine(f"sqlite:///{tmp_path / 'old.db'}")
        upgrade(engine, "0006")
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO users (username, password_hash, role, rad_id, active, created_at) "
                              "VALUES ('boss', 'x', 'admin', 'R1', 1, '2026-01-01 00:00:00'), "
                              "('ann', 'x', 'annotator', 'R2', 1, '2026-01-01 00:00:00')"))
        upgrade(engine, "0007")
        assert current_revision(engine) == "0007"
        with engine.begin() as conn:
            assert dict(conn.execute(text("SELECT username, rad_id FROM users")).all()) == {"boss": "R1", "ann": "R2"}
            conn.execute(text("INSERT INTO users (username, password_hash, role, rad_id, active, created_at) "
                              "VALUES ('rev', 'x', 'reviewer', NULL, 1, '2026-01-01 00:00:00')"))
        engine.dispose()
