"""The dataset core shared by the VinDr, NIH and release datasets: items, boxes in the resized frame, the cache.

A dataset is a map-style sequence of ``(image, target)`` pairs: ``len(ds)`` and ``ds[i]``. That is all
``torch.utils.data.DataLoader`` asks of a map-style dataset (PyTorch documentation, ``torch.utils.data``,
"Map-style datasets": "implements the ``__getitem__()`` and ``__len__()`` protocols"), so the classes need no
torch to import and work in a DataLoader as they are; :func:`collate` batches targets of different lengths.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cxrlab.datasets.cache import ImageCache, cache_key
from cxrlab.datasets.images import WINDOWS, image_size, load_image
from cxrlab.errors import CxrlabError

__all__ = ["BaseDataset", "MissingImagesWarning", "collate"]


class MissingImagesWarning(UserWarning):
    """Images listed by a release's tables are absent on disk (a partial download): they are skipped."""


@dataclass
class _Item:
    """One image of a dataset: its id, file, labels and boxes (in the original image's pixels)."""

    image_id: str
    path: Path
    labels: np.ndarray
    boxes: list[dict[str, Any]] = field(default_factory=list)
    readers: list[dict[str, Any]] | None = None
    key: str | None = None
    box_frame: tuple[int, int] | None = None


def _size(size: int | Sequence[int] | None) -> tuple[int, int] | None:
    if size is None:
        return None
    if isinstance(size, int | np.integer):
        rows = cols = int(size)
    else:
        rows, cols = (int(v) for v in size)
    if rows < 1 or cols < 1:
        raise ValueError(f"size must be a positive side or (rows, columns), got {size!r}")
    return rows, cols


