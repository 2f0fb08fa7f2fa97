"""Planted findings of the phantoms: seeded, boxed where they are drawn, varied, and absent by default."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cxrlab.dicom.display import to_uint8
from cxrlab.dicom.phantom import FINDINGS, generate_phantom, generate_phantoms
from cxrlab.dicom.phantom.findings import draw_findings

SIZE = (300, 360)


def _pair(seed: int, findings: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray, list[dict]]:
    """The same phantom without and with *findings* (display pixels, float) and the planted boxes."""
    kw = {"size_range": SIZE, "outlier": None, "burned_text": False}
    ds0, t0 = generate_phantom(np.random.default_rng(seed), 0, **kw)
    ds1, t1 = generate_phantom(np.random.default_rng(seed), 0, findings=findings, **kw)
    assert t0.findings == [] and (t0.rows, t0.columns) == (t1.rows, t1.columns)
    return to_uint8(ds0).astype(float), to_uint8(ds1).astype(float), t1.findings


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_nodule_and_effusion_change_the_image_only_inside_their_boxes(seed: int) -> None:
    before, after, planted = _pair(seed, ("Nodule/Mass", "Pleural effusion"))
    assert [f["label"] for f in planted] == ["Nodule/Mass", "Pleural effusion"]
    changed = np.abs(after - before) > 12  # beyond the windowing's small global shift
    assert changed.any()
    inside = np.zeros_like(changed)
    rows, cols = before.shape
    margin = 0.02 * max(rows, cols)
    for f in planted:
        x0, y0, x1, y1 = f["box"]
        assert 0 <= x0 < x1 <= cols and 0 <= y0 < y1 <= rows
        inside[max(0, int(y0 - margin)):int(y1 + margin) + 1, max(0, int(x0 - margin)):int(x1 + margin) + 1] = True
        box = (slice(int(y0), int(y1)), slice(int(x0), int(x1)))
        assert np.abs(after[box] - before[box]).mean() > 3  # visible in its box
    assert not (changed & ~inside).any()


def test_cardiomegaly_widens_the_heart_past_half_the_chest() -> None:
    widths = []
    for seed in range(4):
        _, after, planted = _pair(seed, ("Cardiomegaly",))
        (f,) = planted
        widths.append((f["box"][2] - f["box"][0]) / min(after.shape))
    # In units of the short side L: the thorax is 0.81-0.92 L wide, a normal heart's silhouette at most 0.38 L;
    # the planted one is 1.3-1.65 times as wide, a cardiothoracic ratio above 0.5.
    assert min(widths) > 0.40 and max(widths) - min(widths) > 0.01  # sizes vary


@pytest.mark.slow  # three phantom sets
def test_findings_are_seeded_varied_and_off_by_default(tmp_path: Path) -> None:
    a = generate_phantoms(tmp_path / "a", 8, seed=4, size_range=SIZE, finding_prob=0.6, outlier_prob=0.3)
    b = generate_phantoms(tmp_path / "b", 8, seed=4, size_range=SIZE, finding_prob=0.6, outlier_prob=0.3)
    assert [t.findings for t in a] == [t.findings for t in b]
    assert all(t.findings == [] for t in a if t.outlier is not None)
    planted = [f for t in a for f in t.findings]
    assert {f["label"] for f in planted} <= set(FINDINGS) and len(planted) >= 3
    assert json.loads((tmp_path / "a" / "truth.json").read_text())[0]["findings"] == a[0].findings
    none = generate_phantoms(tmp_path / "c", 3, seed=4, size_range=SIZE, outlier_prob=0.3)
    assert all(t.findings == [] for t in none)
    nodules = [f["box"][2] - f["box"][0] for t in a for f in t.findings if f["label"] == "Nodule/Mass"]
    assert len(set(nodules)) == len(nodules)  # sizes differ
    assert draw_findings(np.random.default_rng(0), 0.0) == []
    assert draw_findings(np.random.default_rng(0), 1.0) == list(FINDINGS)
