"""A throwaway PostgreSQL cluster for tests: ``initdb`` into a temporary folder, serve on 127.0.0.1, tear down.

The server binaries come from the Debian ``postgresql`` package (``/usr/lib/postgresql/<major>/bin``). ``initdb``
refuses to run as root, so under root the cluster is created and run as the ``postgres`` system user through
``runuser``. Anything missing (binaries, that user, ``runuser``, the psycopg driver) skips the tests that need it. The
fixtures are a plugin of the whole suite (``pytest_plugins`` in ``tests/conftest.py``); the tests using them get
the ``pg`` marker.
"""

from __future__ import annotations

import contextlib
import getpass
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.server import free_port

__all__ = ["BACKENDS", "cluster_problem", "pg_database_url", "pg_server_url", "postgres_bin_dir", "throwaway_cluster"]

READY_TIMEOUT = 30.0
#: The params of a fixture that runs each test on both catalogs; the PostgreSQL case carries the ``pg`` marker
#: (the fixture reaches the cluster through ``request.getfixturevalue``, which the conftest cannot see).
BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.pg)]


def postgres_bin_dir() -> Path | None:
    """The newest ``/usr/lib/postgresql/<major>/bin`` holding initdb, pg_ctl and postgres, or None."""
    found = []
    for d in glob.glob("/usr/lib/postgresql/*/bin"):
        major = Path(d).parent.name
        if major.isdigit() and all((Path(d) / exe).is_file() for exe in ("initdb", "pg_ctl", "postgres")):
            found.append((int(major), Path(d)))
    return max(found)[1] if found else None


def _run(cmd: list[str], *, as_user: str | None, cwd: Path) -> subprocess.CompletedProcess:
    if as_user:
        cmd = ["runuser", "-u", as_user, "--", *cmd]
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=120, check=False)


def _wait_ready(url: str, log: Path) -> None:
    import psycopg

    deadline = time.monotonic() + READY_TIMEOUT
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            with psycopg.connect(url, connect_timeout=2):
                return
        except psycopg.OperationalError as exc:
            last = exc
            time.sleep(0.2)
    tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
    raise RuntimeError(f"PostgreSQL not ready after {READY_TIMEOUT:.0f}s: {last}\n{tail}")


def cluster_problem() -> str | None:
    """Why a throwaway cluster cannot be started here (None: it can)."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "psycopg is not installed (pip install 'psycopg[binary]>=3.1,<4')"
    if postgres_bin_dir() is None:
        return "PostgreSQL server binaries not found in /usr/lib/postgresql/*/bin (apt-get install postgresql)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no 'postgres' system user to run initdb as"
        if shutil.which("runuser") is None:
            return "running as root and 'runuser' is not available to drop to the 'postgres' user"
    return None


@contextlib.contextmanager
def throwaway_cluster() -> Iterator[str]:
    """Start a private PostgreSQL cluster; yield ``postgresql+psycopg://<user>@127.0.0.1:<port>/postgres``.

    Also used by ``bench/server_load.py``. Raises RuntimeError when it cannot start (see :func:`cluster_problem`).
    """
    problem = cluster_problem()
    if problem:
        raise RuntimeError(problem)
    bin_dir = postgres_bin_dir()
    assert bin_dir is not None
    as_user: str | None = None
    if os.geteuid() == 0:
        pw = pwd.getpwnam("postgres")
        as_user, db_user = "postgres", "postgres"
    else:
        db_user = getpass.getuser()

    tmp = Path(tempfile.mkdtemp(prefix="cxrlab-pg-", dir="/tmp"))
    if as_user:
        os.chown(tmp, pw.pw_uid, pw.pw_gid)  # mkdtemp gives 0700; /tmp itself is world-traversable
    data, log = tmp / "data", tmp / "server.log"
    pg_ctl = str(bin_dir / "pg_ctl")
    started = False
    try:
        res = _run(
            [str(bin_dir / "initdb"), "-D", str(data), "-U", db_user, "-A", "trust", "-E", "UTF8", "--locale=C"],
            as_user=as_user,
            cwd=tmp,
        )
        if res.returncode != 0:
            raise RuntimeError(f"initdb failed ({res.returncode}):\n{res.stdout}\n{res.stderr}")
        for _attempt in range(3):  # the free port may be taken between probing and binding
            port = free_port()
            opts = f"-k {tmp} -p {port} -h 127.0.0.1 -c fsync=off -c full_page_writes=off -c max_connections=200"
            res = _run(
                [pg_ctl, "-D", str(data), "-l", str(log), "-o", opts, "-w", "-t", "30", "start"],
                as_user=as_user,
                cwd=tmp,
            )
            if res.returncode == 0:
                started = True
                break
        if not started:
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise RuntimeError(f"pg_ctl start failed:\n{res.stdout}\n{res.stderr}\n{tail}")
        url = f"postgresql://{db_user}@127.0.0.1:{port}/postgres"
        _wait_ready(url, log)
        yield f"postgresql+psycopg://{db_user}@127.0.0.1:{port}/postgres"
    finally:
        if started:
            _run([pg_ctl, "-D", str(data), "-m", "immediate", "-w", "stop"], as_user=as_user, cwd=tmp)
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[str]:
    """A private PostgreSQL cluster for the session (:func:`throwaway_cluster`); skipped when unavailable."""
    problem = cluster_problem()
    if problem:
        pytest.skip(problem)
    with throwaway_cluster() as url:
        yield url


@pytest.fixture
def pg_database_url(pg_server_url: str) -> Iterator[str]:
    """A fresh, empty database on the session cluster (dropped afterwards); yields its SQLAlchemy URL."""
    import psycopg

    name = f"cxrlab_{uuid.uuid4().hex[:12]}"
    admin = pg_server_url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield pg_server_url.rsplit("/", 1)[0] + f"/{name}"
    with contextlib.suppress(psycopg.Error), psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
