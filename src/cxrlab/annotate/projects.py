"""Projects of the labeling tool: a label schema (a preset or a custom YAML) and the reading plan.

A user sees a project when an admin, or when the user holds a task in it; anything else is "not found".
"""

from __future__ import annotations

from functools import lru_cache

from sqlalchemy import exists, select, true
from sqlalchemy.orm import Session

from cxrlab.annotate.writes import insert_events, transaction
from cxrlab.catalog.db import one_or_not_found
from cxrlab.catalog.models import Project, Task, User, UserRole
from cxrlab.errors import CxrlabError
from cxrlab.schemas import LabelSchema, get_schema, parse_schema_yaml

__all__ = ["create_project", "get_project", "get_project_by_name", "list_projects", "project_schema"]


@lru_cache(maxsize=64)
def _parsed(text: str) -> LabelSchema:
    return parse_schema_yaml(text, source="project schema")


def project_schema(project: Project) -> LabelSchema:
    """The label schema of *project* (its custom YAML when it has one, else the named preset)."""
    if project.schema_yaml:
        return _parsed(project.schema_yaml)
    return get_schema(project.schema_name)


def create_project(
    session: Session,
    *,
    name: str,
    schema: str = "vindr-cxr",
    schema_yaml: str | None = None,
    readers_per_image: int = 3,
    reviewers_per_test: int = 2,
    seed: int = 0,
    author: str = "cli",
) -> Project:
    """Create a project (a ``project.create`` event names *author*).

    Parameters
    ----------
    schema : str
        Preset name (``vindr-cxr``, ``vindr-pcxr``, ``nih14``); ignored when *schema_yaml* is given.
    schema_yaml : str, optional
        A custom schema (:func:`cxrlab.schemas.parse_schema_yaml`), stored with the project.
    readers_per_image : int
        Independent blinded readers per image (3 in VinDr-CXR's training set).
    reviewers_per_test : int
        Reviewers who settle each test image after its readers (VinDr-CXR: 2 senior radiologists).

    Raises
    ------
    CxrlabError
        Name taken or empty, unknown preset, invalid YAML schema (``SchemaError``: the message names the label
        by position and name, e.g. ``label #3 ('Nodule'): 'kind' must be 'local' or 'global'``), counts below 1.
    """
    name = name.strip()
    if not name or len(name) > 64:
        raise CxrlabError("project name must have 1 to 64 characters")
    if readers_per_image < 1 or reviewers_per_test < 1:
        raise CxrlabError("readers per image and reviewers per test image must be at least 1")
    if schema_yaml:
        schema_name = _parsed(schema_yaml).name
    else:
        try:
            schema_name = get_schema(schema).name
        except KeyError as exc:
            raise CxrlabError(str(exc.args[0])) from None
    with transaction(session):
        if session.scalar(select(Project.id).where(Project.name == name)) is not None:
            raise CxrlabError(f"project {name!r} exists already")
        project = Project(
            name=name,
            schema_name=schema_name,
            schema_yaml=schema_yaml or None,
            readers_per_image=readers_per_image,
            reviewers_per_test=reviewers_per_test,
            seed=seed,
        )
        session.add(project)
        insert_events(session, [{"image_pk": None, "stage": "admin", "action": "project.create", "author": author,
                                 "detail": {"project": name, "schema": schema_name,
                                            "custom_schema": bool(schema_yaml)}}])
    return project


def _visible(user: User):  # noqa: ANN202 - a SQL expression
    if user.role is UserRole.ADMIN:
        return true()
    return exists().where(Task.project_id == Project.id, Task.user_id == user.id)


def list_projects(session: Session, *, user: User) -> list[Project]:
    """Projects *user* may see, by id."""
    return list(session.scalars(select(Project).where(_visible(user)).order_by(Project.id)))


def get_project(session: Session, project_id: int, *, user: User | None = None) -> Project:
    """Project *project_id* if *user* (None: any caller, for the CLI) may see it, else ``NotFoundError``."""
    stmt = select(Project).where(Project.id == project_id)
    if user is not None:
        stmt = stmt.where(_visible(user))
    return one_or_not_found(session, stmt, f"project {project_id}")


def get_project_by_name(session: Session, name: str) -> Project:
    """Project called *name* (for the CLI), else ``NotFoundError``."""
    return one_or_not_found(session, select(Project).where(Project.name == name), f"project {name!r}")
