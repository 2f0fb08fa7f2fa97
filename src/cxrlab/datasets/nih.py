"""NIH ChestX-ray14 as a dataset: the PNGs, the 14 text-mined labels and the box list.

Layout (NIH ChestX-ray14 README, "Contents"): ``images/`` (or ``images_*/images/``) with 1024 x 1024 PNGs,
``Data_Entry_2017.csv`` (the labels, ``Finding Labels`` joined by ``|``), ``BBox_List_2017.csv`` ("984 bounding
boxes for 8 pathologies", in the 1024 x 1024 PNG's pixels) and ``train_val_list.txt`` / ``test_list.txt`` (the
patient-level split). The files are read by :func:`cxrlab.ingest.read_nih_release`; an image listed in
``Data_Entry`` but absent under ``images*/`` (a partial download of the 12 archives) is skipped with one warning.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from cxrlab.datasets.base import BaseDataset, _Item
from cxrlab.datasets.vindr import _records
from cxrlab.errors import CxrlabError
from cxrlab.ingest.nih import PNG_SIDE, read_nih_release

__all__ = ["NIH_SPLITS", "NIHDataset"]

#: Splits of :class:`NIHDataset`: ``train`` (``train_val_list.txt``), ``test`` (``test_list.txt``) or ``all``.
NIH_SPLITS = ("train", "test", "all")


class NIHDataset(BaseDataset):
    """One split of an NIH ChestX-ray14 folder as ``(image, target)`` items.

    Parameters
    ----------
    root : path
        Holds ``images/`` (or ``images_001/images/`` ...), ``Data_Entry_2017*.csv[.gz]``, optionally
        ``BBox_List_2017.csv[.gz]``, ``train_val_list.txt`` and ``test_list.txt``.
    split : {"train", "test", "all"}
        ``train`` = the names of ``train_val_list.txt``, ``test`` = ``test_list.txt`` (both needed for these);
        ``all`` = every row of ``Data_Entry``.
    bbox : bool
        Read ``BBox_List_2017.csv`` when present (its boxes are in the 1024 x 1024 PNG's pixels,
        :data:`cxrlab.ingest.nih.PNG_SIDE`, and are scaled to the returned image).
    **kwargs
        Rendering, cache, transforms and ``strict``: :class:`~cxrlab.datasets.base.BaseDataset`.

    Notes
    -----
    ``target["image_id"]`` is the ``Image Index`` as written (``00000001_000.png``); ``labels`` has the 14 NIH
    labels (all 0 for "No Finding").

    Raises
    ------
    CxrlabError
        No ``Data_Entry`` file, an unknown split or a split list missing, or (``strict``) images absent on disk.
    """

    def __init__(self, root: str | os.PathLike[str], split: str = "train", bbox: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if split not in NIH_SPLITS:
            raise CxrlabError(f"split must be one of {', '.join(NIH_SPLITS)}, got {split!r}")
        self.root = Path(root)
        self.split = split
        tables = read_nih_release(self.root)
        self.tables = tables
        self.schema = tables.schema
        self.label_names = tables.schema.names
        images = tables.images
        if split != "all":
            listed = images["split"].notna()
            if not listed.any():
                raise CxrlabError(f"{self.root}: no train_val_list.txt / test_list.txt here: use split='all'")
            images = images.loc[images["split"] == split]
        labels = tables.consensus_labels.set_index("image_id").reindex(images["image_id"])[self.label_names]
        matrix = labels.fillna(0).to_numpy(dtype=np.int64)
        boxes = _records(tables.consensus_boxes) if bbox else {}
        paths = images["path"] if "path" in images else [None] * len(images)
        items = []
        for iid, path, vec in zip(images["image_id"].astype(str), paths, matrix, strict=True):
            file = Path(path) if isinstance(path, str) and path else self.root / "images" / iid
            item = _Item(image_id=iid, path=file, labels=vec, boxes=boxes.get(iid, []))
            item.box_frame = (PNG_SIDE, PNG_SIDE)  # BBox_List_2017.csv is in the 1024 x 1024 PNG's pixels
            items.append(item)
        self._items = self._keep_present(items, where=str(self.root), split=split)
