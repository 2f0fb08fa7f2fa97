"""cxrlab.consensus."""
