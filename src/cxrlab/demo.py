"""The demo: a workspace built from synthetic phantoms and carried through every stage.

Used by ``cxrlab demo`` (what ``make demo`` runs) and by the end-to-end tests. The labeling tool gets demo
users (passwords made fresh at every run and printed by the CLI: demo only) and a project ``demo`` in which
every accepted phantom has 3 readers and a quarter of them form a test split with 2 reviewers. Half of the
images are read by simulated readers through the same task API the browser uses (so reviews are open and the
release has data); the other half wait in the demo readers' queues. A few images wait in each queue of the grid
triage page (``/triage``, user ``verifier1``): the filter's audit sample (10 % in the demo), what
de-identification held for burned-in text (with the ``[ocr]`` extra), and two images a simulated reader set aside.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from pathlib import Path

import numpy as np
from sqlalchemy import select

from cxrlab.annotate.assignment import assign_images
from cxrlab.annotate.marks import Box, Marks
from cxrlab.annotate.projects import create_project, get_project_by_name, project_schema
from cxrlab.annotate.readings import simulated_reads
from cxrlab.annotate.tasks import submit_task
from cxrlab.annotate.users import create_user, get_user, set_password
from cxrlab.catalog.models import Image, Task, TaskKind, TaskState, User
from cxrlab.catalog.workspace import Settings, Workspace, init_workspace
from cxrlab.consensus import run_consensus, suggest_review
from cxrlab.deid import run_deid
from cxrlab.dicom.phantom import generate_phantoms
from cxrlab.errors import NotFoundError
from cxrlab.export import run_export
from cxrlab.filter import run_filter, workspace_model
from cxrlab.ingest import run_ingest
from cxrlab.runtime import Executor
from cxrlab.runtime.report import StageReport

__all__ = ["DEMO_FILTER_EPOCHS", "DEMO_FILTER_PHANTOMS", "DEMO_USERS", "build_demo", "demo_filter_model",
           "demo_set_aside", "demo_users"]

#: The demo's filter model: a ``tiny`` network trained on this many phantoms for this many epochs (about 30 s on
#: two cores; 100 % on held-out phantoms, see the filter guide for what it is worth on real films).
DEMO_FILTER_PHANTOMS = 600
DEMO_FILTER_EPOCHS = 6
#: Share of the demo's outliers whose header looks like a frontal chest's: only the filter model can catch them.
DEMO_MISLABEL_PROB = 0.5
#: The demo's audit sample of the filter's accepted images (the default is 2 %): a few images to verify.
DEMO_AUDIT = 0.1
#: Reason codes of the images a simulated reader sets aside in the demo (they wait in the triage page's queue).
DEMO_SET_ASIDE = ("poor_quality", "lateral")

#: The demo's accounts: user name -> role.
DEMO_USERS = {"admin": "admin", "reader1": "annotator", "reader2": "annotator", "reader3": "annotator",
              "reviewer1": "reviewer", "reviewer2": "reviewer", "verifier1": "verifier"}


def demo_users(ws: Workspace) -> dict[str, str]:
    """Create the demo users (or give them new passwords); return user name -> password."""
    passwords = {}
    with ws.sessions() as session:
        for name, role in DEMO_USERS.items():
            password = secrets.token_urlsafe(9)
            try:
                get_user(session, name)
                set_password(session, username=name, password=password)
            except NotFoundError:
                create_user(session, username=name, password=password, role=role)
            passwords[name] = password
    return passwords


def demo_project(ws: Workspace, *, seed: int = 0) -> StageReport:
    """Project ``demo``: assign every accepted image (3 readers; a quarter in test with 2 reviewers), then let
    simulated readers submit half of the images through the task service."""
    report = StageReport("labeling demo")
    with ws.sessions() as session:
        try:
            project = get_project_by_name(session, "demo")
        except NotFoundError:
            project = create_project(session, name="demo", schema=ws.settings.schema, seed=seed)
        report.counts.update(assign_images(session, project=project, test_fraction=0.25).counts)
        schema = project_schema(project)
        rng = np.random.default_rng(seed)
        images = session.scalars(
            select(Image).where(Image.id.in_(select(Task.image_pk).where(Task.project_id == project.id)))
            .order_by(Image.image_id)
        ).all()
        # Every other image of each split, so the test split always has reads (image ids are keyed by the
        # workspace's random secret: an order over all images could leave every test image unread).
        to_read = [img for split in ("train", "test") for img in [i for i in images if i.split == split][::2]]
        for img in to_read:
            tasks = session.execute(
                select(Task.id, User).join(User, User.id == Task.user_id)
                .where(Task.project_id == project.id, Task.image_pk == img.id, Task.kind == TaskKind.READ,
                       Task.state == TaskState.PENDING).order_by(User.rad_id)
            ).all()
            reads = simulated_reads(rng, schema, readers=len(tasks), rows=img.rows or 1024, cols=img.columns or 1024)
            for (task_id, user), (labels, boxes) in zip(tasks, reads, strict=True):
                marks = Marks(labels, [Box(b.class_name, b.x_min, b.y_min, b.x_max, b.y_max) for b in boxes])
                submit_task(session, user=user, task_id=task_id, version=0, marks=marks, suggest=suggest_review)
                report.counts["simulated_reads"] += 1
    return report


def demo_set_aside(ws: Workspace) -> StageReport:
    """reader1 sets aside one unread image per :data:`DEMO_SET_ASIDE` code (once: a rerun adds none), so the
    triage page's "set aside by readers" queue has images; then the counts of every triage queue."""
    from cxrlab.annotate.tasks import set_unusable
    from cxrlab.filter.triage import queue_counts

    report = StageReport("triage demo")
    with ws.sessions() as session:
        reader = get_user(session, "reader1")
        done = session.scalar(select(Task.id).where(Task.user_id == reader.id, Task.state == TaskState.UNUSABLE))
        if done is None:
            pending = session.scalars(
                select(Task).where(Task.user_id == reader.id, Task.kind == TaskKind.READ, Task.gold.is_(False),
                                   Task.state == TaskState.PENDING).order_by(Task.id).limit(len(DEMO_SET_ASIDE))
            ).all()
            for task, code in zip(pending, DEMO_SET_ASIDE, strict=False):
                set_unusable(session, user=reader, task_id=task.id, version=task.version, reason=code)
                report.counts["set_aside"] += 1
        for queue, n in queue_counts(session).items():
            report.counts[f"waiting_{queue}"] = n
    return report


