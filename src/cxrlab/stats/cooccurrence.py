"""The NIH ChestX-ray14 co-occurrence matrix, in the README's layout.

NIH ChestX-ray14 README, "A.2 co-occurrence matrix of the fourteen thorax diseases": 14 x 14 in the README's
class order (Atelectasis ... Hernia); the diagonal counts the images that carry that label *alone*, an
off-diagonal cell the images carrying both labels, and a last row gives each class's total number of images.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from cxrlab.stats.plotting import pyplot, save_figure

__all__ = ["cooccurrence", "cooccurrence_figure", "render_cooccurrence"]

TOTAL = "Total"


def cooccurrence(labels: pd.DataFrame, names: list[str]) -> pd.DataFrame:
    """Co-occurrence counts of *names* over images.

    Parameters
    ----------
    labels : DataFrame
        One row per image with a 0/1 column per name.
    names : list of str
        Label order (the README's for NIH).

    Returns
    -------
    DataFrame
        15 x 14 for NIH: rows *names* then ``Total``, columns *names*.
    """
    y = labels[names].fillna(0).to_numpy(dtype=np.int64)
    both = y.T @ y
    alone = ((y.sum(axis=1) == 1)[:, None] & (y == 1)).sum(axis=0)
    np.fill_diagonal(both, alone)
    matrix = np.vstack([both, y.sum(axis=0)])
    return pd.DataFrame(matrix, index=[*names, TOTAL], columns=names)


def render_cooccurrence(matrix: pd.DataFrame, fmt: str = "csv") -> str:
    """``csv`` (first column ``label``) or ``json`` (``labels``, ``matrix`` 14 x 14, ``totals``)."""
    if fmt == "csv":
        return matrix.rename_axis("label").to_csv(lineterminator="\n")
    if fmt == "json":
        names = list(matrix.columns)
        return json.dumps({"labels": names, "matrix": matrix.loc[names].to_numpy().tolist(),
                           "totals": matrix.loc[TOTAL].to_numpy().tolist(),
                           "note": "diagonal: images with that label alone; off-diagonal: images with both"},
                          indent=2) + "\n"
    raise ValueError(f"format must be csv, json or png, got {fmt!r}")


def cooccurrence_figure(matrix: pd.DataFrame, path: str) -> None:
    """Save the matrix as a heatmap (PNG or SVG by suffix), counts written in the cells."""
    plt = pyplot()
    names = list(matrix.columns)
    data = matrix.to_numpy(dtype=float)
    fig, ax = plt.subplots(figsize=(11, 10))
    im = ax.imshow(np.log1p(data), cmap="viridis", aspect="auto")
    ax.set_xticks(range(len(names)), names, rotation=60, ha="right")
    ax.set_yticks(range(len(matrix.index)), list(matrix.index))
    vmax = np.log1p(data).max() or 1
    for i in range(data.shape[0]):
        for j in range(data.shape[1]):
            ax.text(j, i, f"{int(data[i, j])}", ha="center", va="center", fontsize=7,
                    color="white" if np.log1p(data[i, j]) < 0.6 * vmax else "black")
    ax.set_title("Co-occurrence (diagonal: label alone; last row: totals)")
    fig.colorbar(im, ax=ax, label="log(1 + images)")
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)

