// Login page: POST the credentials as JSON; the server sets an HttpOnly, SameSite=Strict session cookie.
const form = document.getElementById("login-form");
const status = document.getElementById("login-status");

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  status.textContent = "";
  const body = JSON.stringify({
    username: document.getElementById("username").value,
    password: document.getElementById("password").value,
  });
  const r = await fetch("/api/auth/login", { method: "POST", headers: { "Content-Type": "application/json" }, body });
  if (r.ok) {
    const next = new URLSearchParams(location.search).get("next") || "/";
    location.assign(next.startsWith("/") && !next.startsWith("//") ? next : "/");
  } else {
    const data = await r.json().catch(() => ({}));
    status.textContent = typeof data.detail === "string" ? data.detail : "Login failed.";
  }
});
