"""Burned-in text detection, confirmation and redaction for de-identification.

Pixel data can carry identifying text (names, IDs, dates) burned in by the modality or a post-processing
station. PS3.3 C.7.6.1.1.6 defines (0028,0301) *Burned In Annotation*, but the tag is optional, often absent
and sometimes wrong, so it is never trusted alone: every image is scanned.

Detection uses the PP-OCR text *detection* model (DB, differentiable binarisation) shipped inside the
``rapidocr-onnxruntime`` wheel, run directly with onnxruntime on a downsampled 8-bit display rendering. No
model is downloaded at run time. DESIGN.md ("Known hazards", burned-in text) records that on a real NIH chest
image this detector boxed both lung fields as "text lines", so detection alone never decides a redaction:
each candidate is confirmed with the PP-OCR *recognition* model (confidence and a plausible string), line
geometry (aspect ratio, text height) and an area cap, and the image is classified as

* ``clean``  -- no confirmed text and nothing doubtful;
* ``redact`` -- confirmed text boxes whose total area is at most :data:`REDACT_MAX_AREA_FRAC`;
* ``review`` -- doubtful: large unconfirmed candidates, or more confirmed area than may be redacted
  automatically. These go to the review queue with a :func:`preview_png`.

The optional dependencies (onnxruntime, the rapidocr-onnxruntime wheel for its models, OpenCV for connected
components) are imported lazily; ``import cxrlab.deid.text`` works without them and only building a
:class:`TextDetector` raises an :class:`ImportError` naming the ``cxrlab[ocr]`` extra.

Examples
--------
>>> import numpy as np
>>> stored = np.full((4, 6), 7, dtype=np.uint16)
>>> out, mask = redact(stored, [(1, 1, 3, 2)], margin_px=0, photometric="MONOCHROME1", fill=None)
>>> int(out[1, 1]), int(mask.sum())
(7, 2)
"""

from __future__ import annotations

import importlib.util
import io
import time
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

import numpy as np
from PIL import Image, ImageDraw

from cxrlab.dicom.display import to_uint8

__all__ = [
    "ASPECT_MIN",
    "CANDIDATE_AREA_MAX_FRAC",
    "DET_BOX_THRESH",
    "DET_THRESH",
    "REC_MIN_CONF",
    "BLOB_HEIGHT_FACTOR",
    "REC_DOUBT_CONF",
    "REDACT_MAX_AREA_FRAC",
    "REDACT_MARGIN_FRAC",
    "REVIEW_MIN_AREA_FRAC",
    "REVIEW_MIN_STROKES",
    "TEXT_HEIGHT_RANGE",
    "Candidate",
    "TextDetector",
    "TextScan",
    "classify",
    "boxes_mask",
    "confirm",
    "default_margin",
    "is_blob",
    "merge_lines",
    "plausible_text",
    "promote_neighbours",
    "preview_png",
    "redact",
    "scan_dataset",
    "extend_lines",
    "stroke_mask",
    "stroke_proposals",
]

Box = tuple[int, int, int, int]
T = TypeVar("T")
Decision = Literal["clean", "redact", "review"]

#: Probability-map threshold of the DB post-processing (PP-OCR default 0.3).
DET_THRESH = 0.3
#: Minimum mean probability inside a candidate region (PP-OCR default 0.5).
DET_BOX_THRESH = 0.5
#: CLAHE (contrast-limited adaptive histogram equalisation) on the detector input: clip limit and tiles per
#: side. Faint text over gradients and the mediastinum is detected far more often (bench: recall of
#: planted text 0.955 -> 0.972 at max_side 640); recognition still reads the unequalised image.
DET_CLAHE_CLIP = 2.0
DET_CLAHE_TILES = 8
#: DB "unclip" ratio: a region of area A and perimeter L grows by A * ratio / L on every side.
DET_UNCLIP_RATIO = 1.6
#: Recognition confidence (mean CTC max-probability) a candidate needs to count as text. Faint or small
#: Latin text often reads right at 0.5-0.75 with this Chinese-trained model (bench: 0.5 instead of 0.75 sends
#: fewer text images to review at no cost on text-free images, where readings are CJK or single glyphs).
REC_MIN_CONF = 0.5
#: Recognition confidence above which a partly plausible reading makes an unconfirmed candidate doubtful.
REC_DOUBT_CONF = 0.3
#: Minimum number of letters/digits in the recognised string.
REC_MIN_ALNUM = 2
#: Minimum fraction of plausible characters (Latin letters, digits, common punctuation) in the string.
REC_MIN_PLAUSIBLE = 0.8
#: Text line geometry: minimum width / height of a confirmed line box.
ASPECT_MIN = 1.5
#: Plausible text line box height as a fraction of the image height (inclusive range).
TEXT_HEIGHT_RANGE = (0.005, 0.08)
#: A single candidate larger than this fraction of the image is never confirmed (lung fields, body outline).
CANDIDATE_AREA_MAX_FRAC = 0.05
#: A candidate taller than this multiple of the largest text height *and* with width/height below
#: :data:`ASPECT_MIN` is a "blob" (the lung-field false positive of DESIGN.md): ignored without recognition.
BLOB_HEIGHT_FACTOR = 2.0
#: Fragments of one line separated by at most this many line heights are merged (:func:`merge_lines`).
LINE_MERGE_GAP = 1.5
#: Confirmed boxes grow horizontally by this fraction of their height on each side (line ends the
#: detector clipped: a faint first or last character).
LINE_END_PAD = 0.75
#: Confirmed boxes grow vertically by this fraction of their height on each side (clipped ascenders and
#: descenders of faint text).
LINE_VERT_PAD = 0.2
#: Total confirmed area that may be redacted automatically; more sends the image to review. Padded line boxes
#: cover about 2.5x the ink of their text, so 15% is a header of several large lines; beyond that the image
#: is more likely mislabelled text-on-anatomy than a header (bench: at 5% half of the text phantoms went to
#: review only for this cap).
REDACT_MAX_AREA_FRAC = 0.15
#: An unconfirmed candidate at least this large (fraction of the image) makes the image doubtful (review).
REVIEW_MIN_AREA_FRAC = 0.002
#: An unreadable line-shaped candidate is doubtful only when at least this fraction of its box is strokes
#: (:func:`stroke_mask`): text boxes hold 15-60%, lung texture boxed as a "line" about 1%.
REVIEW_MIN_STROKES = 0.05
#: Redaction margin around each confirmed box, as a fraction of the image's long side (at least 2 px).
REDACT_MARGIN_FRAC = 0.004
#: Stroke proposals (:func:`stroke_proposals`), in pixels of a 1024-px rendering: the top-hat kernel (about a
#: character's size), the contrast a stroke needs over its surroundings (8-bit display values) and the
#: closing that joins strokes into words and lines. Small text that the global detector pass misses (a 30-px
#: line of a 2500-px image is under 8 px at 640) still stands out this way.
PROPOSAL_KERNEL = 7
PROPOSAL_CONTRAST = 15
PROPOSAL_CLOSE = (9, 3)
#: Largest proposal height (a block of a few small lines) in pixels at 1024.
PROPOSAL_MAX_HEIGHT = 90
#: When proposals cover more than this fraction of the image, the detector runs over the whole rendering.
PROPOSAL_MAX_FRAC = 0.25
#: Recognition input height (PP-OCRv4 rec).
_REC_HEIGHT = 48
#: Widest recognition input in pixels (about 6-8 characters): enough to tell text from texture, and the
#: recognition cost grows with the width (about 0.1 ms per column on one core), so a long line is read from
#: its start only.
REC_MAX_WIDTH = 256

