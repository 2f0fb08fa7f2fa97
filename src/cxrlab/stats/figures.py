"""Figures 3 and 4 of the seeds: bar charts of the findings (local labels) and diseases (global labels).

VinDr-PCXR data descriptor, Figure 3 "Distribution of abnormal findings on the training set" and Figure 4
"Distribution of pathologies on the training set": "Rare findings (less than 10 examples) are not included."
Counts are those of Table 2 (images positive by majority vote). Drawn with matplotlib (Agg backend, no display
needed), saved as PNG and SVG.
"""

from __future__ import annotations

from pathlib import Path

from cxrlab.stats.plotting import pyplot, save_figure
from cxrlab.stats.table2 import Table2

__all__ = ["MIN_COUNT", "label_figures"]

MIN_COUNT = 10


def label_figures(
    table: Table2,
    out: str | Path,
    *,
    min_count: int = MIN_COUNT,
    formats: tuple[str, ...] = ("png", "svg"),
    title_set: str = "training set",
) -> list[Path]:
    """Write ``figure3_findings.<fmt>`` and ``figure4_diseases.<fmt>`` into *out*.

    Labels with fewer than *min_count* positive images are left out, as in the seed; "No finding" is not a
    disease and is left out of Figure 4.

    Returns
    -------
    list of Path
        The files written.
    """
    plt = pyplot()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    specs = (
        ("local", "figure3_findings", f"Distribution of abnormal findings on the {title_set}"),
        ("global", "figure4_diseases", f"Distribution of pathologies on the {title_set}"),
    )
    for kind, stem, title in specs:
        rows = [lb for lb in table.labels if lb["kind"] == kind and lb["count"] is not None
                and lb["count"] >= min_count and lb["name"].lower() != "no finding"]
        rows.sort(key=lambda lb: lb["count"])
        fig, ax = plt.subplots(figsize=(8, max(2.5, 0.32 * len(rows) + 1.2)))
        ax.barh([lb["name"] for lb in rows], [lb["count"] for lb in rows], color="#3b6ea5")
        for i, lb in enumerate(rows):
            ax.text(lb["count"], i, f" {lb['count']:,} ({lb['percent']:.2f}%)", va="center", fontsize=8)
        ax.set_xlabel("Number of images")
        ax.set_title(f"{title}\n(labels with fewer than {min_count} images are not included)", fontsize=10)
        ax.spines[["top", "right"]].set_visible(False)
        if rows:
            ax.set_xlim(0, max(lb["count"] for lb in rows) * 1.3)
        fig.tight_layout()
        for fmt in formats:
            path = out / f"{stem}.{fmt}"
            save_figure(fig, path)
            written.append(path)
        plt.close(fig)
    return written
