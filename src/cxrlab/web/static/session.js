// Every logged-in page: the "Log out" button ends the session on the server, then shows the login page.
import { api } from "./api.js";

document.querySelector("[data-logout]")?.addEventListener("click", async () => {
  try { await api.post("/api/auth/logout"); } finally { location.assign("/login"); }
});
