"""``cxrlab phantom --vindr`` writes a release the dataset API reads with the label counts ``cxrlab stats table2``
prints (majority vote, and any reader at threshold 0)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cxrlab.cli.main import app
from cxrlab.datasets import VinDrDataset

runner = CliRunner()


def _table2(root: Path, split: str, *extra: str) -> dict[str, int]:
    args = ["stats", "table2", "--annotations", str(root / f"annotations_{split}.csv"), "--image-labels",
            str(root / f"image_labels_{split}.csv"), "--format", "json", *extra]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return {lb["name"]: lb["count"] for lb in json.loads(result.output)["labels"] if lb["count"] is not None}


@pytest.mark.slow  # writes a phantom release through the CLI
def test_phantom_release_counts_match_stats_table2(tmp_path: Path) -> None:
    root = tmp_path / "release"
    result = runner.invoke(app, ["phantom", str(root), "-n", "14", "--vindr", "--findings", "0.5", "--seed", "3",
                                 "--min-size", "160", "--max-size", "200", "--test-share", "0.3"])
    assert result.exit_code == 0, result.output
    assert "phantom release of 14 image(s)" in result.output and "Cardiomegaly" in result.output
    for split, labels, extra in (("train", "majority", ()), ("train", "any", ("--threshold", "0")),
                                 ("test", "consensus", ())):
        ds = VinDrDataset(root, split, labels=labels, size=16)
        got = dict(zip(ds.label_names, ds.label_matrix().sum(axis=0).tolist(), strict=True))
        want = _table2(root, split, *extra)
        assert {k: got[k] for k in want} == want, (split, labels)
        assert sum(want[k] for k in ("Nodule/Mass", "Cardiomegaly", "Pleural effusion")) > 0
    result = runner.invoke(app, ["phantom", str(root), "-n", "2", "--vindr"])
    assert result.exit_code == 1 and "already exists" in result.output
