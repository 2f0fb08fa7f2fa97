// The reading viewer: one read task at a time from the reader's own queue (blinded: only /api/tasks is used,
// never another reader's marks), boxes and labels, autosave of drafts, submit -> next image at once from the
// prefetched queue, QC messages from the server shown inline.
//
// Autosave: a change schedules PUT /draft one second later; saves run one at a time and send the version they
// start from. 409 (saved elsewhere meanwhile) reloads the task; 422 shows the QC message; a network error
// keeps the work and retries. A refused submit (422) saves the marks on screen as the draft, and the status
// line says so: "submit refused: <rule> · draft all changes saved".
//
// My recent reads (H, "My reads…"): the reader's newest submitted reads of the project; one that is not frozen is
// reopened (POST /reopen) and shown here at once, its image usually still in the cache.
//
// Undo/redo (Ctrl+Z / Ctrl+Shift+Z, the toolbar's buttons) of every box and label edit of the shown task, across
// autosaves: an undo puts earlier marks on screen and saves them as a new draft version (cause "undo").
//
// Model-assisted reading (when the project has a detector run: data-suggest on the section): the model's boxes on
// the shown image are a dashed layer "model" with class and score, fetched from /api/tasks/{id}/suggestions
// (asked again every SUGGEST_POLL_MS while the server answers "pending": the server predicts in the background).
// A (or the toolbar's "Accept") copies the selected suggestion, else the best one left, into the reader's boxes
// with id sug-<k> and source "suggestion"; the reader then edits it like any box. Ignored suggestions are never
// saved. Undo/redo take an accept back or do it again.
//
// Measurements for the e2e tests and the README live on `window.cxrViewer.metrics`: `submitToPaint` (ms from
// the submit click to the first animation frame after the next image was drawn) and `submitRequest` (ms the
// server took to accept the submission).

import { api, ApiError } from "./api.js";
import { Autosaver } from "./autosave.js";
import { DEFAULT_MAX_SIZE, ImageCache, firstPaint } from "./images.js";
import { UndoStack, snapshotOf, undoKey } from "./undo.js";
import {
  ClassPicker, LabelChecklist, boxesForApi, createView, el, renderBoxList, showMessage, typing, viewKeys, windowText,
} from "./panels.js";

const root = document.getElementById("reader");
const projectId = Number(root.dataset.projectId);
const maxSize = Number(root.dataset.maxSize) || DEFAULT_MAX_SIZE;
const PREFETCH = 3;
const AUTOSAVE_MS = 1000;
const SUGGEST_POLL_MS = 1500;

const $ = (id) => document.getElementById(id);
const statusLine = $("status");
const qcLine = $("qc-message");
const comment = $("comment");
const submitButton = $("submit");

const view = createView($("stage"), root.querySelector(".view-toolbar"), { canvasLabel: "Chest X-ray" });
const cache = new ImageCache(maxSize);
const metrics = { submitToPaint: [], submitRequest: [], firstPaint: [], undoToPaint: [], reopenToPaint: [] };
const undo = new UndoStack();

const state = {
  schema: null,
  queue: [],          // TaskOut objects from /api/tasks/next: queue[0] is on screen
  task: null,         // the shown task
  marks: null,        // {labels: Set, boxes: [...], comment}
  version: 0,
  saveError: "",
  counts: {},
  doneLocally: 0,     // submitted here since the last counts arrived
  busy: false,        // a submit / set-aside is running
  moves: 0,           // bumped whenever the viewer moves to another task (stale queue answers are dropped)
  refusal: "",        // why the last submit of the shown task did not go through (until the next change)
  cause: "edit",      // why the marks on screen changed last: edit | undo | redo (sent with the next save)
};

// model suggestions of the shown task: status off | pending | ready | failed | none (not available)
const suggest = { on: root.dataset.suggest === "1", taskId: null, status: "off", boxes: [], timer: null };

window.cxrViewer = { view, state, metrics, cache, undo, suggest };

// --- panels --------------------------------------------------------------------------------------------------

let picker, checklist;

