"""PP-OCRv4 text detection and recognition run with onnxruntime: the default OCR backend.

This module is not intended to be used directly: ask :func:`cxrlab.deid.text.ocr.load_engine` for
``"ppocr-onnx"``.

Both ONNX models come from the ``rapidocr-onnxruntime`` wheel's ``models`` folder (``ch_PP-OCRv4_det_infer.onnx``,
``ch_PP-OCRv4_rec_infer.onnx``; the character list is read from the recognition model's metadata): no model is
downloaded at run time. onnxruntime and OpenCV are imported only when an engine is loaded (:func:`load`).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from cxrlab.deid.text.boxes import Box
from cxrlab.deid.text.ocr import OCR_HINT

#: The libraries this backend needs: ``{import name: requirement}`` (the ``cxrlab[ocr]`` extra; OpenCV comes
#: with rapidocr-onnxruntime).
DEPENDENCIES = {
    "onnxruntime": "onnxruntime>=1.18,<2",
    "cv2": "opencv-python",
    "rapidocr_onnxruntime": "rapidocr-onnxruntime>=1.4.4,<1.5",
}

#: Probability-map threshold of the DB post-processing (PP-OCR default 0.3).
DET_THRESH = 0.3
#: Minimum mean probability inside a candidate region (PP-OCR default 0.5).
DET_BOX_THRESH = 0.5
#: DB "unclip" ratio: a region of area A and perimeter L grows by A * ratio / L on every side.
DET_UNCLIP_RATIO = 1.6
#: Recognition input height (PP-OCRv4 rec).
_REC_HEIGHT = 48
#: Widest recognition input in pixels (about 6-8 characters): enough to tell text from texture, and the
#: recognition cost grows with the width (about 0.1 ms per column on one core), so a long line is read from
#: its start only.
REC_MAX_WIDTH = 256


def _models_dir() -> Path:
    """Return the ``models`` folder of the installed rapidocr-onnxruntime wheel (no import, no download)."""
    spec = importlib.util.find_spec("rapidocr_onnxruntime")
    if spec is None or spec.origin is None:
        raise ImportError(f"rapidocr-onnxruntime is not installed; {OCR_HINT}")
    return Path(spec.origin).parent / "models"


def is_available() -> bool:
    """True when onnxruntime, OpenCV and the rapidocr-onnxruntime models are installed (nothing is imported)."""
    if importlib.util.find_spec("onnxruntime") is None or importlib.util.find_spec("cv2") is None:
        return False
    try:
        return _models_dir().is_dir()
    except Exception:  # noqa: BLE001 - any failure means "not available"
        return False


def load(*, threads: int = 1, recognize: bool = True, models_dir: str | Path | None = None) -> PPOCREngine:
    """Build a :class:`PPOCREngine` (see :func:`cxrlab.deid.text.ocr.load_engine` for the parameters).

    Raises
    ------
    ImportError
        onnxruntime, OpenCV or the model files are missing (install ``cxrlab[ocr]``).
    """
    return PPOCREngine(threads=threads, recognize=recognize, models_dir=models_dir)


class PPOCREngine:
    """PP-OCRv4 DB text detection and CTC recognition on onnxruntime CPU sessions, created once and reused.

    Parameters
    ----------
    threads : int, optional
        onnxruntime intra-op threads per session.
    recognize : bool, optional
        Load the recognition model (:meth:`read_line`).
    models_dir : path, optional
        Folder holding the ONNX models; default the rapidocr-onnxruntime package's.

    Raises
    ------
    ImportError
        onnxruntime, OpenCV or the rapidocr-onnxruntime models are missing (install ``cxrlab[ocr]``).
    """

    def __init__(self, *, threads: int = 1, recognize: bool = True, models_dir: str | Path | None = None) -> None:
        try:
            import cv2
            import onnxruntime as ort
        except ImportError as exc:  # pragma: no cover - depends on the environment
            missing = [req for mod, req in DEPENDENCIES.items() if importlib.util.find_spec(mod) is None]
            raise ImportError(f"unavailable, needs {', '.join(missing) or exc}; {OCR_HINT}") from exc
        folder = Path(models_dir) if models_dir is not None else _models_dir()
        det_path = folder / "ch_PP-OCRv4_det_infer.onnx"
        rec_path = folder / "ch_PP-OCRv4_rec_infer.onnx"
        for p in (det_path, rec_path) if recognize else (det_path,):
            if not p.is_file():
                raise ImportError(f"OCR model {p} not found; {OCR_HINT}")
        self._cv2 = cv2
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = int(threads)
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
        self.reads = self._rec is not None

    def detect_regions(self, eq_uint8: np.ndarray) -> list[tuple[Box, float]]:
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

    def read_line(self, crop: np.ndarray) -> tuple[str, float]:
        """One recognition run on a horizontal line crop (its start only, see :data:`REC_MAX_WIDTH`)."""
        if self._rec is None:
            raise RuntimeError("this engine was loaded with recognize=False")
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
