// Loading images for the viewer: the server-rendered JPEG (first paint), the 16-bit pixels with their window
// presets, and a small cache that prefetches the next tasks' images in the background.

import { api } from "./api.js";
import { applyLevels, displayLevels } from "./windowing.js";

export const DEFAULT_MAX_SIZE = 1024;

/** The presets of /meta as the viewer uses them: windows and VOI LUT tables (fetched on first use). */
function presetsOf(meta) {
  return meta.presets.map((p) => ({ ...p, kind: p.kind || "window" }));
}

/**
 * Everything needed to display one image: metadata, the packed uint16 array and the default window
 * rendered once into an ImageData (so that showing a prefetched image is one putImageData).
 */
export class LoadedImage {
  constructor(imageId, meta, packed, maxSize) {
    this.imageId = imageId;
    this.maxSize = maxSize;
    this.meta = meta;
    this.packed = packed;
    this.presets = presetsOf(meta);
    this.luts = new Map(); // VOI LUT index -> Uint8Array(65536)
    // The default window is one of the presets (the file's first window or VOI LUT) or, for a file without
    // any, the robust-range fallback: then it heads the list as "default".
    const d = { ...meta.default, kind: meta.default.kind || "window" };
    const same = this.presets.find((p) => p.kind === d.kind && (d.kind === "lut" ? p.index === d.index
      : p.center === d.center && p.width === d.width && p.function === d.function));
    if (!same) this.presets.unshift(d);
    this.defaultWindow = same ?? d;
    this.initial = null; // ImageData of the default window (made by prepare())
  }

  get width() { return this.meta.shape[1]; }
  get height() { return this.meta.shape[0]; }
  get monochrome1() { return this.meta.photometric === "MONOCHROME1"; }

  /** The table of VOI LUT *index* (65,536 display levels over the packed values). */
  async lutTable(index) {
    if (!this.luts.has(index)) {
      const { data } = await api.buffer(`/api/images/${this.imageId}/voi-lut/${index}?max_size=${this.maxSize}`);
      this.luts.set(index, new Uint8Array(data));
    }
    return this.luts.get(index);
  }

  /** A window ready for displayLevels(): LUT presets get their table. */
  async resolve(win) {
    if (win.kind === "lut") return { ...win, table: await this.lutTable(win.index) };
    return win;
  }

  /** Render the default window once (off the critical path of a later swap). */
  async prepare() {
    const win = await this.resolve(this.defaultWindow);
    this.defaultWindow = win;
    const i = this.presets.findIndex((p) => p.kind === win.kind && p.name === win.name);
    if (i >= 0) this.presets[i] = win;
    const target = new ImageData(this.width, this.height);
    applyLevels(this.packed, displayLevels(this.meta, win, this.monochrome1), target);
    this.initial = target;
    return this;
  }
}

/** Fetch /meta and /pixels of an image (in parallel) and prepare its default rendering. */
export async function loadImage(imageId, maxSize = DEFAULT_MAX_SIZE, { signal } = {}) {
  const q = `max_size=${maxSize}`;
  const [meta, pixels] = await Promise.all([
    api.get(`/api/images/${imageId}/meta?${q}`, { signal }),
    api.buffer(`/api/images/${imageId}/pixels?${q}`, { signal }),
  ]);
  // Little-endian uint16 on the wire; typed arrays use the platform's order, little-endian on every
  // platform a browser runs on today (x86, ARM).
  const packed = new Uint16Array(pixels.data);
  if (packed.length !== meta.shape[0] * meta.shape[1]) throw new Error("pixel array does not match its shape");
  return new LoadedImage(imageId, meta, packed, maxSize).prepare();
}

/** The server-rendered first paint (default window), decoded off the main thread. */
export async function firstPaint(imageId, maxSize = DEFAULT_MAX_SIZE) {
  const r = await fetch(`/api/images/${imageId}/render?format=jpeg&max_size=${maxSize}`, { credentials: "same-origin" });
  if (!r.ok) throw new Error(`render answered ${r.status}`);
  return createImageBitmap(await r.blob());
}

/**
 * Prefetched images by image id: `get(id)` starts (or joins) a load; `keep(ids)` drops everything else.
 * Loads run in the background; a failed load is forgotten so that the next `get` retries it.
 */
export class ImageCache {
  constructor(maxSize = DEFAULT_MAX_SIZE) {
    this.maxSize = maxSize;
    this.entries = new Map(); // id -> {promise, value}
  }

  get(imageId) {
    let entry = this.entries.get(imageId);
    if (!entry) {
      entry = { value: null };
      entry.promise = loadImage(imageId, this.maxSize).then(
        (img) => { entry.value = img; return img; },
        (err) => { this.entries.delete(imageId); throw err; },
      );
      this.entries.set(imageId, entry);
    }
    return entry.promise;
  }

  /** The image if it is already loaded (no waiting), else null. */
  ready(imageId) {
    return this.entries.get(imageId)?.value ?? null;
  }

  /** Start loading *ids* (errors are ignored here: the load is retried when the image is shown). */
  prefetch(ids) {
    for (const id of ids) this.get(id).catch(() => {});
  }

  keep(ids) {
    const wanted = new Set(ids);
    for (const id of [...this.entries.keys()]) if (!wanted.has(id)) this.entries.delete(id);
  }
}
