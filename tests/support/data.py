"""The real test files (public DICOMs, the NIH box list, the OpenI dev reports): ``$CXRLAB_TEST_DATA``, by default
``../shared/data`` beside the repository. A test that needs one calls :func:`real_data`, which skips the test,
saying how to provide the data, when the file is missing."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

__all__ = ["HOW_TO_SET", "ROOT", "TEST_DATA", "real_data"]

ROOT = Path(__file__).resolve().parents[2]
TEST_DATA = Path(os.environ.get("CXRLAB_TEST_DATA") or ROOT.parent / "shared" / "data")
HOW_TO_SET = "set CXRLAB_TEST_DATA=/path/to/shared/data"


def real_data(*parts: str) -> Path:
    """The path of ``TEST_DATA/<parts>``; skip the calling test when it does not exist."""
    path = TEST_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real test data not found at {path} ({HOW_TO_SET})")
    return path

