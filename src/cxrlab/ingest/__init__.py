"""Ingest: bring DICOM files into the workspace (folders now; PACS and DICOMweb later)."""

from cxrlab.ingest.folder import IngestResult, ingest_folder, iter_files, probe_file

__all__ = ["IngestResult", "ingest_folder", "iter_files", "probe_file"]
