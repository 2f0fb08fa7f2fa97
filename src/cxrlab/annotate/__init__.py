"""cxrlab.annotate."""
