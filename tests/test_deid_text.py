"""Tests for burned-in text detection and redaction (:mod:`cxrlab.deid.text`)."""

from __future__ import annotations

import importlib.util
import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cxrlab.deid.text import (
    Candidate,
    TextDetector,
    boxes_mask,
    classify,
    confirm,
    default_margin,
    merge_lines,
    plausible_text,
    preview_png,
    promote_neighbours,
    redact,
    scan_dataset,
)
from cxrlab.dicom.phantom import generate_phantom

HAVE_OCR = all(importlib.util.find_spec(m) is not None for m in ("onnxruntime", "rapidocr_onnxruntime", "cv2"))
needs_ocr = pytest.mark.skipif(not HAVE_OCR, reason="OCR extra not installed (pip install 'cxrlab[ocr]')")
NIH = Path("/work/shared/data/nih")
TEXT_SEEDS = (0, 1, 2, 3, 4, 5)


@pytest.fixture(scope="module")
def detector() -> TextDetector:
    """One detector for the module (sessions are reused)."""
    return TextDetector(max_side=1024, threads=2)


# --------------------------------------------------------------------------------------------------
# pure functions
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("photometric", "expected"), [("MONOCHROME2", 3), ("MONOCHROME1", 900)])
def test_redact_fills_black_and_keeps_outside(photometric: str, expected: int) -> None:
    rng = np.random.default_rng(0)
    stored = rng.integers(3, 901, size=(50, 60)).astype(np.uint16)
    stored[0, 0], stored[0, 1] = 3, 900
    out, mask = redact(stored, [(10, 20, 30, 25)], margin_px=2, photometric=photometric)
    assert out.dtype == stored.dtype
    assert mask.sum() == (30 + 2 - 8) * (25 + 2 - 18)
    assert np.all(out[18:27, 8:32] == expected)
    assert np.array_equal(out[~mask], stored[~mask])


def test_redact_input_untouched_and_clipped() -> None:
    stored = np.arange(100, dtype=np.int16).reshape(10, 10)
    copy = stored.copy()
    out, mask = redact(stored, [(-5, -5, 3, 3), (8, 8, 20, 20)], margin_px=1, photometric="MONOCHROME2", fill=-7)
    assert np.array_equal(stored, copy)
    assert mask[:4, :4].all() and mask[7:, 7:].all() and mask.sum() == 16 + 9
    assert (out[mask] == -7).all()
    with pytest.raises(ValueError):
        redact(stored, [], margin_px=0, photometric="RGB")


def test_plausible_text_and_confirm_rules() -> None:
    assert plausible_text("ID: 1234-56") == (8, 1.0)
    assert plausible_text("工三")[1] == 0.0
    shape = (1000, 1000)
    cands = [
        Candidate((10, 10, 200, 40), 0.9, "HARTMANN", 0.97),  # a text line
        Candidate((100, 200, 500, 700), 0.9, "", 0.0),  # lung-field blob
        Candidate((10, 100, 60, 115), 0.9, "工三", 0.2),  # unreadable, small
        Candidate((600, 10, 640, 40), 0.9, "83", 0.99),  # readable but not line-shaped
    ]
    confirm(cands, shape)
    assert [c.status for c in cands] == ["confirmed", "ignored", "ignored", "doubtful"]
    assert classify(cands, shape) == "review"
    assert classify(cands[:3], shape) == "redact"
    assert classify(cands[1:3], shape) == "clean"
    big = [Candidate((0, y, 1000, y + 30), 0.9, "ACC123456789", 0.99) for y in range(0, 600, 31)]
    confirm(big, shape)
    assert classify(big, shape) == "review"  # too much area to redact automatically
    unread = confirm([Candidate((10, 100, 200, 130), 0.9, "工三", 0.2)], shape)
    assert unread[0].status == "doubtful"  # line-shaped, large enough, unreadable: a human decides


def test_merge_lines_joins_fragments() -> None:
    merged = merge_lines(
        [Candidate((0, 0, 40, 20), 0.8), Candidate((50, 2, 90, 21), 0.6), Candidate((0, 60, 40, 80), 1)]
    )
    assert sorted(c.box for c in merged) == [(0, 0, 90, 21), (0, 60, 40, 80)]


