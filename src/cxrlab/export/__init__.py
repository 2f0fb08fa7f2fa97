"""Export: versioned releases in the seeds' layouts (VinDr CSVs) and COCO, YOLO, NIH, JSON and PNG."""

from cxrlab.deprecation import renamed
from cxrlab.export.coco import coco_dict, write_coco
from cxrlab.export.nih import write_nih
from cxrlab.export.release import (
    FORMATS,
    LABEL_SOURCES,
    REPORT_RAD_ID,
    majority_boxes,
    release_json,
    report_tables_from_workspace,
    run_export,
    tables_from_workspace,
    write_release,
)
from cxrlab.export.vindr import (
    ANNOTATION_COLUMNS,
    annotation_rows,
    frame_csv_text,
    label_rows,
    write_csv,
    write_vindr_csvs,
)
from cxrlab.export.yolo import write_yolo

__all__ = [
    "ANNOTATION_COLUMNS",
    "FORMATS",
    "LABEL_SOURCES",
    "REPORT_RAD_ID",
    "annotation_rows",
    "frame_csv_text",
    "coco_dict",
    "label_rows",
    "majority_boxes",
    "release_json",
    "report_tables_from_workspace",
    "run_export",
    "tables_from_workspace",
    "write_coco",
    "write_csv",
    "write_nih",
    "write_release",
    "write_vindr_csvs",
    "write_yolo",
]

__getattr__ = renamed(__name__, {"export_release": "run_export"}, globals())
