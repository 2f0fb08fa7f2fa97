// Pieces shared by the reading viewer and the review page: the view toolbar and its keys, the measuring tools'
// readout, the searchable class picker, the global-label checklist, the list of boxes and the help overlay.

import { api } from "./api.js";
import { ImageView } from "./imageview.js";

const TOOLS = ["box", "window", "pan", "ruler", "probe"];
const PROBE_DELAY_MS = 40;

export const el = (tag, attrs = {}, ...children) => {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : v);
  }
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
};

/** Boxes as the API takes them (only the API's fields; ``source`` when the box was accepted from a model
 * suggestion: the server checks it when the box is created and keeps it after). */
export function boxesForApi(boxes) {
  return boxes.map(({ id, class_name, x_min, y_min, x_max, y_max, source }) =>
    ({ id, class_name, x_min, y_min, x_max, y_max, ...(source ? { source } : {}) }));
}

/** Show (or clear) the server's message in the QC line (role=alert, fixed height: no layout jump). */
export function showMessage(line, message) {
  line.textContent = message || "";
  line.classList.toggle("visible", Boolean(message));
}

/** True when a key event comes from a text field (where letters are text, not shortcuts). */
export function typing(e) {
  const t = e.target;
  if (!(t instanceof HTMLElement)) return false;
  if (t.isContentEditable || t.tagName === "TEXTAREA" || t.tagName === "SELECT") return true;
  return t.tagName === "INPUT" && !["checkbox", "radio", "button", "submit"].includes(t.type);
}

// --- view + toolbar ------------------------------------------------------------------------------------------

/**
 * Create the image view in `host` and wire the toolbar in `toolbar` (buttons with data-action, a preset
 * <select data-role="preset">). Returns the view.
 */
export function createView(host, toolbar, { canvasLabel } = {}) {
  const view = new ImageView(host, { canvasLabel });
  const presetSelect = toolbar.querySelector("[data-role=preset]");
  const buttons = Object.fromEntries([...toolbar.querySelectorAll("[data-action]")].map((b) => [b.dataset.action, b]));
  const act = {
    "tool-box": () => setTool(view, "box"),
    "tool-window": () => setTool(view, "window"),
    "tool-pan": () => setTool(view, "pan"),
    "tool-ruler": () => setTool(view, view.tool === "ruler" ? "box" : "ruler"),
    "tool-probe": () => setTool(view, view.tool === "probe" ? "box" : "probe"),
    invert: () => view.toggleInvert(),
    reset: () => view.reset(),
    fit: () => view.fit(),
    "zoom-in": () => view.zoomBy(1.25),
    "zoom-out": () => view.zoomBy(0.8),
    help: () => toggleHelp(),
  };
  for (const [name, fn] of Object.entries(act)) buttons[name]?.addEventListener("click", () => { fn(); view.canvas.focus(); });
  view.toolButtons = buttons;
  view.addEventListener("window", () => {
    buttons.invert?.setAttribute("aria-pressed", String(view.userInvert));
    syncPresets(view, presetSelect);
  });
  presetSelect?.addEventListener("change", () => {
    choosePreset(view, Number(presetSelect.value));
    view.canvas.focus();
  });
  setTool(view, "box");
  measuringReadout(view, host.querySelector("[data-role=measure]"));
  return view;
}

export function setTool(view, tool) {
  view.tool = tool;
  for (const t of TOOLS) view.toolButtons?.[`tool-${t}`]?.setAttribute("aria-pressed", String(t === tool));
  view.dispatchEvent(new CustomEvent("tool", { detail: { tool } }));
}

/**
 * The readout of the measuring tools (a live note over the image's corner): the last ruler's length with what its spacing
 * means ("in the patient" / "at the detector"), or the stored and modality values of the pixel under the cursor
 * (asked from the server for the original image, not the downsampled array). `view.probeValue` keeps the last
 * answer. Neither ever touches the marks.
 */
function measuringReadout(view, output) {
  if (!output) return;
  let timer = null, asked = null;
  const show = (text) => { output.textContent = text; };
  const ruler = () => {
    const m = view.measures.at(-1);
    if (!m) { show(view.tool === "ruler" ? "drag to measure" : ""); return; }
    const len = view.measureLength(m), sp = view.image?.meta.spacing;
    show(`${len.text}${sp ? ` · ${sp.note}` : ""}`);
  };
  view.addEventListener("measure", ruler);
  view.addEventListener("tool", (e) => {
    if (e.detail.tool === "ruler") ruler();
    else if (e.detail.tool === "probe") show("move over the image");
    else show("");
  });
  view.addEventListener("probe", (e) => {
    clearTimeout(timer);
    const p = e.detail, img = view.image;
    if (!p || !img) { show(img ? "outside the image" : ""); return; }
    const key = `${img.imageId}:${p.x}:${p.y}`;
    timer = setTimeout(async () => {
      asked = key;
      try {
        const v = await api.get(`/api/images/${img.imageId}/probe?x=${p.x}&y=${p.y}`);
        if (asked !== key || view.tool !== "probe") return;
        view.probeValue = v;
        const modality = Number.isInteger(v.modality) ? v.modality : v.modality.toFixed(2);
        show(`x ${v.x} y ${v.y} · stored ${v.stored} · modality ${modality}${v.unit === "US" ? "" : ` ${v.unit}`}`);
      } catch (err) {
        if (asked === key) show(err.detail ?? String(err));
      }
    }, PROBE_DELAY_MS);
  });
}

