"""Load test of the labeling server: N simulated annotators against a real ``cxrlab serve`` (uvicorn).

Each annotator logs in (bearer token) and loops: ``GET /api/tasks/next`` (the next 3 tasks: show one, prefetch
the rest) -> ``GET /api/tasks/{id}`` -> ``GET /api/images/{id}/render`` (JPEG, first paint) -> ``PUT
/api/tasks/{id}/draft`` (autosave) -> ``POST /api/tasks/{id}/submit``, until the fixed request budget is spent.
A completed loop is one labeled image; loops/s is compared with Label Studio CE's 1.5 loops/s (the anchor of
issue 10, measured with the same loop on the same 2-core machine). The script prints p50/p99/max latency per call
type, the error count (any status other than 200), the throughput, and a summary table of every run, for SQLite
and/or a throwaway PostgreSQL cluster (``tests/support/pg.py``; needs the Debian ``postgresql`` package).

The workspace holds ``--images`` catalog images, 3 readers each, whose files cycle over ``--files`` phantoms of
``--size``² pixels (12-bit, uncompressed). Every reader has its own seeded queue, so 50 readers share each
image with two others, like the seeds' training set. Each run gets a fresh workspace and server.

``--think 0 10`` (the default) runs twice and prints both side by side. With think time 0 every reader fires
its next request the moment the last one returns: a stress test where 50 requests are always in flight. With
``S`` > 0 each reader looks at each image for 0.5-1.5 x S seconds before saving (readers start at random times
within the first S seconds), closer to a radiologist's pace (about a minute per image).

The server's CPU time per request is printed too (and the database server's, for PostgreSQL): unlike the
latencies it does not depend on what else runs on the machine. So is the bench client's own CPU time: client,
server and database share the machine's cores. The client is aiohttp (its C HTTP parser needs a few times less
CPU per request than httpx, leaving the cores to the server); the request pattern is the same.

Usage: ``python bench/server_load.py [--backend sqlite|postgresql|both] [--annotators 50] [--requests 4000]
[--think 0 10] [--workers 1]``
The machine may be shared with other work: say so when reporting the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import os
import random
import signal
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from pydicom.uid import generate_uid

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests/support/pg.py: the throwaway PostgreSQL cluster

from tests.support.server import start_server  # noqa: E402
from tests.support.users import PASSWORD  # noqa: E402

from cxrlab.annotate.assignment import assign_images  # noqa: E402
from cxrlab.annotate.projects import create_project  # noqa: E402
from cxrlab.annotate.users import create_user  # noqa: E402
from cxrlab.catalog import Settings, init_workspace  # noqa: E402
from cxrlab.catalog.models import Image, ImageState  # noqa: E402
from cxrlab.dicom.phantom import generate_phantoms  # noqa: E402

CALLS = ("next", "task", "render", "save", "submit")
#: The anchor of issue 10: Label Studio CE's task loops per second with 50 annotators and no think time.
LABEL_STUDIO_LOOPS = 1.5
LABEL_STUDIO_NOTE = "Label Studio CE 1.5 loops/s, measured on this machine by the issue"


def build_workspace(
    root: Path, *, database_url: str, annotators: int, images: int, files: int, size: int,
    phantoms: Path | None = None,
) -> Path:
    """A workspace with *images* accepted images (files cycling over *files* phantoms, made in *phantoms*, by
    default inside the workspace, unless there already), users and a project."""
    ws = init_workspace(root, settings=Settings(project="load test", database_url=database_url))
    phantoms = phantoms or root / "phantoms"
    if not phantoms.exists():
        generate_phantoms(phantoms, files, seed=1, size_range=(size, size), text_prob=0.0, outlier_prob=0.0)
    paths = sorted(str(p) for p in phantoms.rglob("*.dcm"))
    with ws.transaction() as session:
        for i in range(images):
            image_id = hashlib.sha256(f"bench-{i}".encode()).hexdigest()[:32]
            session.add(Image(sop_instance_uid=generate_uid(), image_id=image_id, raw_sha256=image_id * 2,
                              raw_path="raw/bench", deid_path=paths[i % len(paths)], state=ImageState.ACCEPTED,
                              rows=size, columns=size, split="train"))
    with ws.sessions() as session:
        for k in range(annotators):
            create_user(session, username=f"reader{k:02d}", password=PASSWORD, role="annotator")
        project = create_project(session, name="load", schema="vindr-cxr", readers_per_image=3)
        assign_images(session, project=project)
    ws.engine.dispose()
    return ws.root


def _process_table() -> list[tuple[int, int, int, str, float, float]]:
    """``(pid, ppid, process group, command line, CPU seconds so far, CPU seconds of its exited children)`` of
    every live process (Linux ``/proc``)."""
    tick = os.sysconf("SC_CLK_TCK")
    rows = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        # fields after the command: state ppid pgrp ... utime(12) stime(13) cutime(14) cstime(15)
        cpu, children = (int(fields[11]) + int(fields[12])) / tick, (int(fields[13]) + int(fields[14])) / tick
        rows.append((int(stat.parent.name), int(fields[1]), int(fields[2]), cmdline, cpu, children))
    return rows


def group_cpu_seconds(pgid: int) -> float:
    """CPU time (user + system) used so far by every live process of process group *pgid*.

    The server's CPU time per request does not depend on what else runs on a shared machine, unlike latency.
    """
    return sum(cpu for _, _, pgrp, _, cpu, _ in _process_table() if pgrp == pgid)


def postgres_cpu_seconds(database_url: str) -> float:
    """CPU time used so far by the PostgreSQL server listening on the port of *database_url*: its postmaster
    (started with ``-p PORT``), the postmaster's live children (one backend per connection, and the helpers) and
    its exited ones (a connection the pool closed)."""
    port = database_url.rsplit(":", 1)[1].split("/")[0]
    table = _process_table()
    masters = {pid for pid, _, _, cmd, _, _ in table if "postgres" in cmd and f" -p {port} " in f" {cmd} "}
    return sum(cpu + (exited if pid in masters else 0.0)
               for pid, ppid, _, _, cpu, exited in table if pid in masters or ppid in masters)


@contextlib.contextmanager
def server(root: Path, *, workers: int = 1):  # noqa: ANN201
    """``cxrlab serve`` on a free port (:func:`tests.support.server.start_server`); yields ``(base URL, process
    group id)``."""
    with start_server(root, "--workers", str(workers)) as running:
        yield running.url, running.proc.pid


async def login(client: aiohttp.ClientSession, name: str) -> dict[str, str]:
    """Bearer headers for *name* (logins happen before the measured phase)."""
    async with client.post("/api/auth/token", json={"username": name, "password": PASSWORD}) as r:
        r.raise_for_status()
        return {"Authorization": f"Bearer {(await r.json())['access_token']}"}


@dataclass
class Run:
    """What one run measured."""

    backend: str
    think: float
    lat: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    elapsed: float = 0.0
    server_cpu: float = 0.0
    db_cpu: float | None = None
    client_cpu: float = 0.0

    @property
    def requests(self) -> int:
        return sum(len(v) for v in self.lat.values())

    @property
    def loops(self) -> int:
        """Completed loops: answered submits (a loop ends with its submit)."""
        return len(self.lat.get("submit", [])) - len(self.errors.get("submit", []))

    def pct(self, kind: str, q: float) -> float:
        values = sorted(self.lat.get(kind, []))
        if not values:
            return float("nan")
        if q == 0.5:
            return 1000 * statistics.median(values)
        return 1000 * values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


async def annotator(
    client: aiohttp.ClientSession,
    headers: dict[str, str],
    budget: list[int],
    run: Run,
    rng: random.Random,
) -> None:
    """One simulated reader: next -> task -> render -> save -> submit until the budget is spent, looking at each
    image for 0.5-1.5 x ``run.think`` seconds before the save; readers start at random times within the first
    ``run.think`` seconds, as people do (a common start would make every reader ask for the same thing at the
    same instant)."""
    think = run.think
    if think:
        await asyncio.sleep(rng.uniform(0, think))

    async def call(kind: str, method: str, url: str, **kw) -> bytes | None:
        if budget[0] <= 0:
            return None
        budget[0] -= 1
        t0 = time.perf_counter()
        try:
            async with client.request(method, url, headers=headers, **kw) as resp:
                body = await resp.read()
                status = resp.status
        except (TimeoutError, aiohttp.ClientError) as exc:
            run.errors[kind].append(type(exc).__name__)
            return None
        run.lat[kind].append(time.perf_counter() - t0)
        if status != 200:
            run.errors[kind].append(str(status))
            return None
        return body

    while budget[0] > 0:
        body = await call("next", "GET", "/api/tasks/next", params={"limit": 3})
        if body is None or not (tasks := json.loads(body)["tasks"]):
            return
        task_id = tasks[0]["id"]
        body = await call("task", "GET", f"/api/tasks/{task_id}")
        if body is None:
            return
        task = json.loads(body)
        image = task["image"]
        if await call("render", "GET", f"/api/images/{image['image_id']}/render",
                      params={"format": "jpeg", "max_size": 1024}) is None:
            return
        if think:
            await asyncio.sleep(think * rng.uniform(0.5, 1.5))
        w, h = image["columns"], image["rows"]
        box = {"class_name": "Cardiomegaly", "x_min": 0.3 * w, "y_min": 0.4 * h, "x_max": 0.7 * w, "y_max": 0.8 * h}
        body = await call("save", "PUT", f"/api/tasks/{task_id}/draft",
                          json={"version": task["version"], "labels": ["Cardiomegaly"], "boxes": [box]})
        if body is None:
            return
        saved = json.loads(body)
        await call("submit", "POST", f"/api/tasks/{task_id}/submit",
                   json={"version": saved["version"], "labels": ["Other diseases", "Cardiomegaly"],
                         "boxes": saved["marks"]["boxes"]})


async def drive(url: str, run: Run, *, annotators: int, requests: int, pgid: int, database_url: str = "") -> Run:
    """Log every annotator in, then run the measured loops; fill in *run*'s latencies, errors, seconds and the
    CPU seconds of the server, the database server (PostgreSQL) and this client."""
    budget = [requests]
    connector = aiohttp.TCPConnector(limit=annotators + 5)
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(base_url=url, connector=connector, timeout=timeout) as client:
        headers = [await login(client, f"reader{k:02d}") for k in range(annotators)]
        cpu0 = group_cpu_seconds(pgid)
        db0 = postgres_cpu_seconds(database_url) if database_url else None
        client0 = time.process_time()
        t0 = time.perf_counter()
        await asyncio.gather(*(annotator(client, h, budget, run, random.Random(k)) for k, h in enumerate(headers)))
        run.elapsed = time.perf_counter() - t0
        run.client_cpu = time.process_time() - client0
        run.server_cpu = group_cpu_seconds(pgid) - cpu0
        if db0 is not None:
            run.db_cpu = postgres_cpu_seconds(database_url) - db0
    return run


def _ms(cpu: float | None, n: int) -> str:
    return "-" if cpu is None else f"{1000 * cpu / max(n, 1):.1f}"


def report(run: Run) -> None:
    """The latency table of one run."""
    n, n_err = run.requests, sum(len(v) for v in run.errors.values())
    loops = run.loops / run.elapsed
    print(f"\n{run.backend}, think {run.think:g} s: {n} requests in {run.elapsed:.1f} s ({n / run.elapsed:.0f} "
          f"req/s, {loops:.1f} loops/s = {loops / LABEL_STUDIO_LOOPS:.1f}x Label Studio), {n_err} errors")
    print("| call | n | p50 ms | p99 ms | max ms | errors |\n|---|---:|---:|---:|---:|---:|")
    for kind in CALLS:
        values = run.lat.get(kind, [])
        if values:
            print(f"| {kind} | {len(values)} | {run.pct(kind, 0.5):.1f} | {run.pct(kind, 0.99):.1f} | "
                  f"{1000 * max(values):.1f} | {len(run.errors.get(kind, []))} |")
    for kind, errs in run.errors.items():
        if errs:
            print(f"  {kind} errors: {sorted(set(errs))[:5]}")
    print(f"CPU per request: server {_ms(run.server_cpu, n)} ms, database {_ms(run.db_cpu, n)} ms, bench client "
          f"{_ms(run.client_cpu, n)} ms (load average: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")


def summary(runs: list[Run]) -> None:
    """Every run side by side: with and without think time, per catalog."""
    print(f"\nSummary ({LABEL_STUDIO_NOTE}):")
    print("| catalog | think s | req/s | loops/s | x Label Studio | p50 / p99 ms save | p50 / p99 ms submit | "
          "p50 / p99 ms next | errors | CPU ms/request server / database / client |")
    print("|---|---:|---:|---:|---:|---|---|---|---:|---|")
    for r in runs:
        loops = r.loops / r.elapsed
        cells = [f"{r.pct(k, 0.5):.0f} / {r.pct(k, 0.99):.0f}" for k in ("save", "submit", "next")]
        n_err = sum(len(v) for v in r.errors.values())
        print(f"| {r.backend} | {r.think:g} | {r.requests / r.elapsed:.0f} | {loops:.1f} | "
              f"{loops / LABEL_STUDIO_LOOPS:.1f} | {' | '.join(cells)} | {n_err} | "
              f"{_ms(r.server_cpu, r.requests)} / {_ms(r.db_cpu, r.requests)} / {_ms(r.client_cpu, r.requests)} |")


def run(backend: str, think: float, args: argparse.Namespace, phantoms: Path) -> Run:
    """One run: a fresh workspace (and PostgreSQL cluster), a server, the measured loops."""
    with tempfile.TemporaryDirectory(prefix="cxrlab-load-") as tmp, contextlib.ExitStack() as stack:
        database_url = ""
        if backend == "postgresql":
            from tests.support.pg import throwaway_cluster

            database_url = stack.enter_context(throwaway_cluster())
        root = build_workspace(Path(tmp) / "ws", database_url=database_url, annotators=args.annotators,
                               images=args.images, files=args.files, size=args.size, phantoms=phantoms)
        url, pgid = stack.enter_context(server(root, workers=args.workers))
        result = asyncio.run(drive(url, Run(backend, think), annotators=args.annotators, requests=args.requests,
                                   pgid=pgid, database_url=database_url))
        report(result)
        return result


def main() -> None:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # run the clean-up (server, PostgreSQL) on kill
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--annotators", type=int, default=50)
    parser.add_argument("--requests", type=int, default=4000, help="fixed total request count per run")
    parser.add_argument("--images", type=int, default=400, help="catalog images (3 readers each)")
    parser.add_argument("--files", type=int, default=8, help="distinct phantom files behind them")
    parser.add_argument("--size", type=int, default=1024, help="phantom side in pixels")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    parser.add_argument("--think", type=float, nargs="+", default=[0.0, 10.0],
                        help="seconds each reader looks at an image; one run per value")
    args = parser.parse_args()
    runs = []
    with tempfile.TemporaryDirectory(prefix="cxrlab-phantoms-") as phantoms:
        for backend in (["sqlite", "postgresql"] if args.backend == "both" else [args.backend]):
            for think in args.think:
                runs.append(run(backend, think, args, Path(phantoms) / "phantoms"))
    summary(runs)


if __name__ == "__main__":
    main()
