"""The workspace folder: settings (``cxrlab.toml``), the catalog, the secret key and the stage folders.

Layout (DESIGN.md, "Workspace")::

    cxrlab.toml  catalog.db  secret.key  raw/  images/  quarantine/  review/  exports/
"""

from __future__ import annotations

import os
import secrets
import tomllib
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from cxrlab.catalog.db import make_engine, upgrade
from cxrlab.errors import WorkspaceError
from cxrlab.runtime.files import atomic_write_bytes, private_file

__all__ = ["Settings", "Workspace", "init_workspace", "open_workspace"]

SETTINGS_FILE = "cxrlab.toml"
SUBDIRS = ("raw", "images", "quarantine", "review", "exports")


@dataclass
class Settings:
    """What ``cxrlab.toml`` holds.

    Attributes
    ----------
    project : str
        Project name shown in the web app.
    schema : str
        Label schema (``vindr-cxr``, ``vindr-pcxr`` or ``nih14``).
    database_url : str
        SQLAlchemy URL; empty means the SQLite file ``catalog.db`` in the workspace.
    deid_profile : str
        De-identification profile (``vindr``: the 25-tag keep-list).
    population : str
        ``adult`` or ``pediatric``: which ages the header filter accepts.
    key_file : str
        HMAC key for ``image_id`` and new UIDs, relative to the workspace.
    """

    project: str = "cxrlab"
    schema: str = "vindr-cxr"
    database_url: str = ""
    deid_profile: str = "vindr"
    population: str = "adult"
    key_file: str = "secret.key"
    extra: dict = field(default_factory=dict)

    def to_toml(self) -> str:
        """Serialise as TOML (flat string keys only, so no TOML writer library is needed)."""
        lines = ["[cxrlab]"]
        for key, value in asdict(self).items():
            if key == "extra":
                continue
            lines.append(f'{key} = "{value}"')
        return "\n".join(lines) + "\n"


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
        return sessionmaker(self.engine, expire_on_commit=False)

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


def init_workspace(root: Path, *, settings: Settings | None = None) -> Workspace:
    """Create (or complete) a workspace at *root* and migrate its catalog to the newest schema.

    Idempotent: an existing workspace keeps its settings and key.
    """
    root = Path(root).resolve()
    root.mkdir(parents=True, exist_ok=True)
    for sub in SUBDIRS:
        (root / sub).mkdir(exist_ok=True)
    settings_path = root / SETTINGS_FILE
    if settings_path.exists():
        settings = _load_settings(settings_path)
    else:
        settings = settings or Settings()
        atomic_write_bytes(settings_path, settings.to_toml().encode())
    key_path = root / settings.key_file
    if not key_path.exists():
        atomic_write_bytes(key_path, secrets.token_hex(32).encode() + b"\n", mode=0o600)
    ws = Workspace(root, settings)
    upgrade(ws.engine)
    return ws


def _load_settings(path: Path) -> Settings:
    try:
        data = tomllib.loads(path.read_text()).get("cxrlab", {})
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise WorkspaceError(f"{path}: invalid TOML ({exc})") from None
    known = {k: v for k, v in data.items() if k in Settings.__dataclass_fields__ and k != "extra"}
    extra = {k: v for k, v in data.items() if k not in known}
    return Settings(**known, extra=extra)


def open_workspace(root: Path | str | None = None) -> Workspace:
    """Open the workspace at *root* (default: ``$CXRLAB_WORKSPACE`` or the current folder).

    Raises
    ------
    WorkspaceError
        The folder has no ``cxrlab.toml``.
    """
    root = Path(root or os.environ.get("CXRLAB_WORKSPACE") or ".").resolve()
    settings_path = root / SETTINGS_FILE
    if not settings_path.exists():
        raise WorkspaceError(f"{root}: not a cxrlab workspace (run `cxrlab init {root}` first)")
    ws = Workspace(root, _load_settings(settings_path))
    upgrade(ws.engine)
    return ws
