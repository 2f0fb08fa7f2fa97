"""A workspace through every stage to ``cxrlab export``, then ``ReleaseDataset`` over the export: the label counts
are those ``cxrlab stats table2 TAG`` prints, the images those the export holds."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from cxrlab.cli.main import app
from cxrlab.datasets import ReleaseDataset


@pytest.mark.slow  # a workspace through every stage
def test_release_dataset_over_a_workspace_export(workspace, tmp_path: Path) -> None:  # noqa: ANN001
    from cxrlab.annotate.readings import simulate_readers
    from cxrlab.consensus import run_consensus
    from cxrlab.deid import run_deid
    from cxrlab.export import run_export
    from cxrlab.filter import run_filter
    from cxrlab.ingest import run_ingest
    from cxrlab.runtime import Executor
    from cxrlab.split import run_split
    from tests.support.dicom import make_dicom

    for i in range(10):
        make_dicom(tmp_path / "in" / f"c{i}.dcm", seed=i, rows=300, columns=260, patient_id=f"P{i // 2}")
    run_ingest(workspace, tmp_path / "in", executor=Executor(1))
    run_deid(workspace, executor=Executor(1))
    run_filter(workspace)
    simulate_readers(workspace, readers=3, seed=2)
    run_consensus(workspace)
    run_split(workspace, test_size=4, method="group", seed=0)
    run_export(workspace, "v1")
    result = CliRunner().invoke(app, ["stats", "table2", "v1", "-w", str(workspace.root), "--format", "json"])
    assert result.exit_code == 0, result.output
    sets = {s["title"]: s for s in json.loads(result.output)["sets"]}
    out = workspace.root / "exports" / "v1"
    for split, title in (("train", "Training set"), ("test", "Test set")):
        ds = ReleaseDataset(out, split, size=(32, 24), cache_dir=tmp_path / "cache")
        want = {lb["name"]: lb["count"] for lb in sets[title]["labels"] if lb["count"] is not None}
        got = dict(zip(ds.label_names, ds.label_matrix().sum(axis=0).tolist(), strict=True))
        assert {k: got[k] for k in want} == want
        assert sorted(ds.image_ids) == sorted(p.stem for p in (out / split).glob("*.dicom"))
        for i in range(len(ds)):
            image, target = ds[i]
            assert image.shape == (32, 24) and np.isfinite(image).all()
            assert all(0 <= b["x_min"] <= b["x_max"] <= 24 and 0 <= b["y_min"] <= b["y_max"] <= 32
                       for b in target["boxes"])
