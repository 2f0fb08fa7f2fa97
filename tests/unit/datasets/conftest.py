"""A small phantom release in the VinDr layout, shared by the dataset tests (read-only: copy it to change it)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from cxrlab.datasets import write_phantom_release

SMALL = (200, 260)


@pytest.fixture(scope="package")
def phantom_release(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    """18 phantoms of 200-260 px, findings on about half, 3 readers per training image, a test split."""
    out = tmp_path_factory.mktemp("phantom-release") / "release"
    truth = write_phantom_release(out, 18, seed=5, size_range=SMALL, finding_prob=0.4, test_share=0.25)
    return out, truth
