// Admin pages (users, projects, one project): each form posts to the REST API, which calls the library functions
// the CLI calls and records the action with its author; the server's message (e.g. a YAML schema's mistake,
// which names the label) is shown under the form, and the page is reloaded after a change.
import { api, ApiError } from "./api.js";

const $ = (id) => document.getElementById(id);

function say(line, text, ok = false) {
  if (!line) return;
  line.textContent = text;
  line.classList.toggle("ok", ok);
}

/** Run *action* for *form*'s submit; show its error under the form (*line*), reload the page after success. */
function handle(form, line, action) {
  form?.addEventListener("submit", async (event) => {
    event.preventDefault();
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    say(line, "");
    try {
      const message = await action(new FormData(form));
      say(line, message || "Done.", true);
      setTimeout(() => location.reload(), 600);
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      say(line, err.detail);
    } finally {
      button.disabled = false;
    }
  });
}

// --- users ----------------------------------------------------------------------------------------------------

handle($("add-user"), $("users-status"), async (data) => {
  const user = await api.post("/api/users", { username: data.get("username").trim(), role: data.get("role"),
                                              password: data.get("password") });
  return `Added ${user.username} (${user.role}${user.rad_id ? `, reader id ${user.rad_id}` : ""}).`;
});

const passwordDialog = $("password-dialog");
let passwordFor = null;

document.querySelectorAll("[data-user-action]").forEach((button) => button.addEventListener("click", async () => {
  const name = button.dataset.username, action = button.dataset.userAction;
  if (action === "password") {
    passwordFor = name;
    passwordDialog.querySelector("[data-role=who]").textContent = name;
    passwordDialog.querySelector("input[name=password]").value = "";
    passwordDialog.showModal();
    return;
  }
  try {
    await api.patch(`/api/users/${encodeURIComponent(name)}`, { active: action === "enable" });
    say($("users-status"), `${name} ${action}d.`, true);
    location.reload();
  } catch (err) {
    if (!(err instanceof ApiError)) throw err;
    say($("users-status"), err.detail);
  }
}));

passwordDialog?.addEventListener("close", async () => {
  if (passwordDialog.returnValue !== "confirm" || !passwordFor) return;
  const password = passwordDialog.querySelector("input[name=password]").value;
  try {
    await api.patch(`/api/users/${encodeURIComponent(passwordFor)}`, { password });
    say($("users-status"), `New password set for ${passwordFor}; the user's sessions ended.`, true);
  } catch (err) {
    if (!(err instanceof ApiError)) throw err;
    say($("users-status"), err.detail);
  }
});

// --- projects ---------------------------------------------------------------------------------------------------

handle($("create-project"), $("create-status"), async (data) => {
  const file = data.get("schema_file");
  const body = {
    name: data.get("name").trim(),
    schema_name: data.get("schema_name"),
    readers_per_image: Number(data.get("readers_per_image")),
    reviewers_per_test: Number(data.get("reviewers_per_test")),
    seed: Number(data.get("seed")),
  };
  if (file && file.size) body.schema_yaml = await file.text();
  const project = await api.post("/api/projects", body);
  return `Created ${project.name} (schema ${project.schema_name}).`;
});

const projectId = document.querySelector("[data-project]")?.dataset.project;

handle($("assign"), $("assign-status"), async (data) => {
  const body = { test_fraction: Number(data.get("test_fraction") || 0), gold_rate: Number(data.get("gold_rate") || 0) };
  const readers = data.getAll("readers"), reviewers = data.getAll("reviewers");
  if (readers.length) body.readers = readers;
  if (reviewers.length) body.reviewers = reviewers;
  if (data.get("limit")) body.limit = Number(data.get("limit"));
  const report = await api.post(`/api/projects/${projectId}/assign`, body);
  const counts = Object.entries(report.counts).map(([k, v]) => `${k.replaceAll("_", " ")} ${v}`).join(", ");
  return [counts || "nothing assigned", ...report.notes].join(". ");
});

handle($("gold"), $("gold-status"), async (data) => {
  const ids = data.get("image_ids").split(/\s+/).filter(Boolean);
  const report = await api.post(`/api/projects/${projectId}/gold`, { image_ids: ids, source: data.get("source").trim() });
  return Object.entries(report.counts).map(([k, v]) => `${k} ${v}`).join(", ");
});

handle($("suggest"), $("suggest-status"), async (data) => {
  const out = await api.put(`/api/projects/${projectId}/suggest`, { run: data.get("run").trim() });
  return `Suggestions on: ${out.images} image(s), ${out.predicted} predicted, ${out.pending} waiting for the model.`;
});

$("suggest-off")?.addEventListener("click", async () => {
  try {
    await api.put(`/api/projects/${projectId}/suggest`, { run: null });
    say($("suggest-status"), "Suggestions off.", true);
    setTimeout(() => location.reload(), 600);
  } catch (err) {
    if (!(err instanceof ApiError)) throw err;
    say($("suggest-status"), err.detail);
  }
});