SINGLE_CHARACTER = "a single character"
_PUNCT = set(" .,:;/-_+()[]#'\"&%*<>=^|!?@")
_OCR_HINT = "burned-in text detection needs the optional OCR dependencies: pip install 'cxrlab[ocr]'"


# --------------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------------


@dataclass
class Candidate:
    """One detected text region.

    Attributes
    ----------
    box : tuple of int
        ``(x0, y0, x1, y1)`` in pixel coordinates of the image passed to the detector (max exclusive),
        already grown by the DB unclip distance.
    score : float
        Mean detection probability inside the region.
    text : str
        Recognised string ("" when recognition was not run).
    rec_conf : float
        Recognition confidence in [0, 1].
    status : str
        ``"confirmed"``, ``"doubtful"`` or ``"ignored"`` after :func:`confirm`; ``"candidate"`` before.
    reason : str
        Why the candidate was not confirmed (empty when confirmed).
    strokes : float or None
        Fraction of the box covered by :func:`stroke_mask` (None when not measured).
    vertical : bool
        The text runs top to bottom or bottom to top (read rotated by :meth:`TextDetector.recognize`).
    """

    box: Box
    score: float
    text: str = ""
    rec_conf: float = 0.0
    status: str = "candidate"
    reason: str = ""
    strokes: float | None = None
    vertical: bool = False

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict of the fields."""
        return {
            "box": list(self.box),
            "score": round(float(self.score), 4),
            "text": self.text,
            "rec_conf": round(float(self.rec_conf), 4),
            "status": self.status,
            "reason": self.reason,
            "vertical": self.vertical,
        }


@dataclass
class TextScan:
    """Outcome of :func:`scan_dataset`.

    Attributes
    ----------
    decision : str
        ``"clean"``, ``"redact"`` or ``"review"``.
    boxes : list of tuple of int
        Confirmed boxes to redact, in original (stored) pixel coordinates, without the redaction margin.
    candidates : list of Candidate
        Every candidate with its status, in original pixel coordinates.
    seconds : dict
        Wall time per step: ``render``, ``detect``, ``recognize``, ``total``.
    shape : tuple of int
        (rows, columns) of the original image.
    """

    decision: Decision
    boxes: list[Box]
    candidates: list[Candidate]
    seconds: dict[str, float] = field(default_factory=dict)
    shape: tuple[int, int] = (0, 0)


# --------------------------------------------------------------------------------------------------
# Pure helpers
# --------------------------------------------------------------------------------------------------


def plausible_text(text: str) -> tuple[int, float]:
    """Count letters/digits and the fraction of plausible characters in a recognised string.

    Plausible characters are Latin letters (including accented ones), digits and common punctuation.
    The recognition model is trained on Chinese and emits CJK characters for textures it cannot read,
    such as lung parenchyma; those count as implausible (such candidates end in review, not redaction).

    Parameters
    ----------
    text : str
        Recognised string.

    Returns
    -------
    (int, float)
        Number of Latin letters/digits, and plausible characters / non-space characters (0 for "").
    """
    alnum = 0
    ok = 0
    total = 0
    for ch in text:
        if ch.isspace():
            continue
        total += 1
        if (
            ch.isdigit()
            and ord(ch) < 128
            or ch.isalpha()
            and ord(ch) < 0x250
            and unicodedata.category(ch).startswith("L")
        ):
            alnum += 1
            ok += 1
        elif ch in _PUNCT:
            ok += 1
    return alnum, (ok / total if total else 0.0)


def confirm(candidates: Sequence[Candidate], shape: tuple[int, int]) -> list[Candidate]:
    """Set each candidate's status from recognition, geometry and size (in place; also returned).

    A candidate is ``confirmed`` when all hold: recognition confidence >= :data:`REC_MIN_CONF`, at least
    :data:`REC_MIN_ALNUM` letters/digits and >= :data:`REC_MIN_PLAUSIBLE` plausible characters
    (:func:`plausible_text`), width/height >= :data:`ASPECT_MIN`, height within :data:`TEXT_HEIGHT_RANGE`
    of the image height, and area <= :data:`CANDIDATE_AREA_MAX_FRAC` of the image. This is the safeguard
    from DESIGN.md "Known hazards": the detector alone boxes lung fields as text lines. Blobs
    (:func:`is_blob`) and lone single characters are ``ignored``. Any other unconfirmed candidate is
    ``doubtful`` when it partly reads as text (confidence >= :data:`REC_DOUBT_CONF`, a letter or digit, half the
    characters plausible) or when only the recognition failed, it covers >= :data:`REVIEW_MIN_AREA_FRAC` of the
    image and, where measured, at least :data:`REVIEW_MIN_STROKES` of it is strokes (lung texture that merely
    has a line's shape is not); else ``ignored``. A vertical candidate's geometry is judged on its rotated box.

    Parameters
    ----------
    candidates : sequence of Candidate
        Candidates with ``text``/``rec_conf`` filled in.
    shape : (rows, columns)
        Size of the image the boxes refer to.

    Returns
    -------
    list of Candidate
        The same objects.
    """
    rows, cols = int(shape[0]), int(shape[1])
    img_area = float(max(1, rows * cols))
    for c in candidates:
        x0, y0, x1, y1 = c.box
        w, h = max(0, x1 - x0), max(0, y1 - y0)
        area = w * h / img_area
        if c.vertical:
            w, h = h, w
        if is_blob(c.box, shape):
            c.status, c.reason = "ignored", "blob: not line-shaped (lung-field pattern)"
            continue
        alnum, frac = plausible_text(c.text)
        reads = c.rec_conf >= REC_MIN_CONF and alnum >= REC_MIN_ALNUM and frac >= REC_MIN_PLAUSIBLE
        partly = c.rec_conf >= REC_DOUBT_CONF and alnum >= 1 and frac >= 0.5
        reasons = []
        if not reads:
            reasons.append(f"recognition {c.text!r} conf={c.rec_conf:.2f}")
        if h == 0 or w / h < ASPECT_MIN:
            reasons.append("aspect")
        if not TEXT_HEIGHT_RANGE[0] * rows <= h <= TEXT_HEIGHT_RANGE[1] * rows:
            reasons.append("height")
        if area > CANDIDATE_AREA_MAX_FRAC:
            reasons.append("area")
        if not reasons:
            c.status, c.reason = "confirmed", ""
            continue
        c.reason = "; ".join(reasons)
        geometry_ok = len(reasons) == 1 and not reads
        if alnum == 1 and len(c.text.strip()) == 1:
            # One glyph identifies nobody; surgical clips and wires read as "O", "Q" or "8". It is still
            # redacted when it stands next to confirmed text (:func:`promote_neighbours`).
            c.status, c.reason = "ignored", SINGLE_CHARACTER
            continue
        textured = c.strokes is None or c.strokes >= REVIEW_MIN_STROKES
        c.status = "doubtful" if (partly or (geometry_ok and area >= REVIEW_MIN_AREA_FRAC and textured)) else "ignored"
    return list(candidates)


def _merge_until_stable(items: Sequence[T], merge: Callable[[T, T], T | None]) -> list[T]:
    """Replace any pair that *merge* joins by the joined item, until no pair joins (few items: quadratic is fine)."""
    out = list(items)
    changed = True
    while changed:
        changed = False
        for i in range(len(out)):
            for j in range(i + 1, len(out)):
                joined = merge(out[i], out[j])
                if joined is not None:
                    out[i] = joined
                    del out[j]
                    changed = True
                    break
            if changed:
                break
    return out


def merge_lines(candidates: Sequence[Candidate], *, gap_factor: float = LINE_MERGE_GAP) -> list[Candidate]:
    """Merge candidates that are fragments of one text line.

    Low-contrast text (over the spine, say) is often detected in pieces ("06", "83"); each piece fails
    the line geometry and reads poorly. Two boxes are merged when their vertical overlap is at least 60%
    of the smaller height, their heights differ by less than 1.6x and the horizontal gap is at most
    *gap_factor* times the larger height. Repeats until nothing changes; the score is the area-weighted mean.

    Parameters
    ----------
    candidates : sequence of Candidate
        Detector output.
    gap_factor : float, optional
        Largest horizontal gap, in line heights.

    Returns
    -------
    list of Candidate
        New list (merged candidates are new objects, others are the inputs).
    """

    def join(a: Candidate, b: Candidate) -> Candidate | None:
        ax0, ay0, ax1, ay1 = a.box
        bx0, by0, bx1, by1 = b.box
        ah, bh = ay1 - ay0, by1 - by0
        if min(ah, bh) <= 0 or max(ah, bh) > 1.6 * min(ah, bh):
            return None
        if min(ay1, by1) - max(ay0, by0) < 0.6 * min(ah, bh):
            return None
        if max(ax0, bx0) - min(ax1, bx1) > gap_factor * max(ah, bh):
            return None
        wa, wb = (ax1 - ax0) * ah, (bx1 - bx0) * bh
        box = (min(ax0, bx0), min(ay0, by0), max(ax1, bx1), max(ay1, by1))
        return Candidate(box, (a.score * wa + b.score * wb) / max(1, wa + wb))

    return _merge_until_stable(candidates, join)


def promote_neighbours(candidates: Sequence[Candidate], shape: tuple[int, int]) -> list[Candidate]:
    """Confirm doubtful fragments that sit next to confirmed text (in place; also returned).

    Small or faint text (over the spine, say) is often detected as short pieces ("06", "83") that read
    well but fail the line geometry, so :func:`confirm` leaves them doubtful. A doubtful candidate is
    promoted to ``confirmed`` when it partly reads as text (confidence >= :data:`REC_DOUBT_CONF`, a letter
    or digit, >= :data:`REC_MIN_PLAUSIBLE` plausible characters), its height is within
    :data:`TEXT_HEIGHT_RANGE`, its height is within 1.6x of a confirmed neighbour's, and it is either on
    the neighbour's line (vertical overlap >= half the smaller height, horizontal gap <= 3 line heights)
    or stacked on it (horizontal overlap, vertical gap <= half a line height). Repeats until stable.

    Parameters
    ----------
    candidates : sequence of Candidate
        Output of :func:`confirm`.
    shape : (rows, columns)
        Image size.

    Returns
    -------
    list of Candidate
        The same objects.
    """
    rows = int(shape[0])
    confirmed = [c for c in candidates if c.status == "confirmed"]
    changed = True
    while changed and confirmed:
        changed = False
        for c in candidates:
            if c.status != "doubtful" and c.reason != SINGLE_CHARACTER:
                continue
            alnum, frac = plausible_text(c.text)
            x0, y0, x1, y1 = c.box
            h = y1 - y0
            if c.rec_conf < REC_DOUBT_CONF or alnum < 1 or frac < REC_MIN_PLAUSIBLE:
                continue
            if not TEXT_HEIGHT_RANGE[0] * rows <= h <= TEXT_HEIGHT_RANGE[1] * rows:
                continue
            for k in confirmed:
                kx0, ky0, kx1, ky1 = k.box
                kh = ky1 - ky0
                if min(h, kh) <= 0 or max(h, kh) > 1.6 * min(h, kh):
                    continue
                v_overlap = min(y1, ky1) - max(y0, ky0)
                h_gap = max(x0, kx0) - min(x1, kx1)
                same_line = v_overlap >= 0.5 * min(h, kh) and h_gap <= 3.0 * max(h, kh)
                stacked = h_gap < 0 and -v_overlap <= 0.5 * max(h, kh)
                if same_line or stacked:
                    c.status, c.reason = "confirmed", ""
                    confirmed.append(c)
                    changed = True
                    break
    return list(candidates)


def is_blob(box: Sequence[int], shape: tuple[int, int]) -> bool:
    """Return True for a candidate that cannot be a text line: far too tall and not wide.

    Such regions (both lung fields on the NIH image of DESIGN.md "Known hazards", the lung fields and
    body outline of the phantoms) are ignored without recognition. Height above
    ``BLOB_HEIGHT_FACTOR * TEXT_HEIGHT_RANGE[1]`` of the image height and width/height below
    :data:`ASPECT_MIN`.

    Parameters
    ----------
    box : (x0, y0, x1, y1)
        Candidate box.
    shape : (rows, columns)
        Image size.

    Returns
    -------
    bool
        Whether the box is a blob.
    """
    w, h = int(box[2]) - int(box[0]), int(box[3]) - int(box[1])
    return h > BLOB_HEIGHT_FACTOR * TEXT_HEIGHT_RANGE[1] * int(shape[0]) and w < ASPECT_MIN * h


def classify(candidates: Sequence[Candidate], shape: tuple[int, int]) -> Decision:
    """Decide ``clean`` / ``redact`` / ``review`` from confirmed candidates.

    ``review`` when any candidate is doubtful or the union of confirmed boxes exceeds
    :data:`REDACT_MAX_AREA_FRAC` of the image; ``redact`` when there are confirmed boxes; else ``clean``.

    Parameters
    ----------
    candidates : sequence of Candidate
        Output of :func:`confirm`.
    shape : (rows, columns)
        Image size.

    Returns
    -------
    str
        The decision.
    """
    confirmed = [c.box for c in candidates if c.status == "confirmed"]
    if any(c.status == "doubtful" for c in candidates):
        return "review"
    if not confirmed:
        return "clean"
    mask = boxes_mask(shape, confirmed, margin_px=0)
    if mask.mean() > REDACT_MAX_AREA_FRAC:
        return "review"
    return "redact"


def boxes_mask(shape: tuple[int, int], boxes: Iterable[Sequence[int]], *, margin_px: int = 0) -> np.ndarray:
    """Return a boolean mask of the union of *boxes* grown by *margin_px*, clipped to *shape*.

    Parameters
    ----------
    shape : (rows, columns)
        Mask size.
    boxes : iterable of (x0, y0, x1, y1)
        Boxes, max exclusive.
    margin_px : int, optional
        Growth on every side.

    Returns
    -------
    numpy.ndarray
        bool of *shape*.
    """
    rows, cols = int(shape[0]), int(shape[1])
    mask = np.zeros((rows, cols), dtype=bool)
    m = max(0, int(margin_px))
    for b in boxes:
        x0, y0, x1, y1 = (int(v) for v in b[:4])
        x0, y0 = max(0, x0 - m), max(0, y0 - m)
        x1, y1 = min(cols, x1 + m), min(rows, y1 + m)
        if x1 > x0 and y1 > y0:
            mask[y0:y1, x0:x1] = True
    return mask


def redact(
    stored: np.ndarray,
    boxes: Iterable[Sequence[int]],
    *,
    margin_px: int,
    photometric: str = "MONOCHROME2",
    fill: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Fill *boxes* in the stored pixel array with the value that displays as black.

    Redaction happens on stored values so the output can be written back as Pixel Data (after which
    (0028,0301) *Burned In Annotation*, PS3.3 C.7.6.1.1.6, may be set to NO only if the whole image was
    confirmed clean or reviewed).

    Parameters
    ----------
    stored : numpy.ndarray
        2-D stored values (one frame, one sample per pixel).
    boxes : iterable of (x0, y0, x1, y1)
        Boxes in stored pixel coordinates, max exclusive.
    margin_px : int
        Extra pixels on every side of each box.
    photometric : str, optional
        ``"MONOCHROME2"`` (minimum displays black) or ``"MONOCHROME1"`` (maximum displays black).
    fill : float, optional
        Explicit fill value; default: the minimum of *stored* for MONOCHROME2, the maximum for
        MONOCHROME1 (the darkest value actually present, which stays inside the Modality/VOI range).

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        A redacted copy of *stored* (same dtype) and the boolean redacted mask; ``mask.sum()`` is the
        redacted area in pixels.

    Raises
    ------
    ValueError
        *stored* is not 2-D or *photometric* is not MONOCHROME1/2.
    """
    if stored.ndim != 2:
        raise ValueError("redact expects a 2-D stored pixel array")
    if photometric not in ("MONOCHROME1", "MONOCHROME2"):
        raise ValueError(f"unsupported photometric interpretation {photometric!r}")
    mask = boxes_mask(stored.shape, boxes, margin_px=margin_px)
    out = stored.copy()
    if fill is None:
        if stored.size == 0:
            return out, mask
        fill = stored.max() if photometric == "MONOCHROME1" else stored.min()
    out[mask] = np.asarray(fill).astype(stored.dtype)
    return out, mask


def preview_png(
    display_uint8: np.ndarray,
    boxes: Iterable[Sequence[int] | Candidate],
    *,
    max_side: int = 512,
) -> bytes:
    """Render a small PNG of the image with candidate boxes drawn, for the review queue.

    Colours: red = confirmed (or a plain box), yellow = doubtful, cyan = ignored.

    Parameters
    ----------
    display_uint8 : numpy.ndarray
        2-D uint8 display image; boxes refer to its pixel coordinates.
    boxes : iterable of (x0, y0, x1, y1) or Candidate
        Boxes to draw.
    max_side : int, optional
        Long side of the preview.

    Returns
    -------
    bytes
        PNG data (RGB).
    """
    img = Image.fromarray(np.ascontiguousarray(display_uint8, dtype=np.uint8)).convert("RGB")
    rows, cols = display_uint8.shape[:2]
    scale = min(1.0, max_side / max(rows, cols, 1))
    if scale < 1.0:
        img = img.resize((max(1, round(cols * scale)), max(1, round(rows * scale))), Image.Resampling.BOX)
    draw = ImageDraw.Draw(img)
    colours = {"doubtful": (255, 210, 0), "ignored": (0, 200, 255)}
    for b in boxes:
        box, colour = (b.box, colours.get(b.status, (255, 0, 0))) if isinstance(b, Candidate) else (b, (255, 0, 0))
        x0, y0, x1, y1 = (float(v) * scale for v in box[:4])
        draw.rectangle((x0, y0, max(x0, x1 - 1), max(y0, y1 - 1)), outline=colour, width=2)
    buf = io.BytesIO()
    img.save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def stroke_mask(display_uint8: np.ndarray) -> np.ndarray:
    """Mark thin, sharp, high-contrast features (text strokes, bright or dark) of a display image.

    The white and black top-hats with a square kernel of :data:`PROPOSAL_KERNEL` px (at a 1024-px rendering;
    scaled to the image's long side) keep features smaller than a character; those above
    :data:`PROPOSAL_CONTRAST` display levels are strokes. Anatomy is smooth at that scale.

    Parameters
    ----------
    display_uint8 : numpy.ndarray
        2-D uint8 display image.

    Returns
    -------
    numpy.ndarray
        uint8 mask (1 = stroke) of the image's shape.
    """
    import cv2

    k = max(3, round(PROPOSAL_KERNEL * max(display_uint8.shape) / 1024.0) | 1)
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (k, k))
    img = np.ascontiguousarray(display_uint8)
    hat = cv2.max(cv2.morphologyEx(img, cv2.MORPH_TOPHAT, kernel), cv2.morphologyEx(img, cv2.MORPH_BLACKHAT, kernel))
    return (hat > PROPOSAL_CONTRAST).astype(np.uint8)


