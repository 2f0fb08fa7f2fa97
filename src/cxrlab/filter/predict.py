"""``cxrlab filter predict``: the filter model's class and decision for files and folders, without a workspace.

One row per file (the path as given, or as found below a folder given), in the order given and, inside a folder,
in a stable sorted walk (:func:`cxrlab.runtime.files.iter_files`). DICOM files (found by their preamble) and PNGs
are read; any other file inside a folder is skipped and counted. The rows depend only on the files and the model:
two runs print the same bytes.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cxrlab.errors import CxrlabError
from cxrlab.filter.classes import VIEW_CLASSES
from cxrlab.filter.model import DEFAULT_THRESHOLD, FilterModel, decide
from cxrlab.filter.render import is_model_input
from cxrlab.filter.stage import score_file
from cxrlab.runtime.executor import Executor
from cxrlab.runtime.files import iter_files

__all__ = ["COLUMNS", "PredictResult", "find_inputs", "format_rows", "predict_files"]

#: Output columns: the file, the class, one probability per class, the decision.
COLUMNS: tuple[str, ...] = ("file", "class", *VIEW_CLASSES, "pediatric", "decision")


@dataclass
class PredictResult:
    """Rows of :func:`predict_files` and what was left out.

    Attributes
    ----------
    rows : list of dict
        One per file read, keys :data:`COLUMNS`.
    skipped : int
        Files inside the folders given that are neither DICOM nor PNG.
    problems : list of (str, str)
        Files that could not be read, with the PHI-free reason (their row has no class and the decision
        ``needs_verification``, as in the stage).
    model : str
        The model's short id (SHA-256 prefix).
    """

    rows: list[dict[str, Any]] = field(default_factory=list)
    skipped: int = 0
    problems: list[tuple[str, str]] = field(default_factory=list)
    model: str = ""


def find_inputs(paths: Sequence[str | Path]) -> tuple[list[str], int]:
    """Expand *paths* (files and folders) into the files to read, as strings, and the number skipped.

    A file named directly is always read (an unreadable one is reported, not skipped); inside a folder only DICOM
    and PNG files are, in sorted order.

    Raises
    ------
    CxrlabError
        A path that does not exist.
    """
    files: list[str] = []
    skipped = 0
    for p in paths:
        path = Path(p)
        if path.is_dir():
            for f in iter_files(path):
                if is_model_input(f):
                    files.append(str(f))
                else:
                    skipped += 1
        elif path.is_file():
            files.append(str(p))
        else:
            raise CxrlabError(f"{p}: no such file or folder")
    return files, skipped


def predict_files(
    model_path: str | Path,
    paths: Sequence[str | Path],
    *,
    population: str = "adult",
    threshold: float = DEFAULT_THRESHOLD,
    executor: Executor | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> PredictResult:
    """Classify every file of *paths* (see :func:`find_inputs`) with the model at *model_path*.

    Parameters
    ----------
    model_path : path
        The ``.onnx`` model (its sidecar beside it).
    paths : sequence of path
        Files and folders.
    population : {"adult", "pediatric", "any"}, optional
        Which age group is wanted (:func:`cxrlab.filter.model.decide`; no header age is known here).
    threshold : float, optional
        Confidence for an automatic decision.
    executor : Executor, optional
        Workers (each runs onnxruntime on one thread).
    on_progress : callable, optional
        ``on_progress(done, total)``.

    Returns
    -------
    PredictResult

    Raises
    ------
    ModelError
        The model cannot be used.
    """
    model = FilterModel(model_path)  # refuse a bad model before reading any image
    files, skipped = find_inputs(paths)
    result = PredictResult(skipped=skipped, model=model.short_id)
    pairs = (executor or Executor()).map(score_file, files, str(model.path), 1, chunksize=2)
    for done, (name, pred) in enumerate(pairs, start=1):
        if isinstance(pred, str):
            result.problems.append((name, pred))
            row = dict.fromkeys(COLUMNS, "")
            row.update({"file": name, "decision": "needs_verification"})
        else:
            d = decide(pred, population=population, threshold=threshold)
            row = {"file": name, "class": d.klass, **pred.probabilities(), "decision": d.decision}
        result.rows.append(row)
        if on_progress:
            on_progress(done, len(files))
    return result


def format_rows(rows: Sequence[dict[str, Any]], fmt: str) -> str:
    """Render rows as ``csv`` (header + one line per file, probabilities with 6 decimals) or ``json`` (a list).

    Raises
    ------
    ValueError
        Unknown format.
    """
    def cell(v: Any) -> Any:
        return f"{v:.6f}" if isinstance(v, float) else v

    if fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(COLUMNS)
        for r in rows:
            w.writerow([cell(r[c]) for c in COLUMNS])
        return buf.getvalue()
    if fmt == "json":
        clean = [{c: (None if r[c] == "" else r[c]) for c in COLUMNS} for r in rows]
        return json.dumps(clean, indent=2) + "\n"
    raise ValueError("format must be csv or json")
