"""cxrlab.catalog."""
