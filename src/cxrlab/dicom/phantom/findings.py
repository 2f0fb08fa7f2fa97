"""Planted findings with known boxes: a dense nodule, an enlarged heart, a pleural effusion blunting an angle.

The three are local labels of the VinDr-CXR data descriptor (Table 2: "Nodule/Mass", "Cardiomegaly", "Pleural
effusion", spelled as there), so a phantom release reads with the VinDr-CXR schema. Each is drawn into the
attenuation map of a frontal adult chest (:func:`cxrlab.dicom.phantom.anatomy._chest_frontal`) at low resolution,
with its size, place and contrast drawn at random so that a model has to look (a small faint nodule behind a rib is
hard; a large dense one is easy), and its box is returned in the pixels of the full-size image:

- **Nodule/Mass**: a round opacity of radius 1.8-5 % of the thorax in either lung field, away from the heart and
  below-diaphragm region, 6-16 % attenuation above the lung; its box is the ellipse's extent.
- **Cardiomegaly**: the heart silhouette widened so that the cardiothoracic ratio is about 0.55-0.70 instead of
  about 0.43 (a ratio above 0.5 on a PA film is the usual definition of an enlarged heart); its box is the visible
  silhouette (the heart above the diaphragm).
- **Pleural effusion**: fluid density filling the lateral lung base of one side up to a meniscus that rises
  laterally, so the costophrenic angle is blunted: 6-18 % of the thorax high at the chest wall, 19-29 % attenuation
  (about what the air of the lung takes away, so the base turns as white as soft tissue); its box is the fluid's
  extent.

Everything is drawn from the generator passed in (a stream of its own, so a corpus without findings is unchanged).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["FINDINGS", "HEART_SCALE"]

#: The planted findings, in the VinDr-CXR spelling (VinDr-CXR data descriptor, Table 2, local labels).
FINDINGS: tuple[str, str, str] = ("Nodule/Mass", "Cardiomegaly", "Pleural effusion")
#: Range of the factor that widens the heart (x) for Cardiomegaly; the height grows by a third of the excess.
HEART_SCALE: tuple[float, float] = (1.3, 1.65)

_F32 = np.float32


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def _mask_box(mask: np.ndarray, sx: float, sy: float) -> tuple[float, float, float, float] | None:
    """Box (x_min, y_min, x_max, y_max) of ``mask > 0.5`` in full-size pixels (low-res pixel i covers [i, i+1])."""
    ys, xs = np.nonzero(mask > 0.5)
    if ys.size == 0:
        return None
    return (float(xs.min()) * sx, float(ys.min()) * sy, float(xs.max() + 1) * sx, float(ys.max() + 1) * sy)


def heart_scale(rng: np.random.Generator, findings: Sequence[str]) -> tuple[float, float]:
    """The (x, y) factors of the heart's radii: 1 without Cardiomegaly, :data:`HEART_SCALE` with it."""
    if "Cardiomegaly" not in findings:
        return 1.0, 1.0
    fx = float(rng.uniform(*HEART_SCALE))
    return fx, 1.0 + (fx - 1.0) / 3.0


def plant_findings(
    rng: np.random.Generator,
    att: np.ndarray,
    X: np.ndarray,
    Y: np.ndarray,
    geometry: dict[str, np.ndarray | float],
    findings: Sequence[str],
    *,
    scale: tuple[float, float, float],
) -> tuple[np.ndarray, list[dict[str, object]]]:
    """Add the *findings* to the attenuation map *att* (low resolution); return it and the boxes.

    Parameters
    ----------
    rng : numpy.random.Generator
        The findings' own stream.
    att, X, Y : numpy.ndarray
        Attenuation map and anatomy coordinates (units of the thorax size) of the low-resolution grid.
    geometry : dict
        What :func:`~cxrlab.dicom.phantom.anatomy._chest_frontal` recorded: ``heart`` and ``below`` masks,
        ``lungs`` (the two lung-field masks, image left first) and ``dome`` (the diaphragm level per pixel).
    findings : sequence of str
        Names from :data:`FINDINGS` (Cardiomegaly was already drawn by widening the heart).
    scale : (L, sx, sy)
        ``L`` low-res pixels per thorax unit; ``sx``/``sy`` scale low-res pixels to full-size pixels.

    Returns
    -------
    (numpy.ndarray, list of dict)
        The new map and ``{"label", "box": [x_min, y_min, x_max, y_max]}`` per finding (full-size pixels,
        rounded to 0.1 px), in :data:`FINDINGS` order.
    """
    L, sx, sy = scale
    heart, below, dome = geometry["heart"], geometry["below"], geometry["dome"]
    lungs = geometry["lungs"]
    out: list[dict[str, object]] = []
    h, w = att.shape
    # Continuous low-res pixel coordinate of anatomy (0, 0), from the grid itself (pixel centres at i + 0.5).
    ox = float(0.5 - X[0, 0] * L)
    oy = float(0.5 - Y[0, 0] * L)
    for name in FINDINGS:
        if name not in findings:
            continue
        box = None
        if name == "Nodule/Mass":
            side = int(rng.integers(2))
            lung = lungs[side]
            r = float(rng.uniform(0.018, 0.05))
            ry = r * float(rng.uniform(0.85, 1.15))
            contrast = float(rng.uniform(0.06, 0.16))
            ok = np.flatnonzero(((lung > 0.9) & (below < 0.05) & (heart < 0.05)).ravel())
            if ok.size == 0:
                continue
            k = int(ok[int(rng.integers(ok.size))])
            cxa, cya = float(X.flat[k]), float(Y.flat[k])
            d = np.sqrt(((X - cxa) / r) ** 2 + ((Y - cya) / ry) ** 2)
            blob = _smoothstep((1.0 - d) / 0.35)
            att = att + contrast * blob
            box = ((cxa - r) * L + ox, (cya - ry) * L + oy, (cxa + r) * L + ox, (cya + ry) * L + oy)
            box = (box[0] * sx, box[1] * sy, box[2] * sx, box[3] * sy)
        elif name == "Cardiomegaly":
            box = _mask_box(heart * (1.0 - below), sx, sy)
        elif name == "Pleural effusion":
            side = int(rng.integers(2))
            s = -1.0 if side == 0 else 1.0
            lung = lungs[side]
            height = float(rng.uniform(0.06, 0.18))
            density = float(rng.uniform(0.19, 0.29))
            t = np.clip((s * X - 0.12) / 0.22, 0.0, 1.0) ** 0.7
            level = dome - height * t
            fluid = lung * (1.0 - heart) * _smoothstep((Y - level) / 0.015) * (1.0 - below) * (s * X > 0.12)
            att = att + density * fluid
            box = _mask_box(fluid, sx, sy)
        if box is None:
            continue
        x0, y0, x1, y1 = (min(max(v, 0.0), lim) for v, lim in zip(box, (w * sx, h * sy, w * sx, h * sy),
                                                                    strict=True))
        out.append({"label": name, "box": [round(x0, 1), round(y0, 1), round(x1, 1), round(y1, 1)]})
    return att, out


def draw_findings(rng: np.random.Generator, prob: float) -> list[str]:
    """Each of :data:`FINDINGS` independently with probability *prob*, in that order."""
    if prob <= 0:
        return []
    u = rng.random(len(FINDINGS))
    return [name for name, v in zip(FINDINGS, u, strict=True) if v < prob]
