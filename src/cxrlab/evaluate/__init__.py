"""cxrlab.evaluate."""
