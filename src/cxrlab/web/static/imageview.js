// The image canvas of the viewer: window/level, zoom, pan, invert, and boxes in layers (one editable).
//
// Coordinates: boxes are kept in pixels of the ORIGINAL image (meta.columns x meta.rows; x right, y down,
// origin at the top-left corner of the image), whatever the size of the array on screen. The view maps image
// pixels to CSS pixels by `screen = image * zoom + pan`; the canvas backing store is CSS size x devicePixelRatio.
//
// Mouse: left drag draws a box on empty ground, moves a box from its inside and resizes it from a handle
// (tool "box"); with tool "window" (or the right button, always) a drag changes window width (horizontal)
// and center (vertical); tool "pan" (or the middle button, or Space held) pans; the wheel zooms at the cursor.
//
// Measuring tools, kept out of the marks: tool "ruler" draws distance lines (`view.measures`, in original image
// pixels; never a box, never saved) labelled in mm from the image's spacing (Pixel Spacing, else Imager Pixel
// Spacing "at the detector", PS3.3 10.7.1.3 / C.8.11.4) or in pixels without one; tool "probe" reports the
// original-image pixel under the cursor ("probe" event) for the page to ask the server for its stored and
// modality values. Both are cleared when another image is shown.
//
// Events (CustomEvent on the view): "change" (the editable boxes changed: detail {reason}), "select"
// (detail {layer, box}), "window" (window or invert changed), "view" (zoom/pan changed), "paint" (a frame
// was drawn; detail {time}), "measure" (the rulers changed), "probe" (detail {x, y} or null: the pixel under
// the cursor with the probe tool).
//
// Name tags: every box is named by a tag (editable boxes above their top edge, read-only ones — other readers
// — below their bottom edge). Boxes of several readers often lie a few pixels apart, so tags are laid out
// before painting: a tag that would overlap one already placed moves past it, away from its box, until it
// overlaps none. `view.tags` holds the rectangles of the last frame (CSS px of the canvas).

import { applyLevels, displayLevels, minWidth, modalityRange } from "./windowing.js";

const HANDLE = 7;      // CSS px: half size of a resize handle's hit area
const MIN_DRAW = 3;    // CSS px: a smaller drag is a click
const TAG_H = 16;      // CSS px: height of a box's name tag
const TAG_FONT = "12px system-ui, sans-serif";
const HANDLES = ["nw", "n", "ne", "e", "se", "s", "sw", "w"];
const MEASURE_COLOUR = "#ffeb3b";
const CURSORS = { nw: "nwse-resize", se: "nwse-resize", ne: "nesw-resize", sw: "nesw-resize", n: "ns-resize",
                  s: "ns-resize", e: "ew-resize", w: "ew-resize" };

let boxCounter = 0;
/** A fresh box id (the server keeps client ids; they make the audit rows line up across saves). */
export function newBoxId() {
  boxCounter += 1;
  const rnd = crypto.getRandomValues(new Uint32Array(2));
  return `b${rnd[0].toString(36)}${rnd[1].toString(36)}${boxCounter}`;
}

export class ImageView extends EventTarget {
  /** @param {HTMLElement} host  the element the canvas fills (its size is the view's size) */
  constructor(host, { canvasLabel = "Image" } = {}) {
    super();
    this.host = host;
    this.canvas = document.createElement("canvas");
    this.canvas.setAttribute("role", "img");
    this.canvas.setAttribute("aria-label", canvasLabel);
    this.canvas.tabIndex = 0;
    this.canvas.className = "view-canvas";
    host.append(this.canvas);
    this.ctx = this.canvas.getContext("2d");
    this.base = document.createElement("canvas"); // the windowed image at array size
    this.baseCtx = this.base.getContext("2d", { willReadFrequently: true });

    this.image = null;        // LoadedImage (pixels) or null while only a first paint is shown
    this.size = null;         // {rows, columns} of the original image
    this.window = null;       // current window {kind, center, width, function} or {kind: "lut", table, ...}
    this.userInvert = false;
    this.imageData = null;
    this.zoom = 1; this.panX = 0; this.panY = 0;
    this.tool = "box";
    this.layers = [];         // [{key, label, color, boxes, editable, visible}]
    this.tags = [];           // name tags of the last frame: [{layer, id, text, color, x, y, w, h}] (CSS px)
    this.selected = null;     // {layer, id}
    this.measures = [];       // ruler lines [{x0, y0, x1, y1}] in original image pixels (never part of the marks)
    this.currentClass = null; // class of new boxes
    this.drag = null;
    this.spaceDown = false;
    this.dirtyWindow = false;
    this.frameRequested = false;
    this.stats = { frames: 0, windowFrames: 0, windowMs: 0 };

    this.resizeObserver = new ResizeObserver(() => this._resize());
    this.resizeObserver.observe(host);
    this._resize();
    this._bindPointer();
  }

