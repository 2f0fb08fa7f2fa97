"""Chest (and other) radiograph images in plain numpy: anatomy at low resolution, upsampled, with noise.

Attenuation maps are built from soft-edged shapes in units of the thorax size (body envelope, lung fields,
heart and mediastinum, spine, ribs, clavicles, diaphragm domes; a lateral chest; a hand, knee, skull or
abdomen for the other-body-part outlier), then mapped to unsigned stored values with quantum-like noise.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from cxrlab.dicom.phantom.findings import heart_scale, plant_findings

__all__ = ["chest_reference_boxes"]

_F32 = np.float32


def _smoothstep(x: np.ndarray) -> np.ndarray:
    """Cubic smoothstep of *x* clipped to [0, 1]."""
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def _ellipse(
    X: np.ndarray, Y: np.ndarray, cx: float, cy: float, rx: float, ry: float, edge: float = 0.08
) -> np.ndarray:
    """Soft-edged ellipse mask in [0, 1]."""
    r = np.sqrt(((X - cx) / rx) ** 2 + ((Y - cy) / ry) ** 2)
    return _smoothstep((1.0 - r) / edge)


def _capsule(
    X: np.ndarray,
    Y: np.ndarray,
    p0: tuple[float, float],
    p1: tuple[float, float],
    r: float,
    edge: float = 0.01,
) -> np.ndarray:
    """Soft-edged capsule (thick segment) mask in [0, 1]."""
    dx, dy = p1[0] - p0[0], p1[1] - p0[1]
    len2 = max(dx * dx + dy * dy, 1e-9)
    t = np.clip(((X - p0[0]) * dx + (Y - p0[1]) * dy) / len2, 0.0, 1.0)
    d = np.hypot(X - p0[0] - t * dx, Y - p0[1] - t * dy)
    return _smoothstep((r - d) / edge)


def _texture(rng: np.random.Generator, shape: tuple[int, int], cells: int) -> np.ndarray:
    """Smooth random texture in about [-1, 1], made by bilinear upsampling of a coarse noise grid."""
    h, w = shape
    ch = max(2, int(round(cells * h / max(h, w))))
    cw = max(2, int(round(cells * w / max(h, w))))
    coarse = rng.standard_normal((ch, cw)).astype(_F32)
    return np.asarray(Image.fromarray(coarse).resize((w, h), Image.Resampling.BICUBIC), dtype=_F32)


def _grid(h: int, w: int, scale: float, cx: float, cy: float) -> tuple[np.ndarray, np.ndarray]:
    """Return anatomy coordinates X, Y (units of the thorax size) for an ``h`` x ``w`` grid."""
    L = scale * min(h, w)
    X = ((np.arange(w, dtype=_F32) + 0.5 - w * (0.5 + cx)) / L)[None, :]
    Y = ((np.arange(h, dtype=_F32) + 0.5 - h * (0.5 + cy)) / L)[:, None]
    return np.broadcast_to(X, (h, w)), np.broadcast_to(Y, (h, w))


def _chest_frontal(
    rng: np.random.Generator,
    X: np.ndarray,
    Y: np.ndarray,
    pediatric: bool,
    *,
    heart_scale: tuple[float, float] = (1.0, 1.0),
    geometry: dict | None = None,
) -> np.ndarray:
    """Attenuation map (about 0..1) of a frontal (PA/AP) chest radiograph.

    *heart_scale* widens the heart (Cardiomegaly, :mod:`cxrlab.dicom.phantom.findings`) without changing the random
    numbers drawn; when *geometry* is a dict, the heart, lung, dome and below-diaphragm maps are stored in it for
    planting findings.
    """
    j = lambda s: float(rng.uniform(-s, s))  # noqa: E731 - tiny jitter helper
    shape = X.shape
    # Body envelope: trunk, neck, shoulders (and sometimes arms at the sides).
    trunk = _ellipse(X, Y, 0.0, 0.18 + j(0.02), 0.47 + j(0.02), 0.78, edge=0.06)
    neck = _capsule(X, Y, (0.0, -0.9), (0.0, -0.3), 0.11 + j(0.01), edge=0.03)
    shoulders = np.maximum(_ellipse(X, Y, -0.36, -0.36, 0.2, 0.11), _ellipse(X, Y, 0.36, -0.36, 0.2, 0.11))
    body = np.maximum(np.maximum(trunk, neck), shoulders)
    if rng.random() < 0.5:
        arms = np.maximum(
            _capsule(X, Y, (-0.62, -0.3), (-0.66, 0.7), 0.09, 0.03),
            _capsule(X, Y, (0.62, -0.3), (0.66, 0.7), 0.09, 0.03),
        )
        body = np.maximum(body, arms * 0.9)
    thick = np.clip(1.0 - (X / 0.5) ** 2, 0.0, 1.0)
    att = body * (0.34 + 0.12 * thick)

    # Diaphragm domes (right dome, image left, a little higher) and lung fields.
    d_r, d_l = 0.2 + j(0.02), 0.23 + j(0.02)
    dome = np.where(
        X < 0,
        d_r - 0.13 * np.clip(1 - ((X + 0.2) / 0.22) ** 2, 0, 1),
        d_l - 0.12 * np.clip(1 - ((X - 0.2) / 0.22) ** 2, 0, 1),
    )
    below = _smoothstep((Y - dome) / 0.02)
    rl = _ellipse(X, Y, -0.21 + j(0.01), -0.06, 0.16 + j(0.01), 0.36, edge=0.1)
    ll = _ellipse(X, Y, 0.21 + j(0.01), -0.06, 0.155 + j(0.01), 0.36, edge=0.1)
    heart_rx = (0.23 if pediatric else 0.2) + j(0.01)
    heart_cx, heart_cy, heart_ry = 0.05 + j(0.015), 0.06 + j(0.01), 0.16 + j(0.01)
    heart = _ellipse(X, Y, heart_cx, heart_cy, heart_rx * heart_scale[0], heart_ry * heart_scale[1], edge=0.15)
    if geometry is not None:
        geometry.update(heart=heart, below=below, dome=dome, lungs=(rl, ll))
    lungs = np.maximum(rl, ll) * (1.0 - below) * (1.0 - heart)
    markings = _texture(rng, shape, 28)
    att = att - lungs * (0.27 + 0.03 * markings)
    att = att + 0.1 * below * trunk  # liver / abdomen below the domes
    att = att + 0.06 * heart
    # Mediastinum and aortic knob.
    medi = _capsule(X, Y, (0.0, -0.5), (0.02, 0.15), 0.06, edge=0.03)
    att = att + 0.12 * medi + 0.06 * _ellipse(X, Y, 0.06, -0.2, 0.05, 0.04)
    # Spine with vertebral bodies.
    spine = _capsule(X, Y, (0.0, -1.0), (0.0, 1.2), 0.045, edge=0.015)
    att = att + spine * (0.06 + 0.03 * (np.cos(2 * np.pi * Y / 0.075) > -0.6))
    # Posterior ribs (curved bands descending laterally) and fainter anterior ribs.
    ax = np.abs(X)
    thorax = _smoothstep((0.46 - ax) / 0.05) * _smoothstep((Y + 0.42) / 0.04) * (1.0 - below)
    spacing = (0.085 if not pediatric else 0.075) + j(0.005)
    phase = (Y - 0.32 * ax + 0.45 * X * X) / spacing + float(rng.uniform(0, 1))
    post = ((np.cos(2 * np.pi * phase) + 1) * 0.5) ** 6
    ant = ((np.cos(2 * np.pi * (Y + 0.25 * ax) / (spacing * 1.2)) + 1) * 0.5) ** 8
    att = att + thorax * (0.11 * post + 0.04 * ant) * _smoothstep((ax - 0.03) / 0.03)
    # Clavicles.
    cy = -0.37 + j(0.02)
    clav = np.maximum(
        _capsule(X, Y, (-0.05, cy + 0.02), (-0.36, cy - 0.05), 0.018, 0.008),
        _capsule(X, Y, (0.05, cy + 0.02), (0.36, cy - 0.05), 0.018, 0.008),
    )
    att = att + 0.14 * clav
    return att * body


def _chest_lateral(rng: np.random.Generator, X: np.ndarray, Y: np.ndarray, facing: int) -> np.ndarray:
    """Attenuation map of a lateral chest radiograph; *facing* is +1 (anterior to image right) or -1."""
    Xf = X * facing
    body = _ellipse(X, Y, 0.0, 0.2, 0.36 + float(rng.uniform(-0.02, 0.02)), 0.85, edge=0.05)
    arms = _ellipse(X, Y, facing * 0.05, -0.55, 0.22, 0.18, edge=0.2)
    body = np.maximum(body, arms * 0.8)
    att = body * (0.5 + 0.1 * np.clip(1 - (X / 0.36) ** 2, 0, 1))
    dome = 0.18 + 0.06 * Xf
    below = _smoothstep((Y - dome) / 0.02)
    lung = _ellipse(Xf, Y, -0.02, -0.06, 0.27, 0.33, edge=0.12) * (1 - below)
    heart = _ellipse(Xf, Y, 0.14, 0.1, 0.14, 0.13, edge=0.12)
    att = att - 0.26 * lung * (1 - heart) * (1 + 0.1 * _texture(rng, X.shape, 24))
    att = att + 0.06 * heart + 0.08 * below * body
    spine = _capsule(Xf, Y, (-0.27, -1.0), (-0.29, 1.2), 0.05, edge=0.015)
    att = att + spine * (0.12 + 0.08 * (np.cos(2 * np.pi * Y / 0.075) > -0.5))
    sternum = _capsule(Xf, Y, (0.31, -0.35), (0.33, 0.1), 0.012, edge=0.008)
    att = att + 0.1 * sternum
    ribs = ((np.cos(2 * np.pi * (Y + 0.3 * Xf) / 0.09) + 1) * 0.5) ** 6
    att = att + 0.05 * ribs * lung
    return att * body


def _other_part(rng: np.random.Generator, X: np.ndarray, Y: np.ndarray, part: str) -> np.ndarray:
    """Attenuation map of a non-chest radiograph (hand, knee, skull, abdomen/pelvis/spine)."""
    if part == "HAND":
        palm = _ellipse(X, Y, 0.0, 0.22, 0.22, 0.2, edge=0.1)
        soft = np.maximum(palm, _capsule(X, Y, (0.0, 0.3), (0.0, 0.8), 0.16, 0.03))  # wrist
        bone = np.zeros_like(X)
        for k, ang in enumerate((-0.35, -0.12, 0.06, 0.24)):
            base = (-0.15 + 0.1 * k, 0.05)
            tip = (base[0] + 0.55 * np.sin(ang) * 0.6, base[1] - 0.5 + 0.05 * abs(k - 1.5))
            soft = np.maximum(soft, _capsule(X, Y, base, tip, 0.045, 0.015))
            bone = np.maximum(bone, _capsule(X, Y, (base[0], 0.3), tip, 0.018, 0.008))
        soft = np.maximum(soft, _capsule(X, Y, (0.2, 0.2), (0.42, -0.1), 0.05, 0.015))  # thumb
        bone = np.maximum(bone, _capsule(X, Y, (0.2, 0.25), (0.41, -0.08), 0.02, 0.008))
        return 0.3 * soft + 0.4 * bone
    if part == "KNEE":
        soft = _capsule(X, Y, (0.0, -1.0), (0.0, 1.0), 0.3, 0.05)
        femur = _capsule(X, Y, (0.0, -1.0), (0.0, -0.08), 0.1, 0.01)
        condyles = _ellipse(X, Y, 0.0, -0.1, 0.19, 0.09, edge=0.1)
        tibia = _capsule(X, Y, (0.0, 0.05), (0.02, 1.0), 0.1, 0.01)
        plateau = _ellipse(X, Y, 0.0, 0.08, 0.18, 0.06, edge=0.1)
        fib = _capsule(X, Y, (0.17, 0.15), (0.18, 1.0), 0.03, 0.01)
        bone = np.maximum.reduce([femur, condyles, tibia, plateau, fib])
        return 0.3 * soft + 0.45 * bone
    if part == "SKULL":
        head = _ellipse(X, Y, 0.0, 0.0, 0.42, 0.5, edge=0.04)
        vault = head - _ellipse(X, Y, 0.0, 0.0, 0.38, 0.46, edge=0.04)
        orbits = _ellipse(X, Y, -0.13, 0.12, 0.08, 0.06) + _ellipse(X, Y, 0.13, 0.12, 0.08, 0.06)
        return 0.35 * head + 0.4 * np.clip(vault, 0, 1) - 0.12 * orbits
    # ABDOMEN / PELVIS / SPINE
    body = _ellipse(X, Y, 0.0, 0.0, 0.5, 1.2, edge=0.05)
    att = 0.5 * body
    spine = _capsule(X, Y, (0.0, -1.2), (0.0, 0.45), 0.06 if part != "SPINE" else 0.08, edge=0.015)
    att = att + spine * (0.15 + 0.1 * (np.cos(2 * np.pi * Y / 0.12) > -0.4))
    wings = np.maximum(
        _ellipse(X, Y, -0.25, 0.48, 0.2, 0.14, 0.15), _ellipse(X, Y, 0.25, 0.48, 0.2, 0.14, 0.15)
    )
    att = att + 0.15 * wings
    if part != "SPINE":
        for _ in range(int(rng.integers(8, 16))):
            cx, cy = float(rng.uniform(-0.35, 0.35)), float(rng.uniform(-0.4, 0.4))
            att = att - 0.15 * _ellipse(
                X, Y, cx, cy, float(rng.uniform(0.03, 0.09)), float(rng.uniform(0.02, 0.06)), 0.3
            )
    return att * body


def _synthesize(
    rng: np.random.Generator,
    rows: int,
    cols: int,
    outlier: str | None,
    other_part: str,
    facing: int,
    *,
    findings: list[str] | None = None,
    finding_rng: np.random.Generator | None = None,
    boxes: list[dict] | None = None,
) -> np.ndarray:
    """Return the display image (float32, 0 = black, 1 = white in MONOCHROME2 sense) at full size.

    *findings* (names of :data:`~cxrlab.dicom.phantom.findings.FINDINGS`, frontal adult chests only) are drawn
    from *finding_rng* and their boxes appended to *boxes*; without them the random stream is unchanged.
    """
    low_quality = outlier == "low_quality"
    long_side = int(rng.integers(90, 160)) if low_quality else 448
    f = long_side / max(rows, cols)
    h, w = max(8, int(round(rows * f))), max(8, int(round(cols * f)))
    if outlier == "pediatric":
        scale = float(rng.uniform(0.5, 0.68))
    elif outlier == "other_body_part":
        scale = float(rng.uniform(0.7, 0.95))
    else:
        scale = float(rng.uniform(0.86, 0.98))
    cx, cy = float(rng.uniform(-0.015, 0.015)), float(rng.uniform(-0.015, 0.015))
    X, Y = _grid(h, w, scale, cx, cy)
    if outlier == "lateral":
        att = _chest_lateral(rng, X, Y, facing)
    elif outlier == "other_body_part":
        att = _other_part(rng, X, Y, other_part)
    elif findings:
        frng = finding_rng if finding_rng is not None else np.random.default_rng(0)
        geometry: dict = {}
        att = _chest_frontal(rng, X, Y, False, heart_scale=heart_scale(frng, findings), geometry=geometry)
        att, planted = plant_findings(frng, att, X, Y, geometry, findings,
                                      scale=(scale * min(h, w), cols / w, rows / h))
        if boxes is not None:
            boxes.extend(planted)
    else:
        att = _chest_frontal(rng, X, Y, outlier == "pediatric")
    # Optional exposure gradient along one edge (heel effect / collimator shading).
    if rng.random() < 0.35:
        ramp_axis = int(rng.integers(2))
        n = h if ramp_axis == 0 else w
        ramp = np.clip(1.0 - np.arange(n, dtype=_F32) / (0.25 * n), 0.0, 1.0)
        if rng.random() < 0.5:
            ramp = ramp[::-1]
        ramp = ramp[:, None] if ramp_axis == 0 else ramp[None, :]
        att = att + float(rng.uniform(0.15, 0.4)) * ramp
    gamma = float(rng.uniform(0.85, 1.15))
    disp = np.clip(att / 0.95, 0.0, 1.0) ** gamma
    img = Image.fromarray(np.ascontiguousarray(disp, dtype=_F32))
    img = img.resize((cols, rows), Image.Resampling.BILINEAR)
    return np.asarray(img, dtype=_F32)


def _to_stored(
    rng: np.random.Generator, disp: np.ndarray, bits: int, mono1: bool, low_quality: bool
) -> np.ndarray:
    """Map a display image to unsigned stored values with quantum-like noise, inverted for MONOCHROME1."""
    maxv = float(2**bits - 1)
    if low_quality:
        lo = float(rng.uniform(0.3, 0.45))
        hi = lo + float(rng.uniform(0.06, 0.14))
        sigma = float(rng.uniform(0.02, 0.045))
    else:
        lo = float(rng.uniform(0.0, 0.08))
        hi = float(rng.uniform(0.78, 0.97))
        sigma = float(rng.uniform(0.003, 0.01))
    noise = rng.standard_normal(disp.shape, dtype=_F32)
    out = disp * _F32((hi - lo) * maxv) + _F32(lo * maxv)
    noise *= _F32(sigma * maxv)
    out += noise
    if mono1:
        np.subtract(_F32(maxv), out, out=out)
    np.clip(out, 0.0, maxv, out=out)
    np.rint(out, out=out)
    return out.astype(np.uint16)


def _image_size(rng: np.random.Generator, size_range: tuple[int, int]) -> tuple[int, int]:
    """Draw (rows, columns): mostly portrait, sometimes landscape or square, all within *size_range*."""
    lo, hi = int(size_range[0]), int(size_range[1])
    if lo < 16 or hi < lo:
        raise ValueError(f"size_range must satisfy 16 <= min <= max, got {size_range!r}")
    long_side = int(rng.integers(lo, hi + 1))
    short = max(lo, int(round(long_side * float(rng.uniform(0.78, 1.0)))))
    u = rng.random()
    if u < 0.6:
        return long_side, short
    if u < 0.85:
        return short, long_side
    return long_side, long_side


def chest_reference_boxes(rows: int, columns: int) -> dict[str, tuple[int, int, int, int]]:
    """Return boxes that lie inside the right lung and the mediastinum/heart of frontal adult phantoms.

    Valid for phantoms with ``outlier`` None (and ``"low_quality"``), whatever their random jitter; useful
    to check contrast and photometric handling.

    Parameters
    ----------
    rows, columns : int
        Image size.

    Returns
    -------
    dict
        ``{"lung": box, "mediastinum": box}`` with boxes ``(x_min, y_min, x_max, y_max)``, max exclusive.
    """
    m = min(rows, columns)
    cx, cy = columns / 2, rows / 2
    lung = (int(cx - 0.25 * m), int(cy - 0.17 * m), int(cx - 0.15 * m), int(cy - 0.03 * m))
    medi = (int(cx - 0.01 * m), int(cy + 0.05 * m), int(cx + 0.08 * m), int(cy + 0.15 * m))
    return {"lung": lung, "mediastinum": medi}
