"""Fixtures of the web tests: one site per backend (SQLite and PostgreSQL), users of every role, and a factory
of fresh assigned projects so each test builds its own state; and ``web``, a real ``cxrlab serve`` over a small
workspace of images in every state (the image list, the renderer and the pages over HTTP).

The site (workspace, app, users, tokens) is shared per backend for the session because creating users costs
Argon2 hashes and PostgreSQL databases take a moment; each test then calls ``site.project(...)`` to get its own
images, project and tasks. Clients are Starlette ``TestClient``s over the real app and catalog; the tests that
need a real server process start ``cxrlab serve`` with :func:`tests.support.server.start_server`.
"""

from __future__ import annotations

import hashlib
import itertools
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from pydicom.uid import generate_uid
from sqlalchemy import select

from cxrlab.annotate.assignment import assign_images
from cxrlab.annotate.projects import create_project
from cxrlab.catalog import Settings, init_workspace
from cxrlab.catalog.models import Image, ImageState, Project, Task, TaskKind, User
from cxrlab.catalog.workspace import Workspace
from cxrlab.web.app import create_app
from tests.support.dicom import DX_FOR_PRESENTATION, make_dicom
from tests.support.pg import BACKENDS
from tests.support.server import start_server
from tests.support.users import PASSWORD, READERS, REVIEWERS, USERS, create_users

SIZE = 64
_counter = itertools.count()


@dataclass
class Proj:
    """A fresh project: its id, image ids by split, and task ids per (user name, image id)."""

    id: int
    name: str
    images: list[str]
    train: list[str]
    test: list[str]
    tasks: dict[tuple[str, str], int] = field(default_factory=dict)
    reviews: dict[tuple[str, str], int] = field(default_factory=dict)


@dataclass
class Site:
    backend: str
    workspace: Workspace
    client: TestClient
    tokens: dict[str, str]
    dicom: Path

    def h(self, who: str | None) -> dict[str, str]:
        """Request headers for *who* (a user name), or none (unauthenticated)."""
        return {} if who is None else {"Authorization": f"Bearer {self.tokens[who]}"}

    def get(self, url: str, who: str | None, **kw):  # noqa: ANN201
        return self.client.get(url, headers=self.h(who), **kw)

    def post(self, url: str, who: str | None, json: dict | None = None, **kw):  # noqa: ANN201
        return self.client.post(url, headers=self.h(who), json=json, **kw)

    def put(self, url: str, who: str | None, json: dict | None = None, **kw):  # noqa: ANN201
        return self.client.put(url, headers=self.h(who), json=json, **kw)

    def add_images(self, n: int, *, split: str | None = None, dicom: Path | None = None) -> list[str]:
        """Insert *n* accepted images (all pointing at one small real DICOM file, by default the shared one)."""
        ids = []
        with self.workspace.sessions() as session, session.begin():
            for _ in range(n):
                image_id = hashlib.sha256(f"{uuid.uuid4()}".encode()).hexdigest()[:32]
                session.add(Image(sop_instance_uid=generate_uid(), image_id=image_id, raw_sha256=image_id * 2,
                                  raw_path="raw/x.dcm", deid_path=str(dicom or self.dicom), state=ImageState.ACCEPTED,
                                  rows=SIZE, columns=SIZE, modality="CR", split=split))
                ids.append(image_id)
        return ids

    def project(self, *, train: int = 1, test: int = 0, schema: str = "vindr-cxr",
                schema_yaml: str | None = None, dicom: Path | None = None) -> Proj:
        """A new project over *train* + *test* new images, assigned to reader1-3 (and reviewer1-2 for test images)."""
        ids = self.add_images(train, split="train", dicom=dicom) + self.add_images(test, split="test", dicom=dicom)
        name = f"p{next(_counter)}-{uuid.uuid4().hex[:6]}"
        with self.workspace.sessions() as session:
            project = create_project(session, name=name, schema=schema, schema_yaml=schema_yaml)
            report = assign_images(session, project=project, readers=READERS, reviewers=REVIEWERS,
                                   image_ids=ids)
            assert report.counts["read_tasks"] == 3 * len(ids)
            proj = Proj(project.id, name, ids, ids[:train], ids[train:])
            rows = session.execute(
                select(User.username, Image.image_id, Task.id, Task.kind)
                .join(User, User.id == Task.user_id).join(Image, Image.id == Task.image_pk)
                .where(Task.project_id == project.id)
            )
            for username, image_id, task_id, kind in rows:
                (proj.tasks if kind is TaskKind.READ else proj.reviews)[(username, image_id)] = task_id
        return proj


def _make_site(root: Path, backend: str, database_url: str = "") -> Site:
    ws = init_workspace(root / "ws", settings=Settings(project="api tests", database_url=database_url))
    dicom = make_dicom(ws.path("images", "shared.dicom"), rows=SIZE, columns=SIZE)
    with ws.sessions() as session:
        create_users(session)
    client = TestClient(create_app(ws))
    tokens = {}
    for name in USERS:
        r = client.post("/api/auth/token", json={"username": name, "password": PASSWORD})
        assert r.status_code == 200, r.text
        tokens[name] = r.json()["access_token"]
    return Site(backend, ws, client, tokens, dicom)


