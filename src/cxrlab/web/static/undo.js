// Undo/redo of the marks in a viewer (reading and review): snapshots of {labels, boxes}. Every box or label
// edit records the new snapshot; undo and redo give back an earlier or a later one, which the page shows and
// then saves like any edit (a new draft or proposal version with cause "undo" / "redo": the server's history is
// never rewritten). The stack lives as long as the task is on screen, across autosaves.

export class UndoStack {
  constructor(limit = 500) {
    this.limit = limit;
    this.reset(null);
  }

  /** Start over from *snapshot* (another task, or a copy reloaded from the server). */
  reset(snapshot) {
    this.current = snapshot;
    this.past = [];
    this.future = [];
  }

  /** The marks became *snapshot* by an edit; returns false when nothing changed (e.g. a comment was typed). */
  record(snapshot) {
    if (snapshot === this.current) return false;
    if (this.current !== null) this.past.push(this.current);
    if (this.past.length > this.limit) this.past.shift();
    this.future = [];
    this.current = snapshot;
    return true;
  }

  get canUndo() { return this.past.length > 0; }
  get canRedo() { return this.future.length > 0; }

  /** The snapshot before the current one (null when there is none). */
  undo() {
    if (!this.past.length) return null;
    this.future.push(this.current);
    this.current = this.past.pop();
    return this.current;
  }

  /** The snapshot undone last (null when there is none). */
  redo() {
    if (!this.future.length) return null;
    this.past.push(this.current);
    this.current = this.future.pop();
    return this.current;
  }
}

/** The snapshot of marks: labels and boxes, as a string (compared and stored as is). */
export function snapshotOf(labels, boxes) {
  return JSON.stringify({
    labels: [...labels],
    // a box accepted from a model suggestion keeps its source: a redo of the accept is an accept again
    boxes: boxes.map(({ id, class_name, x_min, y_min, x_max, y_max, source }) =>
      ({ id, class_name, x_min, y_min, x_max, y_max, ...(source ? { source } : {}) })),
  });
}

/** True for Ctrl+Z (undo) / Ctrl+Shift+Z or Ctrl+Y (redo) outside text fields: "undo", "redo" or null. */
export function undoKey(e) {
  if (!(e.ctrlKey || e.metaKey) || e.altKey) return null;
  const key = e.key.toLowerCase();
  if (key === "z") return e.shiftKey ? "redo" : "undo";
  if (key === "y" && !e.shiftKey) return "redo";
  return null;
}