  // --- image and window -------------------------------------------------------------------------------

  /** Show a decoded first-paint bitmap (server-rendered with the default window) until pixels arrive. */
  showBitmap(bitmap, rows, columns) {
    this.image = null;
    this.clearMeasures();
    this.size = { rows, columns };
    this.base.width = bitmap.width;
    this.base.height = bitmap.height;
    this.baseCtx.drawImage(bitmap, 0, 0);
    this.window = null;
    this.fit();
  }

  /** Show a LoadedImage with its default window (already rendered: one putImageData). */
  showImage(img, { keepView = false } = {}) {
    const sameSize = this.size && this.size.rows === img.meta.rows && this.size.columns === img.meta.columns;
    if (this.image?.imageId !== img.imageId) this.clearMeasures();
    this.image = img;
    this.size = { rows: img.meta.rows, columns: img.meta.columns };
    this.userInvert = false;
    this.window = img.defaultWindow;
    if (this.base.width !== img.width || this.base.height !== img.height) {
      this.base.width = img.width;
      this.base.height = img.height;
    }
    this.imageData = img.initial ?? new ImageData(img.width, img.height);
    if (img.initial) {
      this.baseCtx.putImageData(img.initial, 0, 0);
      // the prepared ImageData now belongs to the view (later windows overwrite it)
      img.initial = null;
    } else {
      this.dirtyWindow = true;
    }
    if (!(keepView && sameSize)) this.fit();
    this._request();
    this.dispatchEvent(new CustomEvent("window"));
  }

  get invert() {
    return (this.image?.monochrome1 ?? false) !== this.userInvert;
  }

  setWindow(win) {
    if (!this.image) return;
    this.window = win;
    this.dirtyWindow = true;
    this._request();
    this.dispatchEvent(new CustomEvent("window"));
  }

  toggleInvert() {
    if (!this.image) return;
    this.userInvert = !this.userInvert;
    this.dirtyWindow = true;
    this._request();
    this.dispatchEvent(new CustomEvent("window"));
  }

  /** A window-kind starting point for dragging (a VOI LUT has no center/width: start from a preset). */
  _dragStartWindow() {
    if (this.window?.kind === "window") return this.window;
    const p = this.image.presets.find((q) => q.kind === "window");
    const { lo, hi } = modalityRange(this.image.meta);
    return p ?? { kind: "window", name: "full range", center: (lo + hi) / 2, width: hi - lo, function: "LINEAR_EXACT" };
  }

  _renderWindow() {
    const t0 = performance.now();
    const levels = displayLevels(this.image.meta, this.window, this.invert);
    applyLevels(this.image.packed, levels, this.imageData);
    this.baseCtx.putImageData(this.imageData, 0, 0);
    this.stats.windowFrames += 1;
    this.stats.windowMs += performance.now() - t0;
  }