def stroke_proposals(display_uint8: np.ndarray, strokes: np.ndarray | None = None) -> list[Box]:
    """Find clusters of strokes (:func:`stroke_mask`): where small burned-in text may be.

    The detector's global pass runs on a downsampled image (:attr:`TextDetector.max_side`), where the smallest
    text lines are only a few pixels tall and vanish; their strokes do not. Strokes are joined into words and
    lines by a closing (:data:`PROPOSAL_CLOSE`), and connected components at most :data:`PROPOSAL_MAX_HEIGHT`
    tall, not taller than 1.25x their width and at least 20% filled are proposed. On real radiographs this also
    proposes surgical clips, wires and lead markers; the detector and recognition decide on each
    (:class:`TextDetector`).

    Parameters
    ----------
    display_uint8 : numpy.ndarray
        2-D uint8 display image. Sizes are tuned for a rendering with a long side of 1024 px and scaled to
        the image's long side.
    strokes : numpy.ndarray, optional
        :func:`stroke_mask` of the image, when already computed.

    Returns
    -------
    list of (x0, y0, x1, y1)
        Proposal boxes, max exclusive, in the image's coordinates.
    """
    import cv2

    f = max(display_uint8.shape) / 1024.0
    if strokes is None:
        strokes = stroke_mask(display_uint8)
    close = (max(3, round(PROPOSAL_CLOSE[0] * f)), max(1, round(PROPOSAL_CLOSE[1] * f)))
    joined = cv2.morphologyEx(strokes, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_RECT, close))
    n, _labels, stats, _ = cv2.connectedComponentsWithStats(joined, connectivity=8)
    hmin, hmax = max(2, round(4 * f)), PROPOSAL_MAX_HEIGHT * f
    out: list[Box] = []
    for i in range(1, n):
        x, y, w, h, area = (int(v) for v in stats[i])
        if hmin <= h <= hmax and w >= 0.8 * h and area >= 0.2 * w * h:
            out.append((x, y, x + w, y + h))
    return out


