// Client-side window/level of the downsampled 16-bit pixels served by /api/images/{id}/pixels.
//
// The server packs modality values as little-endian uint16 with `modality = offset + scale * u16`
// (cxrlab.dicom.display.to_uint16). A window is turned into a 65,536-entry table over the packed values (one
// entry per possible u16: the only per-frame precomputation), then one pass over the array writes RGBA pixels.
// The arithmetic repeats src/cxrlab/dicom/display.py step for step, so the browser shows the grey levels the
// server renders (tests/e2e compares them):
//   - VOI LUT Function LINEAR (DICOM PS3.3 C.11.2.1.2.1), LINEAR_EXACT (C.11.2.1.3.2), SIGMOID (C.11.2.1.3.1);
//   - quantisation to 8 bits rounding half up (display._to_u8);
//   - MONOCHROME1 (PS3.3 C.7.6.3.1.2) inverted after quantisation: v -> 255 - v.
// A VOI LUT Sequence item (PS3.3 C.11.2.1.1) arrives from /voi-lut/{i} already as 65,536 display levels.

export const PACKED_LEVELS = 65536;

/** Window output in [0, 1] for a modality value x (display.apply_window, same operations in float64). */
export function windowValue(x, center, width, fn) {
  if (fn === "SIGMOID") return 1 / (1 + Math.exp((-4 * (x - center)) / width));
  let lo, hi, y;
  if (fn === "LINEAR_EXACT") {
    lo = center - width / 2;
    hi = center + width / 2;
    y = (x - center) / width;
  } else {
    // LINEAR: x <= c - 0.5 - (w-1)/2 -> 0; x > c - 0.5 + (w-1)/2 -> 1; else ((x - (c - 0.5)) / (w-1) + 0.5)
    lo = center - 0.5 - (width - 1) / 2;
    hi = center - 0.5 + (width - 1) / 2;
    y = x - (center - 0.5);
    if (width > 1) y /= width - 1;
  }
  y += 0.5;
  if (y < 0) y = 0; else if (y > 1) y = 1;
  if (x <= lo) return 0;
  if (x > hi) return 1;
  return y;
}

/** The smallest width the function allows (PS3.3: >= 1 for LINEAR, > 0 for the others). */
export function minWidth(fn) {
  return fn === "LINEAR" || !fn ? 1 : 1e-6;
}

/** [0, 1] -> 0..255 rounding half up (display._to_u8). */
function quantise(y) {
  let v = y * 255 + 0.5;
  if (v < 0) v = 0; else if (v > 255) v = 255;
  return Math.floor(v);
}

/**
 * The display level (0..255) of every packed value for a window, or from a VOI LUT table.
 * @param {{offset:number, scale:number}} meta  packing of /pixels
 * @param {{kind:string, center?:number, width?:number, function?:string, table?:Uint8Array}} win
 * @param {boolean} invert  MONOCHROME1 XOR the user's invert toggle
 * @returns {Uint8Array} 65,536 levels
 */
export function displayLevels(meta, win, invert) {
  const out = new Uint8Array(PACKED_LEVELS);
  if (win.kind === "lut") {
    out.set(win.table);
  } else {
    const fn = (win.function || "LINEAR").toUpperCase();
    for (let v = 0; v < PACKED_LEVELS; v++) {
      out[v] = quantise(windowValue(meta.offset + meta.scale * v, win.center, win.width, fn));
    }
  }
  if (invert) for (let v = 0; v < PACKED_LEVELS; v++) out[v] = 255 - out[v];
  return out;
}

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/**
 * Write the windowed image into `target` (ImageData of the array's shape): one table lookup per pixel.
 * The 8-bit levels are expanded to opaque grey RGBA words once (65,536 entries), so the pass over the
 * pixels is a single typed-array read and write.
 */
export function applyLevels(packed, levels, target) {
  const rgba = new Uint32Array(PACKED_LEVELS);
  for (let v = 0; v < PACKED_LEVELS; v++) {
    const g = levels[v];
    rgba[v] = LITTLE_ENDIAN ? (0xff000000 | (g << 16) | (g << 8) | g) >>> 0 : ((g << 24) | (g << 16) | (g << 8) | 0xff) >>> 0;
  }
  const out = new Uint32Array(target.data.buffer);
  const n = packed.length;
  for (let i = 0; i < n; i++) out[i] = rgba[packed[i]];
  return target;
}

/** The modality range covered by the packed values. */
export function modalityRange(meta) {
  return { lo: meta.offset, hi: meta.offset + meta.scale * (PACKED_LEVELS - 1) };
}