function buildPanels(schema) {
  picker = new ClassPicker($("class-picker"), schema.local, (name) => {
    view.currentClass = name;
    if (view.setSelectedClass(name)) renderBoxList($("box-list"), view);
  });
  view.currentClass = picker.current;
  checklist = new LabelChecklist($("global-labels"), schema.global, schema.no_finding, (name, on) => {
    if (on) state.marks.labels.add(name); else state.marks.labels.delete(name);
    changed();
  });
}

view.addEventListener("change", () => { renderBoxList($("box-list"), view); showSuggestions(); changed(); });
view.addEventListener("select", (e) => {
  renderBoxList($("box-list"), view);
  if (e.detail.box?.class_name) picker.show(e.detail.box.class_name);
});
view.addEventListener("window", () => renderStatus());
view.addEventListener("view", () => renderStatus());
comment.addEventListener("input", () => { state.marks.comment = comment.value; changed(); });

// --- status ------------------------------------------------------------------------------------------------------

function renderStatus() {
  if (!state.task) return;
  const c = state.counts;
  const total = Object.entries(c).filter(([s]) => s !== "cancelled").reduce((a, [, n]) => a + n, 0);
  const done = (c.submitted || 0) + (c.unusable || 0) + state.doneLocally;
  const save = { saved: "all changes saved", pending: "unsaved changes", saving: "saving…",
                 error: `not saved: ${state.saveError}`, offline: "offline: will save when the server is back" }[drafts.state];
  const refusal = state.refusal ? `${state.refusal} · ` : "";
  statusLine.textContent = `Task ${Math.min(done + 1, total)} of ${total} · ${Math.max(total - done - 1, 0)} left after this · `
    + `${refusal}draft ${save} · ${windowText(view)} · zoom ${Math.round(view.zoom * 100)}%${suggestText()}`;
  statusLine.dataset.save = drafts.state;
}

const showQC = (message) => showMessage(qcLine, message);

// --- marks and autosave -------------------------------------------------------------------------------------

function payload() {
  const m = state.marks;
  return {
    version: state.version,
    labels: [...m.labels],
    boxes: boxesForApi(view.editableLayer.boxes),
    comment: m.comment || null,
    cause: state.cause,
  };
}

const drafts = new Autosaver({
  delay: AUTOSAVE_MS,
  send: () => api.put(`/api/tasks/${state.task.id}/draft`, payload()),
  onSaved: (saved) => { state.version = saved.version; },
  onError: async (err) => {
    if (!(err instanceof ApiError)) throw err;
    if (err.status === 409) {
      showQC(`${err.detail} — the task was reloaded.`);
      await reloadTask();
    } else if (err.status === 0) {
      drafts.state = "offline";
      drafts.schedule(3000);
    } else {
      state.saveError = err.detail;
      showQC(err.detail);
    }
  },
  onState: () => renderStatus(),
});

function changed() {
  showQC("");
  state.refusal = "";
  if (state.task) undo.record(snapshot()); // a comment alone changes no snapshot: nothing to undo
  state.cause = "edit";
  renderUndo();
  drafts.changed();
}

// --- undo / redo -----------------------------------------------------------------------------------------------

const snapshot = () => snapshotOf(state.marks.labels, view.editableLayer?.boxes ?? []);

function renderUndo() {
  view.toolButtons.undo.disabled = !state.task || !undo.canUndo;
  view.toolButtons.redo.disabled = !state.task || !undo.canRedo;
}

/** Show the marks of *which* ("undo" or "redo") and save them as a new draft version. */
function undoRedo(which) {
  if (!state.task || state.busy) return;
  const t0 = performance.now();
  const snap = which === "undo" ? undo.undo() : undo.redo();
  if (snap === null) return;
  const { labels, boxes } = JSON.parse(snap);
  state.marks.labels = new Set(labels);
  checklist.set(labels);
  const layer = view.editableLayer;
  layer.boxes = boxes;
  if (view.selected && !layer.boxes.some((b) => b.id === view.selected.id)) view.select(null, null);
  view.redraw();
  renderBoxList($("box-list"), view);
  showSuggestions();
  state.cause = which;
  showQC("");
  state.refusal = "";
  renderUndo();
  drafts.changed();
  requestAnimationFrame(() => metrics.undoToPaint.push(performance.now() - t0));
}

