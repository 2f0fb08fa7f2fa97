"""Fixtures and markers of the whole suite: the real files of ``$CXRLAB_TEST_DATA``, fresh workspaces, the
throwaway PostgreSQL cluster (:mod:`tests.support.pg`), and the markers put on by place and by fixture.

Markers (registered in pyproject.toml; ``make check`` leaves all four out):

- ``e2e``: every test under ``tests/e2e/`` (a browser);
- ``pg``: every test that uses the PostgreSQL cluster, through ``pg_server_url``/``pg_database_url`` or the
  ``postgresql`` case of :data:`tests.support.pg.BACKENDS`;
- ``ocr``: put on by hand; such a test is skipped, naming what is missing, where the OCR backend cannot run;
- ``slow``: put on by hand, with a comment saying why (server processes, kill -9 runs, fuzzing, reference
  comparisons, large real files, the docs build).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.data import real_data

pytest_plugins = ["tests.support.pg"]

E2E = Path(__file__).resolve().parent / "e2e"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    ocr_missing: list[str] | None = None
    for item in items:
        if E2E in Path(item.path).resolve().parents:
            item.add_marker(pytest.mark.e2e)
        if "pg_server_url" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.pg)
        if item.get_closest_marker("ocr") is not None:
            if ocr_missing is None:
                from cxrlab.deid.text.ocr import missing_dependencies

                ocr_missing = missing_dependencies()
            if ocr_missing:
                item.add_marker(pytest.mark.skip(reason=f"needs the OCR backend: pip install 'cxrlab[ocr]' "
                                                        f"(missing: {', '.join(ocr_missing)})"))


@pytest.fixture
def shared_dicom() -> Path:
    """The folder of real DICOM files (``$CXRLAB_TEST_DATA/dicom``); skip when it is absent."""
    return real_data("dicom")


@pytest.fixture
def workspace(tmp_path: Path):
    """A fresh initialised workspace (SQLite)."""
    from cxrlab.catalog import init_workspace

    return init_workspace(tmp_path / "ws")


@pytest.fixture(scope="session")
def tiny_detector(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real detector run (:func:`tests.support.detector.train_tiny_detector`), trained once per session for
    the model-assisted reading tests; skipped when the ML extra (torch, onnx, onnxruntime) is missing."""
    for module in ("torch", "onnx", "onnxruntime"):
        pytest.importorskip(module, reason="needs the ML extra: pip install 'cxrlab[ml]'")
    from tests.support.detector import train_tiny_detector

    return train_tiny_detector(tmp_path_factory.mktemp("tiny-detector"))
