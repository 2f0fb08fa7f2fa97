"""A workspace with images in each triage queue (filter verification, burned-in text, set aside by readers), for
the triage tests, the demo-like e2e flow and ``bench/filter.py --triage``.

Phantoms go through the real ingest and de-identification; their raw headers carry planted PHI (a name, an id,
dates and an accession number that nothing else contains) so a test can grep every page and response for it.
Images "held for text" get a bright block burned into their raw pixels where their candidate box says, their
de-identified output removed and a ``review/<image_id>.json`` as de-identification writes it (the OCR extra is
not needed). The set-aside images are set aside by a reader through the labeling service.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pydicom
from pydicom.uid import JPEGLSLossless
from sqlalchemy import select

__all__ = ["PLANTED", "TEXT_BOX", "TriageWorkspace", "build_triage_workspace"]

#: Header values planted in every raw file (``{i}`` is the file's index); none may reach a triage page.
PLANTED = {"PatientName": "Plantedname^Zyxtriage{i}", "PatientID": "PHIPLANT{i:04d}",
           "AccessionNumber": "ACCPLANT{i:04d}", "StudyDate": "19731107", "PatientBirthDate": "19450317",
           "InstitutionName": "Planted General Hospital"}
#: The candidate box (x0, y0, x1, y1) of every image held for text: a bright block is burned in there.
TEXT_BOX = (20, 24, 120, 56)


@dataclass
class TriageWorkspace:
    """The workspace and the catalog ids in each queue."""

    workspace: object
    filter: list[int] = field(default_factory=list)
    text: list[int] = field(default_factory=list)
    unusable: list[int] = field(default_factory=list)
    #: Text image whose raw file is JPEG-LS compressed (its redaction is re-encoded).
    compressed_text: int | None = None
    #: Every planted header value and every raw UID (none may appear on a triage page).
    secrets: list[str] = field(default_factory=list)


def _plant(path: Path, i: int, *, burn: bool, compress: bool) -> list[str]:
    ds = pydicom.dcmread(path)
    values = []
    for keyword, value in PLANTED.items():
        text = value.format(i=i)
        setattr(ds, keyword, text)
        values.append(text)
    values += [str(ds.SOPInstanceUID), str(ds.StudyInstanceUID)]
    if burn:
        arr = ds.pixel_array.copy()
        x0, y0, x1, y1 = TEXT_BOX
        arr[y0:y1, x0:x1] = arr.max()
        arr[y0 + 8:y1 - 8:4, x0 + 6:x1 - 6] = 0  # "strokes"
        if compress:
            ds.compress(JPEGLSLossless, arr, generate_instance_uid=False)
        else:
            ds.PixelData = arr.tobytes()
    ds.save_as(path, enforce_file_format=True)
    return values


def build_triage_workspace(root: Path, *, n_filter: int = 6, n_text: int = 3, n_unusable: int = 2,
                           size: tuple[int, int] = (400, 520), seed: int = 11,
                           users: dict[str, str] | None = None) -> TriageWorkspace:
    """Build the workspace under *root* (``incoming/`` and ``ws/``); users from :mod:`tests.support.users` plus
    ``verifier1`` (role verifier), all with its password."""
    from cxrlab.annotate.assignment import assign_images
    from cxrlab.annotate.projects import create_project
    from cxrlab.annotate.tasks import set_unusable
    from cxrlab.catalog import Settings, init_workspace
    from cxrlab.catalog.models import Image, ImageState, Task, TaskKind, User
    from cxrlab.deid import run_deid
    from cxrlab.dicom.phantom import generate_phantoms
    from cxrlab.ingest import run_ingest
    from cxrlab.runtime import Executor
    from tests.support.users import READERS, REVIEWERS, USERS, create_users

    n = n_filter + n_text + n_unusable + 2
    incoming = root / "incoming"
    generate_phantoms(incoming, n, seed=seed, size_range=size, text_prob=0.0, outlier_prob=0.0)
    files = sorted(incoming.rglob("*.dcm"))
    out = TriageWorkspace(workspace=None)
    text_files = set(files[n_filter:n_filter + n_text])
    for i, path in enumerate(files):
        out.secrets += _plant(path, i, burn=path in text_files, compress=path == files[n_filter])
    ws = init_workspace(root / "ws", settings=Settings(project="triage", schema="vindr-cxr"))
    out.workspace = ws
    executor = Executor(1)
    run_ingest(ws, incoming, executor=executor)
    run_deid(ws, executor=executor, text=False)
    with ws.sessions() as session:
        create_users(session, {**(users or USERS), "verifier1": "verifier"})
        with session.begin():
            images = list(session.scalars(select(Image).order_by(Image.id)))
            order = {p.name: k for k, p in enumerate(files)}
            images.sort(key=lambda img: order.get(Path(img.raw_path).name, 10**6))
            for k, img in enumerate(images):
                if k < n_filter:
                    img.state, img.state_reason = ImageState.NEEDS_VERIFICATION, "uncertain" if k % 3 else "audit"
                    out.filter.append(img.id)
                elif k < n_filter + n_text:
                    ws.path("images", f"{img.image_id}.dicom").unlink()
                    img.state, img.state_reason = ImageState.FLAGGED_TEXT, "doubtful burned-in text"
                    img.deid_path, img.deid_file_size = None, None
                    ws.path("review").mkdir(exist_ok=True)
                    ws.path("review", f"{img.image_id}.json").write_text(json.dumps({
                        "image_id": img.image_id, "decision": "review", "reason": "doubtful burned-in text",
                        "candidates": [{"box": list(TEXT_BOX), "status": "doubtful"}]}))
                    out.text.append(img.id)
                    if k == n_filter:
                        out.compressed_text = img.id
                else:
                    img.state = ImageState.ACCEPTED
        aside = [img.image_id for img in images[n_filter + n_text:n_filter + n_text + n_unusable]]
        if aside:
            project = create_project(session, name="triage", schema="vindr-cxr", seed=0)
            assign_images(session, project=project, readers=READERS, reviewers=REVIEWERS, image_ids=aside)
            reader = session.scalar(select(User).where(User.username == READERS[0]))
            for image_id in aside:
                task = session.scalar(select(Task).join(Image, Image.id == Task.image_pk).where(
                    Task.project_id == project.id, Task.user_id == reader.id, Task.kind == TaskKind.READ,
                    Image.image_id == image_id))
                set_unusable(session, user=reader, task_id=task.id, version=task.version, reason="lateral")
                out.unusable.append(task.image_pk)
    return out
