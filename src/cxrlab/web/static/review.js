// The review page: every reader's marks in a colour of their own (legend, show/hide), the suggested consensus
// as the editable proposal shared by the two reviewers, approve, comments. The rules (who may see what, when
// a review is final, QC of the proposal) are the server's; this page shows its answers.
//
// Proposal edits are saved one second after a change (PUT /proposal with the review's version); a save
// clears both approvals on the server. 409 (the other reviewer saved meanwhile) reloads the review. After an
// approval the page moves on to the reviewer's next open review.
//
// Undo/redo (Ctrl+Z / Ctrl+Shift+Z, the toolbar's buttons) of the proposal's box and label edits, across
// autosaves: an undo is saved as a new proposal version (cause "undo"), never a rewrite of history.

import { api, ApiError } from "./api.js";
import { Autosaver } from "./autosave.js";
import { DEFAULT_MAX_SIZE, ImageCache, firstPaint } from "./images.js";
import { newBoxId } from "./imageview.js";
import { UndoStack, snapshotOf, undoKey } from "./undo.js";
import {
  ClassPicker, LabelChecklist, boxesForApi, createView, el, renderBoxList, showMessage, typing, viewKeys, windowText,
} from "./panels.js";

const root = document.getElementById("review");
const projectId = Number(root.dataset.projectId);
const taskId = Number(root.dataset.taskId);
const maxSize = Number(root.dataset.maxSize) || DEFAULT_MAX_SIZE;
const AUTOSAVE_MS = 1000;
const READER_COLOURS = ["#ffb74d", "#ce93d8", "#81c784", "#f06292", "#fff176", "#a1887f", "#4db6ac"];
const PROPOSAL_COLOUR = "#4fc3f7";

const $ = (id) => document.getElementById(id);
const statusLine = $("status");
const qcLine = $("qc-message");
const view = createView($("stage"), root.querySelector(".view-toolbar"), { canvasLabel: "Chest X-ray under review" });
const cache = new ImageCache(maxSize);

const state = {
  schema: null,
  review: null,   // ReviewOut
  labels: new Set(),
  comment: null,  // the proposal's own comment (kept as it is)
  cause: "edit",  // why the proposal on screen changed last: edit | undo | redo (sent with the next save)
};
const undo = new UndoStack();
window.cxrReview = { view, state, undo };

let picker, checklist;

const showQC = (message) => showMessage(qcLine, message);

function editable() {
  return state.review?.review_state === "open";
}

// --- rendering ------------------------------------------------------------------------------------------------

function renderStatus() {
  const r = state.review;
  if (!r) return;
  const save = { saved: "proposal saved", pending: "unsaved proposal changes", saving: "saving…",
                 error: "proposal not saved" }[proposals.state];
  statusLine.textContent = `Review of image ${r.task.image.image_id.slice(0, 12)}… · ${r.readers.length} readers · `
    + `proposal v${r.version} · ${save} · ${windowText(view)} · zoom ${Math.round(view.zoom * 100)}%`;
}

function renderReview() {
  const r = state.review;
  const approvals = Object.entries(r.approvals);
  const approved = approvals.filter(([, v]) => v === r.version).map(([who]) => who);
  const words = { waiting: "Waiting for the readers", open: "Open", finalized: "Final: the consensus is stored",
                  unusable: "Closed: the image was set aside as unusable" };
  $("review-state").textContent = `${words[r.review_state]} · reviewers ${r.reviewers.join(" and ")} · `
    + (approved.length ? `approved v${r.version} by ${approved.join(", ")}` : "no approval of this version yet");
  // legend: one colour per reader, then the proposal
  const legend = $("legend");
  legend.replaceChildren(...view.layers.map((layer) => {
    const input = el("input", { type: "checkbox", "aria-label": `Show ${layer.label}`,
                                onchange: () => { layer.visible = input.checked; view.redraw(); } });
    input.checked = layer.visible;
    return el("li", {}, el("label", {}, input, el("span", { class: "swatch", style: `background:${layer.color}` }),
                           el("span", { text: `${layer.label} (${layer.boxes.length} box${layer.boxes.length === 1 ? "" : "es"})` })));
  }));
  // votes: which reader marked which label (a local label counts when the reader drew a box of it)
  const marked = (m, name) => m.labels.includes(name) || m.boxes.some((b) => b.class_name === name);
  const names = state.schema ? [...state.schema.global, ...state.schema.local].map((l) => l.name) : [];
  const rows = names.filter((n) => r.readers.some((x) => marked(x.marks, n)) || state.labels.has(n)
                                   || view.editableLayer?.boxes.some((b) => b.class_name === n));
  const table = document.querySelector("table.votes");
  table.tHead.replaceChildren(el("tr", {}, el("th", { text: "label" }),
    ...r.readers.map((x) => el("th", { text: x.rad_id })), el("th", { text: "proposal" })));
  const proposal = { labels: [...state.labels], boxes: view.editableLayer?.boxes ?? [] };
  table.tBodies[0].replaceChildren(...rows.map((n) => el("tr", {}, el("td", { text: n }),
    ...r.readers.map((x) => el("td", { text: marked(x.marks, n) ? "●" : "" })),
    el("td", { text: marked(proposal, n) ? "●" : "" }))));
  $("comments").replaceChildren(...r.comments.map((c) => el("li", {},
    el("span", { class: "who", text: c.username }), ` ${new Date(c.at).toLocaleString()}: `, el("span", { text: c.text }))));
  for (const id of ["save", "approve", "copy-box", "use-suggestion"]) $(id).disabled = !editable();
  renderUndo();
  renderBoxList($("box-list"), view);
  renderStatus();
}

