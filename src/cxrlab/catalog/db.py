"""Engine, transactions and schema migrations (Alembic) of the catalog.

SQLite is the default (a file in the workspace, WAL journal so readers never block the single writer);
a PostgreSQL URL (``postgresql+psycopg://...``) is accepted as well.

One idiom for writes, everywhere: ``with transaction(ws) as session:`` (or ``transaction(session)`` /
``transaction(engine)``) takes the writer lock, commits on success and rolls back on error. Reads use a session
that is never committed: ``with ws.sessions() as session:``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Protocol

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, Select, create_engine, event, inspect
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError
from sqlalchemy.orm import Session, sessionmaker

from cxrlab.errors import NotFoundError, WorkspaceError

__all__ = [
    "WalCheckpointer",
    "check_database_url",
    "current_revision",
    "describe_url",
    "head_revision",
    "make_engine",
    "one_or_not_found",
    "transaction",
    "upgrade",
    "writer_lock",
]

#: Database backends the catalog's migrations are tested on.
BACKENDS = ("sqlite", "postgresql")
#: Seconds to wait for a PostgreSQL server before giving up (libpq's default is to wait forever).
CONNECT_TIMEOUT = 10

MIGRATIONS = Path(__file__).parent / "migrations"

log = logging.getLogger(__name__)


def make_engine(url: str) -> Engine:
    """Create an engine; for SQLite turn on WAL, foreign keys and a busy timeout.

    Bound parameters are hidden from SQLAlchemy's log and from the text of its errors (``hide_parameters``): the
    catalog holds PHI (report text, original UIDs), and a debug log or a constraint error would otherwise print
    the values of the statement.
    """
    if url.startswith("sqlite"):
        # Pool as for PostgreSQL below: a web server runs up to 40 request threads, and overflow connections that
        # are closed and reopened would repeat the PRAGMAs on every request.
        engine = create_engine(
            url, connect_args={"timeout": 30, "check_same_thread": False}, pool_size=10, max_overflow=30,
            hide_parameters=True,
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
    connect_args = {}
    if make_url(url).get_backend_name() == "postgresql" and "connect_timeout" not in make_url(url).query:
        connect_args["connect_timeout"] = CONNECT_TIMEOUT  # a server that does not answer is an error, not a hang
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=30, connect_args=connect_args,
                         hide_parameters=True)


def check_database_url(url: str) -> None:
    """Refuse a catalog URL that cannot work, before anything is created with it.

    Raises
    ------
    ValueError
        Not a SQLAlchemy URL, a backend other than SQLite or PostgreSQL, or a driver that is not installed.
        The message shows the URL without its password.
    """
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ValueError("not a database URL (expected e.g. postgresql+psycopg://USER@HOST/DB)") from None
    shown = parsed.render_as_string(hide_password=True)
    if parsed.get_backend_name() not in BACKENDS:
        raise ValueError(f"{shown}: unsupported database {parsed.get_backend_name()!r} (use sqlite:///PATH or "
                         "postgresql+psycopg://USER@HOST/DB)")
    try:
        parsed.get_dialect().import_dbapi()
    except NoSuchModuleError:
        raise ValueError(f"{shown}: unknown driver {parsed.get_driver_name()!r} (use postgresql+psycopg)") from None
    except ImportError:
        postgres = parsed.get_backend_name() == "postgresql"
        hint = " (use postgresql+psycopg, from the [postgres] extra)" if postgres else ""
        raise ValueError(f"{shown}: driver {parsed.get_driver_name()!r} is not installed{hint}") from None


def describe_url(url: str | URL) -> str:
    """Where a URL points, for messages: ``backend host:port/database`` or the SQLite file; never the password."""
    parsed = make_url(url) if isinstance(url, str) else url
    if parsed.get_backend_name() == "sqlite":
        return f"sqlite {parsed.database or ':memory:'}"
    port = parsed.port or {"postgresql": 5432}.get(parsed.get_backend_name())
    where = f"{parsed.host or 'localhost'}" + (f":{port}" if port else "")
    return f"{parsed.get_backend_name()} {where}" + (f"/{parsed.database}" if parsed.database else "")


def connection_error(url: str | URL, exc: DBAPIError) -> WorkspaceError:
    """A one-line error for a catalog that cannot be reached, naming where it was looked for (no password)."""
    parsed = make_url(url) if isinstance(url, str) else url
    reason = (str(exc.orig).strip().splitlines() or [type(exc.orig).__name__])[0]
    if parsed.password:
        reason = reason.replace(str(parsed.password), "***")
    return WorkspaceError(f"cannot open the catalog database at {describe_url(parsed)}: {reason}")


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


class WalCheckpointer:
    """Checkpoint a SQLite catalog's write-ahead log from a background thread, not inside a writer's commit.

    By default SQLite copies the WAL back into the database (a checkpoint, with two fsyncs) inside the commit that
    makes the WAL pass 1,000 pages: every few dozen writes one of them takes 5-15 ms longer, while it holds the
    catalog's write lock and every other writer waits (SQLite docs, "Write-Ahead Logging", section 6). A server
    turns that off on its own connections (``PRAGMA wal_autocheckpoint=0``) and runs a ``PASSIVE`` checkpoint
    every *interval* seconds in this thread instead: a passive checkpoint never waits for readers or writers,
    and writers keep appending to the WAL meanwhile. Commits stay as durable as before (a commit is in the WAL
    before it returns, with ``synchronous=NORMAL``: it survives the process being killed). Other processes (the
    CLI) keep the automatic checkpoints. A no-op for other databases.
    """

    def __init__(self, engine: Engine, interval: float = 0.5) -> None:
        self.engine = engine
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @staticmethod
    def _manual(dbapi_conn, _record) -> None:  # noqa: ANN001 - DB-API connection
        dbapi_conn.execute("PRAGMA wal_autocheckpoint=0")

    def start(self) -> None:
        """Turn off automatic checkpoints on the engine's connections and start the thread."""
        if self.engine.dialect.name != "sqlite" or self._thread is not None:
            return
        event.listen(self.engine, "connect", self._manual)
        self.engine.dispose()  # connections opened before the listener: reopened with the setting when next used
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="cxrlab-wal-checkpoint", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread after a last checkpoint; automatic checkpoints apply again to new connections."""
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join()
        self._thread = None
        event.remove(self.engine, "connect", self._manual)
        self.engine.dispose()

    def checkpoint(self) -> tuple[int, int, int]:
        """One passive checkpoint: ``(busy, WAL frames, frames copied)`` as SQLite reports them."""
        with self.engine.connect() as conn:
            return tuple(conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)").one())

    def _run(self) -> None:
        while True:
            stopping = self._stop.wait(self.interval)
            try:
                self.checkpoint()
            except Exception:  # noqa: BLE001 - a failed pass is retried at the next one (the WAL only grows)
                log.warning("WAL checkpoint failed", exc_info=True)
            if stopping:
                return


def _alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the catalog schema to *revision* (Alembic ``upgrade``)."""
    _migrate(engine, command.upgrade, revision)


