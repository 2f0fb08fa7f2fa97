"""Benchmark the training data loader (:mod:`cxrlab.datasets`): images/s with and without the on-disk cache.

A phantom release (``cxrlab phantom --vindr``: ``--n`` adult frontal chests of ``--size`` px, default 60 of
2,000-3,000 px, planted findings, three simulated readers) is written once to ``--workdir`` (kept for the next run;
not timed) and read warm from the page cache by a :class:`cxrlab.datasets.VinDrDataset` of its training split at
``--out`` px (default 512) with the file's window. Timed, best of ``--repeat`` passes over every item:

- **decoding**: no cache, every item read, decoded and rendered (Modality LUT, resize, VOI, MONOCHROME1);
- **cache fill** (epoch 1 with a cache): the same plus writing each ``.npy`` entry;
- **cached** (epoch 2 and later): every item read back memory-mapped, no file decoded (checked: the dataset counts
  its decodes);
- **DataLoader**: ``torch.utils.data.DataLoader`` (batch 16, ``--loader-workers`` processes) over the cached
  dataset with tensors, when torch is installed.

Goal (issue 16): cached >= 10x decoding. The cache folder is emptied before each fill.

**Training step throughput** (``--archs``, when torch is installed): images/s of one optimisation step of each
baseline network (:mod:`cxrlab.models.networks`: forward, weighted BCE, backward, AdamW) on a batch of
``--step-batch`` images of ``--step-size`` px (28 labels, VinDr-CXR's image labels), best of ``--steps`` timed
steps after one warm-up step; on CUDA when present (with AMP, as ``cxrlab train classifier``), else on the CPU with
``--threads`` torch threads. The data are random tensors: this row measures the network, the loader rows the data.

Usage::

    python bench/train.py --n 60 --repeat 3
    python bench/train.py --skip-loader --archs small,resnet50,densenet121 --step-size 256
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

try:
    from cxrlab.datasets import VinDrDataset, collate, write_phantom_release
except ModuleNotFoundError:  # a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from cxrlab.datasets import VinDrDataset, collate, write_phantom_release


def _pass(ds: VinDrDataset) -> float:
    """Seconds to read every item once."""
    t0 = time.perf_counter()
    for i in range(len(ds)):
        ds[i]
    return time.perf_counter() - t0


def _loader_pass(ds: VinDrDataset, workers: int) -> float:
    from torch.utils.data import DataLoader

    t0 = time.perf_counter()
    for _images, _targets in DataLoader(ds, batch_size=16, num_workers=workers, collate_fn=collate):
        pass
    return time.perf_counter() - t0


def _steps(a: argparse.Namespace) -> None:
    """Print images/s of one training step per architecture."""
    try:
        import torch
    except ImportError:
        print("torch not installed: training step rows skipped")
        return
    from cxrlab.models.networks import build

    torch.set_num_threads(a.threads)
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    amp = dev.type == "cuda"
    where = torch.cuda.get_device_name(0) if amp else f"CPU, {a.threads} thread(s)"
    print(f"training step, batch {a.step_batch} of {a.step_size} px, 28 labels, {where}, best of {a.steps}")
    print("| arch | parameters | s per step | images/s |\n|---|---:|---:|---:|")
    for arch in a.archs.split(","):
        torch.manual_seed(0)
        net = build(arch, 28).to(dev).train()
        opt = torch.optim.AdamW(net.parameters(), lr=1e-3)
        scaler = torch.amp.GradScaler("cuda", enabled=amp)
        loss_fn = torch.nn.BCEWithLogitsLoss(pos_weight=torch.full((28,), 5.0, device=dev))
        x = torch.rand(a.step_batch, 1, a.step_size, a.step_size, device=dev)
        y = (torch.rand(a.step_batch, 28, device=dev) < 0.1).float()
        times = []
        for i in range(a.steps + 1):
            if amp:
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            with torch.autocast(dev.type, dtype=torch.float16, enabled=amp):
                loss = loss_fn(net(x), y)
            opt.zero_grad()
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
            if amp:
                torch.cuda.synchronize()
            if i:  # the first step is the warm-up
                times.append(time.perf_counter() - t0)
        n_params = sum(int(p.numel()) for p in net.parameters())
        best = min(times)
        print(f"| {arch} | {n_params / 1e6:.2f} M | {best:.3f} | {a.step_batch / best:.1f} |")
    print()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=60, help="phantoms in the release (about 80 %% in train)")
    p.add_argument("--size", type=int, nargs=2, default=(2000, 3000), metavar=("MIN", "MAX"))
    p.add_argument("--out", type=int, default=512, help="side of the square the loader returns")
    p.add_argument("--window", default="file", choices=("file", "full", "auto"))
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--loader-workers", type=int, default=2)
    p.add_argument("--workdir", type=Path, default=Path("/tmp/cxrlab-bench-train"))
    p.add_argument("--archs", default="small,resnet50,densenet121", help="networks for the step rows ('' none)")
    p.add_argument("--step-size", type=int, default=256)
    p.add_argument("--step-batch", type=int, default=8)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--skip-loader", action="store_true", help="only the training step rows")
    a = p.parse_args()
    if a.archs:
        _steps(a)
    if a.skip_loader:
        return 0

    release = a.workdir / f"release-{a.n}-{a.size[0]}-{a.size[1]}"
    if not release.exists():
        t0 = time.perf_counter()
        write_phantom_release(release, a.n, seed=0, size_range=tuple(a.size), finding_prob=0.35)
        print(f"wrote {a.n} phantoms to {release} in {time.perf_counter() - t0:.1f} s (not timed below)")
    cache = a.workdir / "cache"
    kw = {"size": a.out, "window": a.window}
    plain = VinDrDataset(release, "train", **kw)
    n = len(plain)
    _pass(plain)  # warm the page cache
    rows = []
    decoding = min(_pass(VinDrDataset(release, "train", **kw)) for _ in range(a.repeat))
    rows.append(("decoding (no cache)", decoding))
    fills, cached = [], []
    for _ in range(a.repeat):
        shutil.rmtree(cache, ignore_errors=True)
        ds = VinDrDataset(release, "train", cache_dir=cache, **kw)
        fills.append(_pass(ds))
        cached.append(_pass(ds))
        assert ds.decoded == n and ds.cache_hits == n, "epoch 2 decoded an image"
    rows.append(("cache fill (epoch 1)", min(fills)))
    rows.append(("cached (epoch 2+)", min(cached)))
    try:
        import torch  # noqa: F401
    except ImportError:
        print("torch not installed: DataLoader rows skipped")
    else:
        tensors = VinDrDataset(release, "train", cache_dir=cache, as_tensor=True, **kw)
        for workers in sorted({0, a.loader_workers}):
            best = min(_loader_pass(tensors, workers) for _ in range(a.repeat))
            rows.append((f"DataLoader cached, batch 16, {workers} workers", best))
    print(f"\n{n} training images of {a.size[0]}-{a.size[1]} px -> {a.out}x{a.out} float32, window {a.window!r}; "
          f"best of {a.repeat}")
    print("| loader | s per epoch | images/s | vs decoding |\n|---|---:|---:|---:|")
    for name, seconds in rows:
        print(f"| {name} | {seconds:.3f} | {n / seconds:.1f} | {decoding / seconds:.1f}x |")
    speedup = decoding / min(cached)
    print(f"\ncached / decoding = {speedup:.1f}x (goal >= 10x): {'met' if speedup >= 10 else 'MISSED'}")
    return 0 if speedup >= 10 else 1


if __name__ == "__main__":
    raise SystemExit(main())
