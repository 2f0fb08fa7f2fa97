// The grid triage page: one page of a queue as thumbnails, keyboard first.
// Arrows move the focus; one key per reason marks the focused image; Backspace clears its mark; Space opens the
// large view (Esc closes it); Enter sends the page's decisions (the unmarked images get the queue's default:
// accept, confirm) and shows the next page, which was fetched and its thumbnails loaded meanwhile. The burned-in
// text queue has no default: releasing pixels as they are is a PHI decision, so each image needs its own key
// (n: no PHI, r: redact, d: discard) and Enter refuses a page with an undecided image.
// Only ids, reason codes and boxes (coordinates) come from the server: no header value ever reaches the page.
import { api } from "./api.js";

const root = document.getElementById("triage");
const grid = document.getElementById("triage-grid");
const status = document.getElementById("triage-status");
const empty = document.getElementById("triage-empty");
const large = document.getElementById("triage-large");
const queue = root.dataset.queue;
const pageSize = Number(root.dataset.pageSize) || 48;
const keymap = JSON.parse(document.getElementById("triage-keymap").textContent);

const DEFAULT = { filter: "accept", text: null, unusable: "confirm" };
const KEYS = {};
if (queue === "filter") {
  for (const k of keymap) {
    KEYS[k.key] = { action: "outlier", reason: k.reason, label: k.reason };
    KEYS[k.digit] = KEYS[k.key];
  }
} else if (queue === "text") {
  KEYS.n = { action: "release", label: "no PHI" };
  KEYS.r = { action: "redact", label: "redact" };
  KEYS.d = { action: "discard", label: "discard" };
} else {
  KEYS.r = { action: "return", label: "return to reading" };
}

let items = [];
let marks = new Map();
let focus = 0;
let next = null;   // Promise of the next page (its thumbnails preloading)
let busy = false;
let decided = 0;

const thumb = (pk, size = 256) => `/api/triage/images/${pk}/render?max_size=${size}`;

function preload(page) {
  return Promise.all(page.items.map((it) => new Promise((resolve) => {
    const img = new Image();
    img.onload = img.onerror = resolve;
    img.src = thumb(it.pk);
  })));
}

async function fetchPage(after) {
  const url = `/api/triage/queues/${queue}?limit=${pageSize}` + (after ? `&after=${after}` : "");
  const page = await api.get(url);
  await preload(page);
  return page;
}

function setCounts(counts) {
  for (const [q, n] of Object.entries(counts)) {
    const el = document.querySelector(`[data-count="${q}"]`);
    if (el) el.textContent = String(n);
  }
}

// Box positions as percentages of a square frame in which the image is letterboxed (object-fit: contain).
function boxStyle(box, rows, cols) {
  const side = Math.max(rows, cols);
  const ox = (side - cols) / 2, oy = (side - rows) / 2;
  const [x0, y0, x1, y1] = box;
  return `left:${(100 * (x0 + ox)) / side}%;top:${(100 * (y0 + oy)) / side}%;` +
    `width:${(100 * (x1 - x0)) / side}%;height:${(100 * (y1 - y0)) / side}%`;
}

function label(it) {
  if (it.queue === "filter") return it.klass ? `${it.why}: ${it.klass} ${Math.round(100 * it.confidence)}%` : it.why;
  if (it.queue === "text") return `${it.boxes.length} box${it.boxes.length === 1 ? "" : "es"}`;
  return it.why;
}

function render(page) {
  items = page.items;
  marks = new Map();
  focus = 0;
  grid.replaceChildren(...items.map((it, i) => {
    const li = document.createElement("li");
    li.dataset.pk = String(it.pk);
    li.dataset.index = String(i);
    li.setAttribute("aria-label", `image ${it.image_id}`);
    const frame = document.createElement("div");
    frame.className = "frame";
    const img = document.createElement("img");
    img.src = thumb(it.pk);
    img.alt = `image ${it.image_id}`;
    frame.append(img);
    if (it.rows && it.columns) {
      for (const b of it.boxes) {
        const d = document.createElement("div");
        d.className = "box";
        d.setAttribute("style", boxStyle(b, it.rows, it.columns));
        frame.append(d);
      }
    }
    const cap = document.createElement("div");
    cap.className = "label";
    const why = document.createElement("span");
    why.textContent = label(it);
    const mark = document.createElement("span");
    mark.className = "mark";
    cap.append(why, mark);
    frame.append(cap);
    li.append(frame);
    li.addEventListener("click", () => move(i));
    li.addEventListener("dblclick", () => openLarge());
    return li;
  }));
  empty.hidden = items.length > 0;
  grid.dataset.page = String((Number(grid.dataset.page) || 0) + 1);
  move(0);
  setCounts(page.counts);
  const last = items.length ? items[items.length - 1].pk : null;
  next = items.length ? fetchPage(last) : null;
  next?.catch(() => {});
}

