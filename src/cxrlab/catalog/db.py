"""Engine and session factory of the catalog, and schema migrations with Alembic.

SQLite is the default (a file in the workspace, WAL journal so readers never block the single writer);
a PostgreSQL URL (``postgresql+psycopg://...``) is accepted as well.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, inspect
from sqlalchemy.orm import Session, sessionmaker

__all__ = ["current_revision", "head_revision", "make_engine", "session_scope", "upgrade", "writer_lock"]

MIGRATIONS = Path(__file__).parent / "migrations"


def make_engine(url: str) -> Engine:
    """Create an engine; for SQLite turn on WAL, foreign keys and a busy timeout."""
    if url.startswith("sqlite"):
        # Pool as for PostgreSQL below: a web server runs up to 40 request threads, and overflow connections that
        # are closed and reopened would repeat the PRAGMAs on every request.
        engine = create_engine(
            url, connect_args={"timeout": 30, "check_same_thread": False}, pool_size=10, max_overflow=30
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record) -> None:  # noqa: ANN001 - DB-API connection
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        return engine
    # A web server runs up to 40 request threads (the AnyIO default); keep enough connections for them.
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=30)


_WRITER_LOCKS: dict[str, threading.Lock] = {}
_WRITER_LOCKS_GUARD = threading.Lock()


def writer_lock(engine: Engine) -> AbstractContextManager:
    """The single writer path of a SQLite catalog inside this process; a no-op context for other databases.

    SQLite allows one writer at a time; threads that collide wait in SQLite's busy handler, which sleeps in
    steps of up to 100 ms and so inflates tail latency. Taking this lock around each write transaction makes
    the threads of one server queue in order instead. Other processes are still held off by the busy timeout.
    PostgreSQL uses row locks and needs no lock here.
    """
    if engine.dialect.name != "sqlite":
        return nullcontext()
    key = str(engine.url)
    with _WRITER_LOCKS_GUARD:
        return _WRITER_LOCKS.setdefault(key, threading.Lock())


def _alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the catalog schema to *revision* (Alembic ``upgrade``)."""
    cfg = _alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def head_revision() -> str:
    """The newest Alembic revision shipped with this cxrlab."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_alembic_config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    """Return the Alembic revision stamped in the catalog, or None for an empty database."""
    if "alembic_version" not in inspect(engine).get_table_names():
        return None
    with engine.connect() as conn:
        row = conn.exec_driver_sql("SELECT version_num FROM alembic_version").first()
    return row[0] if row else None


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A transaction: commit on success, roll back on error."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