async function choosePreset(view, i) {
  const img = view.image;
  if (!img || !img.presets[i]) return;
  view.setWindow(await img.resolve(img.presets[i]));
}

/** Fill the preset <select> for the shown image and select the current window's preset (or "custom"). */
function syncPresets(view, select) {
  if (!select) return;
  const img = view.image;
  const key = img ? img.imageId : "";
  if (select.dataset.image !== key) {
    select.dataset.image = key;
    select.replaceChildren(...(img ? img.presets : []).map((p, i) => el("option", { value: String(i), text: p.name })),
                           el("option", { value: "custom", text: "custom", hidden: true }));
  }
  const w = view.window;
  const i = img && w ? img.presets.findIndex((p) => p.name === w.name && p.kind === w.kind) : -1;
  select.value = i >= 0 ? String(i) : "custom";
}

/** Step through the presets (V / Shift+V). */
export async function stepPreset(view, step) {
  const img = view.image;
  if (!img || !img.presets.length) return;
  const w = view.window;
  const i = img.presets.findIndex((p) => p.name === w?.name && p.kind === w?.kind);
  const next = img.presets[(i + step + img.presets.length) % img.presets.length];
  view.setWindow(await img.resolve(next));
}

/** "W/L 2048/4096" (or the LUT's name) for the status line. */
export function windowText(view) {
  const w = view.window;
  if (!w) return "first paint";
  const inv = view.userInvert ? ", inverted" : "";
  if (w.kind === "lut") return `VOI LUT ${w.name}${inv}`;
  const fmt = (v) => (Math.abs(v) >= 100 ? v.toFixed(0) : v.toPrecision(4));
  return `W ${fmt(w.width)} / L ${fmt(w.center)}${w.name && w.name !== "custom" ? ` (${w.name})` : ""}${inv}`;
}

/** Keys that act on the view; returns true when the key was handled. */
export function viewKeys(view, e) {
  const step = e.shiftKey ? 200 : 50;
  switch (e.key) {
    case "i": case "I": view.toggleInvert(); return true;
    case "r": case "R": view.reset(); return true;
    case "f": case "F": view.fit(); return true;
    case "w": case "W": setTool(view, view.tool === "window" ? "box" : "window"); return true;
    case "b": case "B": setTool(view, "box"); return true;
    case "p": case "P": setTool(view, view.tool === "pan" ? "box" : "pan"); return true;
    case "l": case "L": setTool(view, view.tool === "ruler" ? "box" : "ruler"); return true;
    case "q": case "Q": setTool(view, view.tool === "probe" ? "box" : "probe"); return true;
    case "v": stepPreset(view, 1); return true;
    case "V": stepPreset(view, -1); return true;
    case "ArrowLeft": view.panBy(step, 0); return true;
    case "ArrowRight": view.panBy(-step, 0); return true;
    case "ArrowUp": view.panBy(0, step); return true;
    case "ArrowDown": view.panBy(0, -step); return true;
    case "+": case "=": view.zoomBy(1.25); return true;
    case "-": case "_": view.zoomBy(0.8); return true;
    case "?": toggleHelp(); return true;
    default: return false;
  }
}

export function toggleHelp(force) {
  const dialog = document.getElementById("help");
  if (!dialog) return;
  const open = force ?? !dialog.open;
  if (open && !dialog.open) dialog.showModal();
  else if (!open && dialog.open) dialog.close();
}

// --- class picker ------------------------------------------------------------------------------------------

/** Hotkey of the i-th local class (0-based): 1..9, 0 for the first ten. */
export function classKey(i) {
  return i < 9 ? String(i + 1) : i === 9 ? "0" : null;
}

/**
 * Scroll *list* (a scrolling element, positioned) so that *item* is inside it. Unlike `scrollIntoView`, no
 * other element scrolls: the side panel stays where it is.
 */
function scrollIntoList(list, item) {
  const top = item.offsetTop, bottom = top + item.offsetHeight;
  if (top < list.scrollTop) list.scrollTop = top;
  else if (bottom > list.scrollTop + list.clientHeight) list.scrollTop = bottom - list.clientHeight;
}

/**
 * The searchable list of the schema's local labels. `onPick(name)` is called when a class is chosen
 * (click, Enter in the search field, or its number key).
 */
