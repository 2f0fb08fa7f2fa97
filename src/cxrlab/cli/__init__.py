"""cxrlab.cli."""