/** Take a ReviewOut from the server: layers, labels, panels. */
function setReview(r, { keepSelection = false, keepUndo = false } = {}) {
  state.review = r;
  state.labels = new Set(r.proposal.labels);
  state.comment = r.proposal.comment;
  proposals.reset();
  const visible = new Map(view.layers.map((l) => [l.key, l.visible]));
  const selected = keepSelection ? view.selected : null;
  view.setLayers([
    ...r.readers.map((x, i) => ({ key: `reader:${x.rad_id}`, label: x.rad_id, color: READER_COLOURS[i % READER_COLOURS.length],
                                  boxes: x.marks.boxes.map((b) => ({ ...b })), visible: visible.get(`reader:${x.rad_id}`) ?? true })),
    { key: "proposal", label: "proposal", color: PROPOSAL_COLOUR, editable: editable(),
      boxes: r.proposal.boxes.map((b) => ({ ...b })), visible: visible.get("proposal") ?? true },
  ]);
  if (selected) view.select(selected.layer, selected.id);
  checklist.set(r.proposal.labels);
  for (const input of document.querySelectorAll("#global-labels input")) input.disabled = !editable();
  if (keepUndo) undo.current = snapshot(); // the server's copy of what is on screen (rounded): the stack stays
  else { undo.reset(snapshot()); state.cause = "edit"; }
  renderReview();
}

// --- undo / redo -----------------------------------------------------------------------------------------------

const proposalLayer = () => view.layers.find((l) => l.key === "proposal");
const snapshot = () => snapshotOf(state.labels, proposalLayer()?.boxes ?? []);

function renderUndo() {
  view.toolButtons.undo.disabled = !editable() || !undo.canUndo;
  view.toolButtons.redo.disabled = !editable() || !undo.canRedo;
}

/** Show the proposal of *which* ("undo" or "redo") and save it as a new proposal version. */
function undoRedo(which) {
  if (!editable()) return;
  const snap = which === "undo" ? undo.undo() : undo.redo();
  if (snap === null) return;
  const { labels, boxes } = JSON.parse(snap);
  state.labels = new Set(labels);
  checklist.set(labels);
  proposalLayer().boxes = boxes;
  if (view.selected?.layer === "proposal" && !boxes.some((b) => b.id === view.selected.id)) view.select(null, null);
  view.redraw();
  state.cause = which;
  showQC("");
  proposals.changed();
  renderReview();
}

view.toolButtons.undo.addEventListener("click", () => { undoRedo("undo"); view.canvas.focus(); });
view.toolButtons.redo.addEventListener("click", () => { undoRedo("redo"); view.canvas.focus(); });

// --- saving -----------------------------------------------------------------------------------------------------

/**
 * The proposal as the API takes it. Local labels follow the boxes (as in the suggested consensus): a local
 * label is listed exactly when the proposal has a box of it, so deleting the last box of a class drops it.
 */
function proposalBody() {
  const boxes = view.layers.find((l) => l.key === "proposal").boxes;
  const local = new Set(state.schema.local.map((l) => l.name));
  const boxed = [...new Set(boxes.map((b) => b.class_name))];
  const labels = [...boxed, ...[...state.labels].filter((n) => !local.has(n))];
  return { version: state.review.version, labels, comment: state.comment,
           boxes: boxesForApi(boxes), cause: state.cause };
}

const proposals = new Autosaver({
  delay: AUTOSAVE_MS,
  send: () => api.put(`/api/reviews/${taskId}/proposal`, proposalBody()),
  onSaved: (r, current) => {
    if (current) setReview(r, { keepSelection: true, keepUndo: true });
    else state.review.version = r.version;
  },
  onError: async (err) => {
    if (!(err instanceof ApiError)) throw err;
    if (err.status === 409) {
      showQC(`${err.detail} — the review was reloaded.`);
      await load();
    } else {
      showQC(err.detail);
    }
  },
  onState: () => renderStatus(),
});

function changed() {
  showQC("");
  undo.record(snapshot());
  state.cause = "edit";
  proposals.changed();
  renderReview();
}

/** Save the proposal now; true when everything on screen is saved. */
const save = () => (editable() ? proposals.flush() : Promise.resolve(true));

