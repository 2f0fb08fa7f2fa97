"""Export: releases in the seeds' layouts (VinDr CSVs now; COCO, YOLO, NIH later)."""

from cxrlab.export.vindr import ANNOTATION_COLUMNS, export_release, write_csv

__all__ = ["ANNOTATION_COLUMNS", "export_release", "write_csv"]
