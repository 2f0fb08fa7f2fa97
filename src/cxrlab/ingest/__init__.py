"""Ingest: bring DICOM files into the workspace (folders), and read public releases (VinDr, NIH)."""

from cxrlab.ingest.folder import IngestResult, ingest_folder, probe_file
from cxrlab.ingest.nih import read_bbox_list, read_data_entry, read_nih, read_nih_release, read_split_list
from cxrlab.ingest.tables import Column, CsvFormatError, CsvTable, read_table
from cxrlab.ingest.vindr import read_meta, read_vindr, read_vindr_challenge, read_vindr_release

__all__ = [
    "Column",
    "CsvFormatError",
    "CsvTable",
    "IngestResult",
    "ingest_folder",
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
]
