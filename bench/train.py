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

Usage::

    python bench/train.py --n 60 --repeat 3
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


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=60, help="phantoms in the release (about 80 %% in train)")
    p.add_argument("--size", type=int, nargs=2, default=(2000, 3000), metavar=("MIN", "MAX"))
    p.add_argument("--out", type=int, default=512, help="side of the square the loader returns")
    p.add_argument("--window", default="file", choices=("file", "full", "auto"))
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--loader-workers", type=int, default=2)
    p.add_argument("--workdir", type=Path, default=Path("/tmp/cxrlab-bench-train"))
    a = p.parse_args()

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
