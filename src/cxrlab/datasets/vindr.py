"""VinDr-layout releases as datasets: a public VinDr-CXR/PCXR download, a phantom release, a cxrlab export.

Layout (VinDr-CXR data descriptor, "Data Records"): ``annotations_{train,test}.csv`` (one row per box per reader,
the test set's rows the consensus with an empty ``rad_id``), ``image_labels_{train,test}.csv`` and the images in
``train/`` and ``test/`` as ``<image_id>.dicom``. The tables are read by :func:`cxrlab.ingest.read_vindr`; the
readers' labels and boxes are fused by :mod:`cxrlab.consensus` (majority vote, weighted boxes fusion), the code
behind ``cxrlab consensus`` and ``cxrlab stats table2``, so a dataset's label counts are Table 2's.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cxrlab.consensus import fuse_reader_boxes, image_positives
from cxrlab.datasets.base import BaseDataset, _Item
from cxrlab.datasets.images import RASTER_SUFFIXES
from cxrlab.errors import CxrlabError
from cxrlab.ingest.vindr import find_release_files, read_vindr
from cxrlab.schemas import BOX_COLUMNS, ReleaseTables, get_schema

__all__ = ["BOX_CHOICES", "LABEL_CHOICES", "ReleaseDataset", "VinDrDataset"]

#: Label fusion choices (plus ``reader:<rad_id>``): see :class:`VinDrDataset`.
LABEL_CHOICES = ("majority", "any", "consensus")
#: Box choices: see :class:`VinDrDataset`.
BOX_CHOICES = ("wbf", "majority", "all")
_IMAGE_SUFFIXES = (".dicom", ".dcm", *sorted(RASTER_SUFFIXES))


def _image_files(folder: Path) -> dict[str, Path]:
    """``image_id -> file`` below *folder*: DICOM files by stem (``<image_id>.dicom``), rasters by name and stem."""
    files: dict[str, Path] = {}
    if not folder.is_dir():
        return files
    for p in sorted(folder.rglob("*")):
        suffix = p.suffix.lower()
        if suffix not in _IMAGE_SUFFIXES or not p.is_file():
            continue
        files.setdefault(p.stem, p)
        if suffix in RASTER_SUFFIXES:
            files.setdefault(p.name, p)
    return files


def _records(frame: pd.DataFrame, extra: tuple[str, ...] = ()) -> dict[str, list[dict[str, Any]]]:
    """Boxes by image: ``{"label", "x_min", "y_min", "x_max", "y_max", *extra}`` (NaN extras left out)."""
    out: dict[str, list[dict[str, Any]]] = {}
    if frame.empty:
        return out
    cols = [c for c in extra if c in frame]
    ids = frame["image_id"].astype(str).to_numpy()
    names = frame["class_name"].to_numpy()
    coords = frame[BOX_COLUMNS].to_numpy(dtype=np.float64)
    more = {c: frame[c].to_numpy() for c in cols}
    for i in range(len(frame)):
        if np.isnan(coords[i]).any():
            continue
        box: dict[str, Any] = {"label": str(names[i]), **dict(zip(BOX_COLUMNS, map(float, coords[i]), strict=True))}
        for c in cols:
            v = more[c][i]
            if not (isinstance(v, float) and np.isnan(v)) and v is not None:
                box[c] = v.item() if hasattr(v, "item") else v
        out.setdefault(ids[i], []).append(box)
    return out


def resolve_labels(tables: ReleaseTables, ids: list[str], labels: str, *, threshold: float = 0.5) -> pd.DataFrame:
    """The 0/1 labels of *ids* under a fusion choice: ``image_id`` and one column per schema label.

    Parameters
    ----------
    labels : str
        ``majority``: the consensus where the image has one (a test set), else more than *threshold* of its
        readers (:func:`cxrlab.consensus.image_positives`, what Table 2 counts: VinDr-CXR data descriptor, Table 2
        note, "based on the majority vote of the participating radiologists"); ``any``: the same with any reader
        (threshold 0); ``consensus``: only images with consensus labels; ``reader:<rad_id>``: only the images
        that reader read, with that reader's labels.

    Raises
    ------
    CxrlabError
        Unknown choice, or no image has labels of that kind.
    """
    names = tables.schema.names
    if labels in ("majority", "any"):
        frame = image_positives(tables, ids, threshold=threshold if labels == "majority" else 0.0)
    elif labels == "consensus":
        cons = tables.consensus_labels
        frame = cons.loc[cons["image_id"].isin(set(ids))]
        if frame.empty:
            raise CxrlabError("no consensus labels for these images (a training set has one row per reader): "
                              "use labels='majority', 'any' or 'reader:<rad_id>'")
    elif labels.startswith("reader:"):
        rad = labels.split(":", 1)[1]
        rl = tables.reader_labels
        frame = rl.loc[(rl["rad_id"].astype(str) == rad) & rl["image_id"].isin(set(ids))]
        if frame.empty:
            known = sorted(rl.loc[rl["image_id"].isin(set(ids)), "rad_id"].dropna().astype(str).unique())
            raise CxrlabError(f"reader {rad!r} read none of these images (readers: {', '.join(known) or 'none'})")
    else:
        raise CxrlabError(f"labels must be one of {', '.join(LABEL_CHOICES)} or reader:<rad_id>, got {labels!r}")
    frame = frame.reindex(columns=["image_id", *names]).drop_duplicates("image_id")
    frame[names] = frame[names].fillna(0).astype(int)
    return frame.reset_index(drop=True)


def resolve_boxes(
    tables: ReleaseTables, ids: list[str], boxes: str, labels: str, *, threshold: float = 0.5, iou_thr: float = 0.4
) -> pd.DataFrame:
    """The boxes of *ids* under a box choice: ``image_id, class_name, x_min, y_min, x_max, y_max`` (+ ``score``,
    ``votes`` or ``rad_id``), in the original image's pixels.

    ``wbf``: an image's consensus boxes when it has consensus labels (a test set), else its readers' boxes fused by
    weighted boxes fusion at IoU > *iou_thr* (:func:`cxrlab.consensus.fuse_reader_boxes`; 0.4, the VinDr-CXR
    challenge's matching); ``majority``: the same keeping fused boxes drawn by more than *threshold* of the readers
    (what ``cxrlab export`` releases as consensus); ``all``: every reader's box with its ``rad_id`` (and the
    consensus boxes of images without readers). With ``labels="reader:<rad_id>"`` the boxes are that reader's.
    """
    if boxes not in BOX_CHOICES:
        raise CxrlabError(f"boxes must be one of {', '.join(BOX_CHOICES)}, got {boxes!r}")
    keep = set(ids)
    rb = tables.reader_boxes.loc[tables.reader_boxes["image_id"].isin(keep)]
    cb = tables.consensus_boxes.loc[tables.consensus_boxes["image_id"].isin(keep)]
    if labels.startswith("reader:"):
        return rb.loc[rb["rad_id"].astype(str) == labels.split(":", 1)[1]].reset_index(drop=True)
    with_consensus = set(tables.consensus_labels["image_id"]) | set(cb["image_id"])
    if boxes == "all":
        rest = cb.loc[~cb["image_id"].isin(set(rb["image_id"]))]
        return pd.concat([f for f in (rb, rest) if len(f)] or [rb], ignore_index=True)
    rl = tables.reader_labels
    n_readers = rl.loc[rl["image_id"].isin(keep)].groupby("image_id")["rad_id"].nunique()
    fused = fuse_reader_boxes(rb.loc[~rb["image_id"].isin(with_consensus)], iou_thr=iou_thr, method=boxes,
                              threshold=threshold, readers=n_readers if len(n_readers) else None)
    own = cb.loc[cb["image_id"].isin(with_consensus)]
    return pd.concat([f for f in (own, fused) if len(f)] or [fused], ignore_index=True)


class VinDrDataset(BaseDataset):
    """One split of a VinDr-layout release folder as ``(image, target)`` items.

    Parameters
    ----------
    root : path
        The release folder: ``annotations_*.csv[.gz]``, ``image_labels_*.csv[.gz]`` and ``train/``, ``test/``
        with ``<image_id>.dicom`` files (PNG/JPEG files are read too).
    split : str
        ``train``, ``test`` (or any split the CSV names give).
    labels : str
        Label fusion (:func:`resolve_labels`): ``majority`` (Table 2's counts), ``any``, ``consensus`` or
        ``reader:<rad_id>`` (e.g. ``reader:R8``: that reader's images and labels).
    boxes : {"wbf", "majority", "all"}
        Box choice (:func:`resolve_boxes`).
    readers : bool
        Add ``target["readers"]``: each reader's raw marks, ``{"rad_id", "labels", "boxes"}``.
    schema : str, optional
        Label schema name (``vindr-cxr``, ``vindr-pcxr``, ...); guessed from the CSVs when not given.
    threshold, iou_thr : float
        Majority share (strictly more than) and the WBF IoU threshold.
    **kwargs
        Rendering, cache, transforms and ``strict``: :class:`~cxrlab.datasets.base.BaseDataset`.

    Notes
    -----
    ``target`` holds ``image_id``, ``labels`` (label name -> 0/1, the schema's names), ``label_vector`` (float32
    in schema order), ``boxes`` (dicts with ``label`` and ``x_min, y_min, x_max, y_max`` in the returned image's
    pixels, plus ``score``/``votes`` or ``rad_id`` when known) and, with *readers*, ``readers``.

    Raises
    ------
    CxrlabError
        No CSV in *root*, an empty split, an unknown choice, or (``strict``) images absent on disk.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        split: str = "train",
        labels: str = "majority",
        boxes: str = "wbf",
        *,
        readers: bool = False,
        schema: str | None = None,
        threshold: float = 0.5,
        iou_thr: float = 0.4,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.root = Path(root)
        found = find_release_files(self.root)
        if not found["annotations"] and not found["image_labels"]:
            raise CxrlabError(f"{self.root}: no annotations_*.csv or image_labels_*.csv in this folder")
        tables = read_vindr(found["annotations"], found["image_labels"], schema=schema)
        self.split, self.labels, self.boxes = split, labels, boxes
        self._build(tables, readers=readers, threshold=threshold, iou_thr=iou_thr)

    def _build(self, tables: ReleaseTables, *, readers: bool, threshold: float, iou_thr: float) -> None:
        self.tables = tables
        self.schema = tables.schema
        self.label_names = tables.schema.names
        ids = tables.split_ids(self.split)
        if not ids:
            raise CxrlabError(f"{self.root}: no image in split {self.split!r} (splits: "
                              f"{', '.join(tables.splits) or 'none'})")
        label_frame = resolve_labels(tables, ids, self.labels, threshold=threshold)
        box_frame = resolve_boxes(tables, list(label_frame["image_id"]), self.boxes, self.labels,
                                  threshold=threshold, iou_thr=iou_thr)
        boxes = _records(box_frame, ("score", "votes", "rad_id"))
        marks = self._reader_marks(tables, set(label_frame["image_id"])) if readers else None
        files = _image_files(self.root / self.split)
        items = []
        matrix = label_frame[self.label_names].to_numpy(dtype=np.int64)
        for iid, vec in zip(label_frame["image_id"].astype(str), matrix, strict=True):
            items.append(_Item(image_id=iid, path=files.get(iid, self.root / self.split / f"{iid}.dicom"),
                               labels=vec, boxes=boxes.get(iid, []),
                               readers=None if marks is None else marks.get(iid, [])))
        self._items = self._keep_present(items, where=str(self.root), split=self.split)

    def _reader_marks(self, tables: ReleaseTables, keep: set[str]) -> dict[str, list[dict[str, Any]]]:
        """Each reader's labels (name -> 0/1) and boxes, by image."""
        names = self.label_names
        rl = tables.reader_labels.loc[tables.reader_labels["image_id"].isin(keep)]
        rb = tables.reader_boxes.loc[tables.reader_boxes["image_id"].isin(keep)]
        by_reader: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for iid, group in rb.groupby("image_id", sort=False):
            for rad, g in group.groupby(group["rad_id"].astype(str), sort=True):
                by_reader[(str(iid), str(rad))] = _records(g).get(str(iid), [])
        out: dict[str, list[dict[str, Any]]] = {}
        values = rl[names].fillna(0).to_numpy(dtype=np.int64)
        for iid, rad, vec in zip(rl["image_id"].astype(str), rl["rad_id"].astype(str), values, strict=True):
            out.setdefault(iid, []).append({"rad_id": rad, "labels": dict(zip(names, map(int, vec), strict=True)),
                                            "boxes": by_reader.get((iid, rad), [])})
        for marks in out.values():
            marks.sort(key=lambda m: m["rad_id"])
        return out


class ReleaseDataset(VinDrDataset):
    """One split of a release written by ``cxrlab export`` (the VinDr layout plus ``manifest.json``).

    The label schema is the manifest's (``label_schema.name``); everything else is :class:`VinDrDataset`'s. The
    training split of an export holds one row per reader (labels ``majority`` by default), the test split the
    consensus (``labels="consensus"`` works there).

    Raises
    ------
    CxrlabError
        *export_dir* has no readable ``manifest.json`` (not a cxrlab export), or what :class:`VinDrDataset`
        raises.
    """

    def __init__(self, export_dir: str | os.PathLike[str], split: str = "train", labels: str = "majority",
                 boxes: str = "wbf", **kwargs: Any) -> None:
        manifest_path = Path(export_dir) / "manifest.json"
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
            schema_name = str(manifest["label_schema"]["name"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise CxrlabError(f"{manifest_path}: not a cxrlab export (no readable manifest.json: "
                              f"{type(exc).__name__})") from None
        self.manifest = manifest
        try:
            get_schema(schema_name)
        except KeyError:
            schema_name = None  # a custom schema: guessed from the CSV headers
        kwargs.setdefault("schema", schema_name)
        super().__init__(export_dir, split, labels, boxes, **kwargs)
