// REST client of the web app: JSON calls with the CSRF header on writes, errors as ApiError.
// The session cookie (HttpOnly) rides along; every write carries `X-CXRLab-CSRF: 1` (see deps.py).

export class ApiError extends Error {
  constructor(status, detail, body) {
    super(detail);
    this.status = status;           // HTTP status (0: network error)
    this.detail = detail;           // the server's message, shown to the user as is
    this.rule = body?.rule ?? null; // QC rule name on 422
    this.currentVersion = body?.current_version ?? null; // on 409
  }
}

function message(status, body) {
  if (typeof body?.detail === "string") return body.detail;
  if (Array.isArray(body?.detail)) return body.detail.map((d) => d.msg).join("; ");
  if (status === 401) return "Your session ended: log in again.";
  return `The server answered ${status}.`;
}

async function request(method, url, body, { as = "json", signal } = {}) {
  const headers = {};
  if (method !== "GET") headers["X-CXRLab-CSRF"] = "1";
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const text = body === undefined ? undefined : JSON.stringify(body);
  // keepalive lets a save or submit finish when the page is closed right after (bodies up to 64 kB).
  const keepalive = text !== undefined && text.length < 60000;
  let r;
  try {
    r = await fetch(url, { method, headers, signal, credentials: "same-origin", body: text, keepalive });
  } catch (err) {
    if (err.name === "AbortError") throw err;
    throw new ApiError(0, "The server cannot be reached; your work is kept and saved when it is back.", null);
  }
  if (!r.ok) {
    const data = await r.json().catch(() => null);
    if (r.status === 401) {
      // The session is over: go to the login page and come back here.
      location.assign(`/login?next=${encodeURIComponent(location.pathname + location.search)}`);
    }
    throw new ApiError(r.status, message(r.status, data), data);
  }
  if (as === "buffer") return { data: await r.arrayBuffer(), headers: r.headers };
  if (r.status === 204) return null;
  return r.json();
}

export const api = {
  get: (url, opts) => request("GET", url, undefined, opts),
  buffer: (url, opts) => request("GET", url, undefined, { ...opts, as: "buffer" }),
  put: (url, body) => request("PUT", url, body),
  patch: (url, body) => request("PATCH", url, body),
  post: (url, body) => request("POST", url, body),
};