def test_promote_neighbours_confirms_fragments_next_to_text() -> None:
    shape = (1000, 1000)
    cands = [
        Candidate((10, 10, 200, 40), 0.9, "ID:123456", 0.97),  # a confirmed line
        Candidate((230, 12, 262, 41), 0.9, "83", 0.99),  # fragment on the same line: aspect fails
        Candidate((12, 40, 44, 70), 0.9, "06", 0.9),  # fragment stacked under the line
        Candidate((700, 500, 732, 530), 0.9, "19", 0.99),  # readable fragment far away: stays doubtful
        Candidate((260, 45, 290, 72), 0.9, "工三", 0.5),  # unreadable neighbour: untouched
    ]
    confirm(cands, shape)
    assert [c.status for c in cands] == ["confirmed", "doubtful", "doubtful", "doubtful", "ignored"]
    promote_neighbours(cands, shape)
    assert [c.status for c in cands] == ["confirmed", "confirmed", "confirmed", "doubtful", "ignored"]
    lone = confirm([Candidate((230, 12, 262, 41), 0.9, "83", 0.99)], shape)
    assert promote_neighbours(lone, shape)[0].status == "doubtful"


def test_fast_render_matches_to_uint8() -> None:
    from cxrlab.deid.text import _render_small
    from cxrlab.dicom.display import to_uint8

    for seed in (0, 1):
        ds, _ = generate_phantom(np.random.default_rng(seed), seed, size_range=(900, 1100), outlier=None)
        fast, same = _render_small(ds, 256)
        ref = to_uint8(ds, max_size=256)
        assert same is ds and fast.shape == ref.shape and fast.dtype == np.uint8
        assert np.abs(fast.astype(int) - ref.astype(int)).mean() < 4.0


def test_preview_png() -> None:
    img = np.tile(np.arange(256, dtype=np.uint8), (300, 4))
    data = preview_png(img, [(10, 10, 100, 40), Candidate((5, 5, 50, 50), 0.5, status="doubtful")], max_side=256)
    im = Image.open(io.BytesIO(data))
    assert im.format == "PNG" and max(im.size) == 256 and im.mode == "RGB"


# --------------------------------------------------------------------------------------------------
# detector on phantoms and on a real NIH image
# --------------------------------------------------------------------------------------------------


@needs_ocr
def test_phantom_text_recall(detector: TextDetector) -> None:
    planted_total = covered_total = 0
    for seed in TEXT_SEEDS:
        ds, truth = generate_phantom(
            np.random.default_rng(seed), seed, size_range=(1024, 1536), outlier=None, burned_text=True
        )
        scan = scan_dataset(ds, detector)
        assert scan.decision in ("redact", "review"), (seed, scan.candidates)
        stored = ds.pixel_array
        _, mask = redact(stored, scan.boxes, margin_px=default_margin(stored.shape), photometric=truth.photometric)
        planted = boxes_mask(stored.shape, truth.text_boxes)
        planted_total += int(planted.sum())
        covered_total += int((planted & mask).sum())
        assert (planted & mask).sum() / planted.sum() >= 0.9, seed
    assert covered_total / planted_total >= 0.99


@needs_ocr
def test_phantom_text_free_not_redacted(detector: TextDetector) -> None:
    fracs = []
    for seed in TEXT_SEEDS:
        ds, _ = generate_phantom(
            np.random.default_rng(seed), seed, size_range=(1024, 1536), outlier=None, burned_text=False
        )
        scan = scan_dataset(ds, detector)
        fracs.append(boxes_mask(scan.shape, scan.boxes, margin_px=default_margin(scan.shape)).mean())
    assert float(np.mean(fracs)) <= 0.01


@needs_ocr
@pytest.mark.parametrize("name", ["00000001_000.png", "00000004_000.png"])
def test_nih_lung_fields_not_redacted(detector: TextDetector, name: str) -> None:
    path = NIH / name
    if not path.is_file():
        pytest.skip(f"{path} not available")
    img = np.asarray(Image.open(path).convert("L"))
    decision, cands, _ = detector.scan(img)
    confirmed = [c.box for c in cands if c.status == "confirmed"]
    assert decision in ("clean", "review"), cands
    assert boxes_mask(img.shape, confirmed).mean() <= 0.01