/**
 * Save and approve the proposal, then open the reviewer's next open review (`/projects/{id}/review` redirects
 * to it, or says that none is left): an approved review leaves the reviewer's queue, and returns to it only
 * when the other reviewer edits the proposal.
 */
async function approve() {
  if (!editable()) return;
  if (!(await save())) return;
  try {
    setReview(await api.post(`/api/reviews/${taskId}/approve`, { version: state.review.version }));
    showQC("");
    location.assign(`/projects/${projectId}/review`);
  } catch (err) {
    if (!(err instanceof ApiError)) throw err;
    showQC(err.detail);
    if (err.status === 409) await load();
  }
}

async function addComment() {
  const box = $("comment");
  const text = box.value.trim();
  if (!text) return;
  try {
    const r = await api.post(`/api/reviews/${taskId}/comments`, { text });
    box.value = "";
    state.review.comments = r.comments;
    renderReview();
  } catch (err) {
    showQC(err.detail ?? String(err));
  }
}

/** Copy the selected reader box into the proposal (a merge by hand). */
function copySelected() {
  const sel = view.selected;
  if (!editable() || !sel || !sel.layer.startsWith("reader:")) {
    showQC("Select a reader's box first (click it), then copy it.");
    return;
  }
  const box = view.selectedBox();
  const proposal = view.layers.find((l) => l.key === "proposal");
  const copy = { ...box, id: newBoxId() };
  proposal.boxes.push(copy);
  view.select("proposal", copy.id);
  changed();
}

function useSuggestion() {
  const s = state.review.suggestion;
  if (!editable() || !s) return;
  view.layers.find((l) => l.key === "proposal").boxes = s.boxes.map((b) => ({ ...b }));
  state.labels = new Set(s.labels);
  checklist.set(s.labels);
  view.select(null, null);
  changed();
}

// --- events ------------------------------------------------------------------------------------------------------

view.addEventListener("change", () => changed());
view.addEventListener("select", (e) => {
  renderBoxList($("box-list"), view);
  if (e.detail.box?.class_name) picker.show(e.detail.box.class_name);
});
view.addEventListener("window", () => renderStatus());
view.addEventListener("view", () => renderStatus());
$("save").addEventListener("click", () => save());
$("approve").addEventListener("click", () => approve());
$("add-comment").addEventListener("click", () => addComment());
$("copy-box").addEventListener("click", () => copySelected());
$("use-suggestion").addEventListener("click", () => useSuggestion());

document.addEventListener("keydown", (e) => {
  if (document.querySelector("dialog[open]")) return;
  if ((e.ctrlKey || e.metaKey) && e.key.toLowerCase() === "s") { e.preventDefault(); save(); return; }
  const which = typing(e) ? null : undoKey(e); // in a text field Ctrl+Z undoes the typing, as usual
  if (which) { e.preventDefault(); undoRedo(which); return; }
  if (typing(e)) { if (e.key === "Escape") e.target.blur(); return; }
  if (e.target instanceof HTMLButtonElement && (e.key === "Enter" || e.key === " ")) return;
  if (e.key === "Tab" && e.target === view.canvas) { e.preventDefault(); view.selectNext(e.shiftKey ? -1 : 1); return; }
  let handled = true;
  if (e.key === "Enter") approve();
  else if (e.key === "Delete" || e.key === "Backspace") view.deleteSelected();
  else if (e.key === "Escape") { view.select(null, null); view.clearMeasures(); }
  else if (e.key === "a" || e.key === "A") copySelected();
  else if (e.key === "c" || e.key === "C" || e.key === "/") picker.search.focus();
  else if (e.key === "m" || e.key === "M") $("comment").focus();
  else if (e.ctrlKey || e.altKey || e.metaKey) handled = false;
  else handled = (editable() && (picker.key(e) || checklist.key(e))) || viewKeys(view, e);
  if (handled) e.preventDefault();
});

// --- start -------------------------------------------------------------------------------------------------------

async function load() {
  setReview(await api.get(`/api/reviews/${taskId}`));
}

async function start() {
  state.schema = await api.get(`/api/projects/${projectId}/schema`);
  picker = new ClassPicker($("class-picker"), state.schema.local, (name) => {
    view.currentClass = name;
    if (view.setSelectedClass(name)) renderBoxList($("box-list"), view);
  });
  view.currentClass = picker.current;
  checklist = new LabelChecklist($("global-labels"), state.schema.global, state.schema.no_finding, (name, on) => {
    if (on) state.labels.add(name); else state.labels.delete(name);
    changed();
  });
  const r = await api.get(`/api/reviews/${taskId}`);
  const id = r.task.image.image_id;
  const loading = cache.get(id);
  const bitmap = await Promise.race([firstPaint(id, maxSize).catch(() => null), loading.then(() => null)]);
  if (bitmap) view.showBitmap(bitmap, r.task.image.rows, r.task.image.columns);
  setReview(r);
  view.showImage(await loading, { keepView: true });
  view.canvas.focus();
}

start().catch((err) => { statusLine.textContent = `The review could not start: ${err.detail ?? err.message}`; });
