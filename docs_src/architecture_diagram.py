"""Draw docs/assets/architecture.svg: the pipeline stages, the shells over them, the catalog and the runtime.

Run from the repository root after a change of shape: ``.venv/bin/python docs_src/architecture_diagram.py``.
matplotlib (the ``[release]`` extra) draws it, so the picture needs no JavaScript or network in the built site.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch  # noqa: E402

OUT = Path(__file__).resolve().parents[1] / "docs" / "assets" / "architecture.svg"

STAGE = "#dbe8f5"
SHELL = "#fbe3c8"
STORE = "#dff0d8"
EDGE = "#37474f"


def box(ax, x: float, y: float, w: float, h: float, text: str, color: str, size: float = 9.5) -> None:  # noqa: ANN001
    ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.02,rounding_size=0.08", fc=color, ec=EDGE,
                                lw=1.1))
    ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=size, color="#1b2631")


def arrow(ax, a: tuple[float, float], b: tuple[float, float], style: str = "-|>", dashed: bool = False) -> None:  # noqa: ANN001
    ax.add_patch(FancyArrowPatch(a, b, arrowstyle=style, mutation_scale=11, lw=1.1, color=EDGE,
                                 linestyle="--" if dashed else "-", shrinkA=1, shrinkB=1))


def main() -> None:
    plt.rcParams["svg.hashsalt"] = "cxrlab"  # stable ids, so a redraw without change gives the same file
    plt.rcParams["svg.fonttype"] = "none"  # text stays text (small, searchable)
    fig, ax = plt.subplots(figsize=(12.5, 6.3))
    ax.set_xlim(0, 12.5)
    ax.set_ylim(0, 6.3)
    ax.axis("off")

    # Shells (top): thin layers that only parse, authorize and call the library.
    box(ax, 0.3, 5.1, 4.4, 0.75, "cli/  (Typer + Rich)\ncxrlab init | ingest | deid | ... | leaderboard", SHELL, 8.5)
    box(ax, 5.3, 5.1, 6.9, 0.75, "web/  (FastAPI: app factory, deps, routers, pages, static; the only FastAPI "
        "importer)\na shell over annotate/ (labeling) and benchmark/ (leaderboard)", SHELL, 8.5)

    # The pipeline: data only moves forward (left to right, then down and right to left).
    stages = [("ingest", "collect DICOM"), ("deid", "headers,\nburned-in text"),
              ("filter", "header rules,\nthe outlier CNN"), ("annotate", "blinded readers,\nQC, review"),
              ("consensus", "majority vote,\nbox fusion"),
              ("split", "train / test")]
    w, h, y = 1.55, 1.0, 3.4
    xs = [0.3 + i * 1.93 for i in range(len(stages))]
    for x, (name, what) in zip(xs, stages, strict=True):
        box(ax, x, y, w, h, f"{name}/\n{what}", STAGE, 9)
    for x0, x1 in zip(xs, xs[1:], strict=False):
        arrow(ax, (x0 + w, y + h / 2), (x1, y + h / 2))
    y3 = 1.85
    later = [(xs[5], "export/ + stats/\nrelease files,\nTable 2, figures"),
             (xs[4], "datasets/ + models/\nloaders, baselines,\npredict, CAM"),
             (xs[3], "evaluate/\nmAP, AUC,\nvalidation"), (xs[2], "benchmark/\nhidden labels,\nscoring, ranking")]
    for x, text in later:
        box(ax, x, y3, w, h, text, STAGE, 8.5)
    arrow(ax, (xs[5] + w / 2, y), (xs[5] + w / 2, y3 + h))
    for k in (5, 4, 3):
        arrow(ax, (xs[k], y3 + h / 2), (xs[k - 1] + w, y3 + h / 2))

    # Shell -> library calls (dashed).
    arrow(ax, (2.5, 5.1), (2.5, 4.42), dashed=True)
    arrow(ax, (xs[3] + w / 2, 5.1), (xs[3] + w / 2, 4.42), dashed=True)
    arrow(ax, (xs[2] + w + 0.2, 5.1), (xs[2] + w - 0.25, y3 + h), dashed=True)

    # Shared services (bottom left and bottom).
    box(ax, 0.3, y3, 3.4, h, "runtime/  process pool or Dask:\nper-file work fans out; atomic writes\n"
        "(temp + rename); one writer records\nresults in short transactions", STORE, 8)
    box(ax, 0.3, 0.3, 11.9, 0.95, "catalog/  the one catalog (SQLAlchemy 2 + Alembic; SQLite or PostgreSQL): "
        "images and their states, UID map, readings, consensus,\nprojects, tasks, benchmarks. Every stage reads its "
        "input state here and records its results here, so it is idempotent and resumable after a kill.",
        STORE, 8.5)
    for x in (2.0, xs[2] + w / 2, xs[5] + w / 2):
        arrow(ax, (x, y3), (x, 1.27), style="<|-|>", dashed=True)
    ax.text(0.3, 6.05, "cxrlab: library packages (blue), thin shells (orange), shared services (green). "
            "Solid arrows: data flow; dashed: calls and catalog reads/writes.", fontsize=8.5, color="#37474f")

    OUT.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(OUT, format="svg", bbox_inches="tight", metadata={"Date": None})
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