view.toolButtons.undo.addEventListener("click", () => { undoRedo("undo"); view.canvas.focus(); });
view.toolButtons.redo.addEventListener("click", () => { undoRedo("redo"); view.canvas.focus(); });

/** Save the draft now. */
const save = () => (state.task ? drafts.flush() : Promise.resolve(true));

/** Replace the marks by the server's copy (after a 409). */
async function reloadTask() {
  const fresh = await api.get(`/api/tasks/${state.task.id}`);
  if (fresh.state === "submitted" || fresh.state === "unusable" || fresh.state === "cancelled") {
    await advance(null);
    return;
  }
  setMarks(fresh);
}

function setMarks(task) {
  state.task = task;
  state.version = task.version;
  state.refusal = "";
  state.marks = { labels: new Set(task.marks.labels), comment: task.marks.comment || "" };
  drafts.reset();
  view.setLayers([{ key: "mine", label: "my boxes", color: "#4fc3f7", editable: true,
                    boxes: task.marks.boxes.map((b) => ({ ...b })) }]);
  checklist.set(task.marks.labels);
  comment.value = state.marks.comment;
  renderBoxList($("box-list"), view);
  undo.reset(snapshot());
  state.cause = "edit";
  renderUndo();
  if (suggest.taskId === task.id) showSuggestions(); else loadSuggestions(task);
}

// --- model suggestions -------------------------------------------------------------------------------------------

function suggestText() {
  if (!suggest.on) return "";
  const left = view.layers.find((l) => l.key === "model")?.boxes.length ?? 0;
  const text = { pending: "waiting for the model", failed: "the model could not read this image",
                 none: "not available", ready: `${left} left (A accepts)` }[suggest.status] ?? "";
  return text ? ` · suggestions ${text}` : "";
}

/** Show the suggestions the reader has not accepted (no box with their id) as the dashed "model" layer. */
function showSuggestions() {
  if (!suggest.on || !state.task) return;
  const mine = new Set((view.editableLayer?.boxes ?? []).map((b) => b.id));
  const left = suggest.boxes.filter((b) => !mine.has(b.id)).map((b) => ({ ...b }));
  const layer = view.layers.find((l) => l.key === "model");
  if (layer) layer.boxes = left;
  else view.layers.push({ key: "model", label: "model", color: "#ffb74d", editable: false, visible: true, boxes: left });
  if (view.selected?.layer === "model" && !left.some((b) => b.id === view.selected.id)) view.select(null, null);
  view.redraw();
  renderStatus();
}

/** Fetch the model's boxes of *task* (again later while the server is still predicting the image). */
async function loadSuggestions(task) {
  clearTimeout(suggest.timer);
  if (!suggest.on) return;
  suggest.taskId = task.id;
  suggest.boxes = [];
  suggest.status = "pending";
  let answer;
  try {
    answer = await api.get(`/api/tasks/${task.id}/suggestions`);
  } catch (err) {
    if (!(err instanceof ApiError)) throw err;
    answer = { status: err.status === 0 ? "pending" : "none", boxes: [] };
  }
  if (suggest.taskId !== task.id || state.task?.id !== task.id) return; // the reader moved on meanwhile
  suggest.status = answer.status;
  suggest.boxes = answer.boxes;
  if (answer.status === "pending") suggest.timer = setTimeout(() => loadSuggestions(task), SUGGEST_POLL_MS);
  showSuggestions();
}

/** Accept the selected suggestion, else the best one left, as the reader's box (A); true when one was. */
function acceptSuggestion() {
  const layer = view.layers.find((l) => l.key === "model");
  const mine = view.editableLayer;
  if (!state.task || !layer?.boxes.length || !mine) return false;
  const pick = (view.selected?.layer === "model" && layer.boxes.find((b) => b.id === view.selected.id)) || layer.boxes[0];
  const { id, class_name, x_min, y_min, x_max, y_max } = pick;
  mine.boxes.push({ id, class_name, x_min, y_min, x_max, y_max, source: "suggestion" });
  layer.boxes = layer.boxes.filter((b) => b.id !== id);
  view.select(mine.key, id);
  renderBoxList($("box-list"), view);
  changed();
  renderStatus();
  return true;
}

// --- showing tasks -------------------------------------------------------------------------------------------

