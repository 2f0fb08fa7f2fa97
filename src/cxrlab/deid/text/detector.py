"""The text detector: two detection passes, recognition, confirmation and line padding on one display image.

:class:`TextDetector` drives an OCR engine (:mod:`cxrlab.deid.text.ocr`, PP-OCRv4 on onnxruntime by default)
through the steps of :meth:`TextDetector.scan`; what counts as text is decided by the rules of
:mod:`cxrlab.deid.text.confirm`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from cxrlab.deid.text.boxes import _inside_frac, _union_boxes
from cxrlab.deid.text.candidates import (
    Candidate,
    _measure_strokes,
    extend_lines,
    merge_lines,
    stroke_mask,
    stroke_proposals,
)
from cxrlab.deid.text.confirm import (
    ASPECT_MIN,
    Decision,
    classify,
    confirm,
    is_blob,
    promote_neighbours,
    settle_markers,
)
from cxrlab.deid.text.ocr import DEFAULT_BACKEND, OCR_HINT, load_engine

__all__ = ["TextDetector"]

#: CLAHE (contrast-limited adaptive histogram equalisation) on the detector input: clip limit and tiles per
#: side. Faint text over gradients and the mediastinum is detected far more often (bench: recall of
#: planted text 0.955 -> 0.972 at max_side 640); recognition still reads the unequalised image.
DET_CLAHE_CLIP = 2.0
DET_CLAHE_TILES = 8
#: Confirmed boxes grow horizontally by this fraction of their height on each side (line ends the
#: detector clipped: a faint first or last character).
LINE_END_PAD = 0.75
#: Confirmed boxes grow vertically by this fraction of their height on each side (clipped ascenders and
#: descenders of faint text).
LINE_VERT_PAD = 0.2
#: When proposals cover more than this fraction of the image, the detector runs over the whole rendering.
PROPOSAL_MAX_FRAC = 0.25


def _resize_u8(img: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    """Area-downsample a uint8 image so its long side is <= *max_side*; return it and the scale."""
    rows, cols = img.shape[:2]
    if max(rows, cols) <= max_side:
        return img, 1.0
    scale = max_side / max(rows, cols)
    size = (max(1, round(cols * scale)), max(1, round(rows * scale)))
    small = np.asarray(Image.fromarray(img).resize(size, Image.Resampling.BOX))
    return small, scale


class TextDetector:
    """Text detection + recognition with an OCR engine, on downsampled 8-bit display images.

    The engine (:func:`cxrlab.deid.text.ocr.load_engine`; by default PP-OCRv4 with onnxruntime, its models
    from the ``rapidocr-onnxruntime`` wheel) is loaded once and reused.

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
        Folder holding the engine's model files; default the backend's own (the rapidocr-onnxruntime package's).
    backend : str, optional
        The OCR backend, a key of :data:`cxrlab.deid.text.ocr.OCR_BACKENDS`.

    Raises
    ------
    ImportError
        onnxruntime, OpenCV or the rapidocr-onnxruntime models are missing (install ``cxrlab[ocr]``).
    ValueError
        Not ``32 <= max_side <= hi_side``, or an unknown *backend*.
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
        backend: str = DEFAULT_BACKEND,
    ) -> None:
        if max_side < 32 or hi_side < max_side:
            raise ValueError("need 32 <= max_side <= hi_side")
        self._engine = load_engine(backend, threads=threads, recognize=recognize, models_dir=models_dir)
        try:
            import cv2
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError(f"{OCR_HINT} ({exc})") from exc
        self.max_side = int(max_side)
        self.hi_side = int(hi_side)
        self.proposals = bool(proposals)
        self.threads = int(threads)
        # The scan's OpenCV work (CLAHE, resizing, the hugging step's morphology and labelling) gets the same thread
        # budget as onnxruntime: a detector lives in one worker of the stage's pool, whose workers already fill the
        # cores, and OpenCV's own pool on top of them (all cores by default) costs CPU in contention. Process-wide,
        # as OpenCV's setting is.
        cv2.setNumThreads(self.threads)
        self._clahe = cv2.createCLAHE(clipLimit=DET_CLAHE_CLIP, tileGridSize=(DET_CLAHE_TILES, DET_CLAHE_TILES))

    # -- detection ---------------------------------------------------------------------------------

    def detect(self, display_uint8: np.ndarray) -> list[Candidate]:
        """Detect text regions in a 2-D uint8 display image.

        The image is contrast-equalised (CLAHE, :data:`DET_CLAHE_CLIP`, :data:`DET_CLAHE_TILES`). The global
        pass area-downsamples it so its long side is <= ``max_side``; the proposal pass crops the regions
        :func:`stroke_proposals` finds that no global candidate covers, with a margin of context, at the
        image's own resolution (the whole image when proposals cover more than :data:`PROPOSAL_MAX_FRAC`).
        Each pass is one run of the engine's detection network per image or crop.

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
            for (x0, y0, x1, y1), score in self._engine.detect_regions(small)
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
            for (x0, y0, x1, y1), score in self._engine.detect_regions(eq[cy0:cy1, cx0:cx1]):
                box = (cx0 + x0, cy0 + y0, cx0 + x1, cy0 + y1)
                if _inside_frac(box, known) < 0.7:
                    found.append(Candidate(box, score))
        return found

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
        if not self._engine.reads:
            raise RuntimeError("this TextDetector was built with recognize=False")
        for c in candidates:
            x0, y0, x1, y1 = c.box
            crop = display_uint8[y0:y1, x0:x1]
            if min(crop.shape) < 2:
                c.text, c.rec_conf, c.vertical = "", 0.0, False
                continue
            c.text, c.rec_conf = self._engine.read_line(crop)
            c.vertical = False
            if crop.shape[0] >= ASPECT_MIN * crop.shape[1]:
                # A tall box: lead markers and some labels run top to bottom. Read it turned both ways.
                for turned in (np.rot90(crop, -1), np.rot90(crop, 1)):
                    text, conf = self._engine.read_line(turned)
                    if conf > c.rec_conf:
                        c.text, c.rec_conf, c.vertical = text, conf, True
        return list(candidates)


    # -- both --------------------------------------------------------------------------------------

    def scan(self, display_uint8: np.ndarray) -> tuple[Decision, list[Candidate], dict[str, float]]:
        """Detect, recognise, confirm and classify one 2-D uint8 display image.

        Steps: :meth:`detect` (global and proposal passes) and :func:`merge_lines`; recognition of every
        candidate that is not a blob; :func:`confirm` and :func:`promote_neighbours`; a second, finer look at
        every candidate left unconfirmed (:meth:`_refine`: a block of stacked small lines that the global pass
        saw as one region is split into its lines and each is read); :func:`settle_markers` (positioning
        markers and technical words become ``marker``); :func:`extend_lines`; line-end padding of confirmed lines
        (:data:`LINE_END_PAD`, :data:`LINE_VERT_PAD`; markers keep their detected box); :func:`classify`.

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
        settle_markers(cands, shape, strokes)
        t2 = time.perf_counter()
        for c in cands:
            if c.status in ("confirmed", "marker"):
                c.detected = c.box
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
                for (bx0, by0, bx1, by1), score in self._engine.detect_regions(eq[cy0:cy1, cx0:cx1])
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
