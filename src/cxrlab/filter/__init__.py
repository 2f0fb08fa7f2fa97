"""cxrlab.filter."""