  /**
   * Measure window/level during a synthetic drag: one pointer move per animation frame for *ms* milliseconds
   * (the bench and the e2e tests call this; the browser paints at most one frame per display refresh).
   * Returns {frames, seconds, fps, window_ms_per_frame (windowing alone), pixels, shape}.
   */
  async measureWindowDrag(ms = 2000) {
    const c = this.canvas, r = c.getBoundingClientRect(), tool = this.tool;
    const at = (x, y) => ({ clientX: r.left + x, clientY: r.top + y, pointerId: 1, bubbles: true, button: 0 });
    this.tool = "window";
    c.dispatchEvent(new PointerEvent("pointerdown", at(r.width / 2, r.height / 2)));
    const s0 = { ...this.stats }, t0 = performance.now();
    let i = 0;
    await new Promise((done) => {
      const step = () => {
        i += 1;
        const x = r.width / 2 + 200 * Math.sin(i / 9), y = r.height / 2 + 120 * Math.cos(i / 7);
        c.dispatchEvent(new PointerEvent("pointermove", at(x, y)));
        if (performance.now() - t0 < ms) requestAnimationFrame(step); else done();
      };
      requestAnimationFrame(step);
    });
    c.dispatchEvent(new PointerEvent("pointerup", at(r.width / 2, r.height / 2)));
    this.tool = tool;
    const seconds = (performance.now() - t0) / 1000, frames = this.stats.windowFrames - s0.windowFrames;
    return { frames, seconds, fps: frames / seconds, window_ms_per_frame: (this.stats.windowMs - s0.windowMs) / frames,
             pixels: this.image.packed.length, shape: this.image.meta.shape };
  }

  /** The displayed grey levels at array resolution (row-major Uint8Array), for tests and checks. */
  displayedLevels() {
    const data = this.baseCtx.getImageData(0, 0, this.base.width, this.base.height).data;
    const out = new Uint8Array(data.length / 4);
    for (let i = 0; i < out.length; i++) out[i] = data[i * 4];
    return { width: this.base.width, height: this.base.height, levels: out };
  }

  // --- view transform ----------------------------------------------------------------------------------

  _resize() {
    const dpr = window.devicePixelRatio || 1;
    const w = Math.max(1, this.host.clientWidth), h = Math.max(1, this.host.clientHeight);
    const hadSize = this.cssW !== undefined;
    const atFit = hadSize && this._isFit();
    this.cssW = w; this.cssH = h; this.dpr = dpr;
    this.canvas.width = Math.round(w * dpr);
    this.canvas.height = Math.round(h * dpr);
    this.canvas.style.width = `${w}px`;
    this.canvas.style.height = `${h}px`;
    if (!hadSize || atFit) this.fit(); else this._request();
  }

  _fitParams() {
    const { rows, columns } = this.size;
    const zoom = Math.min(this.cssW / columns, this.cssH / rows);
    return { zoom, panX: (this.cssW - columns * zoom) / 2, panY: (this.cssH - rows * zoom) / 2 };
  }

  _isFit() {
    if (!this.size) return true;
    const f = this._fitParams();
    return Math.abs(f.zoom - this.zoom) < 1e-9 && Math.abs(f.panX - this.panX) < 0.5 && Math.abs(f.panY - this.panY) < 0.5;
  }

  fit() {
    if (this.size) Object.assign(this, this._fitParams());
    this._request();
    this.dispatchEvent(new CustomEvent("view"));
  }

  /** Zoom by *factor* around the CSS point (cx, cy) (default: the view's center). */
  zoomBy(factor, cx = this.cssW / 2, cy = this.cssH / 2) {
    if (!this.size) return;
    const fitZoom = this._fitParams().zoom;
    const zoom = Math.min(Math.max(this.zoom * factor, fitZoom / 4), 32);
    const f = zoom / this.zoom;
    this.panX = cx - (cx - this.panX) * f;
    this.panY = cy - (cy - this.panY) * f;
    this.zoom = zoom;
    this._request();
    this.dispatchEvent(new CustomEvent("view"));
  }

  panBy(dx, dy) {
    this.panX += dx; this.panY += dy;
    this._request();
    this.dispatchEvent(new CustomEvent("view"));
  }

