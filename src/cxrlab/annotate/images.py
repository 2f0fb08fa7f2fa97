"""Which images a user may see, and where their de-identified file is.

Only images that have an ``image_id`` and a de-identified file (``deid_path``) are servable; ``raw/`` never is.
Admins see every servable image; anyone else only the images of their own (not cancelled) tasks — any other
image is "not found", so its existence does not leak. Only admins see or filter by an image's catalog state: to a
reader it would tell how far the image's other readers are, or that the image was decided before (a gold-standard
task, :mod:`cxrlab.annotate.gold`).
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Select, exists, func, select
from sqlalchemy.orm import Session

from cxrlab.catalog.models import Image, ImageState, Task, TaskState, User, UserRole
from cxrlab.catalog.workspace import Workspace
from cxrlab.errors import NotFoundError, PermissionDeniedError

__all__ = ["count_images", "deid_file", "get_image", "list_images", "shown_state", "visible"]


def visible(stmt: Select, user: User) -> Select:
    """Restrict an ``Image`` query to what *user* may see."""
    if user.role is UserRole.ADMIN:
        return stmt
    mine = exists().where(Task.image_pk == Image.id, Task.user_id == user.id, Task.state != TaskState.CANCELLED)
    return stmt.where(mine)


def shown_state(image: Image, user: User | None) -> ImageState | None:
    """The state of *image* as *user* may see it: admins (and the CLI, None) see it, anyone else sees None."""
    return image.state if user is None or user.role is UserRole.ADMIN else None


def _servable(state: ImageState | None = None, user: User | None = None) -> Select[tuple[Image]]:
    if state is not None and user is not None and user.role is not UserRole.ADMIN:
        raise PermissionDeniedError("only admins filter images by state")
    stmt = select(Image).where(Image.image_id.is_not(None), Image.deid_path.is_not(None))
    if state is not None:
        stmt = stmt.where(Image.state == state)
    return stmt if user is None else visible(stmt, user)


def count_images(session: Session, state: ImageState | None = None, user: User | None = None) -> int:
    """How many servable (de-identified) images the catalog holds (that *user* may see), optionally in one
    state."""
    return session.scalar(select(func.count()).select_from(_servable(state, user).subquery())) or 0


def list_images(
    session: Session, *, state: ImageState | None = None, limit: int = 100, offset: int = 0, user: User | None = None
) -> list[Image]:
    """Servable images (that *user* may see) ordered by ``image_id``."""
    stmt = _servable(state, user).order_by(Image.image_id).limit(limit).offset(offset)
    return list(session.scalars(stmt))


def get_image(session: Session, image_id: str, user: User | None = None) -> Image:
    """The servable image *image_id* (if *user* may see it); ``NotFoundError`` if unknown, not de-identified
    or not visible."""
    image = session.scalar(_servable(user=user).where(Image.image_id == image_id))
    if image is None:
        raise NotFoundError(f"image {image_id!r} not found")
    return image


def deid_file(workspace: Workspace, image: Image) -> Path:
    """The de-identified file of *image* (``deid_path`` absolute or relative to the workspace root).

    Raises ``NotFoundError`` if the file is missing or lies in the workspace's ``raw/`` folder.
    """
    path = Path(image.deid_path or "")
    if not path.is_absolute():
        path = workspace.root / path
    path = path.resolve()
    if not image.deid_path or path.is_relative_to(workspace.path("raw").resolve()) or not path.is_file():
        raise NotFoundError(f"image {image.image_id!r}: de-identified file not available")
    return path
