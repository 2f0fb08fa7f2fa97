"""Deterministic synthetic chest X-ray DICOM phantoms with planted PHI and known ground truth.

The generator builds CXR-like projection images in plain numpy (body envelope, two lung fields, heart and
mediastinum, spine, ribs, clavicles and diaphragm domes, plus noise), wraps them in realistic and
deliberately messy CR/DX headers (multi-byte character sets, private tags, nested sequences, several VOI
encodings) and optionally burns identifying text into the pixels. Every identifying string planted in the
header is listed in :attr:`PhantomTruth.phi`, every burned-in text line's bounding box in
:attr:`PhantomTruth.text_boxes`, so de-identification, filtering and OCR code can be tested against exact
ground truth. Planted findings (a nodule, an enlarged heart, a pleural effusion: :data:`FINDINGS`) come with
their boxes in :attr:`PhantomTruth.findings`, for training and testing models.

Everything, including UIDs, dates and times, is drawn from the ``numpy.random.Generator`` passed in, so a
given seed always yields byte-identical files (on the same library versions and fonts).

Examples
--------
>>> import numpy as np
>>> ds, truth = generate_phantom(np.random.default_rng(0), 0, size_range=(256, 384))
>>> truth.rows == ds.Rows
True
"""

from cxrlab.dicom.phantom.anatomy import chest_reference_boxes
from cxrlab.dicom.phantom.corpus import generate_phantoms
from cxrlab.dicom.phantom.findings import FINDINGS
from cxrlab.dicom.phantom.generate import generate_phantom
from cxrlab.dicom.phantom.header import CR_IMAGE_STORAGE, DX_PRESENTATION_STORAGE
from cxrlab.dicom.phantom.outliers import OUTLIER_CLASSES
from cxrlab.dicom.phantom.truth import PhantomTruth

__all__ = [
    "CR_IMAGE_STORAGE",
    "DX_PRESENTATION_STORAGE",
    "FINDINGS",
    "OUTLIER_CLASSES",
    "PhantomTruth",
    "chest_reference_boxes",
    "generate_phantom",
    "generate_phantoms",
]