  /** Reset zoom, pan, window (the image's default) and invert. */
  reset() {
    if (this.image) {
      this.userInvert = false;
      this.setWindow(this.image.defaultWindow);
    }
    this.fit();
  }

  toImage(sx, sy) { return { x: (sx - this.panX) / this.zoom, y: (sy - this.panY) / this.zoom }; }
  toScreen(x, y) { return { x: x * this.zoom + this.panX, y: y * this.zoom + this.panY }; }

  // --- layers and boxes ---------------------------------------------------------------------------------

  setLayers(layers) {
    this.layers = layers.map((l) => ({ visible: true, editable: false, ...l }));
    if (this.selected && !this._find(this.selected)) this.selected = null;
    this._request();
  }

  get editableLayer() { return this.layers.find((l) => l.editable) ?? null; }

  _find(sel) {
    const layer = this.layers.find((l) => l.key === sel.layer);
    return layer?.boxes.find((b) => b.id === sel.id) ?? null;
  }

  selectedBox() { return this.selected ? this._find(this.selected) : null; }

  select(layerKey, id) {
    this.selected = id == null ? null : { layer: layerKey, id };
    this._request();
    const box = this.selectedBox();
    this.dispatchEvent(new CustomEvent("select", { detail: { layer: layerKey, box } }));
  }

  /** Delete the selected box of the editable layer; returns true when one was deleted. */
  deleteSelected() {
    const layer = this.editableLayer;
    if (!layer || !this.selected || this.selected.layer !== layer.key) return false;
    const i = layer.boxes.findIndex((b) => b.id === this.selected.id);
    if (i < 0) return false;
    layer.boxes.splice(i, 1);
    this.select(null, null);
    this._changed("delete");
    return true;
  }

  /** Set the class of the selected editable box; returns true when it changed. */
  setSelectedClass(name) {
    const layer = this.editableLayer;
    const box = this.selectedBox();
    if (!layer || !box || this.selected.layer !== layer.key || box.class_name === name) return false;
    box.class_name = name;
    this._changed("class");
    this._request();
    return true;
  }

  /** Select the next box of the editable layer (Tab). */
  selectNext(step = 1) {
    const layer = this.editableLayer;
    if (!layer || !layer.boxes.length) return;
    const i = this.selected ? layer.boxes.findIndex((b) => b.id === this.selected.id) : -1;
    const next = layer.boxes[(i + step + layer.boxes.length) % layer.boxes.length];
    this.select(layer.key, next.id);
  }

  _changed(reason) {
    this.dispatchEvent(new CustomEvent("change", { detail: { reason } }));
  }

  _clampBox(b) {
    const { rows, columns } = this.size;
    b.x_min = Math.min(Math.max(b.x_min, 0), columns); b.x_max = Math.min(Math.max(b.x_max, 0), columns);
    b.y_min = Math.min(Math.max(b.y_min, 0), rows); b.y_max = Math.min(Math.max(b.y_max, 0), rows);
  }

  _screenRect(b) {
    const p = this.toScreen(b.x_min, b.y_min), q = this.toScreen(b.x_max, b.y_max);
    return { x0: p.x, y0: p.y, x1: q.x, y1: q.y };
  }

  _handleAt(b, sx, sy) {
    const r = this._screenRect(b);
    const xm = (r.x0 + r.x1) / 2, ym = (r.y0 + r.y1) / 2;
    const pts = { nw: [r.x0, r.y0], n: [xm, r.y0], ne: [r.x1, r.y0], e: [r.x1, ym], se: [r.x1, r.y1],
                  s: [xm, r.y1], sw: [r.x0, r.y1], w: [r.x0, ym] };
    for (const h of HANDLES) {
      const [hx, hy] = pts[h];
      if (Math.abs(sx - hx) <= HANDLE && Math.abs(sy - hy) <= HANDLE) return h;
    }
    return null;
  }

