"""Write transactions of the labeling tool: one short transaction per request, through one writer path.

Reads run before the transaction; each write happens inside :func:`transaction`, which takes the catalog's
writer lock (SQLite: one writer per process, see :func:`cxrlab.catalog.db.writer_lock`), commits on success
and rolls back on error. Nothing slow (decoding, rendering) happens inside. Optimistic versioning uses a
conditional ``UPDATE ... WHERE version = :v`` (:func:`bump_version`), atomic on SQLite and PostgreSQL alike.

While a SQLite write transaction is open every other writer waits, so the statements run inside it are built
once and reused (:func:`functools.cache`: SQLAlchemy neither rebuilds them nor their cache keys), and audit rows
go in as one multi-row ``INSERT`` (:func:`insert_events`) rather than through the ORM's unit of work.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any

from sqlalchemy import Update, bindparam, insert, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from cxrlab.catalog.db import transaction  # the one write idiom; re-exported for the labeling services
from cxrlab.catalog.models import Event

__all__ = ["bump_version", "insert_events", "lock_row", "transaction"]


@cache
def _lock_stmt(model: type, returning: tuple) -> Update:
    stmt = update(model).where(model.id == bindparam("pk_")).values(id=model.id)
    return stmt.returning(*returning).execution_options(synchronize_session=False) if returning else stmt


def lock_row(session: Session, model: type, pk: int, /, *returning: Any) -> Any:
    """Take the write lock of one row for the rest of the transaction (a no-op ``UPDATE``).

    On PostgreSQL the row lock serialises concurrent writers of that row; on SQLite the first write takes the
    database's write lock. Either way, reads after it see every earlier committed change.

    Returns
    -------
    Row or None
        The *returning* columns of the row as they are under the lock (``UPDATE ... RETURNING``: no second
        query), when any are given.
    """
    result = session.execute(_lock_stmt(model, returning), {"pk_": pk})
    return result.one() if returning else None


@cache
def _bump_stmt(model: type, keys: tuple[str, ...]) -> Update:
    columns = model.__table__.c
    return (
        update(model)
        .where(model.id == bindparam("pk_"), model.version == bindparam("version_"))
        .values(version=model.version + 1, **{k: bindparam(f"{k}_", type_=columns[k].type) for k in keys})
        .execution_options(synchronize_session=False)
    )


def bump_version(session: Session, model: type, pk: int, version: int, /, obj: Any = None, **values: Any) -> bool:
    """``UPDATE model SET version = version + 1, **values WHERE id = pk AND version = version``.

    Parameters
    ----------
    obj : optional
        The row's object in *session*: on success it gets the new version and *values* as its loaded state
        (what a ``refresh`` would read back, without the extra query).

    Returns
    -------
    bool
        False when the row's version was not *version* (a stale save) or the row is gone.
    """
    params = {"pk_": pk, "version_": version, **{f"{k}_": v for k, v in values.items()}}
    if session.execute(_bump_stmt(model, tuple(values)), params).rowcount != 1:
        return False
    if obj is not None:
        for key, value in {**values, "version": version + 1}.items():
            set_committed_value(obj, key, value)
    return True


_INSERT_EVENTS = insert(Event)


def insert_events(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Add ``events`` rows (dicts of :class:`~cxrlab.catalog.models.Event` columns) in one ``INSERT``."""
    if rows:
        session.execute(_INSERT_EVENTS, list(rows))
