"""Datasets for model training: VinDr-layout releases, NIH ChestX-ray14 and cxrlab exports as ``(image, target)``.

The images go through cxrlab's display pipeline (:func:`cxrlab.dicom.display.render_float`) at a requested size
and window, optionally cached on disk (:class:`ImageCache`); the labels and boxes of several readers are fused by
:mod:`cxrlab.consensus` (majority vote, weighted boxes fusion), as ``cxrlab stats table2`` counts them. No torch
is needed to import this package: the datasets are plain sequences (``len``, ``[i]``), which is all a
``torch.utils.data.DataLoader`` needs; ``as_tensor=True`` returns tensors. :func:`write_phantom_release` writes a
VinDr-layout release of phantoms with planted findings for tests and baselines.
"""

from cxrlab.datasets.base import BaseDataset, MissingImagesWarning, collate
from cxrlab.datasets.cache import ImageCache
from cxrlab.datasets.images import WINDOWS, load_image
from cxrlab.datasets.nih import NIH_SPLITS, NIHDataset
from cxrlab.datasets.phantom import write_phantom_release
from cxrlab.datasets.vindr import (
    BOX_CHOICES,
    LABEL_CHOICES,
    ReleaseDataset,
    VinDrDataset,
    resolve_boxes,
    resolve_labels,
)

__all__ = [
    "BOX_CHOICES",
    "LABEL_CHOICES",
    "NIH_SPLITS",
    "WINDOWS",
    "BaseDataset",
    "ImageCache",
    "MissingImagesWarning",
    "NIHDataset",
    "ReleaseDataset",
    "VinDrDataset",
    "collate",
    "load_image",
    "resolve_boxes",
    "resolve_labels",
    "write_phantom_release",
]