def extend_lines(candidates: Sequence[Candidate], strokes: np.ndarray) -> list[Candidate]:
    """Grow each confirmed line box along its line while strokes continue (in place; also returned).

    A line's faint end (characters over bright anatomy, say) is often left out of the detected box although
    its strokes are visible. Within the middle 60% of the box's rows, the box's left and right edges move
    outwards over every column holding a stroke, across gaps of at most one line height.

    Parameters
    ----------
    candidates : sequence of Candidate
        After :func:`confirm`; only ``confirmed`` boxes grow.
    strokes : numpy.ndarray
        :func:`stroke_mask` of the image the boxes refer to.

    Returns
    -------
    list of Candidate
        The same objects.
    """
    cols = strokes.shape[1]
    for c in candidates:
        if c.status != "confirmed" or c.vertical:
            continue
        x0, y0, x1, y1 = c.box
        h = y1 - y0
        band = strokes[y0 + h // 5 : max(y0 + h // 5 + 1, y1 - h // 5), :]
        if band.size == 0 or h <= 0:
            continue
        has = np.flatnonzero(band.any(axis=0))
        gap = max(2, h)
        right = x1
        for x in has[np.searchsorted(has, x1) :]:
            if x - right > gap:
                break
            right = int(x) + 1
        left = x0
        for x in has[: np.searchsorted(has, x0)][::-1]:
            if left - x > gap:
                break
            left = int(x)
        c.box = (max(0, left), y0, min(cols, right), y1)
    return list(candidates)


def _measure_strokes(candidates: Sequence[Candidate], strokes: np.ndarray | None) -> None:
    """Fill each candidate's ``strokes`` (fraction of its box on the :func:`stroke_mask`)."""
    if strokes is None:
        return
    for c in candidates:
        x0, y0, x1, y1 = c.box
        region = strokes[y0:y1, x0:x1]
        c.strokes = float(region.mean()) if region.size else 0.0


def _union_boxes(boxes: Sequence[Box]) -> list[Box]:
    """Merge overlapping boxes until none overlap."""

    def join(a: Box, b: Box) -> Box | None:
        if a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]:
            return (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))
        return None

    return _merge_until_stable(boxes, join)


