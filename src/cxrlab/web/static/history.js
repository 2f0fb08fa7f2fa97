// The reader's history: "Reopen" turns a submitted read back into a draft (POST /api/tasks/{id}/reopen) and opens
// it in the reading viewer; a frozen read says why (the server's rule), and so does a refusal.
import { api, ApiError } from "./api.js";

const status = document.getElementById("history-status");

document.querySelectorAll("[data-reopen]").forEach((button) => button.addEventListener("click", async () => {
  button.disabled = true;
  const id = button.dataset.reopen;
  try {
    await api.post(`/api/tasks/${id}/reopen`, { version: Number(button.dataset.version) });
    location.assign(`/projects/${button.dataset.project}/read?task=${id}`);
  } catch (err) {
    if (!(err instanceof ApiError)) throw err;
    status.textContent = err.detail;
    button.disabled = false;
  }
}));
