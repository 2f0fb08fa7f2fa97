"""cxrlab.schemas."""