  /** The box under a CSS point: the smallest containing one, editable layer first. */
  _boxAt(sx, sy) {
    const ordered = [...this.layers].filter((l) => l.visible).sort((a, b) => Number(b.editable) - Number(a.editable));
    for (const layer of ordered) {
      let best = null, bestArea = Infinity;
      for (const b of layer.boxes) {
        const r = this._screenRect(b);
        if (sx >= r.x0 - 3 && sx <= r.x1 + 3 && sy >= r.y0 - 3 && sy <= r.y1 + 3) {
          const area = (r.x1 - r.x0) * (r.y1 - r.y0);
          if (area < bestArea) { best = b; bestArea = area; }
        }
      }
      if (best) return { layer, box: best };
    }
    return null;
  }

  // --- measuring tools ------------------------------------------------------------------------------------

  /** The length of ruler line *m*: {mm, px, text, atDetector}; mm is null without a spacing. */
  measureLength(m) {
    const dx = m.x1 - m.x0, dy = m.y1 - m.y0;
    const px = Math.hypot(dx, dy);
    const sp = this.image?.meta.spacing ?? null;
    if (!sp) return { mm: null, px, text: `${px.toFixed(0)} px (no pixel spacing)`, atDetector: false };
    // PS3.3 10.7.1.3: the row spacing (vertical step) first, then the column spacing (horizontal step)
    const mm = Math.hypot(dx * sp.column, dy * sp.row);
    const atDetector = sp.source === "ImagerPixelSpacing";
    return { mm, px, text: `${mm.toFixed(1)} mm${atDetector ? " at the detector" : ""}`, atDetector };
  }

  clearMeasures() {
    if (!this.measures?.length) return;
    this.measures = [];
    this._request();
    this.dispatchEvent(new CustomEvent("measure"));
  }

  _paintMeasures(ctx) {
    ctx.font = TAG_FONT;
    ctx.textBaseline = "bottom";
    for (const m of this.measures) {
      const a = this.toScreen(m.x0, m.y0), b = this.toScreen(m.x1, m.y1);
      ctx.strokeStyle = MEASURE_COLOUR;
      ctx.lineWidth = 1.5;
      ctx.beginPath(); ctx.moveTo(a.x, a.y); ctx.lineTo(b.x, b.y); ctx.stroke();
      for (const p of [a, b]) { ctx.beginPath(); ctx.arc(p.x, p.y, 3, 0, 2 * Math.PI); ctx.stroke(); }
      const text = this.measureLength(m).text, w = ctx.measureText(text).width + 6;
      const x = (a.x + b.x) / 2 + 6, y = (a.y + b.y) / 2 - 4;
      ctx.fillStyle = "rgba(0,0,0,0.7)";
      ctx.fillRect(x, y - TAG_H, w, TAG_H);
      ctx.fillStyle = MEASURE_COLOUR;
      ctx.fillText(text, x + 3, y - 2);
    }
  }

  // --- pointer -------------------------------------------------------------------------------------------

  _bindPointer() {
    const c = this.canvas;
    c.addEventListener("contextmenu", (e) => e.preventDefault());
    c.addEventListener("pointerdown", (e) => this._down(e));
    c.addEventListener("pointermove", (e) => this._move(e));
    c.addEventListener("pointerup", (e) => this._up(e));
    c.addEventListener("pointercancel", (e) => this._up(e));
    c.addEventListener("wheel", (e) => {
      e.preventDefault();
      const rect = c.getBoundingClientRect();
      this.zoomBy(Math.exp(-e.deltaY * 0.0015), e.clientX - rect.left, e.clientY - rect.top);
    }, { passive: false });
    window.addEventListener("keydown", (e) => { if (e.code === "Space" && e.target === c) { this.spaceDown = true; e.preventDefault(); } });
    window.addEventListener("keyup", (e) => { if (e.code === "Space") this.spaceDown = false; });
  }

  _point(e) {
    const rect = this.canvas.getBoundingClientRect();
    return { sx: e.clientX - rect.left, sy: e.clientY - rect.top };
  }