/** Show *task*; returns once its image is on the canvas (prefetched: synchronously drawn). */
async function show(task) {
  setMarks(task);
  showQC("");
  const id = task.image.image_id;
  const ready = cache.ready(id);
  if (ready) {
    view.showImage(ready);
    view.paintNow();
  } else {
    const loading = cache.get(id);
    const t0 = performance.now();
    try {
      const bitmap = await Promise.race([firstPaint(id, maxSize), loading.then(() => null)]);
      if (bitmap && state.task === task) {
        view.showBitmap(bitmap, task.image.rows, task.image.columns);
        metrics.firstPaint.push(performance.now() - t0);
      }
    } catch { /* the pixels below report the problem */ }
    try {
      const img = await loading;
      if (state.task === task) view.showImage(img, { keepView: true });
    } catch (err) {
      if (state.task === task) showQC(`The image could not be loaded: ${err.message}`);
    }
  }
  renderStatus();
  cache.keep(state.queue.map((t) => t.image.image_id));
  cache.prefetch(state.queue.slice(1, 1 + PREFETCH).map((t) => t.image.image_id));
}

async function refreshQueue() {
  const next = await api.get(`/api/tasks/next?project_id=${projectId}&kind=read&limit=${1 + PREFETCH}`);
  state.counts = next.counts;
  state.doneLocally = 0;
  return next.tasks;
}

/** Take the server's queue as the truth (a task may have left it meanwhile) and prefetch its next images. */
async function syncQueue() {
  const generation = state.moves;
  const tasks = await refreshQueue();
  if (state.moves !== generation) return; // the reader moved on meanwhile: a later sync is coming
  if (!tasks.length) { state.queue = []; finished(); return; }
  state.queue = tasks;
  if (tasks[0].id !== state.task?.id) {
    if (drafts.dirty) await save();
    await show(tasks[0]);
  }
  cache.keep(tasks.map((t) => t.image.image_id));
  cache.prefetch(tasks.slice(1).map((t) => t.image.image_id));
  renderStatus();
}

/** Record "action -> next image painted" at the next animation frame (the one that shows the new canvas). */
function measure(t0) {
  if (t0 !== null) requestAnimationFrame(() => metrics.submitToPaint.push(performance.now() - t0));
}

/** Leave the current task (submitted or set aside) and show the next one, from the server's queue. */
async function advance(t0) {
  state.moves += 1;
  state.queue.shift();
  const next = state.queue[0];
  if (next && cache.ready(next.image.image_id)) {
    await show(next);
    measure(t0);
    syncQueue().catch(() => {});
    return;
  }
  state.queue = await refreshQueue();
  if (!state.queue.length) { finished(); return; }
  await show(state.queue[0]);
  measure(t0);
}

function finished() {
  state.task = null;
  clearTimeout(suggest.timer);
  view.setLayers([]);
  renderUndo();
  root.classList.add("done");
  statusLine.textContent = "No tasks left in this project. Thank you!";
  showQC("");
  submitButton.disabled = true;
  $("unusable").disabled = true;
}

// --- submit and set aside ------------------------------------------------------------------------------------

/**
 * Submit the shown task. When the next image is already prefetched it is shown at once while the submission
 * travels (the server's answer takes tens of ms); should the server refuse it (a QC rule: 422, or a conflict:
 * 409), the viewer goes back to the refused task with the reader's marks and shows the server's message.
 * Without a prefetched image the viewer waits for the answer first. One submission runs at a time.
 */
async function submit() {
  if (!state.task || state.busy) return;
  const t0 = performance.now();
  state.busy = true;
  drafts.cancel();
  try {
    await drafts.settle();
    const task = state.task, body = payload();
    const t1 = performance.now();
    const request = api.post(`/api/tasks/${task.id}/submit`, body);
    const next = state.queue[1];
    const early = Boolean(next && cache.ready(next.image.image_id));
    if (early) {
      state.moves += 1;
      state.queue.shift();
      state.doneLocally += 1;
      await show(next);
      measure(t0);
    }
    try {
      await request;
      metrics.submitRequest.push(performance.now() - t1);
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      if (early) state.doneLocally -= 1;
      await refused(task, body, err, early);
      return;
    }
    if (early) {
      state.busy = false; // the reader may submit the next image while the queue is topped up
      await syncQueue();
    } else {
      state.doneLocally += 1;
      await advance(t0);
    }
  } finally {
    state.busy = false;
    renderStatus();
  }
}

