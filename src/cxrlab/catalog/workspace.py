"""The workspace folder: settings (``cxrlab.toml``), the catalog, the secret key and the stage folders.

Layout (docs, "The workspace")::

    cxrlab.toml  catalog.db  secret.key  raw/  images/  quarantine/  review/  thumbs/  exports/
"""

from __future__ import annotations

import os
import secrets
import shutil
import tomllib
from contextlib import AbstractContextManager
from dataclasses import asdict, field
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import tomli_w
from pydantic import ConfigDict, ValidationError, field_validator
from pydantic.dataclasses import dataclass
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from cxrlab.catalog.db import check_database_url, connection_error, make_engine, transaction, upgrade
from cxrlab.errors import WorkspaceError
from cxrlab.runtime.files import atomic_write_bytes, private_file

__all__ = ["Settings", "Workspace", "init_workspace", "open_workspace", "parse_settings"]

SETTINGS_FILE = "cxrlab.toml"
SUBDIRS = ("raw", "images", "quarantine", "review", "thumbs", "exports")


@dataclass(config=ConfigDict(strict=True, validate_assignment=True))
class Settings:
    """What ``cxrlab.toml`` holds, validated when it is made (a bad value never gets into a workspace).

    Attributes
    ----------
    project : str
        Project name shown in the web app.
    schema : str
        Label schema (``vindr-cxr``, ``vindr-pcxr`` or ``nih14``).
    database_url : str
        SQLAlchemy URL (SQLite or PostgreSQL, its driver installed); empty means the SQLite file ``catalog.db``
        in the workspace.
    deid_profile : str
        De-identification profile (``vindr``: the 25-tag keep-list; ``basic``; or a YAML profile file).
    population : {"adult", "pediatric", "any"}
        Which ages the header filter accepts.
    key_file : str
        HMAC key for ``image_id`` and new UIDs, relative to the workspace.
    extra : dict
        Keys of ``cxrlab.toml`` this version does not know (kept, never written back).

    Raises
    ------
    pydantic.ValidationError
        A value of the wrong type, an unknown schema or population, or a database URL that cannot work
        (:func:`parse_settings` turns it into a one-line :class:`~cxrlab.errors.WorkspaceError`).
    """

    project: str = "cxrlab"
    schema: str = "vindr-cxr"
    database_url: str = ""
    deid_profile: str = "vindr"
    population: Literal["adult", "pediatric", "any"] = "adult"
    key_file: str = "secret.key"
    extra: dict[str, Any] = field(default_factory=dict)

    @field_validator("schema")
    @classmethod
    def _known_schema(cls, value: str) -> str:
        from cxrlab.schemas import get_schema

        try:
            get_schema(value)
        except KeyError as exc:
            raise ValueError(exc.args[0]) from None
        return value

    @field_validator("database_url")
    @classmethod
    def _usable_url(cls, value: str) -> str:
        if value:
            check_database_url(value)
        return value

    @field_validator("project", "deid_profile", "key_file")
    @classmethod
    def _not_empty(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        return value

    def to_toml(self) -> str:
        """Serialise as the ``[cxrlab]`` table of ``cxrlab.toml`` (unknown keys are not written)."""
        values = {k: v for k, v in asdict(self).items() if k != "extra"}
        return tomli_w.dumps({"cxrlab": values})


def parse_settings(values: dict[str, Any], *, source: str) -> Settings:
    """Validate *values* into :class:`Settings`; keys it does not know go to ``extra``.

    Raises
    ------
    WorkspaceError
        One line: *source*, the first bad key and why (a database URL is shown without its password).
    """
    known = {k: v for k, v in values.items() if k in Settings.__dataclass_fields__ and k != "extra"}
    extra = {k: v for k, v in values.items() if k not in known}
    try:
        return Settings(**known, extra=extra)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(part) for part in first["loc"]) or "settings"
        raise WorkspaceError(f"{source}: invalid {key}: {first['msg'].removeprefix('Value error, ')}") from None


