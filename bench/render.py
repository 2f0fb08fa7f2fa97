"""Benchmark DICOM -> display image rendering: cxrlab.dicom.display next to plain pydicom + Pillow.

For each image and each pipeline the script prints the median (over ``--runs`` runs) wall time in ms of:

- decode: read the file and decode the pixel data;
- window: stored values -> displayed uint8 at full resolution;
- JPEG q90 / PNG: encode that uint8 image in memory.

Images: the real chest CR RG1_UNCI.dcm (uncompressed) and RG1_J2KI.dcm (JPEG 2000) from the real test data
(``$CXRLAB_TEST_DATA/dicom``, by default ``../shared/data/dicom``; skipped when absent) and a synthetic 2500x2500
16-bit uncompressed DICOM (gradient + noise) written to a temporary folder.

"plain" is the naive way: ``ds.pixel_array``, a numpy WC/WW (or min/max) scaling that ignores the Modality
LUT and the DICOM window edges, ``Image.fromarray(...).save(...)`` with Pillow's defaults (PNG zlib level 6).
cxrlab's PNG uses zlib level 1 (:data:`cxrlab.dicom.display.PNG_COMPRESS_LEVEL`).

Usage: ``python bench/render.py [--runs N]``
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from PIL import Image
from pydicom.dataset import Dataset

try:
    from cxrlab.dicom import display
    from cxrlab.dicom.io import read_dataset, read_pixels
except ModuleNotFoundError:  # a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from cxrlab.dicom import display
    from cxrlab.dicom.io import read_dataset, read_pixels

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/support: the DICOM writer, the real files
from tests.support.data import HOW_TO_SET, TEST_DATA  # noqa: E402
from tests.support.dicom import make_dicom  # noqa: E402

SHARED_DICOM = TEST_DATA / "dicom"
ANCHOR = "anchor (reference numbers): uncompressed 2500^2 -> JPEG q90 27 ms, -> PNG 211-590 ms"


def median_ms(fn: Callable[[], Any], runs: int) -> tuple[float, Any]:
    """Return (median wall time in ms over *runs* calls, the last result)."""
    times = []
    result = None
    for _ in range(runs):
        t0 = time.perf_counter()
        result = fn()
        times.append((time.perf_counter() - t0) * 1000.0)
    return statistics.median(times), result


def make_synthetic(folder: Path, size: int = 2500) -> Path:
    """Write a size x size 16-bit (12 bits stored) MONOCHROME2 CR: a diagonal gradient plus noise."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:size, 0:size]
    img = (xx + yy) * (3000.0 / (2 * size)) + 500.0 + rng.normal(0.0, 40.0, (size, size))
    pixels = np.clip(img, 0, 4095).astype(np.uint16)
    return make_dicom(folder / "synthetic_2500.dcm", pixels=pixels, window=("2000", "3000"), header=False)


def plain_window(arr: np.ndarray, ds: Dataset) -> np.ndarray:
    """The naive display mapping: first WC/WW as a plain clip, else min/max; invert MONOCHROME1."""
    x = arr.astype(np.float32)
    if "WindowCenter" in ds and "WindowWidth" in ds:
        wc, ww = ds.WindowCenter, ds.WindowWidth
        c = float(wc[0] if isinstance(wc, pydicom.multival.MultiValue) else wc)
        w = float(ww[0] if isinstance(ww, pydicom.multival.MultiValue) else ww)
        lo, hi = c - w / 2, c + w / 2
    else:
        lo, hi = float(x.min()), float(x.max())
    y = np.clip((x - lo) / max(hi - lo, 1e-6), 0, 1) * 255
    if ds.PhotometricInterpretation == "MONOCHROME1":
        y = 255 - y
    return y.astype(np.uint8)


def plain_save(img: np.ndarray, fmt: str) -> bytes:
    """Pillow with its defaults (JPEG quality 90 as asked)."""
    buf = io.BytesIO()
    if fmt == "JPEG":
        Image.fromarray(img).save(buf, format="JPEG", quality=90)
    else:
        Image.fromarray(img).save(buf, format="PNG")
    return buf.getvalue()


def bench_file(path: Path, runs: int) -> list[list[str]]:
    """Return two table rows (cxrlab, plain) for *path*."""
    rows = []

    def cx_decode() -> tuple[Dataset, np.ndarray]:
        ds = read_dataset(path)
        return ds, read_pixels(ds, path=path)

    def pl_decode() -> tuple[Dataset, np.ndarray]:
        ds = pydicom.dcmread(path)
        return ds, ds.pixel_array

    pipelines = {
        "cxrlab": (
            cx_decode,
            lambda arr, ds: display.render_pixels(arr, ds),
            lambda img, fmt: display.encode(img, fmt, quality=90),
        ),
        "plain pydicom+Pillow": (pl_decode, plain_window, plain_save),
    }
    for name, (decode, window, save) in pipelines.items():
        t_dec, (ds, arr) = median_ms(decode, runs)
        t_win, img = median_ms(lambda arr=arr, ds=ds, window=window: window(arr, ds), runs)
        t_jpg, jpg = median_ms(lambda img=img, save=save: save(img, "JPEG"), runs)
        t_png, png = median_ms(lambda img=img, save=save: save(img, "PNG"), runs)
        total = t_dec + t_win + t_jpg
        rows.append(
            [
                path.name,
                f"{arr.shape[1]}x{arr.shape[0]}",
                name,
                f"{t_dec:.1f}",
                f"{t_win:.1f}",
                f"{t_jpg:.1f}",
                f"{t_png:.1f}",
                f"{total:.1f}",
                f"{len(jpg) / 1024:.0f}",
                f"{len(png) / 1024:.0f}",
            ]
        )
    return rows


def print_table(rows: list[list[str]]) -> None:
    """Print *rows* under a header, columns aligned."""
    header = ["image", "size", "pipeline", "decode", "window", "JPEG q90", "PNG", "dec+win+JPEG", "JPEG KB", "PNG KB"]
    table = [header, *rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    for i, r in enumerate(table):
        cells = [c.ljust(w) if j < 3 else c.rjust(w) for j, (c, w) in enumerate(zip(r, widths, strict=True))]
        print("  ".join(cells))
        if i == 0:
            print("  ".join("-" * w for w in widths))


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the table (ms, median of --runs)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="runs per measurement; the median is shown")
    args = parser.parse_args(argv)
    runs = max(1, args.runs)
    rows: list[list[str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        files = []
        for name in ("RG1_UNCI.dcm", "RG1_J2KI.dcm"):
            path = SHARED_DICOM / name
            if path.is_file():
                files.append(path)
            else:
                print(f"skipping {name}: not found in {SHARED_DICOM} ({HOW_TO_SET})")
        files.append(make_synthetic(Path(tmp)))
        for path in files:
            rows.extend(bench_file(path, runs))
    print(f"ms per image, median of {runs} runs; PNG: cxrlab zlib level {display.PNG_COMPRESS_LEVEL}, plain 6")
    print_table(rows)
    print(ANCHOR)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
