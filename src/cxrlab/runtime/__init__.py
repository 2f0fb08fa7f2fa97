"""cxrlab.runtime."""