  _down(e) {
    if (!this.size) return;
    this.canvas.focus({ preventScroll: true });
    const { sx, sy } = this._point(e);
    const base = { sx, sy, pointerId: e.pointerId };
    if (e.button === 2 || (e.button === 0 && this.tool === "window")) {
      if (!this.image) return;
      const w = this._dragStartWindow();
      this.drag = { ...base, type: "window", c0: w.center, w0: w.width, fn: w.function || "LINEAR", name: w.name };
    } else if (e.button === 1 || (e.button === 0 && (this.tool === "pan" || this.spaceDown))) {
      this.drag = { ...base, type: "pan", ox: this.panX, oy: this.panY };
    } else if (e.button === 0 && this.tool === "ruler") {
      const p = this.toImage(sx, sy);
      this.drag = { ...base, type: "measure", x: p.x, y: p.y, m: null };
    } else if (e.button === 0 && this.tool === "probe") {
      this._probe(sx, sy);
    } else if (e.button === 0) {
      const layer = this.editableLayer;
      const sel = this.selectedBox();
      const handle = sel && layer && this.selected.layer === layer.key ? this._handleAt(sel, sx, sy) : null;
      if (handle) {
        this.drag = { ...base, type: "resize", handle, box: sel, orig: { ...sel } };
      } else {
        const hit = this._boxAt(sx, sy);
        if (hit) {
          this.select(hit.layer.key, hit.box.id);
          if (hit.layer.editable) this.drag = { ...base, type: "move", box: hit.box, orig: { ...hit.box } };
        } else if (layer) {
          const p = this.toImage(sx, sy);
          this.drag = { ...base, type: "draw", x: p.x, y: p.y, box: null };
        } else {
          this.select(null, null);
        }
      }
    }
    if (this.drag) {
      this.canvas.setPointerCapture(e.pointerId);
      e.preventDefault();
    }
  }

  _move(e) {
    const { sx, sy } = this._point(e);
    const d = this.drag;
    if (!d) { this._hover(sx, sy); return; }
    const dx = sx - d.sx, dy = sy - d.sy;
    if (d.type === "measure") {
      if (!d.m && Math.hypot(dx, dy) < MIN_DRAW) return;
      const p = this.toImage(sx, sy);
      const { rows, columns } = this.size;
      if (!d.m) { d.m = { x0: d.x, y0: d.y, x1: d.x, y1: d.y }; this.measures.push(d.m); }
      d.m.x1 = Math.min(Math.max(p.x, 0), columns);
      d.m.y1 = Math.min(Math.max(p.y, 0), rows);
      this._request();
      return;
    }
    if (d.type === "window") {
      const { lo, hi } = modalityRange(this.image.meta);
      const range = Math.max(hi - lo, 1);
      const width = Math.max(minWidth(d.fn), d.w0 + (dx / this.cssW) * range);
      const center = d.c0 + (dy / this.cssH) * range;
      this.setWindow({ kind: "window", name: "custom", center, width, function: d.fn });
    } else if (d.type === "pan") {
      this.panX = d.ox + dx; this.panY = d.oy + dy;
      this._request();
    } else if (d.type === "draw") {
      if (!d.box && Math.hypot(dx, dy) < MIN_DRAW) return;
      const p = this.toImage(sx, sy);
      const layer = this.editableLayer;
      if (!d.box) {
        d.box = { id: newBoxId(), class_name: this.currentClass ?? "", x_min: d.x, y_min: d.y, x_max: d.x, y_max: d.y };
        layer.boxes.push(d.box);
        this.selected = { layer: layer.key, id: d.box.id };
      }
      Object.assign(d.box, { x_min: Math.min(d.x, p.x), x_max: Math.max(d.x, p.x),
                             y_min: Math.min(d.y, p.y), y_max: Math.max(d.y, p.y) });
      this._clampBox(d.box);
      this._request();
    } else if (d.type === "move") {
      const { rows, columns } = this.size;
      const w = d.orig.x_max - d.orig.x_min, h = d.orig.y_max - d.orig.y_min;
      const x0 = Math.min(Math.max(d.orig.x_min + dx / this.zoom, 0), columns - w);
      const y0 = Math.min(Math.max(d.orig.y_min + dy / this.zoom, 0), rows - h);
      Object.assign(d.box, { x_min: x0, y_min: y0, x_max: x0 + w, y_max: y0 + h });
      d.moved = d.moved || Math.hypot(dx, dy) >= 1;
      this._request();
    } else if (d.type === "resize") {
      const o = d.orig, b = d.box, h = d.handle;
      const ix = dx / this.zoom, iy = dy / this.zoom;
      let { x_min, y_min, x_max, y_max } = o;
      if (h.includes("w")) x_min = o.x_min + ix;
      if (h.includes("e")) x_max = o.x_max + ix;
      if (h.includes("n")) y_min = o.y_min + iy;
      if (h.includes("s")) y_max = o.y_max + iy;
      Object.assign(b, { x_min: Math.min(x_min, x_max), x_max: Math.max(x_min, x_max),
                         y_min: Math.min(y_min, y_max), y_max: Math.max(y_min, y_max) });
      this._clampBox(b);
      d.moved = true;
      this._request();
    }
  }

