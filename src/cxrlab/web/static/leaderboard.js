// Leaderboard pages: files go as the raw request body (CSV or gzip) with ?filename=; the validator's messages
// are listed under the form; a queued submission is followed until it is scored, then the page's tables are
// refreshed from the server-rendered page (one markup, no templates here).
import { api, ApiError } from "./api.js";

const board = document.querySelector("[data-benchmark]");
const benchmarkId = board?.dataset.benchmark;
const FINAL = new Set(["scored", "failed", "invalid"]);

async function upload(method, url, file) {
  const type = file.name.toLowerCase().endsWith(".gz") ? "application/gzip" : "text/csv";
  const r = await fetch(`${url}?filename=${encodeURIComponent(file.name)}`, {
    method, body: file, credentials: "same-origin", headers: { "Content-Type": type, "X-CXRLab-CSRF": "1" },
  });
  const data = await r.json().catch(() => null);
  if (r.status === 401) location.assign(`/login?next=${encodeURIComponent(location.pathname)}`);
  if (!r.ok) {
    const err = new ApiError(r.status, typeof data?.detail === "string" ? data.detail : `The server answered ${r.status}.`, data);
    err.body = data; // the validator's `problems` on 422
    throw err;
  }
  return data;
}

async function refresh(...ids) {
  const r = await fetch(location.href, { credentials: "same-origin" });
  const doc = new DOMParser().parseFromString(await r.text(), "text/html");
  for (const id of ids) {
    const fresh = doc.getElementById(id);
    const old = document.getElementById(id);
    if (fresh && old) old.replaceWith(fresh);
  }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function showProblems(list, problems) {
  list.replaceChildren(...problems.map((p) => Object.assign(document.createElement("li"), { textContent: p })));
}

const submitForm = document.getElementById("submit-form");
submitForm?.addEventListener("submit", async (event) => {
  event.preventDefault();
  const status = document.getElementById("submit-status");
  const problems = document.getElementById("submit-problems");
  const file = submitForm.elements.file.files[0];
  const button = submitForm.querySelector("button");
  if (!file) return;
  button.disabled = true;
  showProblems(problems, []);
  status.textContent = `Uploading ${file.name}…`;
  try {
    let sub = await upload("POST", `/api/benchmarks/${benchmarkId}/submissions`, file);
    showProblems(problems, sub.messages);
    await refresh("mine", "quota");
    for (let delay = 300; !FINAL.has(sub.state); delay = Math.min(delay * 1.5, 3000)) {
      status.textContent = `Submission ${sub.id} is ${sub.state}…`;
      await sleep(delay);
      sub = await api.get(`/api/benchmarks/${benchmarkId}/submissions/${sub.id}`);
    }
    status.textContent = sub.state === "scored"
      ? `Submission ${sub.id} scored: public score ${sub.public_score === null ? "–" : sub.public_score.toFixed(4)}.`
      : `Submission ${sub.id} ${sub.state}: ${sub.messages.at(-1) ?? ""}`;
    await refresh("boards", "mine");
    submitForm.reset();
  } catch (err) {
    if (!(err instanceof ApiError)) throw err;
    status.textContent = err.detail;
    showProblems(problems, err.body?.problems ?? []);
    await refresh("mine", "quota");
  } finally {
    button.disabled = false;
  }
});

const labelsForm = document.getElementById("labels-form");
labelsForm?.addEventListener("submit", async (event) => {
  event.preventDefault();
  const status = document.getElementById("labels-status");
  const file = labelsForm.elements.file.files[0];
  if (!file) return;
  status.textContent = `Uploading ${file.name}…`;
  try {
    const r = await upload("PUT", `/api/benchmarks/${benchmarkId}/labels`, file);
    status.textContent = `${r.images} test images (${r.benchmark.public_images} public, ${r.benchmark.private_images}`
      + ` private), ${r.boxes} boxes; ${r.rescored} submission(s) queued for scoring again. ${r.notes.join(" ")}`;
    setTimeout(() => location.reload(), 1500);
  } catch (err) {
    if (!(err instanceof ApiError)) throw err;
    status.textContent = [err.detail, ...(err.body?.problems ?? []).filter((p) => p !== err.detail)].join("\n");
  }
});

const sizesForm = document.getElementById("sizes-form");
sizesForm?.addEventListener("submit", async (event) => {
  event.preventDefault();
  const status = document.getElementById("sizes-status");
  const file = sizesForm.elements.file.files[0];
  if (!file) return;
  status.textContent = `Uploading ${file.name}…`;
  try {
    const r = await upload("PUT", `/api/benchmarks/${benchmarkId}/sizes`, file);
    status.textContent = `${r.images} image sizes stored. ${r.notes.join(" ")}`;
    sizesForm.reset();
  } catch (err) {
    if (!(err instanceof ApiError)) throw err;
    status.textContent = [err.detail, ...(err.body?.problems ?? []).filter((p) => p !== err.detail)].join("\n");
  }
});

document.querySelectorAll("[data-state-action]").forEach((button) => button.addEventListener("click", async () => {
  await api.post(`/api/benchmarks/${benchmarkId}/${button.dataset.stateAction}`);
  location.reload();
}));

const createForm = document.getElementById("create-benchmark");
createForm?.addEventListener("submit", async (event) => {
  event.preventDefault();
  const f = createForm.elements;
  const num = (input) => (input.value === "" ? null : Number(input.value));
  const body = {
    name: f.name.value, description: f.description.value || null, metric: f.metric.value, iou: num(f.iou),
    classes: f.classes.value, public_fraction: num(f.public_fraction), daily_limit: num(f.daily_limit),
    seed: num(f.seed),
  };
  try {
    const b = await api.post("/api/benchmarks", body);
    location.assign(`/benchmarks/${b.id}`);
  } catch (err) {
    if (!(err instanceof ApiError)) throw err;
    document.getElementById("create-status").textContent = err.detail;
  }
});
