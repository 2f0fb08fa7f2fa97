"""cxrlab.export."""