  _up(e) {
    const d = this.drag;
    if (!d) return;
    this.drag = null;
    if (this.canvas.hasPointerCapture(e.pointerId)) this.canvas.releasePointerCapture(e.pointerId);
    if (d.type === "measure") {
      if (d.m) this.dispatchEvent(new CustomEvent("measure"));
      return;
    }
    if (d.type === "draw") {
      if (d.box) {
        this.select(this.editableLayer.key, d.box.id);
        this._changed("create");
      } else {
        this.select(null, null);
      }
    } else if ((d.type === "move" || d.type === "resize") && d.moved) {
      this._changed(d.type);
    }
  }

  /** The original-image pixel under a CSS point, reported as a "probe" event (null outside the image). */
  _probe(sx, sy) {
    if (!this.size) return;
    const p = this.toImage(sx, sy);
    const x = Math.floor(p.x), y = Math.floor(p.y);
    const inside = x >= 0 && y >= 0 && x < this.size.columns && y < this.size.rows;
    this.dispatchEvent(new CustomEvent("probe", { detail: inside ? { x, y } : null }));
  }

  _hover(sx, sy) {
    if (this.tool === "probe" && !this.spaceDown) {
      this.canvas.style.cursor = "crosshair";
      this._probe(sx, sy);
      return;
    }
    let cursor = this.tool === "window" ? "ns-resize" : this.tool === "pan" || this.spaceDown ? "grab" : "crosshair";
    const layer = this.editableLayer;
    const sel = this.selectedBox();
    if (this.tool === "box" && !this.spaceDown) {
      const h = sel && layer && this.selected.layer === layer.key ? this._handleAt(sel, sx, sy) : null;
      if (h) cursor = CURSORS[h];
      else if (this._boxAt(sx, sy)?.layer.editable) cursor = "move";
      else if (this._boxAt(sx, sy)) cursor = "pointer";
    }
    this.canvas.style.cursor = cursor;
  }

  // --- painting -------------------------------------------------------------------------------------------

  /** Draw again at the next animation frame (after layers were shown or hidden). */
  redraw() { this._request(); }

  _request() {
    if (this.frameRequested) return;
    this.frameRequested = true;
    requestAnimationFrame((t) => this._paint(t));
  }

  /** Paint now (used right after an image swap, so the next frame shows it). */
  paintNow() {
    this._paint(performance.now());
  }

