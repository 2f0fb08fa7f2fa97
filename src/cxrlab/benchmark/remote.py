"""A researcher's side of the leaderboard: send a submission to a running ``cxrlab serve`` over its REST API
(``POST /api/auth/token``, then ``POST /api/benchmarks/{id}/submissions``) and follow it until it is scored.

This is the last step of the researcher's path (export -> train -> predict -> evaluate -> upload). It talks
HTTP with the standard library's :mod:`urllib.request`, so the core install needs no HTTP client package; the
server side is :mod:`cxrlab.web.routers.api.leaderboard`. The password is sent once, in the token request's
JSON body, and never printed or put in an error message.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cxrlab.benchmark.benchmarks import MAX_UPLOAD_BYTES
from cxrlab.errors import CxrlabError

#: States a submission ends in (``cxrlab.catalog.models.SubmissionState``).
FINAL_STATES = frozenset({"scored", "failed", "invalid"})


class RemoteError(CxrlabError):
    """The server refused a request, answered something unexpected, or could not be reached."""


@dataclass(frozen=True)
class RemoteSubmission:
    """A submission as the server reports it (``SubmissionOut``)."""

    id: int
    benchmark_id: int
    state: str
    messages: list[str]
    public_score: float | None
    private_score: float | None
    per_class: dict[str, dict[str, float | None]] | None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RemoteSubmission:
        return cls(id=int(data["id"]), benchmark_id=int(data["benchmark_id"]), state=str(data["state"]),
                   messages=list(data.get("messages") or []), public_score=data.get("public_score"),
                   private_score=data.get("private_score"), per_class=data.get("per_class"))


def _detail(body: bytes) -> str:
    """The server's ``detail`` (and validator ``problems``) from an error body, else a placeholder."""
    try:
        data = json.loads(body)
    except ValueError:
        return "no readable error message"
    if not isinstance(data, dict):
        return "no readable error message"
    detail = data.get("detail")
    if isinstance(detail, list):  # FastAPI's 422 for a malformed request: where, and why
        detail = "; ".join(f"{'.'.join(str(p) for p in d.get('loc', []))}: {d.get('msg', '')}"
                           for d in detail if isinstance(d, dict))
    problems = data.get("problems") or []
    return "\n".join([str(detail or "error"), *(str(p) for p in problems)])


class LeaderboardClient:
    """A logged-in client of one server's leaderboard API.

    Parameters
    ----------
    server
        The web app's base URL, ``http://host:8000`` or ``https://...``; any other scheme is refused.
    timeout
        Seconds to wait for each HTTP answer.
    """

    def __init__(self, server: str, *, timeout: float = 60.0) -> None:
        parts = urllib.parse.urlsplit(server)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise RemoteError(f"the server must be an http:// or https:// URL, not {server!r}")
        self.server = server.rstrip("/")
        self.timeout = timeout
        self._token: str | None = None

    def _request(self, method: str, path: str, *, body: bytes | None = None, content_type: str | None = None
                 ) -> Any:
        headers = {"Accept": "application/json"}
        if content_type:
            headers["Content-Type"] = content_type
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        request = urllib.request.Request(self.server + path, data=body, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310 - scheme checked
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            detail = _detail(exc.read())
            if exc.code == 429 and exc.headers.get("Retry-After"):
                detail += f" (retry after {exc.headers['Retry-After']} s)"
            raise RemoteError(f"{method} {path}: HTTP {exc.code}: {detail}") from None
        except urllib.error.URLError as exc:
            raise RemoteError(f"cannot reach {self.server}: {exc.reason}") from None
        except (TimeoutError, ConnectionError) as exc:
            raise RemoteError(f"cannot reach {self.server}: {type(exc).__name__}") from None
        except ValueError:
            raise RemoteError(f"{method} {path}: the server's answer is not JSON") from None

    def login(self, username: str, password: str) -> None:
        """Get a bearer token (``POST /api/auth/token``)."""
        body = json.dumps({"username": username, "password": password}).encode()
        try:
            data = self._request("POST", "/api/auth/token", body=body, content_type="application/json")
        except RemoteError as exc:
            if "HTTP 401" in str(exc):
                raise RemoteError(f"{self.server} refused the login of {username!r}: wrong user name or password"
                                  ) from None
            raise
        self._token = str(data["access_token"])

    def benchmark(self, name_or_id: str) -> dict[str, Any]:
        """The benchmark called *name_or_id* (or with that id), as ``GET /api/benchmarks`` lists it."""
        listed = self._request("GET", "/api/benchmarks")
        for b in listed:
            if b["name"] == name_or_id or str(b["id"]) == name_or_id:
                return b
        names = ", ".join(sorted(str(b["name"]) for b in listed)) or "none"
        raise RemoteError(f"no benchmark {name_or_id!r} on {self.server} (benchmarks: {names})")

    def submit(self, benchmark_id: int, path: Path) -> RemoteSubmission:
        """Upload *path* (CSV, or gzip: the server recognises it by its first bytes); the server validates it
        at once and queues it for scoring."""
        size = path.stat().st_size
        if size > MAX_UPLOAD_BYTES:
            raise RemoteError(f"{path}: {size} bytes, over the server's {MAX_UPLOAD_BYTES // 2**20} MiB limit; "
                              "gzip it")
        data = path.read_bytes()
        gz = data[:2] == b"\x1f\x8b"
        query = urllib.parse.urlencode({"filename": path.name[-255:]})
        try:
            answer = self._request("POST", f"/api/benchmarks/{benchmark_id}/submissions?{query}", body=data,
                                   content_type="application/gzip" if gz else "text/csv")
        except RemoteError as exc:
            raise RemoteError(f"{path}: {exc}") from None
        return RemoteSubmission.from_json(answer)

    def submission(self, benchmark_id: int, submission_id: int) -> RemoteSubmission:
        """One of the caller's submissions, as it stands now."""
        return RemoteSubmission.from_json(
            self._request("GET", f"/api/benchmarks/{benchmark_id}/submissions/{submission_id}"))

    def wait(self, sub: RemoteSubmission, *, timeout: float = 600.0, poll: float = 1.0) -> RemoteSubmission:
        """Poll until *sub* is scored, failed or invalid, at most *timeout* seconds (the server scores in the
        background, one submission at a time)."""
        deadline = time.monotonic() + timeout
        while sub.state not in FINAL_STATES:
            if time.monotonic() > deadline:
                raise RemoteError(f"submission {sub.id} still {sub.state} after {timeout:g} s; follow it on "
                                  f"{self.server}/benchmarks/{sub.benchmark_id}")
            time.sleep(poll)
            sub = self.submission(sub.benchmark_id, sub.id)
        return sub
