"""The catalog: SQLAlchemy models, transactions, Alembic migrations, the workspace that holds them, and the
repository of release tables (:mod:`cxrlab.catalog.release`).

Every model of :mod:`cxrlab.catalog.models` is importable from here.
"""

from cxrlab.catalog import models
from cxrlab.catalog.db import current_revision, head_revision, make_engine, transaction, upgrade
from cxrlab.catalog.models import *  # noqa: F403 - the models' own __all__ is the list
from cxrlab.catalog.workspace import Settings, Workspace, init_workspace, open_workspace, parse_settings

__all__ = [
    *models.__all__,
    "Settings",
    "Workspace",
    "current_revision",
    "head_revision",
    "init_workspace",
    "make_engine",
    "open_workspace",
    "parse_settings",
    "transaction",
    "upgrade",
]