def demo_filter_model(
    ws: Workspace,
    *,
    seed: int = 0,
    executor: Executor | None = None,
    on_stage: Callable[[str], Callable[[int, int], None] | None] | None = None,
) -> Path | None:
    """The workspace's filter model (``models/filter.onnx``), trained on phantoms first when it is missing.

    Returns None, and the demo filters with header rules only, when the ``[ml]`` extra (torch, onnx,
    onnxruntime) is not installed.
    """
    from cxrlab.filter.train import is_available as can_train

    existing = workspace_model(ws)
    if existing is not None or not can_train():
        return existing
    from cxrlab.filter.train import train_on_phantoms

    progress = on_stage or (lambda _name: None)
    path = ws.path("models", "filter.onnx")
    train_on_phantoms(path, DEMO_FILTER_PHANTOMS, seed=seed, epochs=DEMO_FILTER_EPOCHS, width="tiny",
                      executor=executor, on_progress=lambda step: progress(f"filter model: {step}"))
    return path


def build_demo(
    root: Path,
    *,
    n: int = 60,
    seed: int = 0,
    size_range: tuple[int, int] = (1024, 1536),
    executor: Executor | None = None,
    on_stage: Callable[[str], Callable[[int, int], None] | None] | None = None,
) -> tuple[Workspace, list[StageReport]]:
    """Generate *n* phantoms under ``root/incoming`` and run ingest -> deid -> filter (header rules, then the filter
    model of :func:`demo_filter_model` when the ``[ml]`` extra is installed) -> labeling project
    ``demo`` (3 readers per image; a quarter of the images in the test split, with 2 reviewers; half the images
    read by simulated readers through the task service) -> majority vote + box fusion -> export ``demo``
    (train/ and test/ images, the four CSVs, Table 2, COCO, manifest). The split is the one the assignment
    chose (test images need their reviewers from the start). Rerunning continues where the last run stopped.

    ``on_stage(name)`` may return a progress callback for that stage. The demo users' passwords are set anew
    by :func:`demo_users` (the CLI calls it and prints them).
    """
    root = Path(root)
    executor = executor or Executor()
    progress = on_stage or (lambda _name: None)
    incoming = root / "incoming"
    if not (incoming / "truth.json").exists():
        generate_phantoms(incoming, n, seed=seed, size_range=size_range, mislabel_prob=DEMO_MISLABEL_PROB,
                          on_progress=progress("phantoms"))
    ws = init_workspace(root, settings=Settings(project="cxrlab demo", schema="vindr-cxr"))
    reports = [
        run_ingest(ws, incoming, executor=executor, on_progress=progress("ingest")),
        run_deid(ws, executor=executor, on_progress=progress("deid")),
    ]
    model = demo_filter_model(ws, seed=seed, executor=executor, on_stage=on_stage)
    reports.append(run_filter(ws, model=model, audit_fraction=DEMO_AUDIT, executor=executor,
                              on_progress=progress("filter")))
    demo_users(ws)  # the readers must exist before assignment; the CLI sets and prints fresh passwords
    reports += [
        demo_project(ws, seed=seed),
        demo_set_aside(ws),
        run_consensus(ws),
        run_export(ws, "demo", formats=("coco",), overwrite=True, executor=executor),
    ]
    return ws, reports