@pytest.fixture(scope="session")
def sqlite_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    site = _make_site(tmp_path_factory.mktemp("api-sqlite"), "sqlite")
    yield site
    site.client.close()
    site.workspace.engine.dispose()


def new_pg_database(server_url: str) -> str:
    """A new database on the test cluster; its URL. Its time zone is not UTC: the API still answers in UTC."""
    import psycopg

    name = f"cxrlab_api_{uuid.uuid4().hex[:8]}"
    admin = server_url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
        conn.execute(f"ALTER DATABASE \"{name}\" SET timezone TO 'Asia/Ho_Chi_Minh'")
    return server_url.rsplit("/", 1)[0] + f"/{name}"


@pytest.fixture(scope="session")
def pg_site(tmp_path_factory: pytest.TempPathFactory, pg_server_url: str) -> Iterator[Site]:
    site = _make_site(tmp_path_factory.mktemp("api-pg"), "postgresql", new_pg_database(pg_server_url))
    yield site
    site.client.close()
    site.workspace.engine.dispose()


@pytest.fixture(params=BACKENDS)
def site(request: pytest.FixtureRequest) -> Site:
    """The API over SQLite, then over PostgreSQL (skipped when no PostgreSQL server is available)."""
    return request.getfixturevalue("sqlite_site" if request.param == "sqlite" else "pg_site")


def project_of(site: Site, project_id: int) -> Project:
    with site.workspace.sessions() as session:
        return session.get(Project, project_id)


# --- web: a real ``cxrlab serve`` over images in every state ------------------------------------------------------

#: Catalog fields that are never in a response of the image list or an image page.
FORBIDDEN = ("raw_path", "sop_instance_uid", "patient_key", "raw_sha256")


def image_id_of(name: str) -> str:
    """The image id the ``web`` workspace gives image *name* ("a" to "d")."""
    return hashlib.sha256(name.encode()).hexdigest()[:32]


@dataclass
class Web:
    """A running server over the ``web`` workspace, and an admin's client."""

    client: httpx.Client
    workspace: Workspace
    served: list[str]
    undeidentified: str
    in_raw: str


def _gradient_dicom(path: Path, *, window: tuple[float, float] | None = None) -> None:
    """A 64x64 DX image: a 12-bit horizontal gradient in a 16-bit container, no patient in the header."""
    row = np.linspace(0, 4095, SIZE).astype(np.uint16)
    make_dicom(path, pixels=np.tile(row, (SIZE, 1)), sop_class=DX_FOR_PRESENTATION, modality="DX", window=window,
               header=False)


def _add(ws: Workspace, name: str, *, deid_path: str | None, state: ImageState, raw_path: str) -> str:
    image_id = image_id_of(name)
    with ws.sessions() as session, session.begin():
        session.add(Image(sop_instance_uid=generate_uid(), image_id=image_id,
                          patient_key=image_id_of("patient-" + name),
                          raw_sha256=hashlib.sha256(name.encode()).hexdigest(), raw_path=raw_path,
                          deid_path=deid_path, state=state, rows=SIZE, columns=SIZE, modality="DX",
                          view_position="PA", sex="F", age_years=42.0))
    return image_id


def _build_web_workspace(root: Path) -> tuple[Workspace, list[str], str, str]:
    ws = init_workspace(root)
    a, b = image_id_of("a"), image_id_of("b")
    # One absolute deid_path with a window in the header, one relative to the workspace root.
    _gradient_dicom(ws.path("images", f"{a}.dicom"), window=(2048, 4096))
    _gradient_dicom(ws.path("images", f"{b}.dicom"))
    _add(ws, "a", deid_path=str(ws.path("images", f"{a}.dicom")), state=ImageState.DEIDENTIFIED,
         raw_path=str(ws.path("raw", "a.dcm")))
    _add(ws, "b", deid_path=f"images/{b}.dicom", state=ImageState.ACCEPTED, raw_path="raw/b.dcm")
    undeid = _add(ws, "c", deid_path=None, state=ImageState.INGESTED, raw_path="raw/c.dcm")
    # A catalog row whose "de-identified" path points into raw/ must never be served.
    _gradient_dicom(ws.path("raw", "d.dcm"))
    in_raw = _add(ws, "d", deid_path="raw/d.dcm", state=ImageState.DEIDENTIFIED, raw_path="raw/d.dcm")
    with ws.sessions() as session:
        create_users(session, {"admin": "admin"})
    return ws, sorted([a, b]), undeid, in_raw


@pytest.fixture(scope="session")
def web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Web]:
    """A fresh workspace (two served images, one not de-identified, one whose file is in raw/) behind a real
    ``cxrlab serve``; the tests only read, so they share one."""
    ws, served, undeid, in_raw = _build_web_workspace(tmp_path_factory.mktemp("web") / "ws")
    with start_server(ws) as server, httpx.Client(base_url=server.url, timeout=10) as client:
        r = client.post("/api/auth/login", json={"username": "admin", "password": PASSWORD})
        assert r.status_code == 200, r.text
        yield Web(client, ws, served, undeid, in_raw)
    ws.engine.dispose()
