"""Write transactions of the labeling tool: one short transaction per request, through one writer path.

Reads run before the transaction; each write happens inside :func:`transaction`, which takes the catalog's
writer lock (SQLite: one writer per process, see :func:`cxrlab.catalog.db.writer_lock`), commits on success
and rolls back on error. Nothing slow (decoding, rendering) happens inside. Optimistic versioning uses a
conditional ``UPDATE ... WHERE version = :v`` (:func:`bump_version`), atomic on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session

from cxrlab.catalog.db import transaction  # the one write idiom; re-exported for the labeling services

__all__ = ["bump_version", "lock_row", "transaction"]


def lock_row(session: Session, model: type, pk: int) -> None:
    """Take the write lock of one row for the rest of the transaction (a no-op ``UPDATE``).

    On PostgreSQL the row lock serialises concurrent writers of that row; on SQLite the first write takes the
    database's write lock. Either way, reads after it see every earlier committed change.
    """
    session.execute(update(model).where(model.id == pk).values(id=model.id))


def bump_version(session: Session, model: type, pk: int, version: int, /, **values: Any) -> bool:
    """``UPDATE model SET version = version + 1, **values WHERE id = pk AND version = version``.

    Returns
    -------
    bool
        False when the row's version was not *version* (a stale save) or the row is gone.
    """
    stmt = (
        update(model)
        .where(model.id == pk, model.version == version)
        .values(version=model.version + 1, **values)
        .execution_options(synchronize_session=False)
    )
    return session.execute(stmt).rowcount == 1