/** The server refused a submission of *task*: show it again with the marks that were sent, and say why. */
async function refused(task, body, err, early) {
  if (early) {
    if (drafts.dirty) await save(); // keep what was done on the next image meanwhile
    const back = { ...task, version: body.version, marks: { labels: body.labels, boxes: body.boxes, comment: body.comment } };
    state.queue.unshift(back);
    await show(back);
    drafts.markDirty(); // the marks on screen are newer than the saved draft
  }
  if (err.status === 409) {
    const fresh = await api.get(`/api/tasks/${task.id}`);
    if (fresh.state === "submitted") { showQC(""); await advance(null); return; } // an earlier try got through
    showQC(`${err.detail} — the task was reloaded.`);
    await reloadTask();
  } else {
    showQC(err.detail);
    state.refusal = err.status === 0 ? "not submitted: the server cannot be reached"
      : `submit refused: ${err.rule ?? `HTTP ${err.status}`}`;
    await save(); // keep the marks on screen as the draft (the submit's autosave timer was cancelled)
  }
}

const unusableDialog = $("unusable-dialog");
function askUnusable() {
  if (!state.task) return;
  $("unusable-reason").value = "";
  $("unusable-note").value = "";
  unusableDialog.showModal();
}

unusableDialog.addEventListener("close", async () => {
  if (unusableDialog.returnValue !== "confirm" || !state.task) return;
  const reason = $("unusable-reason").value;
  const note = $("unusable-note").value.trim() || null;
  state.busy = true;
  drafts.cancel();
  try {
    await drafts.settle();
    await api.post(`/api/tasks/${state.task.id}/unusable`, { version: state.version, reason, note });
    state.doneLocally += 1;
    await advance(null);
  } catch (err) {
    if (err instanceof ApiError && err.status === 409) await reloadTask();
    showQC(err.detail ?? String(err));
  } finally {
    state.busy = false;
    renderStatus();
  }
});

submitButton.addEventListener("click", () => submit());
$("unusable").addEventListener("click", () => askUnusable());

// --- my recent reads: reopen one in place ------------------------------------------------------------------------

const historyDialog = $("history-dialog");
const historyList = $("history-list");
const HISTORY_SHOWN = 10;
const historyPage = { newer: $("history-newer"), older: $("history-older") };

/** List the reader's submitted reads of this project, newest first, a page of HISTORY_SHOWN from *offset* (H; Older
 * and Newer page through all of them in place); each reopenable one is a button. */
async function openHistory(offset = 0) {
  if (state.busy) return;
  $("history-message").textContent = "";
  historyList.replaceChildren();
  if (!historyDialog.open) historyDialog.showModal();
  // one more than shown: whether an older page exists, without counting them all
  const page = await api.get(`/api/tasks?state=submitted&mine=1&kind=read&project_id=${projectId}`
    + `&limit=${HISTORY_SHOWN + 1}&offset=${offset}`);
  const reads = page.slice(0, HISTORY_SHOWN);
  cache.prefetch(reads.filter((t) => !t.frozen).slice(0, 3).map((t) => t.image.image_id));
  historyList.replaceChildren(...reads.map((t) => {
    const when = t.submitted_at ? new Date(t.submitted_at).toLocaleString() : "";
    const text = `${t.image.image_id.slice(0, 12)}… · ${when} · ${t.marks.labels.join(", ") || "no label"}`
      + ` · ${t.marks.boxes.length} box${t.marks.boxes.length === 1 ? "" : "es"}`;
    return el("li", {}, t.frozen
      ? el("span", { class: "frozen", title: t.frozen, text: `${text} — frozen` })
      : el("button", { type: "button", class: "link", "aria-label": `Reopen ${text}`, onclick: () => reopenHere(t) }, text));
  }));
  historyPage.newer.hidden = offset === 0;
  historyPage.older.hidden = page.length <= HISTORY_SHOWN;
  historyPage.newer.onclick = () => openHistory(Math.max(0, offset - HISTORY_SHOWN)).catch(historyFailed);
  historyPage.older.onclick = () => openHistory(offset + HISTORY_SHOWN).catch(historyFailed);
  if (!reads.length) $("history-message").textContent = "No submitted read yet.";
  (historyList.querySelector("button") ?? (historyPage.older.hidden ? historyPage.newer : historyPage.older)).focus();
}