def downgrade(engine: Engine, revision: str) -> None:
    """Take the catalog schema back to *revision* (Alembic ``downgrade``; each migration's ``downgrade``)."""
    _migrate(engine, command.downgrade, revision)


def _migrate(engine: Engine, step: Callable[[Config, str], None], revision: str) -> None:
    cfg = _alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        step(cfg, revision)


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


class HasSessions(Protocol):
    """Anything with a session factory, such as a :class:`~cxrlab.catalog.Workspace`."""

    sessions: sessionmaker[Session]


@contextmanager
def transaction(target: Session | Engine | sessionmaker[Session] | HasSessions) -> Iterator[Session]:
    """Run the block as one write transaction through the catalog's writer path.

    Takes the writer lock (:func:`writer_lock`), commits on success and rolls back on any error. Given a session,
    it uses that session and leaves it open (reads made before the block may share its transaction); given a
    workspace, a session factory or an engine, it opens a session and closes it at the end.

    Reads made before the block may share its transaction: on PostgreSQL (READ COMMITTED) every statement sees
    the latest committed rows anyway, and the sqlite3 driver opens a transaction only at the first write, so no
    read snapshot is carried into the write (which could fail with SQLITE_BUSY_SNAPSHOT).

    Examples
    --------
    >>> with transaction(ws) as session:  # doctest: +SKIP
    ...     session.add(Event(image_pk=1, stage="filter", action="accepted"))
    """
    if isinstance(target, Session):
        session, owned = target, False
    elif isinstance(target, Engine):
        session, owned = Session(target, expire_on_commit=False), True
    elif isinstance(target, sessionmaker):
        session, owned = target(), True
    else:
        session, owned = target.sessions(), True
    try:
        with writer_lock(session.get_bind()):
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise
    finally:
        if owned:
            session.close()


def one_or_not_found(session: Session, stmt: Select, what: str) -> object:
    """The one row *stmt* selects, or :class:`~cxrlab.errors.NotFoundError` ``"<what> not found"`` (the web shell
    answers 404, the CLI one line)."""
    found = session.scalar(stmt)
    if found is None:
        raise NotFoundError(f"{what} not found")
    return found
