"""matplotlib for the release figures: the Agg backend, and an atomic save.

Shared by :mod:`cxrlab.stats.figures` and :mod:`cxrlab.stats.cooccurrence`; matplotlib is imported only when a
figure is drawn, so ``import cxrlab.stats`` works without the ``[release]`` extra.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cxrlab.errors import CxrlabError
from cxrlab.runtime.files import atomic_path

__all__ = ["pyplot", "save_figure"]


def pyplot():  # noqa: ANN201
    """matplotlib.pyplot on the Agg backend; a clear error naming the extra when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise CxrlabError("figures need matplotlib: pip install 'cxrlab[release]'") from None
    return plt


def save_figure(fig: Any, path: str | Path) -> None:
    """Save *fig* to *path* atomically at 150 dpi, in the format its suffix names (PNG when it has none).

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        The figure.
    path : str or Path
        Output file.
    """
    suffix = Path(path).suffix.lower().lstrip(".") or "png"
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=suffix, dpi=150)
