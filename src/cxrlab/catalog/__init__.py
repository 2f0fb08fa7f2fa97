"""The catalog: SQLAlchemy models, sessions, Alembic migrations and the workspace that holds them."""

from cxrlab.catalog.db import current_revision, head_revision, make_engine, session_scope, upgrade
from cxrlab.catalog.models import (
    Base,
    ConsensusLabel,
    Event,
    Image,
    ImageState,
    QuarantineItem,
    Reading,
    ReadingBox,
    ReadingLabel,
    Redaction,
    UidMap,
)
from cxrlab.catalog.workspace import Settings, Workspace, init_workspace, open_workspace

__all__ = [
    "Base",
    "ConsensusLabel",
    "Event",
    "Image",
    "ImageState",
    "QuarantineItem",
    "Reading",
    "ReadingBox",
    "ReadingLabel",
    "Redaction",
    "Settings",
    "UidMap",
    "Workspace",
    "current_revision",
    "head_revision",
    "init_workspace",
    "make_engine",
    "open_workspace",
    "session_scope",
    "upgrade",
]