class BaseDataset:
    """Items ``(image, target)`` of one split of a release (use :class:`~cxrlab.datasets.VinDrDataset`,
    :class:`~cxrlab.datasets.NIHDataset` or :class:`~cxrlab.datasets.ReleaseDataset`).

    Parameters
    ----------
    size : int or (rows, columns) or None
        Output shape; an int gives a square (the aspect ratio is not kept, boxes are scaled per axis). None
        keeps each image's own size.
    window : {"file", "full", "auto"}
        :data:`cxrlab.datasets.WINDOWS`.
    cache_dir : path, optional
        An :class:`~cxrlab.datasets.ImageCache` folder: rendered images are stored there on first use and read
        back memory-mapped, so later epochs never decode a file again.
    transform, target_transform, transforms : callable, optional
        torchvision's conventions: ``transform(image) -> image``, ``target_transform(target) -> target``,
        ``transforms(image, target) -> (image, target)`` (use the last for geometric changes: it sees the boxes).
        Applied after the cache, so random augmentations differ every epoch.
    as_tensor : bool
        Return the image as a ``torch.float32`` tensor of shape (1, rows, columns) and ``label_vector`` as a
        tensor (needs torch); default numpy.
    strict : bool
        Refuse (:class:`~cxrlab.errors.CxrlabError`) instead of skipping images absent on disk.

    Attributes
    ----------
    label_names : list of str
        The schema's label names in seed order (the keys of ``target["labels"]``).
    decoded, cache_hits : int
        Images decoded and images read from the cache by this process (for checks and benchmarks).
    """

    def __init__(
        self,
        *,
        size: int | Sequence[int] | None = 512,
        window: str = "file",
        cache_dir: str | os.PathLike[str] | None = None,
        transform: Callable[[Any], Any] | None = None,
        target_transform: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
        transforms: Callable[[Any, dict[str, Any]], tuple[Any, dict[str, Any]]] | None = None,
        as_tensor: bool = False,
        strict: bool = False,
    ) -> None:
        if window not in WINDOWS:
            raise ValueError(f"window must be one of {', '.join(WINDOWS)}, got {window!r}")
        self.size = _size(size)
        self.window = window
        self.cache = ImageCache(cache_dir) if cache_dir is not None else None
        self.transform = transform
        self.target_transform = target_transform
        self.transforms = transforms
        self.as_tensor = as_tensor
        self.strict = strict
        self.label_names: list[str] = []
        self.decoded = 0
        self.cache_hits = 0
        self._items: list[_Item] = []

    # -- building -----------------------------------------------------------------------------------------

    def _keep_present(self, items: list[_Item], *, where: str, split: str) -> list[_Item]:
        """Drop (one warning) or refuse (*strict*) the items whose file is absent; stat the others for the
        cache key."""
        present, missing = [], []
        for item in items:
            try:
                st = os.stat(item.path)
            except OSError:
                missing.append(item.image_id)
                continue
            if self.cache is not None:
                item.key = cache_key(item.path, st, self.size, self.window)
            present.append(item)
        if missing:
            msg = (f"{where}: {len(missing)} of {len(items)} images of split {split} are listed but absent on disk "
                   f"(a partial download?), e.g. {missing[0]}")
            if self.strict:
                raise CxrlabError(msg)
            warnings.warn(msg + "; they are skipped", MissingImagesWarning, stacklevel=3)
        return present

    # -- the sequence protocol ----------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._items)

    @property
    def image_ids(self) -> list[str]:
        """Image ids in item order."""
        return [it.image_id for it in self._items]

    def label_matrix(self) -> np.ndarray:
        """0/1 labels of every item, shape (items, labels), columns in :attr:`label_names` order (no decoding)."""
        if not self._items:
            return np.zeros((0, len(self.label_names)), dtype=np.int64)
        return np.stack([it.labels for it in self._items]).astype(np.int64)

    def load(self, index: int) -> np.ndarray:
        """The rendered image of item *index* (from the cache when it holds it), before any transform."""
        item = self._items[index]
        if self.cache is not None and item.key is not None:
            cached = self.cache.get(item.key, self.size)
            if cached is not None:
                self.cache_hits += 1
                return cached
        image, original = load_image(item.path, size=self.size, window=self.window)
        self.decoded += 1
        if item.box_frame is None:
            item.box_frame = original
        if self.cache is not None and item.key is not None:
            self.cache.put(item.key, image)
        return image

    def _frame(self, item: _Item) -> tuple[int, int]:
        """The (rows, columns) the item's boxes are given in: known, or read from the file's header."""
        if item.box_frame is None:
            item.box_frame = image_size(item.path)
        return item.box_frame

    def _scaled(self, boxes: list[dict[str, Any]], item: _Item, shape: tuple[int, int]) -> list[dict[str, Any]]:
        if not boxes:
            return []
        rows, cols = self._frame(item)
        sx, sy = shape[1] / cols, shape[0] / rows
        out = []
        for b in boxes:
            d = dict(b)
            d["x_min"], d["x_max"] = b["x_min"] * sx, b["x_max"] * sx
            d["y_min"], d["y_max"] = b["y_min"] * sy, b["y_max"] * sy
            out.append(d)
        return out

    def target(self, index: int, shape: tuple[int, int] | None = None) -> dict[str, Any]:
        """The target of item *index* with boxes in the frame of an image of *shape* (default the output size;
        with ``size=None`` the original frame). Never decodes the image (a box frame may need its header)."""
        item = self._items[index]
        shape = shape or self.size or self._frame(item)
        target: dict[str, Any] = {
            "image_id": item.image_id,
            "labels": {n: int(v) for n, v in zip(self.label_names, item.labels, strict=True)},
            "label_vector": item.labels.astype(np.float32),
            "boxes": self._scaled(item.boxes, item, shape),
        }
        if item.readers is not None:
            target["readers"] = [{"rad_id": r["rad_id"], "labels": r["labels"],
                                  "boxes": self._scaled(r["boxes"], item, shape)} for r in item.readers]
        return target

    def __getitem__(self, index: int) -> tuple[Any, dict[str, Any]]:
        if not -len(self._items) <= index < len(self._items):
            raise IndexError(f"index {index} out of range for {len(self._items)} items")
        index %= len(self._items)
        image = self.load(index)
        target = self.target(index, image.shape[:2])
        if self.as_tensor:
            import torch

            image = torch.from_numpy(np.ascontiguousarray(image))[None]
            target["label_vector"] = torch.from_numpy(target["label_vector"])
        if self.transform is not None:
            image = self.transform(image)
        if self.target_transform is not None:
            target = self.target_transform(target)
        if self.transforms is not None:
            image, target = self.transforms(image, target)
        return image, target

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({len(self)} images, size={self.size}, window={self.window!r}, "
                f"cache={'on' if self.cache is not None else 'off'})")


def collate(batch: Sequence[tuple[Any, dict[str, Any]]]) -> tuple[Any, list[dict[str, Any]]]:
    """Batch ``(image, target)`` items for a DataLoader (``collate_fn=collate``): images stacked (a torch tensor
    when they are tensors, else a numpy array), targets kept as a list (their boxes differ in number)."""
    images = [b[0] for b in batch]
    targets = [b[1] for b in batch]
    if images and type(images[0]).__module__.startswith("torch"):
        import torch

        # numpy's copy, then a zero-copy tensor: torch.stack's threads cost ~100x more on a busy 2-core machine.
        return torch.from_numpy(np.stack([im.numpy() for im in images])), targets
    return np.stack(images), targets
