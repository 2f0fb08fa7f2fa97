// Autosave of the marks on screen: a change is saved `delay` ms later, one save at a time, and a change made
// during a save is saved after it. `send()` makes the request (it carries the version the save starts from);
// `onSaved(result, current)` takes the answer (`current`: no change happened meanwhile); `onError(err)` decides
// what a refusal means (409 reload, 422 message, network error retry via `retry()`). `reset()` starts over
// for another task; answers to saves of an earlier task are dropped.

export class Autosaver {
  constructor({ delay = 1000, send, onSaved, onError, onState }) {
    Object.assign(this, { delay, send, onSaved, onError, onState });
    this.edits = 0;          // bumped on every change
    this.savedEdits = 0;     // edits covered by the last successful save
    this.saving = null;      // the running save
    this.timer = null;
    this.generation = 0;     // bumped by reset()
    this.state = "saved";    // saved | pending | saving | error | offline
  }

  get dirty() { return this.edits !== this.savedEdits; }

  changed() {
    this.edits += 1;
    this.state = "pending";
    this.schedule(this.delay);
    this.onState();
  }

  schedule(ms) {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.flush(), ms);
  }

  cancel() { clearTimeout(this.timer); }

  /** The marks on screen are newer than the saved copy (e.g. after going back to a refused task). */
  markDirty() {
    this.edits = this.savedEdits + 1;
    this.state = "pending";
  }

  reset() {
    clearTimeout(this.timer);
    this.generation += 1;
    this.edits = this.savedEdits = 0;
    this.state = "saved";
  }

  /** Wait for a running save, without saving anything new. */
  async settle() {
    if (this.saving) await this.saving.catch(() => {});
  }

  /** Save now if anything changed; resolves to true when everything on screen is saved. */
  async flush() {
    clearTimeout(this.timer);
    await this.settle();
    if (!this.dirty) return true;
    const edits = this.edits, generation = this.generation;
    this.state = "saving";
    this.onState();
    this.saving = this.send();
    try {
      const result = await this.saving;
      if (generation !== this.generation) return true;
      this.savedEdits = edits;
      this.state = this.edits === edits ? "saved" : "pending";
      await this.onSaved(result, this.edits === edits);
      return true;
    } catch (err) {
      if (generation !== this.generation) return false;
      this.state = "error";
      await this.onError(err);
      return false;
    } finally {
      this.saving = null;
      this.onState();
    }
  }
}