export class ClassPicker {
  constructor(root, labels, onPick) {
    this.labels = labels;
    this.onPick = onPick;
    this.current = labels[0]?.name ?? null;
    this.search = el("input", { type: "search", "aria-label": "Search classes",
                                placeholder: `Search the ${labels.length} classes (C)`,
                                autocomplete: "off" });
    this.list = el("ul", { role: "listbox", "aria-label": "Box classes", class: "class-list" });
    this.items = labels.map((lb, i) => {
      const key = classKey(i);
      const item = el("li", { role: "option", "aria-selected": "false", "aria-label": lb.name, title: lb.definition,
                              "data-name": lb.name, onclick: () => this.pick(lb.name) },
                      key ? el("kbd", { text: key }) : el("span", { class: "nokey" }), el("span", { text: lb.name }));
      return item;
    });
    this.list.append(...this.items);
    root.append(this.search, this.list);
    this.search.addEventListener("input", () => this.filter());
    this.search.addEventListener("keydown", (e) => {
      if (e.key === "Enter") {
        e.preventDefault();
        const first = this.items.find((it) => !it.hidden);
        this.search.value = "";
        this.filter();
        if (first) this.pick(first.dataset.name); // after the filter: the whole list is back, scrolled to it
        this.search.blur();
      } else if (e.key === "Escape") {
        this.search.value = "";
        this.filter();
        this.search.blur();
      }
    });
    this.show(this.current);
  }

  filter() {
    const q = this.search.value.trim().toLowerCase();
    for (const it of this.items) it.hidden = q !== "" && !it.dataset.name.toLowerCase().includes(q);
  }

  /** Mark *name* as the current class (no callback) and scroll the list to it. */
  show(name) {
    if (name) this.current = name;
    for (const it of this.items) it.setAttribute("aria-selected", String(it.dataset.name === this.current));
    const item = this.items.find((it) => it.dataset.name === this.current);
    if (item && !item.hidden) scrollIntoList(this.list, item);
  }

  pick(name) {
    this.show(name);
    this.onPick(name);
  }

  /** Handle a number key; returns true when it picked a class. */
  key(e) {
    if (e.shiftKey || e.ctrlKey || e.altKey || e.metaKey || !/^Digit\d$/.test(e.code)) return false;
    const digit = Number(e.code.slice(5));
    const i = digit === 0 ? 9 : digit - 1;
    if (!this.labels[i]) return false;
    this.pick(this.labels[i].name);
    return true;
  }
}

// --- global labels --------------------------------------------------------------------------------------------

/** Hotkey hint of the i-th global label: Shift+1..9. */
export function globalKey(i) {
  return i < 9 ? `⇧${i + 1}` : null;
}

/** The checklist of global labels; `onToggle(name, checked)` after each change. */
export class LabelChecklist {
  constructor(root, labels, noFinding, onToggle) {
    this.labels = labels;
    this.noFinding = noFinding;
    this.onToggle = onToggle;
    this.boxes = new Map();
    const fieldset = el("fieldset", { class: "labels" }, el("legend", { text: "Global labels" }));
    labels.forEach((lb, i) => {
      const hint = lb.name === noFinding ? "N" : globalKey(i);
      const input = el("input", { type: "checkbox", "aria-label": lb.name, "data-name": lb.name,
                                  onchange: () => this.onToggle(lb.name, input.checked) });
      this.boxes.set(lb.name, input);
      fieldset.append(el("label", { title: lb.definition, class: lb.name === noFinding ? "no-finding" : null },
                         input, el("span", { text: lb.name }), hint ? el("kbd", { text: hint }) : null));
    });
    root.append(fieldset);
  }

  set(labels) {
    const on = new Set(labels);
    for (const [name, input] of this.boxes) input.checked = on.has(name);
  }

  toggle(name) {
    const input = this.boxes.get(name);
    if (!input) return;
    input.checked = !input.checked;
    this.onToggle(name, input.checked);
  }

  /** Handle Shift+digit and N; returns true when handled. */
  key(e) {
    if (e.ctrlKey || e.altKey || e.metaKey) return false;
    if (!e.shiftKey && (e.key === "n" || e.key === "N") && this.noFinding) {
      this.toggle(this.noFinding);
      return true;
    }
    if (e.shiftKey && /^Digit[1-9]$/.test(e.code)) {
      const lb = this.labels[Number(e.code.slice(5)) - 1];
      if (lb) { this.toggle(lb.name); return true; }
    }
    return false;
  }
}

// --- list of boxes ---------------------------------------------------------------------------------------------

/** Render the editable boxes as a list (select / delete buttons): every box reachable without the mouse. */
export function renderBoxList(list, view) {
  const layer = view.editableLayer;
  const boxes = layer ? layer.boxes : [];
  list.replaceChildren(...boxes.map((b, i) => {
    const selected = view.selected?.layer === layer.key && view.selected.id === b.id;
    const size = `${Math.round(b.x_max - b.x_min)}×${Math.round(b.y_max - b.y_min)} px`;
    return el("li", { class: selected ? "selected" : null },
      el("button", { type: "button", class: "link", "aria-label": `Select box ${i + 1}: ${b.class_name || "no class"}`,
                     onclick: () => view.select(layer.key, b.id) },
         `${i + 1}. ${b.class_name || "— choose a class —"} `,
         el("small", { text: b.source === "suggestion" ? `${size} · from the model` : size })),
      el("button", { type: "button", class: "icon", "aria-label": `Delete box ${i + 1}`, title: "Delete (Del)",
                     onclick: () => { view.select(layer.key, b.id); view.deleteSelected(); } }, "✕"));
  }));
}
