"""cxrlab.ingest."""