class Workspace:
    """An initialised workspace folder and its catalog."""

    def __init__(self, root: Path, settings: Settings) -> None:
        self.root = root
        self.settings = settings

    @property
    def database_url(self) -> str:
        return self.settings.database_url or f"sqlite:///{self.root / 'catalog.db'}"

    @cached_property
    def engine(self) -> Engine:
        if not self.settings.database_url:
            # The catalog's uid_map table links every released image to its patient: 0600, like the key.
            private_file(self.root / "catalog.db")
        return make_engine(self.database_url)

    @cached_property
    def sessions(self) -> sessionmaker[Session]:
        """Session factory; ``with ws.sessions() as session:`` is the read idiom (never committed)."""
        return sessionmaker(self.engine, expire_on_commit=False)

    def transaction(self) -> AbstractContextManager[Session]:
        """``with ws.transaction() as session:``: one write transaction (:func:`cxrlab.catalog.db.transaction`)."""
        return transaction(self.sessions)

    def path(self, *parts: str) -> Path:
        """A path inside the workspace."""
        return self.root.joinpath(*parts)

    def secret_key(self) -> bytes:
        """The HMAC key (32 random bytes, created at init with mode 0600; never exported)."""
        key_path = self.root / self.settings.key_file
        try:
            data = key_path.read_bytes().strip()
        except FileNotFoundError:
            raise WorkspaceError(f"{key_path}: secret key file missing") from None
        return bytes.fromhex(data.decode())

    def migrate(self) -> None:
        """Bring the catalog to the newest schema (Alembic).

        Raises
        ------
        WorkspaceError
            The database cannot be reached or opened: one line naming where (host:port or the SQLite file),
            never the password.
        """
        try:
            upgrade(self.engine)
        except DBAPIError as exc:
            self.engine.dispose()
            raise connection_error(self.database_url, exc) from None


def init_workspace(root: Path, *, settings: Settings | None = None) -> Workspace:
    """Create (or complete) a workspace at *root* and migrate its catalog to the newest schema.

    Idempotent: an existing workspace keeps its settings and key. Settings are validated before anything is
    created, and ``cxrlab.toml`` is written last, once the catalog is migrated: when the catalog cannot be made
    (a database that does not answer), whatever this call created is removed again, so no half-made workspace
    is left behind.

    Raises
    ------
    WorkspaceError
        *root* is a file, cannot be created, or its catalog cannot be reached.
    """
    root = Path(root).resolve()
    if root.exists() and not root.is_dir():
        raise WorkspaceError(f"{root}: exists and is not a folder")
    settings_path = root / SETTINGS_FILE
    if settings_path.exists():
        settings = _load_settings(settings_path)
    settings = settings or Settings()
    created: list[Path] = []
    try:
        for folder in (root, *(root / sub for sub in SUBDIRS)):
            _make_folder(folder, created)
        key_path = root / settings.key_file
        if not key_path.exists():
            atomic_write_bytes(key_path, secrets.token_hex(32).encode() + b"\n", mode=0o600)
            created.append(key_path)
        if not settings.database_url and not (root / "catalog.db").exists():
            created.extend(root / f"catalog.db{suffix}" for suffix in ("", "-wal", "-shm"))
        ws = Workspace(root, settings)
        ws.migrate()
        if not settings_path.exists():
            atomic_write_bytes(settings_path, settings.to_toml().encode())
    except BaseException as exc:
        for path in reversed(created):
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise WorkspaceError(f"{exc.filename or root}: cannot create the workspace ({exc.strerror})") from None
        raise
    return ws


def _make_folder(folder: Path, created: list[Path]) -> None:
    """``mkdir -p`` that records each folder it creates, outermost first."""
    missing = [p for p in (folder, *folder.parents) if not p.exists()][::-1]
    for path in missing:
        path.mkdir()
        created.append(path)


def _load_settings(path: Path) -> Settings:
    try:
        data = tomllib.loads(path.read_text()).get("cxrlab", {})
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise WorkspaceError(f"{path}: invalid TOML ({exc})") from None
    if not isinstance(data, dict):
        raise WorkspaceError(f"{path}: [cxrlab] must be a table")
    return parse_settings(data, source=str(path))


def open_workspace(root: Path | str | None = None) -> Workspace:
    """Open the workspace at *root* (default: ``$CXRLAB_WORKSPACE`` or the current folder).

    Raises
    ------
    WorkspaceError
        The folder has no ``cxrlab.toml``, its settings are invalid, or the catalog cannot be reached.
    """
    root = Path(root or os.environ.get("CXRLAB_WORKSPACE") or ".").resolve()
    settings_path = root / SETTINGS_FILE
    if not settings_path.is_file():
        raise WorkspaceError(f"{root}: not a cxrlab workspace (run `cxrlab init {root}` first)")
    ws = Workspace(root, _load_settings(settings_path))
    ws.migrate()
    return ws

