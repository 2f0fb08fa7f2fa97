"""Check that :func:`cxrlab.deid.text.hug_boxes` returns exactly the boxes of another revision's, and time both.

A speed-up of the hugging step must not change what is redacted. This script scans the bench's cases once
(``bench/deid_text.py``: ``--n`` phantoms with burned-in text from ``--seed`` on, 2400-2600 px, and ``--real-seeds``
layouts of its ``REAL_LINES`` burned into the shared test data's real CR), then runs the working tree's
``hug_boxes`` and the one of git revision ``--against`` (loaded from ``git show``, nothing is checked out) on the
same pixels and candidates, compares the box lists (same boxes, same order) and prints the CPU time of each per
hugged image. Exit status 1 when any image differs.

``--cache FILE`` keeps the scans' candidates (pickled; the pixels are generated again, which is deterministic), so
that a second run only times the hugging.

Usage::

    python bench/hug_identical.py --against main
    python bench/hug_identical.py --against cf46cad --n 60 --real-seeds 30 --cache /tmp/hug_cases.pkl
"""

from __future__ import annotations

import argparse
import importlib.util
import pickle
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from cxrlab.deid.text import TextDetector, hug_boxes, scan_dataset
from cxrlab.dicom.io import read_pixels
from cxrlab.dicom.phantom import generate_phantom

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from deid_text import REAL_LINES, _data_dir  # noqa: E402


def _old_hug(rev: str) -> Callable[..., Any]:
    """``hug_boxes`` of git revision *rev*, imported from its source without touching the working tree."""
    src = subprocess.run(
        ["git", "-C", str(ROOT), "show", f"{rev}:src/cxrlab/deid/text/hug.py"], check=True, capture_output=True,
        text=True,
    ).stdout
    with tempfile.NamedTemporaryFile("w", suffix="_hug_old.py", delete=False) as f:
        f.write(src)
    spec = importlib.util.spec_from_file_location("hug_old", f.name)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(mod)
    finally:
        Path(f.name).unlink()
    return mod.hug_boxes  # type: ignore[no-any-return]


def _phantom(seed: int) -> Any:
    ds, _ = generate_phantom(np.random.default_rng(seed), seed, size_range=(2400, 2600), outlier=None,
                             burned_text=True)
    return ds


def _real(seed: int, cr: Path) -> Any | None:
    """The real CR with the bench's text layout *seed* burned in (as ``bench/deid_text.py`` does), or None."""
    import pydicom

    from cxrlab.dicom.phantom.burned_text import _burn_text

    ds = pydicom.dcmread(cr)
    orig = read_pixels(ds)
    px = orig.copy()
    if not _burn_text(np.random.default_rng(seed), px, int(ds.BitsStored),
                      str(ds.PhotometricInterpretation) == "MONOCHROME1", REAL_LINES):
        return None
    ds.PixelData = px.astype(orig.dtype).tobytes()
    return ds


def _cases(a: argparse.Namespace) -> Iterator[tuple[str, Any]]:
    for seed in range(a.seed, a.seed + a.n):
        yield f"phantom {seed}", lambda s=seed: _phantom(s)
    cr = _data_dir() / "dicom" / "RG1_UNCI.dcm"
    if a.real_seeds and cr.exists():
        for seed in range(a.real_seeds):
            yield f"real CR layout {seed}", lambda s=seed: _real(s, cr)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--against", default="main", help="git revision whose hug_boxes is the reference")
    p.add_argument("--n", type=int, default=60, help="phantoms with burned-in text")
    p.add_argument("--seed", type=int, default=1000)
    p.add_argument("--real-seeds", type=int, default=30, help="text layouts burned into the real CR")
    p.add_argument("--cache", type=Path, help="pickle of the scans' candidates, written once and reused")
    a = p.parse_args(argv)
    old = _old_hug(a.against)
    cached: dict[str, Any] = pickle.loads(a.cache.read_bytes()) if a.cache and a.cache.exists() else {}
    det = None
    same = differ = 0
    t_old = t_new = 0.0
    for name, make in _cases(a):
        ds = make()
        if ds is None:
            continue
        if name not in cached:
            det = det or TextDetector(threads=1)
            cached[name] = scan_dataset(ds, det).candidates
        cands = cached[name]
        if not any(c.status in ("confirmed", "marker") for c in cands):
            continue
        px = read_pixels(ds)
        c0 = time.process_time()
        ref = old(px, cands)
        c1 = time.process_time()
        new = hug_boxes(px, cands)
        c2 = time.process_time()
        t_old, t_new = t_old + c1 - c0, t_new + c2 - c1
        if [tuple(int(v) for v in b) for b in ref] == [tuple(int(v) for v in b) for b in new]:
            same += 1
        else:
            differ += 1
            print(f"{name}: DIFFERENT ({len(ref)} boxes vs {len(new)})")
    if a.cache and det is not None:
        tmp = a.cache.with_suffix(".tmp")
        tmp.write_bytes(pickle.dumps(cached))
        tmp.replace(a.cache)
    n = same + differ
    print(f"identical on {same} of {n} images (hug_boxes vs {a.against})")
    if n:
        print(f"hug_boxes CPU per image: {a.against} {1000 * t_old / n:.1f} ms, working tree {1000 * t_new / n:.1f} ms"
              f" ({t_new / max(t_old, 1e-9):.2f}x)")
    return 1 if differ else 0


if __name__ == "__main__":
    raise SystemExit(main())
