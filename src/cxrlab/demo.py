"""The demo: a workspace built from synthetic phantoms and carried through every stage.

Used by ``cxrlab demo`` (what ``make demo`` runs) and by the end-to-end tests.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import func, select

from cxrlab.annotate.services.readings import simulate_readers
from cxrlab.catalog.models import Image, ImageState
from cxrlab.catalog.workspace import Settings, Workspace, init_workspace
from cxrlab.consensus import run_consensus
from cxrlab.deid import run_deid
from cxrlab.dicom.phantom import generate_phantoms
from cxrlab.export import export_release
from cxrlab.filter import run_filter
from cxrlab.ingest import ingest_folder
from cxrlab.runtime import Executor
from cxrlab.runtime.report import StageReport
from cxrlab.split import run_split

__all__ = ["build_demo"]


def build_demo(
    root: Path,
    *,
    n: int = 60,
    seed: int = 0,
    size_range: tuple[int, int] = (1024, 1536),
    executor: Executor | None = None,
    on_stage: Callable[[str], Callable[[int, int], None] | None] | None = None,
) -> tuple[Workspace, list[StageReport]]:
    """Generate *n* phantoms under ``root/incoming`` and run ingest -> deid -> filter -> 3 simulated readers
    -> majority vote + box fusion -> 80/20 stratified split -> export ``demo`` (train/ and test/ images, the four
    CSVs, Table 2, COCO, manifest). Rerunning continues where the last run stopped.

    ``on_stage(name)`` may return a progress callback for that stage.
    """
    root = Path(root)
    executor = executor or Executor()
    progress = on_stage or (lambda _name: None)
    incoming = root / "incoming"
    if not (incoming / "truth.json").exists():
        generate_phantoms(incoming, n, seed=seed, size_range=size_range, on_progress=progress("phantoms"))
    ws = init_workspace(root, settings=Settings(project="cxrlab demo", schema="vindr-cxr"))
    reports = [
        ingest_folder(ws, incoming, executor=executor, on_progress=progress("ingest")),
        run_deid(ws, executor=executor, on_progress=progress("deid")),
        run_filter(ws, on_progress=progress("filter")),
        simulate_readers(ws, readers=3, seed=seed),
        run_consensus(ws),
    ]
    with ws.sessions() as session:
        to_split = session.scalar(select(func.count(Image.id)).where(Image.state == ImageState.LABELED))
    if to_split and to_split >= 2:
        method = "stratified" if importlib.util.find_spec("iterstrat") else "random"  # [release] extra
        reports.append(run_split(ws, test_size=0.2, seed=seed, method=method, resplit=True))
    reports.append(export_release(ws, "demo", formats=("coco",), overwrite=True, executor=executor))
    return ws, reports
