"""Confirmation rules: which candidates are text, which are doubtful, and the decision for the image.

The design notes ("Known hazards", burned-in text) record that on a real NIH chest image the detector boxed both lung
fields as "text lines", so detection alone never decides a redaction: each candidate is confirmed by its
recognised string (confidence and plausible characters), its line geometry (aspect ratio, text height) and an
area cap, and the image is classified as

* ``clean``  -- no confirmed text and nothing doubtful;
* ``redact`` -- confirmed text boxes whose total area is at most :data:`REDACT_MAX_AREA_FRAC`;
* ``review`` -- doubtful: large unconfirmed candidates, or more confirmed area than may be redacted
  automatically.

Real films carry positioning markers and technologists' tokens (a lead "L" or "R" with the technologist's initials,
"AP", "PORTABLE") that read as short or square text and used to be doubtful: 5 of 13 NIH ChestX-ray14 images were
held for review for nothing else (the design notes, "Known hazards"). :func:`settle_markers` decides them without a
human: a doubtful candidate that reads as words of :data:`TECHNICAL_WORDS`, or as a short token
(:data:`MARKER_MAX_CHARS`) standing alone next to the film edge, becomes a ``marker``. Markers are redacted like
confirmed text (VinDr-PCXR data descriptor: the textual information on the image is removed), with their detected
box and no line padding; nothing else changes status, so names, ids and dates follow the rules above.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from typing import Literal

import numpy as np

from cxrlab.deid.text.boxes import boxes_mask
from cxrlab.deid.text.candidates import Candidate

__all__ = [
    "ASPECT_MIN",
    "BLOB_HEIGHT_FACTOR",
    "CANDIDATE_AREA_MAX_FRAC",
    "REC_DOUBT_CONF",
    "REC_MIN_CONF",
    "REDACT_MAX_AREA_FRAC",
    "REVIEW_MIN_AREA_FRAC",
    "REVIEW_MIN_STROKES",
    "SINGLE_CHARACTER",
    "MARKER_AREA_MAX_FRAC",
    "MARKER_EDGE_FRAC",
    "MARKER_HEIGHT_MAX",
    "MARKER_ISOLATION",
    "MARKER_MAX_CHARS",
    "TECHNICAL_WORDS",
    "TEXT_HEIGHT_RANGE",
    "Decision",
    "classify",
    "confirm",
    "is_blob",
    "plausible_text",
    "is_technical",
    "promote_neighbours",
    "settle_markers",
]

Decision = Literal["clean", "redact", "review"]

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
#: :data:`ASPECT_MIN` is a "blob" (the lung-field false positive of the design notes): ignored without recognition.
BLOB_HEIGHT_FACTOR = 2.0
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

#: Words technologists and modalities burn into films: sides, projections, patient positions, exposure notes. A
#: candidate that reads as these words only is a marker (:func:`settle_markers`). Sides and projections are the
#: (0020,0020) *Patient Orientation* and (0018,5101) *View Position* defined terms of PS3.3 C.7.6.1.1.1 and
#: C.8.11.5; the rest is common technologists' vocabulary.
TECHNICAL_WORDS = frozenset({
    "L", "R", "LT", "RT", "LEFT", "RIGHT", "PA", "AP", "LAT", "LATERAL", "LL", "RL", "LLD", "RLD", "OBL", "OBLIQUE",
    "LAO", "RAO", "LPO", "RPO", "PORTABLE", "PORT", "MOBILE", "BEDSIDE", "SUPINE", "PRONE", "ERECT", "SEMI",
    "SEMIERECT", "UPRIGHT", "STANDING", "SITTING", "SEATED", "DECUBITUS", "DECUB", "INSP", "EXP", "INSPIRATION",
    "EXPIRATION", "CHEST", "XTABLE", "CROSSTABLE", "CROSS", "TABLE", "HORIZONTAL", "BEAM", "GRID", "UP", "SIDE",
})
#: Longest token (letters and digits) that counts as a marker without being a technical word: a side marker with a
#: technologist's initials ("L" over "DG", read as one token) has up to four.
MARKER_MAX_CHARS = 4
#: A short marker must touch this band along the film's edges (fraction of the image side).
MARKER_EDGE_FRAC = 0.15
#: Tallest marker, as a fraction of the image height (lead markers are larger than printed text).
MARKER_HEIGHT_MAX = 0.12
#: Largest marker box, as a fraction of the image area.
MARKER_AREA_MAX_FRAC = 0.01
#: A short marker stands alone: along its line, this many line heights on each side hold no more strokes than
#: :data:`REVIEW_MIN_STROKES` (text that goes on is a longer line, not a marker).
MARKER_ISOLATION = 2.0

SINGLE_CHARACTER = "a single character"
_PUNCT = set(" .,:;/-_+()[]#'\"&%*<>=^|!?@")


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
    from the design notes "Known hazards": the detector alone boxes lung fields as text lines. Blobs
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


def is_technical(text: str) -> bool:
    """Whether *text* reads as :data:`TECHNICAL_WORDS` only (case, spaces and punctuation ignored).

    Parameters
    ----------
    text : str
        Recognised string.

    Returns
    -------
    bool
        True for e.g. ``"PORTABLE"``, ``"AP SUPINE"``, ``"L"``; False for anything holding another word or a digit.
    """
    tokens = [t for t in re.split(r"[^0-9A-Za-z]+", text.upper()) if t]
    return bool(tokens) and all(t in TECHNICAL_WORDS for t in tokens)


def _near_edge(box: Sequence[int], shape: tuple[int, int]) -> bool:
    rows, cols = int(shape[0]), int(shape[1])
    x0, y0, x1, y1 = (int(v) for v in box[:4])
    fx, fy = MARKER_EDGE_FRAC * cols, MARKER_EDGE_FRAC * rows
    return x0 <= fx or x1 >= cols - fx or y0 <= fy or y1 >= rows - fy


def _alone(box: Sequence[int], vertical: bool, strokes: np.ndarray | None) -> bool:
    """No text goes on along the box's line: few strokes within :data:`MARKER_ISOLATION` line heights of it."""
    if strokes is None:
        return True
    rows, cols = strokes.shape
    x0, y0, x1, y1 = (int(v) for v in box[:4])
    if vertical:  # the line runs top to bottom: look above and below
        m = int(round(MARKER_ISOLATION * (x1 - x0)))
        sides = [strokes[max(0, y0 - m) : y0, x0:x1], strokes[y1 : min(rows, y1 + m), x0:x1]]
    else:
        m = int(round(MARKER_ISOLATION * (y1 - y0)))
        sides = [strokes[y0:y1, max(0, x0 - m) : x0], strokes[y0:y1, x1 : min(cols, x1 + m)]]
    return all(s.size == 0 or float(s.mean()) < REVIEW_MIN_STROKES for s in sides)