function move(i) {
  if (!items.length) return;
  focus = Math.max(0, Math.min(items.length - 1, i));
  for (const li of grid.children) {
    const on = Number(li.dataset.index) === focus;
    li.classList.toggle("focus", on);
    if (on) li.setAttribute("aria-current", "true"); else li.removeAttribute("aria-current");
  }
  grid.children[focus].scrollIntoView({ block: "nearest" });
}

function columns() {
  const kids = grid.children;
  if (!kids.length) return 1;
  const top = kids[0].offsetTop;
  let n = 0;
  while (n < kids.length && kids[n].offsetTop === top) n += 1;
  return Math.max(1, n);
}

function setMark(decision) {
  if (!items.length) return;
  const it = items[focus];
  const li = grid.children[focus];
  if (decision) marks.set(it.pk, decision); else marks.delete(it.pk);
  li.classList.toggle("marked", Boolean(decision));
  li.dataset.mark = decision ? decision.label : "";
  li.querySelector(".mark").textContent = decision ? decision.label : "";
}

function openLarge() {
  if (!items.length) return;
  const it = items[focus];
  const img = large.querySelector("img");
  const boxes = large.querySelector(".boxes");
  img.src = thumb(it.pk, 2048);
  img.alt = `image ${it.image_id}, large`;
  boxes.replaceChildren(...it.boxes.map((b) => {
    const d = document.createElement("div");
    d.className = "box";
    d.setAttribute("style", `left:${(100 * b[0]) / it.columns}%;top:${(100 * b[1]) / it.rows}%;` +
      `width:${(100 * (b[2] - b[0])) / it.columns}%;height:${(100 * (b[3] - b[1])) / it.rows}%`);
    return d;
  }));
  large.showModal();
}

async function submitPage() {
  if (busy || !items.length) return;
  const undecided = items.findIndex((it) => !marks.get(it.pk) && !DEFAULT[queue]);
  if (undecided >= 0) {
    const left = items.filter((it) => !marks.get(it.pk)).length;
    status.textContent = `${left} image${left === 1 ? "" : "s"} not decided: each needs its own key here `
      + "(n: no PHI, r: redact, d: discard)";
    move(undecided);
    return;
  }
  busy = true;
  const decisions = items.map((it) => {
    const m = marks.get(it.pk);
    const d = { image: it.pk, queue, action: m ? m.action : DEFAULT[queue] };
    if (m?.reason) d.reason = m.reason;
    return d;
  });
  try {
    const out = await api.post("/api/triage/decisions", { decisions });
    const failed = out.results.filter((r) => r.status !== 200);
    decided += out.results.length - failed.length;
    status.textContent = `${decided} decided` + (failed.length ? `; ${failed.length} not: ${failed[0].detail}` : "");
    setCounts(out.counts);
    let page = next ? await next : { items: [], counts: out.counts };
    if (!page.items.length) page = await fetchPage(null);  // anything left behind (decided by no one yet)
    render(page);
  } catch (err) {
    status.textContent = err.detail || String(err);
  } finally {
    busy = false;
  }
}

document.addEventListener("keydown", (ev) => {
  if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
  if (large.open) {
    if (ev.key === "Escape" || ev.key === " ") { ev.preventDefault(); large.close(); }
    return;
  }
  const cols = columns();
  const key = ev.key.length === 1 ? ev.key.toLowerCase() : ev.key;
  if (key === "ArrowRight") move(focus + 1);
  else if (key === "ArrowLeft") move(focus - 1);
  else if (key === "ArrowDown") move(focus + cols);
  else if (key === "ArrowUp") move(focus - cols);
  else if (key === "Home") move(0);
  else if (key === "End") move(items.length - 1);
  else if (key === "Backspace" || key === "Delete") setMark(null);
  else if (key === " ") openLarge();
  else if (key === "Enter") submitPage();
  else if (KEYS[key]) setMark(KEYS[key]);
  else return;
  ev.preventDefault();
});

fetchPage(null).then(render).catch((err) => { status.textContent = err.detail || String(err); });
