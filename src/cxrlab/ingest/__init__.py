"""Ingest: bring DICOM files into the workspace (folders), and read public releases (VinDr, NIH)."""

from cxrlab.deprecation import renamed
from cxrlab.ingest.folder import IngestResult, check_file, probe_file, record_result, run_ingest, store_raw
from cxrlab.ingest.nih import read_bbox_list, read_data_entry, read_nih, read_nih_release, read_split_list
from cxrlab.ingest.tables import Column, CsvFormatError, CsvTable, read_table
from cxrlab.ingest.vindr import read_meta, read_vindr, read_vindr_challenge, read_vindr_release

__all__ = [
    "Column",
    "CsvFormatError",
    "CsvTable",
    "IngestResult",
    "check_file",
    "probe_file",
    "read_bbox_list",
    "read_data_entry",
    "read_meta",
    "read_nih",
    "read_nih_release",
    "read_split_list",
    "read_table",
    "read_vindr",
    "read_vindr_challenge",
    "read_vindr_release",
    "record_result",
    "run_ingest",
    "store_raw",
]

__getattr__ = renamed(__name__, {"ingest_folder": "run_ingest"}, globals())
