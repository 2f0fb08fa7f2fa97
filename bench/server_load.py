"""Load test of the labeling server: N simulated annotators against a real ``cxrlab serve`` (uvicorn).

Each annotator logs in (bearer token) and loops: ``GET /api/tasks/next`` (the next 3 tasks: show one, prefetch
the rest) -> ``GET /api/tasks/{id}`` -> ``GET /api/images/{id}/render`` (JPEG, first paint) -> ``PUT
/api/tasks/{id}/draft`` (autosave) -> ``POST /api/tasks/{id}/submit``, until the fixed request budget is spent.
The script prints p50/p99/max latency per call type, the error count (any status other than 200) and the
throughput, for SQLite and/or a throwaway PostgreSQL cluster (``tests/pg.py``; needs the Debian
``postgresql`` package).

The workspace holds ``--images`` catalog images, 3 readers each, whose files cycle over ``--files`` phantoms of
``--size``² pixels (12-bit, uncompressed). Every reader has its own seeded queue, so 50 readers share each
image with two others, like the seeds' training set.

With ``--think 0`` (the default) every reader fires its next request the moment the last one returns: a
stress test where 50 requests are always in flight. ``--think S`` lets each reader look at each image for
0.5-1.5 x S seconds before saving (readers start at random times within the first S seconds), closer to a
radiologist's pace (about a minute per image). The server's CPU time per request is printed too: unlike the
latencies it does not depend on what else runs on the machine.

Usage: ``python bench/server_load.py [--backend sqlite|postgresql|both] [--annotators 50] [--requests 5000]
[--think 0] [--workers 1]``
The machine may be shared with other work: say so when reporting the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import httpx
from pydicom.uid import generate_uid

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests/pg.py: the throwaway PostgreSQL cluster

from cxrlab.annotate.services.assignment import assign_images  # noqa: E402
from cxrlab.annotate.services.auth import create_user  # noqa: E402
from cxrlab.annotate.services.projects import create_project  # noqa: E402
from cxrlab.catalog import Settings, init_workspace  # noqa: E402
from cxrlab.catalog.models import Image, ImageState  # noqa: E402
from cxrlab.dicom.phantom import generate_phantoms  # noqa: E402

PASSWORD = "bench password 123"
CALLS = ("next", "task", "render", "save", "submit")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def build_workspace(root: Path, *, database_url: str, annotators: int, images: int, files: int, size: int) -> Path:
    """A workspace with *images* accepted images (files cycling over *files* phantoms), users and a project."""
    ws = init_workspace(root, settings=Settings(project="load test", database_url=database_url))
    phantoms = root / "phantoms"
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


def group_cpu_seconds(pgid: int) -> float:
    """CPU time (user + system) used so far by every live process of process group *pgid* (Linux ``/proc``).

    The server's CPU time per request does not depend on what else runs on a shared machine, unlike latency.
    """
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:  # fields after the command: state ppid pgrp ... utime(12) stime(13)
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


@contextlib.contextmanager
def server(root: Path, *, workers: int = 1):  # noqa: ANN201
    """``cxrlab serve`` on a free port; yields ``(base URL, process group id)``."""
    port = _free_port()
    cmd = [sys.executable, "-m", "cxrlab.cli.main", "serve", "-w", str(root), "--port", str(port),
           "--workers", str(workers)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("server did not start")
            time.sleep(0.2)
        yield url, proc.pid
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


async def login(client: httpx.AsyncClient, name: str) -> dict[str, str]:
    """Bearer headers for *name* (logins happen before the measured phase)."""
    r = await client.post("/api/auth/token", json={"username": name, "password": PASSWORD})
    r.raise_for_status()
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


async def annotator(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    budget: list[int],
    lat: dict,
    errors: dict,
    think: float,
    rng: random.Random,
) -> None:
    """One simulated reader: next -> task -> render -> save -> submit until the budget is spent, looking at each
    image for 0.5-1.5 x *think* seconds before the save; readers start at random times within the first *think*
    seconds, as people do (a common start would make every reader ask for the same thing at the same instant)."""
    if think:
        await asyncio.sleep(rng.uniform(0, think))

    async def call(kind: str, method: str, url: str, **kw) -> httpx.Response | None:
        if budget[0] <= 0:
            return None
        budget[0] -= 1
        t0 = time.perf_counter()
        try:
            resp = await client.request(method, url, headers=headers, **kw)
        except httpx.HTTPError as exc:
            errors[kind].append(type(exc).__name__)
            return None
        lat[kind].append(time.perf_counter() - t0)
        if resp.status_code != 200:
            errors[kind].append(str(resp.status_code))
            return None
        return resp

    while budget[0] > 0:
        r = await call("next", "GET", "/api/tasks/next", params={"limit": 3})
        if r is None or not r.json()["tasks"]:
            return
        task_id = r.json()["tasks"][0]["id"]
        r = await call("task", "GET", f"/api/tasks/{task_id}")
        if r is None:
            return
        task = r.json()
        image = task["image"]
        if await call("render", "GET", f"/api/images/{image['image_id']}/render",
                      params={"format": "jpeg", "max_size": 1024}) is None:
            return
        if think:
            await asyncio.sleep(think * rng.uniform(0.5, 1.5))
        w, h = image["columns"], image["rows"]
        box = {"class_name": "Cardiomegaly", "x_min": 0.3 * w, "y_min": 0.4 * h, "x_max": 0.7 * w, "y_max": 0.8 * h}
        r = await call("save", "PUT", f"/api/tasks/{task_id}/draft",
                       json={"version": task["version"], "labels": ["Cardiomegaly"], "boxes": [box]})
        if r is None:
            return
        saved = r.json()
        await call("submit", "POST", f"/api/tasks/{task_id}/submit",
                   json={"version": saved["version"], "labels": ["Other diseases", "Cardiomegaly"],
                         "boxes": saved["marks"]["boxes"]})


async def drive(
    url: str, *, annotators: int, requests: int, think: float, pgid: int
) -> tuple[dict, dict, float, float]:
    """Log every annotator in, then run the measured loops; return latencies, errors, seconds and server CPU s."""
    lat: dict[str, list[float]] = defaultdict(list)
    errors: dict[str, list[str]] = defaultdict(list)
    budget = [requests]
    limits = httpx.Limits(max_connections=annotators + 5, max_keepalive_connections=annotators + 5)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:
        headers = [await login(client, f"reader{k:02d}") for k in range(annotators)]
        cpu0 = group_cpu_seconds(pgid)
        t0 = time.perf_counter()
        await asyncio.gather(
            *(annotator(client, h, budget, lat, errors, think, random.Random(k)) for k, h in enumerate(headers))
        )
        elapsed = time.perf_counter() - t0
        cpu = group_cpu_seconds(pgid) - cpu0
    return lat, errors, elapsed, cpu


def report(backend: str, lat: dict, errors: dict, elapsed: float) -> None:
    total = sum(len(v) for v in lat.values())
    n_err = sum(len(v) for v in errors.values())
    print(f"\n{backend}: {total} requests in {elapsed:.1f} s ({total / elapsed:.0f} req/s), {n_err} errors")
    print("| call | n | p50 ms | p99 ms | max ms | errors |\n|---|---:|---:|---:|---:|---:|")
    for kind in CALLS:
        values = sorted(lat.get(kind, []))
        if not values:
            continue
        p99 = values[min(len(values) - 1, int(round(0.99 * (len(values) - 1))))]
        print(f"| {kind} | {len(values)} | {1000 * statistics.median(values):.1f} | {1000 * p99:.1f} | "
              f"{1000 * values[-1]:.1f} | {len(errors.get(kind, []))} |")
    for kind, errs in errors.items():
        if errs:
            print(f"  {kind} errors: {sorted(set(errs))[:5]}")


def run(backend: str, args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="cxrlab-load-") as tmp, contextlib.ExitStack() as stack:
        database_url = ""
        if backend == "postgresql":
            from tests.pg import throwaway_cluster

            database_url = stack.enter_context(throwaway_cluster())
        root = build_workspace(Path(tmp) / "ws", database_url=database_url, annotators=args.annotators,
                               images=args.images, files=args.files, size=args.size)
        url, pgid = stack.enter_context(server(root, workers=args.workers))
        lat, errors, elapsed, cpu = asyncio.run(drive(url, annotators=args.annotators, requests=args.requests,
                                                        think=args.think, pgid=pgid))
        report(backend, lat, errors, elapsed)
        total = sum(len(v) for v in lat.values())
        print(f"server CPU: {cpu:.1f} s = {1000 * cpu / max(total, 1):.1f} ms per request "
              f"(load average during the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")


def main() -> None:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # run the clean-up (server, PostgreSQL) on kill
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--annotators", type=int, default=50)
    parser.add_argument("--requests", type=int, default=5000, help="fixed total request count")
    parser.add_argument("--images", type=int, default=400, help="catalog images (3 readers each)")
    parser.add_argument("--files", type=int, default=8, help="distinct phantom files behind them")
    parser.add_argument("--size", type=int, default=1024, help="phantom side in pixels")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    parser.add_argument("--think", type=float, default=0.0, help="seconds each reader looks at an image")
    args = parser.parse_args()
    for backend in (["sqlite", "postgresql"] if args.backend == "both" else [args.backend]):
        run(backend, args)


if __name__ == "__main__":
    main()
