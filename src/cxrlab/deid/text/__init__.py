"""Burned-in text detection, confirmation and redaction for de-identification.

Pixel data can carry identifying text (names, IDs, dates) burned in by the modality or a post-processing
station. PS3.3 C.7.6.1.1.6 defines (0028,0301) *Burned In Annotation*, but the tag is optional, often absent
and sometimes wrong, so it is never trusted alone: every image is scanned.

Detection uses the PP-OCR text *detection* model (DB, differentiable binarisation) shipped inside the
``rapidocr-onnxruntime`` wheel, run directly with onnxruntime on a downsampled 8-bit display rendering; the
OCR engine is a plugin (:mod:`cxrlab.deid.text.ocr`). No model is downloaded at run time. The design notes ("Known
hazards", burned-in text) records that on a real NIH chest image this detector boxed both lung fields as
"text lines", so detection alone never decides a redaction: each candidate is confirmed with the PP-OCR
*recognition* model (confidence and a plausible string), line geometry (aspect ratio, text height) and an
area cap, and the image is classified as

* ``clean``  -- no confirmed text and nothing doubtful;
* ``redact`` -- confirmed text boxes whose total area is at most :data:`REDACT_MAX_AREA_FRAC`;
* ``review`` -- doubtful: large unconfirmed candidates, or more confirmed area than may be redacted
  automatically. These go to the review queue with a :func:`preview_png`.

Positioning markers and technical words ("L" with a technologist's initials, "AP", "PORTABLE") are decided without
a human (:func:`settle_markers`): they are redacted as ``marker`` boxes and hold no image for review.

The optional dependencies (onnxruntime, the rapidocr-onnxruntime wheel for its models, OpenCV for connected
components) are imported lazily; ``import cxrlab.deid.text`` works without them and only building a
:class:`TextDetector` raises an :class:`ImportError` naming the ``cxrlab[ocr]`` extra
(:func:`cxrlab.deid.text.ocr.is_available` tells beforehand).

The modules follow the data: :mod:`~cxrlab.deid.text.candidates` (regions and strokes),
:mod:`~cxrlab.deid.text.confirm` (the rules), :mod:`~cxrlab.deid.text.detector` (the passes over one image),
:mod:`~cxrlab.deid.text.scan` (a DICOM dataset), :mod:`~cxrlab.deid.text.hug` (redaction boxes that hug the
strokes), :mod:`~cxrlab.deid.text.redact` (the stored pixels and the review preview),
with :mod:`~cxrlab.deid.text.boxes` for box geometry.

Examples
--------
>>> import numpy as np
>>> stored = np.full((4, 6), 7, dtype=np.uint16)
>>> out, mask = redact(stored, [(1, 1, 3, 2)], margin_px=0, photometric="MONOCHROME1", fill=None)
>>> int(out[1, 1]), int(mask.sum())
(7, 2)
"""

from cxrlab.deid.text.boxes import boxes_mask
from cxrlab.deid.text.candidates import Candidate, extend_lines, merge_lines, stroke_mask, stroke_proposals
from cxrlab.deid.text.confirm import (
    ASPECT_MIN,
    BLOB_HEIGHT_FACTOR,
    CANDIDATE_AREA_MAX_FRAC,
    REC_DOUBT_CONF,
    REC_MIN_CONF,
    REDACT_MAX_AREA_FRAC,
    REVIEW_MIN_AREA_FRAC,
    REVIEW_MIN_STROKES,
    SINGLE_CHARACTER,
    TECHNICAL_WORDS,
    TEXT_HEIGHT_RANGE,
    classify,
    confirm,
    is_blob,
    is_technical,
    plausible_text,
    promote_neighbours,
    settle_markers,
)
from cxrlab.deid.text.detector import TextDetector
from cxrlab.deid.text.hug import hug_boxes

# DET_THRESH and DET_BOX_THRESH were public before the split; the plugin module imports nothing optional.
from cxrlab.deid.text.ocr.ppocr import DET_BOX_THRESH, DET_THRESH
from cxrlab.deid.text.redact import REDACT_MARGIN_FRAC, default_margin, preview_png, redact
from cxrlab.deid.text.scan import TextScan, scan_dataset

__all__ = [
    "ASPECT_MIN",
    "BLOB_HEIGHT_FACTOR",
    "CANDIDATE_AREA_MAX_FRAC",
    "DET_BOX_THRESH",
    "DET_THRESH",
    "REC_DOUBT_CONF",
    "REC_MIN_CONF",
    "REDACT_MARGIN_FRAC",
    "REDACT_MAX_AREA_FRAC",
    "REVIEW_MIN_AREA_FRAC",
    "REVIEW_MIN_STROKES",
    "SINGLE_CHARACTER",
    "TECHNICAL_WORDS",
    "TEXT_HEIGHT_RANGE",
    "Candidate",
    "TextDetector",
    "TextScan",
    "boxes_mask",
    "classify",
    "confirm",
    "default_margin",
    "extend_lines",
    "hug_boxes",
    "is_blob",
    "is_technical",
    "merge_lines",
    "plausible_text",
    "preview_png",
    "promote_neighbours",
    "redact",
    "scan_dataset",
    "settle_markers",
    "stroke_mask",
    "stroke_proposals",
]