def _inside_frac(box: Box, others: Sequence[Box]) -> float:
    """Largest fraction of *box*'s area that lies inside one of *others*."""
    x0, y0, x1, y1 = box
    area = max(1, (x1 - x0) * (y1 - y0))
    best = 0
    for o in others:
        w = min(x1, o[2]) - max(x0, o[0])
        h = min(y1, o[3]) - max(y0, o[1])
        if w > 0 and h > 0:
            best = max(best, w * h)
    return best / area


def _resize_u8(img: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    """Area-downsample a uint8 image so its long side is <= *max_side*; return it and the scale."""
    rows, cols = img.shape[:2]
    if max(rows, cols) <= max_side:
        return img, 1.0
    scale = max_side / max(rows, cols)
    size = (max(1, round(cols * scale)), max(1, round(rows * scale)))
    small = np.asarray(Image.fromarray(img).resize(size, Image.Resampling.BOX))
    return small, scale


# --------------------------------------------------------------------------------------------------
# Detector
# --------------------------------------------------------------------------------------------------


def _models_dir() -> Path:
    """Return the ``models`` folder of the installed rapidocr-onnxruntime wheel (no import, no download)."""
    spec = importlib.util.find_spec("rapidocr_onnxruntime")
    if spec is None or spec.origin is None:
        raise ImportError(f"rapidocr-onnxruntime is not installed; {_OCR_HINT}")
    return Path(spec.origin).parent / "models"


class TextDetector:
    """PP-OCR text detection + recognition with onnxruntime, on downsampled 8-bit display images.

    Both ONNX models come from the ``rapidocr-onnxruntime`` wheel's ``models`` folder
    (``ch_PP-OCRv4_det_infer.onnx``, ``ch_PP-OCRv4_rec_infer.onnx``; the character list is read from
    the recognition model's metadata). Sessions are created once and reused.

    Detection runs in two passes: the whole image downsampled to *max_side*, then, at the resolution of the
    image given (:func:`scan_dataset` renders it at *hi_side*), the regions where :func:`stroke_proposals` finds
    small text that the first pass did not box. Recognition reads crops of the image given.

    Parameters
    ----------
    max_side : int, optional
        Long side of the image fed to the global detection pass (padded up to a multiple of 32).
    threads : int, optional
        onnxruntime intra-op threads per session.
    hi_side : int, optional
        Long side of the rendering :func:`scan_dataset` makes: the resolution of the proposal pass and of
        recognition.
    proposals : bool, optional
        Run the second pass on stroke proposals (turn off only to measure what it adds).
    recognize : bool, optional
        Load the recognition model (needed by :func:`confirm`; detection-only benchmarks may skip it).
    models_dir : path, optional
        Folder holding the ONNX models; default the rapidocr-onnxruntime package's.

    Raises
    ------
    ImportError
        onnxruntime, OpenCV or the rapidocr-onnxruntime models are missing (install ``cxrlab[ocr]``).
    """

    def __init__(
        self,
        max_side: int = 512,
        threads: int = 1,
        *,
        hi_side: int = 1024,
        proposals: bool = True,
        recognize: bool = True,
        models_dir: str | Path | None = None,
    ) -> None:
        try:
            import cv2
            import onnxruntime as ort
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError(f"{_OCR_HINT} ({exc})") from exc
        folder = Path(models_dir) if models_dir is not None else _models_dir()
        det_path = folder / "ch_PP-OCRv4_det_infer.onnx"
        rec_path = folder / "ch_PP-OCRv4_rec_infer.onnx"
        for p in (det_path, rec_path) if recognize else (det_path,):
            if not p.is_file():
                raise ImportError(f"OCR model {p} not found; {_OCR_HINT}")
        if max_side < 32 or hi_side < max_side:
            raise ValueError("need 32 <= max_side <= hi_side")
        self.max_side = int(max_side)
        self.hi_side = int(hi_side)
        self.proposals = bool(proposals)
        self.threads = int(threads)
        self._cv2 = cv2
        self._clahe = cv2.createCLAHE(clipLimit=DET_CLAHE_CLIP, tileGridSize=(DET_CLAHE_TILES, DET_CLAHE_TILES))
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = self.threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.log_severity_level = 3
        providers = ["CPUExecutionProvider"]
        self._det = ort.InferenceSession(str(det_path), opts, providers=providers)
        self._det_input = self._det.get_inputs()[0].name
        self._rec = None
        self._chars: list[str] = []
        if recognize:
            self._rec = ort.InferenceSession(str(rec_path), opts, providers=providers)
            self._rec_input = self._rec.get_inputs()[0].name
            meta = self._rec.get_modelmeta().custom_metadata_map
            self._chars = ["<blank>", *meta["character"].splitlines(), " "]

    # -- detection ---------------------------------------------------------------------------------

    def detect(self, display_uint8: np.ndarray) -> list[Candidate]:
        """Detect text regions in a 2-D uint8 display image.

        The image is contrast-equalised (CLAHE, :data:`DET_CLAHE_CLIP`, :data:`DET_CLAHE_TILES`). The global
        pass area-downsamples it so its long side is <= ``max_side``; the proposal pass crops the regions
        :func:`stroke_proposals` finds that no global candidate covers, with a margin of context, at the
        image's own resolution (the whole image when proposals cover more than :data:`PROPOSAL_MAX_FRAC`).
        Each pass is one DB network run per image or crop (:meth:`_db`).

        Parameters
        ----------
        display_uint8 : numpy.ndarray
            2-D uint8 image (0 black). Colour images must be converted to grey first.

        Returns
        -------
        list of Candidate
            Candidates with ``status="candidate"``, in the image's coordinates.
        """
        if display_uint8.ndim != 2 or display_uint8.dtype != np.uint8:
            raise ValueError("detect expects a 2-D uint8 image")
        return self._detect(display_uint8, self._equalize(display_uint8), None)

    def _equalize(self, display_uint8: np.ndarray) -> np.ndarray:
        """The detector's input contrast: CLAHE (:data:`DET_CLAHE_CLIP`, :data:`DET_CLAHE_TILES`)."""
        return self._clahe.apply(np.ascontiguousarray(display_uint8))

    def _detect(self, display_uint8: np.ndarray, eq: np.ndarray, strokes: np.ndarray | None) -> list[Candidate]:
        """:meth:`detect` on an already equalised image (and its :func:`stroke_mask`, when computed)."""
        rows, cols = display_uint8.shape
        small, scale = _resize_u8(eq, self.max_side)
        found = [
            Candidate(
                (
                    max(0, int(np.floor(x0 / scale))),
                    max(0, int(np.floor(y0 / scale))),
                    min(cols, int(np.ceil(x1 / scale))),
                    min(rows, int(np.ceil(y1 / scale))),
                ),
                score,
            )
            for (x0, y0, x1, y1), score in self._db(small)
        ]
        if not self.proposals or scale >= 1.0:
            return found
        known = [c.box for c in found]
        props = [b for b in stroke_proposals(display_uint8, strokes) if _inside_frac(b, known) < 0.8]
        crops = []
        for x0, y0, x1, y1 in props:
            m = max(16, 2 * (y1 - y0))
            crops.append((max(0, x0 - m), max(0, y0 - m), min(cols, x1 + m), min(rows, y1 + m)))
        crops = _union_boxes(crops)
        if sum((x1 - x0) * (y1 - y0) for x0, y0, x1, y1 in crops) > PROPOSAL_MAX_FRAC * rows * cols:
            crops = [(0, 0, cols, rows)]
        for cx0, cy0, cx1, cy1 in crops:
            for (x0, y0, x1, y1), score in self._db(eq[cy0:cy1, cx0:cx1]):
                box = (cx0 + x0, cy0 + y0, cx0 + x1, cy0 + y1)
                if _inside_frac(box, known) < 0.7:
                    found.append(Candidate(box, score))
        return found

    def _db(self, eq_uint8: np.ndarray) -> list[tuple[Box, float]]:
        """One DB (differentiable binarisation) network run; boxes in *eq_uint8*'s coordinates.

        The image is zero-padded to a multiple of 32 and replicated to 3 channels. The probability map is
        thresholded at :data:`DET_THRESH`, dilated by 2x2, split into 8-connected components, and each
        component with mean probability >= :data:`DET_BOX_THRESH` becomes an axis-aligned box grown by the
        unclip distance (:data:`DET_UNCLIP_RATIO`).
        """
        cv2 = self._cv2
        h, w = eq_uint8.shape
        ph, pw = max(32, -(-h // 32) * 32), max(32, -(-w // 32) * 32)
        x = np.full((1, 3, ph, pw), -1.0, dtype=np.float32)
        x[0, 0, :h, :w] = eq_uint8 * np.float32(2 / 255.0) - np.float32(1.0)
        x[0, 1] = x[0, 0]
        x[0, 2] = x[0, 0]
        prob = self._det.run(None, {self._det_input: x})[0][0, 0, :h, :w]
        bitmap = (prob > DET_THRESH).astype(np.uint8)
        bitmap = cv2.dilate(bitmap, np.ones((2, 2), np.uint8))
        n, labels, stats, _ = cv2.connectedComponentsWithStats(bitmap, connectivity=8)
        out: list[tuple[Box, float]] = []
        for i in range(1, n):
            bx, by, bw, bh, _area = (int(v) for v in stats[i])
            if min(bw, bh) < 3:
                continue
            region = labels[by : by + bh, bx : bx + bw] == i
            score = float(prob[by : by + bh, bx : bx + bw][region].mean())
            if score < DET_BOX_THRESH:
                continue
            d = bw * bh * DET_UNCLIP_RATIO / (2.0 * (bw + bh))
            out.append(
                (
                    (
                        max(0, int(np.floor(bx - d))),
                        max(0, int(np.floor(by - d))),
                        min(w, int(np.ceil(bx + bw + d))),
                        min(h, int(np.ceil(by + bh + d))),
                    ),
                    score,
                )
            )
        return out

    # -- recognition -------------------------------------------------------------------------------

    def recognize(self, display_uint8: np.ndarray, candidates: Sequence[Candidate]) -> list[Candidate]:
        """Read each candidate's crop with the recognition model; fill ``text`` and ``rec_conf`` in place.

        Each crop is resized to height 48 and read on its own (no padding to a batch's widest crop); a line
        wider than :data:`REC_MAX_WIDTH` at that height is read from its start only. Greedy CTC decoding; the
        confidence is the mean max-probability of the emitted characters.

        Parameters
        ----------
        display_uint8 : numpy.ndarray
            The same 2-D uint8 image the candidate boxes refer to.
        candidates : sequence of Candidate
            Candidates from :meth:`detect`.

        Returns
        -------
        list of Candidate
            The same objects.
        """
        if self._rec is None:
            raise RuntimeError("this TextDetector was built with recognize=False")
        for c in candidates:
            x0, y0, x1, y1 = c.box
            crop = display_uint8[y0:y1, x0:x1]
            if min(crop.shape) < 2:
                c.text, c.rec_conf, c.vertical = "", 0.0, False
                continue
            c.text, c.rec_conf = self._read_line(crop)
            c.vertical = False
            if crop.shape[0] >= ASPECT_MIN * crop.shape[1]:
                # A tall box: lead markers and some labels run top to bottom. Read it turned both ways.
                for turned in (np.rot90(crop, -1), np.rot90(crop, 1)):
                    text, conf = self._read_line(turned)
                    if conf > c.rec_conf:
                        c.text, c.rec_conf, c.vertical = text, conf, True
        return list(candidates)

    def _read_line(self, crop: np.ndarray) -> tuple[str, float]:
        """One recognition run on a horizontal line crop (its start only, see :data:`REC_MAX_WIDTH`)."""
        cv2 = self._cv2
        ch, cw = crop.shape
        tw = max(8, round(cw * _REC_HEIGHT / ch))
        if tw > REC_MAX_WIDTH:
            crop = crop[:, : max(2, round(REC_MAX_WIDTH * ch / _REC_HEIGHT))]
            tw = REC_MAX_WIDTH
        interp = cv2.INTER_AREA if ch > _REC_HEIGHT else cv2.INTER_LINEAR
        line = cv2.resize(np.ascontiguousarray(crop), (tw, _REC_HEIGHT), interpolation=interp)
        x = np.zeros((1, 3, _REC_HEIGHT, -(-tw // 8) * 8), dtype=np.float32)
        x[0, 0, :, :tw] = line * np.float32(2 / 255.0) - np.float32(1.0)
        x[0, 1] = x[0, 0]
        x[0, 2] = x[0, 0]
        return self._decode(self._rec.run(None, {self._rec_input: x})[0][0])

    def _decode(self, pred: np.ndarray) -> tuple[str, float]:
        """Greedy CTC decoding of one (T, classes) prediction."""
        idx = pred.argmax(axis=1)
        prob = pred.max(axis=1)
        keep = np.ones(idx.shape, dtype=bool)
        keep[1:] = idx[1:] != idx[:-1]
        keep &= idx != 0
        if not keep.any():
            return "", 0.0
        chars = self._chars
        text = "".join(chars[k] if k < len(chars) else "" for k in idx[keep])
        return text, float(prob[keep].mean())

    # -- both --------------------------------------------------------------------------------------

    def scan(self, display_uint8: np.ndarray) -> tuple[Decision, list[Candidate], dict[str, float]]:
        """Detect, recognise, confirm and classify one 2-D uint8 display image.

        Steps: :meth:`detect` (global and proposal passes) and :func:`merge_lines`; recognition of every
        candidate that is not a blob; :func:`confirm` and :func:`promote_neighbours`; a second, finer look at
        every candidate left unconfirmed (:meth:`_refine`: a block of stacked small lines that the global pass
        saw as one region is split into its lines and each is read); :func:`extend_lines`; line-end padding
        (:data:`LINE_END_PAD`, :data:`LINE_VERT_PAD`); :func:`classify`.

        Parameters
        ----------
        display_uint8 : numpy.ndarray
            2-D uint8 image (0 black).

        Returns
        -------
        (str, list of Candidate, dict)
            Decision, candidates with statuses (boxes in *display_uint8* coordinates) and timings
            (``detect``, ``recognize`` seconds; the refinement counts as recognition).
        """
        if display_uint8.ndim != 2 or display_uint8.dtype != np.uint8:
            raise ValueError("scan expects a 2-D uint8 image")
        shape = display_uint8.shape
        t0 = time.perf_counter()
        eq = self._equalize(display_uint8)
        strokes = stroke_mask(display_uint8) if self.proposals else None
        cands = merge_lines(self._detect(display_uint8, eq, strokes))
        _measure_strokes(cands, strokes)
        t1 = time.perf_counter()
        lines = [c for c in cands if not is_blob(c.box, shape)]
        if lines:
            self.recognize(display_uint8, lines)
        confirm(cands, shape)
        promote_neighbours(cands, shape)
        cands = self._refine(display_uint8, eq, cands, strokes)
        t2 = time.perf_counter()
        if strokes is not None:
            extend_lines(cands, strokes)
        rows, cols = shape
        for c in cands:
            if c.status == "confirmed":
                x0, y0, x1, y1 = c.box
                size = (x1 - x0) if c.vertical else (y1 - y0)
                pad, vpad = int(round(LINE_END_PAD * size)), int(round(LINE_VERT_PAD * size))
                if c.vertical:
                    pad, vpad = vpad, pad
                c.box = (max(0, x0 - pad), max(0, y0 - vpad), min(cols, x1 + pad), min(rows, y1 + vpad))
        return classify(cands, shape), cands, {"detect": t1 - t0, "recognize": t2 - t1}

    def _refine(
        self, display_uint8: np.ndarray, eq: np.ndarray, cands: list[Candidate], strokes: np.ndarray | None
    ) -> list[Candidate]:
        """Look again, at full resolution, at each unconfirmed candidate that is not a blob.

        The candidate's region (with a margin of half its height, at least 16 px) goes through the detection
        network at the image's own resolution. When that finds smaller regions (a block of stacked lines
        split into lines, a line into words), they replace the candidate, are read and confirmed like the
        others; otherwise the candidate stays as it was.
        """
        rows, cols = display_uint8.shape
        out: list[Candidate] = []
        new: list[Candidate] = []
        for c in cands:
            x0, y0, x1, y1 = c.box
            h = y1 - y0
            if c.status == "confirmed" or is_blob(c.box, (rows, cols)) or h <= 0:
                out.append(c)
                continue
            m = max(16, h // 2)
            cx0, cy0, cx1, cy1 = max(0, x0 - m), max(0, y0 - m), min(cols, x1 + m), min(rows, y1 + m)
            subs = [
                Candidate((cx0 + bx0, cy0 + by0, cx0 + bx1, cy0 + by1), score)
                for (bx0, by0, bx1, by1), score in self._db(eq[cy0:cy1, cx0:cx1])
            ]
            subs = [
                sc
                for sc in merge_lines(subs)
                if sc.box[3] - sc.box[1] < 0.8 * h and _inside_frac(sc.box, [c.box]) > 0.5
            ]
            if subs:
                new.extend(subs)
            else:
                out.append(c)
        if not new:
            return cands
        _measure_strokes(new, strokes)
        self.recognize(display_uint8, new)
        confirm(new, (rows, cols))
        out.extend(new)
        promote_neighbours(out, (rows, cols))
        return out

def scan_dataset(ds: Any, detector: TextDetector, *, render_max_side: int | None = None) -> TextScan:
    """Render a DICOM dataset (:func:`cxrlab.dicom.display.to_uint8`) and scan it for burned-in text.

    The result does not look at (0028,0301) *Burned In Annotation* (PS3.3 C.7.6.1.1.6): a NO there is not
    evidence of absence (DESIGN.md, "Known hazards").

    Parameters
    ----------
    ds : pydicom.dataset.Dataset or path
        Greyscale image dataset.
    detector : TextDetector
        A reusable detector.
    render_max_side : int, optional
        Long side of the rendering used for detection and recognition crops; default the detector's
        ``hi_side``.

    Returns
    -------
    TextScan
        Decision, confirmed boxes and candidates in original pixel coordinates, timings.
    """
    t0 = time.perf_counter()
    disp, ds = _render_small(ds, render_max_side or detector.hi_side, full_range=True)
    t1 = time.perf_counter()
    decision, cands, secs = detector.scan(disp)
    rows, cols = int(ds.Rows), int(ds.Columns)
    sy, sx = rows / disp.shape[0], cols / disp.shape[1]
    for c in cands:
        x0, y0, x1, y1 = c.box
        c.box = (
            max(0, int(np.floor(x0 * sx))),
            max(0, int(np.floor(y0 * sy))),
            min(cols, int(np.ceil(x1 * sx))),
            min(rows, int(np.ceil(y1 * sy))),
        )
    boxes = [c.box for c in cands if c.status == "confirmed"]
    secs = {"render": t1 - t0, **secs, "total": time.perf_counter() - t0}
    return TextScan(decision, boxes, cands, secs, (rows, cols))


def _render_small(ds: Any, max_side: int, *, full_range: bool = False) -> tuple[np.ndarray, Any]:
    """Render the 8-bit display image for detection at long side <= *max_side*; return it and the dataset.

    Fast path for the usual linear Modality LUT (Rescale Slope/Intercept, which commutes with averaging):
    the *stored* array is block-averaged first (:func:`_area_downsample`, on the integer array without a
    float64 copy of the full image), then only the small image is windowed.

    With *full_range*, the window spans every value of the downsampled image instead of the file's own VOI:
    text burned in at the maximum value stays visible over bright anatomy (the spine, the mediastinum) that
    a clinical window saturates to the same white. A linear window over the full range of a linear Modality LUT
    is a min-max stretch of the stored values, with black at the smallest modality value (PS3.3 C.11.1) and
    MONOCHROME1 inverted (C.7.6.3.1.2). Otherwise :func:`cxrlab.dicom.display.render_pixels` windows the small
    image (the percentile fallback window then comes from the downsampled values, slightly narrower than at
    full resolution, which only raises contrast); non-linear Modality LUTs and VOI LUT sequences use
    :func:`~cxrlab.dicom.display.to_uint8`.
    """
    import cv2

    from cxrlab.dicom.display import render_pixels
    from cxrlab.dicom.io import read_dataset, read_pixels

    if not hasattr(ds, "Rows"):
        ds = read_dataset(ds)
    if ds.get("ModalityLUTSequence") or (ds.get("VOILUTSequence") and not full_range):
        return to_uint8(ds, max_size=max_side), ds
    stored = read_pixels(ds)
    if stored.ndim != 2:
        return to_uint8(ds, max_size=max_side), ds
    small = _area_downsample(stored, max_side)
    if full_range:
        out = cv2.normalize(small, None, 0, 255, cv2.NORM_MINMAX, dtype=cv2.CV_8U)
        slope = float(ds.get("RescaleSlope", 1) or 1)
        if (str(ds.get("PhotometricInterpretation", "")).strip() == "MONOCHROME1") != (slope < 0):
            cv2.bitwise_not(out, out)
        return out, ds
    return render_pixels(small.astype(np.float32, copy=False), ds), ds


def _area_downsample(stored: np.ndarray, max_side: int) -> np.ndarray:
    """Area-average *stored* so its long side is <= *max_side* (halving first while more than twice too big:
    OpenCV's integer-factor ``INTER_AREA`` is several times faster than one large non-integer step)."""
    import cv2

    img = stored if stored.dtype in (np.uint8, np.uint16, np.int16) else stored.astype(np.float32)
    img = np.ascontiguousarray(img)
    while max(img.shape) > 2 * max_side:
        img = cv2.resize(img, (img.shape[1] // 2, img.shape[0] // 2), interpolation=cv2.INTER_AREA)
    rows, cols = img.shape
    if max(rows, cols) <= max_side:
        return img
    scale = max_side / max(rows, cols)
    size = (min(max_side, max(1, round(cols * scale))), min(max_side, max(1, round(rows * scale))))
    return cv2.resize(img, size, interpolation=cv2.INTER_AREA)


def default_margin(shape: tuple[int, int]) -> int:
    """Return the redaction margin in pixels for an image of *shape* (:data:`REDACT_MARGIN_FRAC`)."""
    return max(2, round(REDACT_MARGIN_FRAC * max(int(shape[0]), int(shape[1]))))
