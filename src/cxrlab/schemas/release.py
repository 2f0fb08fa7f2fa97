"""The in-memory tables of a release, shared by the importers, the workspace, the exporters and the statistics.

One release = images (with their split and metadata), what each reader marked (boxes and 0/1 image labels,
the train layout of the VinDr data descriptors) and the aggregated result (consensus boxes and labels, the
test layout). The importers (:mod:`cxrlab.ingest`) fill it from public files, the workspace export fills it
from the catalog, and every writer (:mod:`cxrlab.export`) and statistic (:mod:`cxrlab.stats`) reads it, so a
public release and a cxrlab release go through the same code.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from cxrlab.schemas.labels import LabelSchema

__all__ = [
    "BOX_COLUMNS",
    "BOX_TOLERANCE",
    "IMAGE_COLUMNS",
    "MAX_IMAGE_SIDE",
    "SIZE_RULE",
    "ReleaseTables",
    "bad_image_sizes",
    "box_problems",
]

#: Image columns (all but ``image_id`` optional). ``rows``/``columns`` are the image height/width in pixels,
#: ``file_size`` in bytes, ``path`` the image file when known; ``patient_id``, ``follow_up``,
#: ``view_position``, ``spacing_x``/``spacing_y`` and ``finding_labels`` carry NIH ``Data_Entry`` fields.
IMAGE_COLUMNS = [
    "image_id",
    "split",
    "path",
    "rows",
    "columns",
    "sex",
    "age_years",
    "study_year",
    "file_size",
    "patient_id",
    "follow_up",
    "view_position",
    "spacing_x",
    "spacing_y",
    "finding_labels",
]
#: Box coordinates in pixels of the original image: (x_min, y_min) upper-left, (x_max, y_max) lower-right
#: (VinDr-CXR data descriptor, "Data Records").
BOX_COLUMNS = ["x_min", "y_min", "x_max", "y_max"]
#: Largest image side in pixels: (0028,0010) Rows and (0028,0011) Columns are US, 0-65,535 (PS3.3 C.7.6.3.1,
#: PS3.5 Table 6.2-1); an image has at least one row and column.
MAX_IMAGE_SIDE = 65535
#: Pixels a box may pass the image border by before it is "beyond the image" (the submission validator's
#: :data:`cxrlab.evaluate.validate.TOLERANCE`).
BOX_TOLERANCE = 1.0
#: What :func:`bad_image_sizes` refuses, for messages.
SIZE_RULE = f"is not a whole number from 1 to {MAX_IMAGE_SIDE:,} (DICOM Rows/Columns)"


def bad_image_sizes(values: object) -> np.ndarray:
    """Mask of image sizes (rows, columns, width or height) that are not whole numbers from 1 to
    :data:`MAX_IMAGE_SIDE`; an empty value (NaN) is unknown, not bad."""
    v = np.asarray(values, dtype=np.float64)
    ok = (v >= 1) & (v <= MAX_IMAGE_SIDE) & (v == np.floor(v))
    return ~np.isnan(v) & ~ok


def box_problems(coords: np.ndarray, width: object = None, height: object = None) -> list[tuple[np.ndarray, str]]:
    """The rows of *coords* (``x_min, y_min, x_max, y_max``, shape (n, 4)) whose box leaves the image.

    Parameters
    ----------
    coords : ndarray, shape (n, 4)
        Rows with a NaN coordinate are not judged here.
    width, height : array-like of shape (n,), optional
        Each row's image size; NaN (or None for all) when unknown, and then the bound is
        :data:`MAX_IMAGE_SIDE`, the largest image DICOM can describe.

    Returns
    -------
    list of (mask, reason)
        ``negative coordinate``, ``coordinate beyond the image`` (size known, by more than
        :data:`BOX_TOLERANCE` px) and ``coordinate beyond 65,535`` (size unknown); empty masks are left out.
    """
    c = np.asarray(coords, dtype=np.float64).reshape(-1, 4)
    n = len(c)
    w = np.full(n, np.nan) if width is None else np.asarray(width, dtype=np.float64).reshape(n)
    h = np.full(n, np.nan) if height is None else np.asarray(height, dtype=np.float64).reshape(n)
    known = ~np.isnan(w) & ~np.isnan(h)
    with np.errstate(invalid="ignore"):
        negative = (c < 0).any(axis=1)
        beyond_image = known & ((c[:, [0, 2]] > (w + BOX_TOLERANCE)[:, None]).any(axis=1)
                                | (c[:, [1, 3]] > (h + BOX_TOLERANCE)[:, None]).any(axis=1))
        beyond_limit = ~known & (c > MAX_IMAGE_SIDE).any(axis=1)
    found = [
        (negative, "negative coordinate"),
        (beyond_image & ~negative, "coordinate beyond the image (its width or height)"),
        (beyond_limit & ~negative, f"coordinate beyond {MAX_IMAGE_SIDE:,} (the largest image side DICOM allows)"),
    ]
    return [(m, r) for m, r in found if m.any()]


def _frame(columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="float64" if c in BOX_COLUMNS else "object") for c in columns})


@dataclass
class ReleaseTables:
    """A release as five tables.

    Attributes
    ----------
    schema : LabelSchema
        Label order, kinds and class ids.
    images : DataFrame
        One row per image: :data:`IMAGE_COLUMNS` (missing ones are absent or empty).
    reader_boxes : DataFrame
        ``image_id, rad_id, class_name, x_min, y_min, x_max, y_max``: one row per box per reader.
    reader_labels : DataFrame
        ``image_id, rad_id`` and one 0/1 column per schema label: one row per reader per image.
    consensus_boxes : DataFrame
        ``image_id, class_name, x_min, y_min, x_max, y_max, score, votes`` (score/votes may be empty).
    consensus_labels : DataFrame
        ``image_id`` and one 0/1 column per schema label.
    known_labels : list of str
        Labels whose values the sources gave. An ``annotations_*.csv`` alone tells the local labels (from
        the boxes) and "No finding", not the other global labels; statistics show those as unknown.
    source : str
        Where the tables came from (``vindr``, ``nih``, ``workspace``), for the manifest.
    problems : list of (str, str)
        ``(file:line, reason)`` of input rows dropped under the ``warn``/``ignore`` bad-row policies.
    """

    schema: LabelSchema
    images: pd.DataFrame = field(default_factory=lambda: _frame(["image_id", "split"]))
    reader_boxes: pd.DataFrame = field(
        default_factory=lambda: _frame(["image_id", "rad_id", "class_name", *BOX_COLUMNS])
    )
    reader_labels: pd.DataFrame | None = None
    consensus_boxes: pd.DataFrame = field(
        default_factory=lambda: _frame(["image_id", "class_name", *BOX_COLUMNS, "score", "votes"])
    )
    consensus_labels: pd.DataFrame | None = None
    known_labels: list[str] | None = None
    source: str = ""
    problems: list[tuple[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        names = self.schema.names
        if self.reader_labels is None:
            self.reader_labels = _frame(["image_id", "rad_id", *names])
        if self.consensus_labels is None:
            self.consensus_labels = _frame(["image_id", *names])
        if self.known_labels is None:
            self.known_labels = list(names)

    @property
    def label_names(self) -> list[str]:
        """Schema label names in seed order."""
        return self.schema.names

    def split_ids(self, split: str) -> list[str]:
        """Image ids of *split*, sorted."""
        if "split" not in self.images:
            return []
        return sorted(self.images.loc[self.images["split"] == split, "image_id"].astype(str))

    @property
    def splits(self) -> list[str]:
        """Splits present, ``train`` and ``test`` first."""
        if "split" not in self.images:
            return []
        present = [s for s in self.images["split"].dropna().astype(str).unique()]
        order = {"train": 0, "test": 1}
        return sorted(present, key=lambda s: (order.get(s, 2), s))

    def subset(self, image_ids: list[str] | set[str]) -> ReleaseTables:
        """The same release restricted to *image_ids*."""
        keep = set(image_ids)

        def sel(df: pd.DataFrame) -> pd.DataFrame:
            return df.loc[df["image_id"].isin(keep)].reset_index(drop=True)

        return ReleaseTables(
            schema=self.schema,
            images=sel(self.images),
            reader_boxes=sel(self.reader_boxes),
            reader_labels=sel(self.reader_labels),
            consensus_boxes=sel(self.consensus_boxes),
            consensus_labels=sel(self.consensus_labels),
            known_labels=list(self.known_labels or []),
            source=self.source,
            problems=list(self.problems),
        )