function historyFailed(err) {
  $("history-message").textContent = err.detail ?? String(err);
}

/** Reopen the submitted read *t* and show it here, before the task that was on screen. */
async function reopenHere(t) {
  const t0 = performance.now();
  try {
    if (drafts.dirty) await save();
    const task = await api.post(`/api/tasks/${t.id}/reopen`, { version: t.version });
    historyDialog.close();
    state.moves += 1;
    state.queue = [task, ...state.queue.filter((q) => q.id !== task.id)];
    await show(task);
    requestAnimationFrame(() => metrics.reopenToPaint.push(performance.now() - t0));
    view.canvas.focus();
  } catch (err) {
    if (!(err instanceof ApiError)) throw err;
    $("history-message").textContent = err.detail;
  }
}

$("my-reads").addEventListener("click", () => openHistory().catch((err) => showQC(err.detail ?? String(err))));

// --- keyboard ----------------------------------------------------------------------------------------------------

document.addEventListener("keydown", (e) => {
  if (document.querySelector("dialog[open]")) return; // dialogs handle their own keys (Esc closes)
  if ((e.ctrlKey || e.metaKey) && e.key.toLowerCase() === "s") { e.preventDefault(); save(); return; }
  if ((e.ctrlKey || e.metaKey) && e.key === "Enter") { e.preventDefault(); submit(); return; }
  const which = typing(e) ? null : undoKey(e); // in a text field Ctrl+Z undoes the typing, as usual
  if (which) { e.preventDefault(); undoRedo(which); return; }
  if (typing(e)) {
    if (e.key === "Escape") e.target.blur();
    return;
  }
  if (e.target instanceof HTMLButtonElement && (e.key === "Enter" || e.key === " ")) return;
  if (e.key === "Tab" && e.target === view.canvas) { e.preventDefault(); view.selectNext(e.shiftKey ? -1 : 1); return; }
  let handled = true;
  if (e.key === "Enter") submit();
  else if (e.key === "Delete" || e.key === "Backspace") view.deleteSelected();
  else if (e.key === "Escape") { view.select(null, null); view.clearMeasures(); }
  else if (e.key === "c" || e.key === "C" || e.key === "/") picker.search.focus();
  else if (e.key === "m" || e.key === "M") comment.focus();
  else if (e.key === "u" || e.key === "U") askUnusable();
  else if (e.key === "h" || e.key === "H") openHistory().catch((err) => showQC(err.detail ?? String(err)));
  else if ((e.key === "a" || e.key === "A") && suggest.on && !(e.ctrlKey || e.altKey || e.metaKey)) acceptSuggestion();
  else if (e.ctrlKey || e.altKey || e.metaKey) handled = false;
  else if (picker.key(e) || checklist.key(e) || viewKeys(view, e)) handled = true;
  else handled = false;
  if (handled) e.preventDefault();
});

window.addEventListener("beforeunload", (e) => {
  if (drafts.dirty) { save(); e.preventDefault(); }
});

// --- start ---------------------------------------------------------------------------------------------------------

async function start() {
  // the schema, the queue and a task named in the URL (e.g. reopened from the history) in parallel; the named
  // task's image starts loading as soon as its id is known
  const wanted = Number(root.dataset.taskId);
  const named = wanted ? api.get(`/api/tasks/${wanted}`).then((t) => { cache.prefetch([t.image.image_id]); return t; })
    : null;
  const [schema, queue, task] = await Promise.all([api.get(`/api/projects/${projectId}/schema`), refreshQueue(), named]);
  state.schema = schema;
  buildPanels(state.schema);
  state.queue = task ? [task, ...queue.filter((t) => t.id !== task.id)] : queue;
  if (!state.queue.length) { finished(); return; }
  await show(state.queue[0]);
  view.canvas.focus();
}

start().catch((err) => {
  statusLine.textContent = `The viewer could not start: ${err.detail ?? err.message}`;
});

