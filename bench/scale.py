"""Benchmark scaling out: the process pool next to a Dask cluster, the single writer's and the scheduler's limits,
and the wall time of ingest + de-identify for 1,000,000 images projected from these figures.

One run, four parts:

1. Throughput. The same phantoms (``cxrlab phantom``: ``--small`` files of 256-320 px, ``--large`` files of
   2200-2600 px, about 10-13 MB) go through ``run_ingest`` + ``run_deid`` (no burned-in text scan) into a fresh
   SQLite workspace, once with ``Executor(--workers)`` and once with ``DaskExecutor`` on a local ``dask
   scheduler`` with ``--workers`` single-thread ``dask worker`` processes (:mod:`tests.support.dask_cluster`).
   Printed: files/s per stage and the Dask/pool ratio. The per-item overhead of each executor is measured apart,
   as the time per item of a map of a function that does nothing (``noop``), with the stages' chunk sizes.
2. The single writer: catalog rows recorded per second for ingest results (``record_results``) and deid results
   (``deid.stage.record_batch``: state, mapping rows, event), synthetic results and no files, 64 per transaction, on
   SQLite and on a throwaway PostgreSQL cluster (:mod:`tests.support.pg`; skipped when the server binaries are
   missing).
3. The scheduler: tasks per second of a no-op map on the cluster with chunks of :data:`MIN_CHUNK` items and of 1.
4. The plan: wall time of ingest + de-identify of ``--images`` (1,000,000) images of ``--image-mb`` (10) MB on N = 1,
   4, 16, 64 workers, with shared storage of ``--storage-gbps`` Gbit/s (10) for the whole cluster, from the
   figures above: per stage the slowest of compute (large-file seconds per file per worker, the faster of the two
   executors, / N), storage (bytes
   moved / bandwidth: ingest reads and writes the file, deid reads and writes it), the writer, and the
   scheduler; the bound is named.

Usage: ``python bench/scale.py [--small N] [--large N] [--workers N] [--workdir DIR] [--keep] [--no-pg]``
(default 5,000 small and 200 large; on a busy machine use fewer and say so).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

try:
    import cxrlab  # noqa: F401
except ModuleNotFoundError:  # a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/support: the cluster and PostgreSQL helpers

from tests.support.dask_cluster import start_dask_cluster  # noqa: E402

from cxrlab.catalog import Settings, init_workspace  # noqa: E402
from cxrlab.catalog.models import Image, ImageState  # noqa: E402
from cxrlab.deid import run_deid  # noqa: E402
from cxrlab.deid.engine import DeidResult  # noqa: E402
from cxrlab.deid.profiles import get_profile  # noqa: E402
from cxrlab.deid.stage import BATCH as DEID_BATCH  # noqa: E402
from cxrlab.deid.stage import record_batch as record_deid  # noqa: E402
from cxrlab.dicom.phantom import generate_phantoms  # noqa: E402
from cxrlab.ingest import run_ingest  # noqa: E402
from cxrlab.ingest.folder import BATCH as INGEST_BATCH  # noqa: E402
from cxrlab.ingest.folder import IngestResult, record_results  # noqa: E402
from cxrlab.runtime import DaskExecutor, Executor  # noqa: E402
from cxrlab.runtime.cluster import MIN_CHUNK  # noqa: E402
from cxrlab.runtime.report import StageReport  # noqa: E402

KEY = bytes(range(32))
PLAN_WORKERS = (1, 4, 16, 64)


def noop(item: int) -> int:
    """The per-item work of the overhead measurement: none."""
    return item


# --------------------------------------------------------------------------------------------------- part 1


@dataclass
class StageTimes:
    ingest: float
    deid: float


def run_stages(src: Path, root: Path, executor: Executor | DaskExecutor) -> StageTimes:
    """Ingest + de-identify *src* into a fresh workspace at *root*; seconds per stage."""
    ws = init_workspace(root)
    (ws.root / "secret.key").write_text(KEY.hex() + "\n")
    t0 = time.perf_counter()
    ing = run_ingest(ws, src, executor=executor)
    t1 = time.perf_counter()
    dei = run_deid(ws, executor=executor, text=False)
    t2 = time.perf_counter()
    if ing.problems or dei.problems:
        raise RuntimeError(f"problems: {ing.problems[:2]} {dei.problems[:2]}")
    ws.engine.dispose()
    return StageTimes(t1 - t0, t2 - t1)


def overhead_ms(executor: Executor | DaskExecutor, n: int, chunksize: int) -> float:
    """Milliseconds per item of a map of :func:`noop` over *n* items."""
    t0 = time.perf_counter()
    for _ in executor.map(noop, range(n), chunksize=chunksize):
        pass
    return (time.perf_counter() - t0) / n * 1000


# --------------------------------------------------------------------------------------------------- part 2


def writer_rates(url: str, root: Path, n: int) -> tuple[float, float]:
    """Ingest and deid result rows recorded per second by the single writer into the catalog at *url*."""
    shutil.rmtree(root, ignore_errors=True)
    ws = init_workspace(root, settings=Settings(database_url=url) if url else None)
    report = StageReport("ingest")
    seen: set[str] = set()
    results = [
        IngestResult(f"/in/{i}.dcm", "ok", sha256=f"{i:064x}", size=10_000_000,
                     meta={"sop_instance_uid": f"1.2.3.{i}", "rows": 2500, "columns": 2500, "modality": "CR",
                           "sex": "M", "age_years": 45.0, "body_part": "CHEST", "view_position": "PA"})
        for i in range(n)
    ]
    t0 = time.perf_counter()
    for k in range(0, n, INGEST_BATCH):
        with ws.transaction() as session:
            record_results(ws, session, results[k:k + INGEST_BATCH], report, seen, origin="folder /in")
    ingest_rate = n / (time.perf_counter() - t0)
    with ws.sessions() as session:
        pks = [pk for (pk,) in session.execute(Image.__table__.select().with_only_columns(Image.id)
                                               .where(Image.state == ImageState.INGESTED).order_by(Image.id))]
    profile = get_profile("vindr")
    report = StageReport("deid")
    t0 = time.perf_counter()
    for k in range(0, len(pks), DEID_BATCH):
        with ws.transaction() as session:
            batch = [(pk, Path(f"raw/{pk}.dcm"),
                      DeidResult(dataset=None, image_id=f"{pk:032x}", sop_instance_uid=f"2.25.{pk}",
                                 uid_map={f"1.2.3.{pk}.s": f"2.25.{pk}1", f"1.2.3.{pk}.e": f"2.25.{pk}2"},
                                 text_decision=None, original_sop=f"1.2.3.{pk}"), 10_000_000)
                     for pk in pks[k:k + DEID_BATCH]]
            record_deid(session, batch, profile, report)
    deid_rate = len(pks) / (time.perf_counter() - t0)
    ws.engine.dispose()
    return ingest_rate, deid_rate


# --------------------------------------------------------------------------------------------------- part 3


def task_rate(executor: DaskExecutor, n_tasks: int, chunk: int) -> float:
    """Tasks per second of a no-op :meth:`DaskExecutor.map` with *chunk* items per task (in order, bounded)."""
    executor.min_chunk = chunk
    t0 = time.perf_counter()
    for _ in executor.map(noop, range(n_tasks * chunk), chunksize=chunk):
        pass
    return n_tasks / (time.perf_counter() - t0)


def raw_task_rate(executor: DaskExecutor, n_tasks: int) -> float:
    """Tasks per second of the scheduler alone: every no-op task submitted at once (``Client.map``), one gather."""
    client = executor.connect()
    t0 = time.perf_counter()
    client.gather(client.map(noop, range(n_tasks), pure=False))
    return n_tasks / (time.perf_counter() - t0)


# --------------------------------------------------------------------------------------------------- part 4


def plan(per_file: StageTimes, writer: dict[str, tuple[float, float]], tasks_per_s: float, *, images: int,
         image_mb: float, gbps: float, chunk: int) -> list[tuple[int, float, str, float, str]]:
    """Rows ``(N, ingest hours, its bound, deid hours, its bound)``; *per_file* are CPU seconds per large file
    per worker, *writer* the slowest backend's rates."""
    bandwidth = gbps * 1e9 / 8  # bytes/s for the whole cluster
    ingest_rate = min(r[0] for r in writer.values())
    deid_rate = min(r[1] for r in writer.values())
    rows = []
    for n in PLAN_WORKERS:
        out = [n]
        for cpu, writer_rate in ((per_file.ingest, ingest_rate), (per_file.deid, deid_rate)):
            bounds = {
                "compute": images * cpu / n,
                "storage": images * 2 * image_mb * 1e6 / bandwidth,  # read the file, write it
                "writer": images / writer_rate,
                "scheduler": images / chunk / tasks_per_s,
            }
            bound = max(bounds, key=bounds.__getitem__)
            out += [bounds[bound] / 3600, bound]
        rows.append(tuple(out))
    return rows


