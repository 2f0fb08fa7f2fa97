"""The SQLite catalog's WAL checkpoints run in a server's background thread, not inside a writer's commit."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import text

from cxrlab.catalog import Settings, init_workspace
from cxrlab.catalog.db import WalCheckpointer
from cxrlab.web.app import create_app


def _autocheckpoint(ws) -> int:  # noqa: ANN001 - Workspace
    with ws.engine.connect() as conn:
        return conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar_one()


class TestWalCheckpointer:
    def test_server_connections_leave_checkpoints_to_the_thread(self, tmp_path: Path) -> None:
        ws = init_workspace(tmp_path / "ws")
        assert _autocheckpoint(ws) == 1000  # SQLite's default, kept by the CLI
        with TestClient(create_app(ws)) as client:  # runs the lifespan: the server's threads
            assert client.get("/health").status_code == 200
            assert _autocheckpoint(ws) == 0
        assert _autocheckpoint(ws) == 1000

    def test_checkpoint_copies_committed_pages_back(self, tmp_path: Path) -> None:
        ws = init_workspace(tmp_path / "ws")
        checkpointer = WalCheckpointer(ws.engine, interval=3600)  # no pass of its own during the test
        checkpointer.start()
        try:
            with ws.engine.begin() as conn:
                conn.execute(text("CREATE TABLE notes (body TEXT)"))
                for i in range(200):
                    conn.execute(text("INSERT INTO notes VALUES (:b)"), {"b": f"{i:04d}" * 500})
            busy, frames, copied = checkpointer.checkpoint()
            assert busy == 0 and frames > 100 and copied == frames
        finally:
            checkpointer.stop()
        with sqlite3.connect(ws.root / "catalog.db") as db:  # another connection sees every committed row
            assert db.execute("SELECT count(*) FROM notes").fetchone() == (200,)

    def test_other_databases_are_left_alone(self, tmp_path: Path, pg_database_url: str) -> None:  # noqa: F811
        ws = init_workspace(tmp_path / "ws", settings=Settings(database_url=pg_database_url))
        checkpointer = WalCheckpointer(ws.engine)
        checkpointer.start()
        checkpointer.stop()
        with ws.engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT 1").scalar_one() == 1
