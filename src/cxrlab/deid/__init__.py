"""cxrlab.deid."""
