"""OCR backends for burned-in text detection, behind a small plugin interface (see :mod:`.base`)."""

from cxrlab.deid.text.ocr.base import (
    DEFAULT_BACKEND,
    OCR_BACKENDS,
    OCR_HINT,
    OcrEngine,
    is_available,
    load_engine,
    missing_dependencies,
)

__all__ = [
    "DEFAULT_BACKEND",
    "OCR_BACKENDS",
    "OCR_HINT",
    "OcrEngine",
    "is_available",
    "load_engine",
    "missing_dependencies",
]
