// Image page: switch the window preset by reloading the server-rendered image.
// Plain ES module, no framework; the full labeling viewer (client-side windowing, zoom, boxes) comes later.

const view = document.getElementById("image-view");
const preset = document.getElementById("window-preset");
const status = document.getElementById("image-status");

function renderUrl(windowValue) {
  const params = new URLSearchParams({ format: "jpeg", max_size: "2048" });
  if (windowValue) params.set("window", windowValue);
  return `${view.dataset.renderUrl}?${params}`;
}

if (view && preset) {
  preset.addEventListener("change", () => {
    status.textContent = "Loading…";
    view.src = renderUrl(preset.value);
  });
  view.addEventListener("load", () => { status.textContent = ""; });
  view.addEventListener("error", () => { status.textContent = "Could not render this image."; });
}
