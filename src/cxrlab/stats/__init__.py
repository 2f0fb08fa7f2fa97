"""cxrlab.stats."""
