"""cxrlab: turn a hospital's chest X-ray archive into a released, benchmarked dataset."""

__version__ = "0.1.0"
__all__ = ["__version__"]
