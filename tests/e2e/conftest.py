"""Fixtures of the browser tests: a workspace of small phantoms carried through ingest, de-identification and
filtering into a labeling project, a real ``cxrlab serve`` process on a free port, and Debian's Chromium driven
by Playwright (headless).

The whole module is skipped with a reason when the ``playwright`` package or ``/usr/bin/chromium`` (override:
``$CXRLAB_CHROMIUM``) is missing: ``playwright install`` cannot download browsers here, so Playwright drives
the distribution's Chromium. Screenshots and the measured figures go to ``test-artifacts/`` (not committed).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select

from tests.support.server import start_server
from tests.support.users import PASSWORD, READERS, REVIEWERS, create_users

__all__ = ["ARTIFACTS", "METRICS", "PASSWORD", "E2ESite"]  # PASSWORD: the tests log in with it

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = Path(os.environ.get("CXRLAB_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]

#: Figures measured by the tests (printed at the end of the run and written to test-artifacts/e2e-metrics.json).
METRICS: dict[str, object] = {}


@dataclass
class E2ESite:
    url: str
    workspace: object
    project_id: int
    review_image: str  # a test image whose three readers drew boxes (see _build)


def _build(root: Path):  # noqa: ANN202 - returns (Workspace, project id, review image id)
    """Phantoms -> ingest -> deid -> filter -> users -> project "e2e" (3 readers, a third of the images in test
    with 2 reviewers); the test images are read by simulated readers through the task service, so their reviews
    are open, and the train images wait in the readers' queues."""
    from cxrlab.annotate.assignment import assign_images
    from cxrlab.annotate.marks import Box, Marks
    from cxrlab.annotate.projects import create_project, project_schema
    from cxrlab.annotate.readings import BoxInput, simulated_reads
    from cxrlab.annotate.tasks import submit_task
    from cxrlab.catalog import Settings, init_workspace
    from cxrlab.catalog.models import Image, Task, TaskKind, TaskState, User
    from cxrlab.consensus import suggest_review
    from cxrlab.deid import run_deid
    from cxrlab.dicom.phantom import generate_phantoms
    from cxrlab.filter import run_filter
    from cxrlab.ingest import run_ingest
    from cxrlab.runtime import Executor

    incoming = root / "incoming"
    generate_phantoms(incoming, 12, seed=7, size_range=(512, 800), text_prob=0.0, outlier_prob=0.0)
    ws = init_workspace(root / "ws", settings=Settings(project="e2e", schema="vindr-cxr"))
    executor = Executor(1)
    run_ingest(ws, incoming, executor=executor)
    run_deid(ws, executor=executor, text=False)
    run_filter(ws)
    with ws.sessions() as session:
        create_users(session)
        project = create_project(session, name="e2e", schema="vindr-cxr", seed=0)
        assign_images(session, project=project, readers=READERS, reviewers=REVIEWERS, test_fraction=0.34)
        schema = project_schema(project)
        rng = np.random.default_rng(0)
        test_images = session.scalars(
            select(Image).where(Image.split == "test",
                                Image.id.in_(select(Task.image_pk).where(Task.project_id == project.id)))
        ).all()
        assert test_images, "the e2e project needs test images"
        for k, img in enumerate(test_images):
            tasks = session.execute(
                select(Task.id, User).join(User, User.id == Task.user_id)
                .where(Task.project_id == project.id, Task.image_pk == img.id, Task.kind == TaskKind.READ,
                       Task.state == TaskState.PENDING).order_by(User.rad_id)
            ).all()
            reads = simulated_reads(rng, schema, readers=len(tasks), rows=img.rows, cols=img.columns)
            if k == 0:
                # Three readers mark one nodule at nearly the same place; the last also marks an effusion.
                w, h = img.columns, img.rows
                reads = [(["Lung tumor"], [BoxInput("Nodule/Mass", 0.30 * w + d, 0.30 * h, 0.45 * w + d, 0.42 * h + d)])
                         for d in (0, 3, 6)]
                reads[-1][1].append(BoxInput("Pleural effusion", 0.55 * w, 0.65 * h, 0.85 * w, 0.85 * h))
            for (task_id, user), (labels, boxes) in zip(tasks, reads, strict=True):
                marks = Marks(labels, [Box(b.class_name, b.x_min, b.y_min, b.x_max, b.y_max) for b in boxes])
                submit_task(session, user=user, task_id=task_id, version=0, marks=marks, suggest=suggest_review)
        return ws, project.id, test_images[0].image_id


@pytest.fixture(scope="package")
def playwright_browser():  # noqa: ANN201 - a playwright Browser
    """Headless Debian Chromium through Playwright; skipped with a reason when either is missing.

    Package scope, not session: Playwright's sync API keeps an asyncio loop running in the main thread while it
    is open, and the tiers collected after ``tests/e2e/`` (``tests/web/``) call ``asyncio.run``."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
    if not CHROMIUM.is_file():
        pytest.skip(f"Chromium not found at {CHROMIUM} (apt-get install chromium, or set $CXRLAB_CHROMIUM)")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="package")
def e2e_site(tmp_path_factory: pytest.TempPathFactory, playwright_browser) -> Iterator[E2ESite]:  # noqa: ANN001
    """The built workspace served by a real ``cxrlab serve`` process."""
    ws, project_id, review_image = _build(tmp_path_factory.mktemp("e2e"))
    try:
        with start_server(ws) as server:
            yield E2ESite(server.url, ws, project_id, review_image)
    finally:
        ws.engine.dispose()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if METRICS:
        ARTIFACTS.mkdir(exist_ok=True)
        (ARTIFACTS / "e2e-metrics.json").write_text(json.dumps(METRICS, indent=2) + "\n")


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:  # noqa: ANN001
    if METRICS:
        terminalreporter.section("viewer figures (browser-measured; written to test-artifacts/e2e-metrics.json)")
        for key, value in METRICS.items():
            terminalreporter.write_line(f"{key}: {json.dumps(value)}")