  _paint(time) {
    this.frameRequested = false;
    if (this.dirtyWindow && this.image) {
      this.dirtyWindow = false;
      this._renderWindow();
    }
    const ctx = this.ctx, dpr = this.dpr;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.fillStyle = "#000";
    ctx.fillRect(0, 0, this.canvas.width, this.canvas.height);
    if (this.size) {
      ctx.setTransform(dpr * this.zoom, 0, 0, dpr * this.zoom, dpr * this.panX, dpr * this.panY);
      ctx.imageSmoothingEnabled = this.zoom * this.size.columns / this.base.width < 2;
      ctx.drawImage(this.base, 0, 0, this.size.columns, this.size.rows);
      ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
      for (const layer of this.layers) if (layer.visible) this._paintLayer(ctx, layer);
      this.tags = this._layoutTags(ctx);
      this._paintTags(ctx, this.tags); // over every box: no box edge crosses a name
      this._paintHandles(ctx);
      this._paintMeasures(ctx);
    } else {
      this.tags = [];
    }
    this.stats.frames += 1;
    this.dispatchEvent(new CustomEvent("paint", { detail: { time } }));
  }

  /**
   * Place the name tag of every visible box so that no two overlap: editable layers first (their tags sit
   * above the box), then the others in layer order (below the box). A tag that meets one already placed moves
   * just past it, away from its box, and is tested again. Returns [{layer, id, text, color, x, y, w, h}].
   */
  _layoutTags(ctx) {
    ctx.font = TAG_FONT;
    const tags = [];
    const order = this.layers.filter((l) => l.visible).sort((a, b) => Number(b.editable) - Number(a.editable));
    for (const layer of order) {
      for (const b of layer.boxes) {
        const r = this._screenRect(b);
        const score = !layer.editable && typeof b.score === "number" ? ` ${b.score.toFixed(2)}` : "";
        const text = `${layer.editable ? "" : `${layer.label}: `}${b.class_name || "choose a class"}${score}`;
        const tag = { layer: layer.key, id: b.id, text, color: b.class_name ? layer.color : "#ff4d4d",
                      x: r.x0, y: layer.editable ? r.y0 - TAG_H : r.y1, w: ctx.measureText(text).width + 6, h: TAG_H };
        // each move passes one placed tag for good (the moves go one way), so at most tags.length moves
        for (let moves = 0; moves <= tags.length; moves++) {
          const hit = tags.find((o) => tag.x < o.x + o.w && o.x < tag.x + tag.w && tag.y < o.y + o.h && o.y < tag.y + tag.h);
          if (!hit) break;
          tag.y = layer.editable ? hit.y - TAG_H : hit.y + hit.h;
        }
        tags.push(tag);
      }
    }
    return tags;
  }

  _paintTags(ctx, tags) {
    ctx.font = TAG_FONT;
    ctx.textBaseline = "bottom";
    for (const tag of tags) {
      ctx.fillStyle = "rgba(0,0,0,0.65)";
      ctx.fillRect(tag.x, tag.y, tag.w, tag.h);
      ctx.fillStyle = tag.color;
      ctx.fillText(tag.text, tag.x + 3, tag.y + 14);
    }
  }

  _paintLayer(ctx, layer) {
    for (const b of layer.boxes) {
      const r = this._screenRect(b);
      const selected = this.selected && this.selected.layer === layer.key && this.selected.id === b.id;
      ctx.lineWidth = selected ? 2.5 : 1.5;
      ctx.strokeStyle = b.class_name ? layer.color : "#ff4d4d";
      ctx.setLineDash(layer.editable ? [] : [6, 3]);
      ctx.strokeRect(r.x0, r.y0, r.x1 - r.x0, r.y1 - r.y0);
      ctx.setLineDash([]);
    }
  }

  /** The resize handles of the selected editable box (painted last: nothing covers them). */
  _paintHandles(ctx) {
    const layer = this.editableLayer, b = this.selectedBox();
    if (!layer?.visible || !b || this.selected.layer !== layer.key) return;
    const r = this._screenRect(b);
    ctx.fillStyle = layer.color;
    const xm = (r.x0 + r.x1) / 2, ym = (r.y0 + r.y1) / 2;
    for (const [hx, hy] of [[r.x0, r.y0], [xm, r.y0], [r.x1, r.y0], [r.x1, ym], [r.x1, r.y1], [xm, r.y1],
                            [r.x0, r.y1], [r.x0, ym]]) {
      ctx.fillRect(hx - 3.5, hy - 3.5, 7, 7);
    }
  }
}