def settle_markers(
    candidates: Sequence[Candidate], shape: tuple[int, int], strokes: np.ndarray | None = None
) -> list[Candidate]:
    """Turn doubtful candidates that are positioning markers or technical words into ``marker`` (in place).

    A doubtful candidate becomes a ``marker`` when it partly reads as text (confidence >= :data:`REC_DOUBT_CONF`,
    a letter or digit, half the characters plausible), its height (along the text) is within
    ``TEXT_HEIGHT_RANGE[0]`` and :data:`MARKER_HEIGHT_MAX` of the image height, its box covers at most
    :data:`MARKER_AREA_MAX_FRAC` of the image, and either

    * it reads as technical words only (:func:`is_technical`: "AP", "PORTABLE", "SUPINE"), or
    * it is a short token (at most :data:`MARKER_MAX_CHARS` letters and digits: "L", "8H", "DC") touching the band of
      :data:`MARKER_EDGE_FRAC` along the film's edges and standing alone on its line (:data:`MARKER_ISOLATION`;
      only checked when *strokes* is given).

    Markers are redacted like confirmed text (:func:`classify` counts their area); a doubtful candidate that is
    neither stays doubtful (review).

    Parameters
    ----------
    candidates : sequence of Candidate
        After :func:`confirm` and :func:`promote_neighbours`.
    shape : (rows, columns)
        Image size.
    strokes : numpy.ndarray, optional
        :func:`~cxrlab.deid.text.candidates.stroke_mask` of the image.

    Returns
    -------
    list of Candidate
        The same objects.
    """
    rows, cols = int(shape[0]), int(shape[1])
    img_area = float(max(1, rows * cols))
    for c in candidates:
        if c.status != "doubtful":
            continue
        x0, y0, x1, y1 = c.box
        w, h = max(0, x1 - x0), max(0, y1 - y0)
        if c.vertical:
            w, h = h, w
        alnum, frac = plausible_text(c.text)
        if c.rec_conf < REC_DOUBT_CONF or alnum < 1 or frac < 0.5:
            continue
        if not TEXT_HEIGHT_RANGE[0] * rows <= h <= MARKER_HEIGHT_MAX * rows or w * h / img_area > MARKER_AREA_MAX_FRAC:
            continue
        glyphs = sum(1 for ch in c.text if not ch.isspace())
        if is_technical(c.text):
            c.status, c.reason = "marker", "technical word"
        elif (alnum <= MARKER_MAX_CHARS and glyphs <= MARKER_MAX_CHARS and _near_edge(c.box, shape)
              and _alone(c.box, c.vertical, strokes)):
            c.status, c.reason = "marker", "short marker at the film edge"
    return list(candidates)


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

    Such regions (both lung fields on the NIH image of the design notes "Known hazards", the lung fields and
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

    ``review`` when any candidate is doubtful or the union of confirmed and marker boxes exceeds
    :data:`REDACT_MAX_AREA_FRAC` of the image; ``redact`` when there are confirmed or marker boxes; else
    ``clean``.

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
    confirmed = [c.box for c in candidates if c.status in ("confirmed", "marker")]
    if any(c.status == "doubtful" for c in candidates):
        return "review"
    if not confirmed:
        return "clean"
    mask = boxes_mask(shape, confirmed, margin_px=0)
    if mask.mean() > REDACT_MAX_AREA_FRAC:
        return "review"
    return "redact"