# --------------------------------------------------------------------------------------------------- main


def timed(label: str, fn: Callable[[], object]) -> object:
    t0 = time.perf_counter()
    value = fn()
    print(f"  ({label}: {time.perf_counter() - t0:.1f} s)", file=sys.stderr, flush=True)
    return value


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--small", type=int, default=5000, help="small phantoms (256-320 px)")
    ap.add_argument("--large", type=int, default=200, help="large phantoms (2200-2600 px, ~10-13 MB)")
    ap.add_argument("--workers", type=int, default=2, help="pool processes and Dask workers")
    ap.add_argument("--rows", type=int, default=5000, help="synthetic results per writer measurement")
    ap.add_argument("--tasks", type=int, default=2000, help="tasks per scheduler measurement")
    ap.add_argument("--images", type=int, default=1_000_000)
    ap.add_argument("--image-mb", type=float, default=10.0)
    ap.add_argument("--storage-gbps", type=float, default=10.0, help="shared storage bandwidth, Gbit/s")
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--no-pg", action="store_true", help="skip PostgreSQL")
    args = ap.parse_args()

    work = args.workdir or Path(tempfile.mkdtemp(prefix="cxrlab-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    sets = {"small": (args.small, (256, 320)), "large": (args.large, (2200, 2600))}
    try:
        for name, (n, size) in sets.items():
            src = work / f"in-{name}-{n}"
            if n and not (src / "truth.json").exists():
                timed(f"{n} {name} phantoms", lambda src=src, n=n, size=size: generate_phantoms(
                    src, n, seed=5, size_range=size, text_prob=0.0, outlier_prob=0.0))
        results: dict[tuple[str, str], StageTimes] = {}
        overhead: dict[str, tuple[float, float]] = {}
        tasks: dict[int, float] = {}
        with start_dask_cluster(workers=args.workers) as cluster, DaskExecutor(cluster.address) as dask_ex:
            pool = Executor(args.workers)
            for name, (n, _size) in sets.items():
                if not n:
                    continue
                for label, ex in (("pool", pool), ("dask", dask_ex)):
                    out = work / f"ws-{name}-{label}"
                    shutil.rmtree(out, ignore_errors=True)
                    src = work / f"in-{name}-{n}"
                    results[name, label] = timed(f"{name} {label}",
                                                 lambda src=src, out=out, ex=ex: run_stages(src, out, ex))
                    shutil.rmtree(out, ignore_errors=True)
            for label, ex in (("pool", pool), ("dask", dask_ex)):
                overhead[label] = (overhead_ms(ex, 4000, 1), overhead_ms(ex, 4000, MIN_CHUNK))
            for chunk in (1, MIN_CHUNK):
                tasks[chunk] = task_rate(dask_ex, args.tasks, chunk)
            tasks[0] = raw_task_rate(dask_ex, args.tasks)
            dask_ex.min_chunk = MIN_CHUNK
        writer: dict[str, tuple[float, float]] = {}
        writer["SQLite"] = timed("writer sqlite", lambda: writer_rates("", work / "ws-writer-sqlite", args.rows))
        if not args.no_pg:
            from tests.support.pg import cluster_problem, throwaway_cluster

            problem = cluster_problem()
            if problem:
                print(f"PostgreSQL skipped: {problem}")
            else:
                with throwaway_cluster() as url:
                    pg_root = work / "ws-writer-pg"
                    writer["PostgreSQL"] = timed("writer pg", lambda: writer_rates(url, pg_root, args.rows))
    finally:
        if not args.keep and args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)

    print(f"\n## 1. Throughput, {args.workers} workers (files/s; ingest, deid)\n")
    print("| set | files | pool ingest | Dask ingest | pool deid | Dask deid | Dask / pool (ingest+deid) |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, (n, _size) in sets.items():
        if not n:
            continue
        p, d = results[name, "pool"], results[name, "dask"]
        ratio = (p.ingest + p.deid) / (d.ingest + d.deid)
        print(f"| {name} | {n} | {n / p.ingest:.1f} | {n / d.ingest:.1f} | {n / p.deid:.1f} | {n / d.deid:.1f} | "
              f"{ratio:.2f} |")
    print("\nPer-item overhead of the executor (no-op map, ms per item): "
          + "; ".join(f"{k} {v[0]:.3f} (chunk 1), {v[1]:.3f} (chunk {MIN_CHUNK})" for k, v in overhead.items()))
    print(f"\n## 2. Single writer (rows/s, {args.rows} synthetic results, {INGEST_BATCH} per transaction)\n")
    print("| catalog | ingest results/s | deid results/s |")
    print("|---|---:|---:|")
    for k, (a, b) in writer.items():
        print(f"| {k} | {a:.0f} | {b:.0f} |")
    print(f"\n## 3. Scheduler: DaskExecutor.map {tasks[MIN_CHUNK]:.0f} tasks/s with chunks of {MIN_CHUNK} "
          f"({tasks[MIN_CHUNK] * MIN_CHUNK:.0f} items/s), {tasks[1]:.0f} tasks/s with chunks of 1; the scheduler "
          f"alone (Client.map, all at once) {tasks[0]:.0f} tasks/s")
    if "large" in {k[0] for k in results}:
        # The same work on both executors: on a shared machine the faster run is the nearer to the CPU cost.
        p, d = results["large", "pool"], results["large", "dask"]
        n = args.large
        per_file = StageTimes(min(p.ingest, d.ingest) * args.workers / n, min(p.deid, d.deid) * args.workers / n)
        print(f"\n## 4. Plan: {args.images:,} images of {args.image_mb:g} MB, shared storage "
              f"{args.storage_gbps:g} Gbit/s\n")
        print(f"CPU per large file per worker (measured, the faster executor): ingest {per_file.ingest * 1000:.0f} ms, "
              f"deid {per_file.deid * 1000:.0f} ms\n")
        wi, wd = min(r[0] for r in writer.values()), min(r[1] for r in writer.values())
        print(f"Design limits (the slowest catalog): writer {wi:.0f} ingest and {wd:.0f} deid results/s, scheduler "
              f"{tasks[MIN_CHUNK] * MIN_CHUNK:.0f} items/s; compute on 64 workers {64 / per_file.ingest:.0f} "
              f"ingest and {64 / per_file.deid:.0f} deid files/s\n")
        print("| workers | ingest (h) | bound | deid (h) | bound | total (h) |")
        print("|---:|---:|---|---:|---|---:|")
        for n_w, ih, ib, dh, db in plan(per_file, writer, tasks[MIN_CHUNK], images=args.images,
                                         image_mb=args.image_mb, gbps=args.storage_gbps, chunk=MIN_CHUNK):
            print(f"| {n_w} | {ih:.1f} | {ib} | {dh:.1f} | {db} | {ih + dh:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
