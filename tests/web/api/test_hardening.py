"""What a hostile tester found in the web app (issue 10, items 6-10), on SQLite and PostgreSQL.

- Integers out of range (ids, offsets, seeds, versions, limits >= 2^31 or 2^63) answer 404/422, never 500.
- The per-address login limit ignores ``X-Forwarded-For`` unless ``cxrlab serve --forwarded-allow-ips`` trusts
  the proxy that sends it.
- The last active admin cannot be disabled (409, rule ``last_admin``); booleans and integers are strict.
- Every timestamp of the API is UTC with an offset, whatever the backend or the database server's time zone.
- 401 comes before anything about the body; ``Allow`` lists every method of a path; the OpenAPI documents each
  error status with its body; what the schema can say (a non-blank comment, a reason code) it says.

The schemathesis run over the whole API is in ``test_schemathesis.py``.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from cxrlab.annotate.reasons import UNUSABLE_CODES
from cxrlab.annotate.users import create_user, set_active
from cxrlab.catalog import Settings, init_workspace
from cxrlab.catalog.models import INT_MAX, Event
from cxrlab.errors import ConflictError
from cxrlab.web.app import create_app
from tests.support.pg import BACKENDS
from tests.support.server import start_server
from tests.support.users import PASSWORD
from tests.web.conftest import Site

HUGE = [INT_MAX + 1, 2**63, 2**64]
READ = {"labels": ["No finding"], "boxes": []}


def raw(site: Site) -> TestClient:
    """A client of the site's app that returns server errors as 500 responses instead of raising them."""
    return TestClient(site.client.app, raise_server_exceptions=False)


def openapi(site: Site) -> dict:
    return site.client.get("/openapi.json").json()


def operations(site: Site) -> Iterator[tuple[str, str, dict]]:
    """``(METHOD, path, operation)`` of every documented operation."""
    for path, item in openapi(site)["paths"].items():
        for method, op in item.items():
            yield method.upper(), path, op


def _is_integer(schema: dict) -> bool:
    return schema.get("type") == "integer" or any(s.get("type") == "integer" for s in schema.get("anyOf", []))


#: A body each operation accepts, so that its path and query parameters are what the server judges.
BODIES = {"SaveIn": {"version": 0, **READ}, "ApproveIn": {"version": 0}, "CommentIn": {"text": "ok"},
          "UnusableIn": {"version": 0, "reason": "other"}, "AssignIn": {}, "UserPatch": {},
          "BenchmarkIn": {"name": "x"}, "ProjectIn": {"name": "x"}, "LoginIn": {"username": "x", "password": "y"},
          "UserIn": {"username": "x", "password": PASSWORD, "role": "annotator"}, "VersionIn": {"version": 0},
          "GoldIn": {"image_ids": ["x"]}, "SuggestIn": {"run": None},
          "DecisionsIn": {"decisions": [{"image": 1, "queue": "filter", "action": "accept"}]}}


def _request(op: dict, path: str, params: dict[str, int]) -> dict:
    """Keyword arguments of a request to *path* with the integer *params* and placeholder strings elsewhere."""
    url = path
    query = {}
    for p in op.get("parameters", []):
        value = params.get(p["name"], 1 if _is_integer(p["schema"]) else "x")
        if p["in"] == "path":
            url = url.replace("{" + p["name"] + "}", str(value))
        elif p["name"] in params:
            query[p["name"]] = value
    kw: dict = {"url": url, "params": query}
    content = op.get("requestBody", {}).get("content", {})
    if "application/json" in content:
        ref = content["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
        kw["json"] = BODIES[ref]
    elif content:
        kw["content"] = b"image_id,PredictionString\n"
    return kw


# --- item 6: integers out of range ---------------------------------------------------------------------------------


class TestIntegerBounds:
    @pytest.mark.parametrize("value", HUGE)
    def test_every_integer_parameter_out_of_range_is_404_or_422(self, site: Site, value: int) -> None:
        client, checked = raw(site), 0
        for method, path, op in operations(site):
            for param in op.get("parameters", []):
                if not _is_integer(param["schema"]):
                    continue
                kw = _request(op, path, {param["name"]: value})
                r = client.request(method, headers=site.h("admin"), **kw)
                assert r.status_code in (404, 422), (method, path, param["name"], r.status_code, r.text)
                checked += 1
        assert checked >= 25  # task, project, benchmark, submission ids; offsets, project_id, limits

    @pytest.mark.parametrize("value", HUGE)
    def test_pages_with_ids_out_of_range_are_404_or_422(self, site: Site, value: int) -> None:
        p = site.project(train=1)
        client = raw(site)
        for url in (f"/projects/{value}/read", f"/projects/{value}/review", f"/projects/{value}/dashboard",
                    f"/reviews/{value}", f"/benchmarks/{value}", f"/projects/{p.id}/read?task={value}",
                    f"/?offset={value}"):
            r = client.get(url, headers=site.h("admin"))
            assert r.status_code in (404, 422), (url, r.status_code)

    @pytest.mark.parametrize("value", [-1, *HUGE])
    def test_body_integers_out_of_range_are_422(self, site: Site, value: int) -> None:
        p = site.project(train=1, test=1)
        image = p.test[0]
        for who in ("reader1", "reader2", "reader3"):
            assert site.post(f"/api/tasks/{p.tasks[(who, image)]}/submit", who, {"version": 0, **READ}
                             ).status_code == 200
        client = raw(site)
        name = f"n-{uuid.uuid4().hex[:8]}"
        calls = [("POST", "/api/projects", "admin", {"name": name, "seed": value}),
                 ("POST", "/api/benchmarks", "admin", {"name": name, "seed": value}),
                 ("POST", f"/api/projects/{p.id}/assign", "admin", {"limit": value}),
                 ("PUT", f"/api/tasks/{p.tasks[('reader1', p.train[0])]}/draft", "reader1", {"version": value, **READ}),
                 ("PUT", f"/api/reviews/{p.reviews[('reviewer1', image)]}/proposal", "reviewer1",
                  {"version": value, **READ}),
                 ("POST", f"/api/reviews/{p.reviews[('reviewer1', image)]}/approve", "reviewer1", {"version": value})]
        for method, url, who, body in calls:
            r = client.request(method, url, headers=site.h(who), json=body)
            assert r.status_code == 422, (url, body, r.status_code, r.text)
        assert name not in [x["name"] for x in site.get("/api/projects", "admin").json()]


# --- item 7: X-Forwarded-For and the login limit ---------------------------------------------------------------


def _fail_logins(url: str, forwarded: list[str]) -> list[int]:
    """One failed login per entry (a new user name each time), sent with that ``X-Forwarded-For``."""
    codes = []
    with httpx.Client(base_url=url, timeout=30) as client:
        for k, addr in enumerate(forwarded):
            r = client.post("/api/auth/token", json={"username": f"nobody{k}", "password": "wrong password"},
                            headers={"X-Forwarded-For": addr})
            codes.append(r.status_code)
    return codes


def _login(url: str, forwarded: str) -> int:
    return httpx.post(f"{url}/api/auth/token", json={"username": "reader4", "password": PASSWORD},
                      headers={"X-Forwarded-For": forwarded}, timeout=30).status_code


@pytest.mark.slow  # real cxrlab serve processes
class TestForwardedFor:
    def test_rotating_the_header_does_not_escape_the_per_address_limit(self, sqlite_site: Site) -> None:
        with start_server(sqlite_site.workspace) as server:
            url = server.url
            assert _fail_logins(url, [f"203.0.113.{k}" for k in range(10)]) == [401] * 10
            assert _login(url, "203.0.113.99") == 429  # the limit counts the TCP peer, 127.0.0.1

    def test_a_trusted_proxy_names_the_client(self, sqlite_site: Site) -> None:
        with start_server(sqlite_site.workspace, "--forwarded-allow-ips", "127.0.0.1") as server:
            url = server.url
            assert _fail_logins(url, [f"198.51.100.{k}" for k in range(10)]) == [401] * 10
            assert _login(url, "198.51.100.99") == 200  # each forwarded client has its own count
            assert _fail_logins(url, ["198.51.100.7"] * 10) == [401] * 9 + [429]
            assert _login(url, "198.51.100.7") == 429


# --- item 8: the last admin, strict booleans ----------------------------------------------------------------


@pytest.fixture(params=BACKENDS)
def own_site(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """A site of its own (its admins may be disabled without disturbing the other tests)."""
    url = "" if request.param == "sqlite" else request.getfixturevalue("pg_database_url")
    ws = init_workspace(tmp_path_factory.mktemp("own") / "ws", settings=Settings(project="own", database_url=url))
    with ws.sessions() as session:
        create_user(session, username="admin", password=PASSWORD, role="admin")
    client = TestClient(create_app(ws))
    token = client.post("/api/auth/token", json={"username": "admin", "password": PASSWORD}).json()["access_token"]
    site = Site(request.param, ws, client, {"admin": token}, ws.root)
    yield site
    site.client.close()
    site.workspace.engine.dispose()


def _patch(site: Site, username: str, who: str, body: dict) -> httpx.Response:
    return site.client.patch(f"/api/users/{username}", json=body, headers=site.h(who))


@pytest.mark.slow  # a site of its own per test (Argon2 hashes)
class TestLastAdmin:
    def test_the_last_active_admin_cannot_be_disabled(self, own_site: Site) -> None:
        r = _patch(own_site, "admin", "admin", {"active": False})
        assert r.status_code == 409 and r.json()["rule"] == "last_admin" and "last active admin" in r.json()["detail"]
        assert own_site.get("/api/auth/me", "admin").status_code == 200
        with own_site.workspace.sessions() as session, pytest.raises(ConflictError, match="last active admin"):
            set_active(session, username="admin", active=False)  # cxrlab users disable: the same rule

    def test_an_admin_can_go_while_another_stays(self, own_site: Site) -> None:
        site = own_site
        assert site.post("/api/users", "admin", {"username": "boss2", "password": PASSWORD, "role": "admin"}
                         ).status_code == 201
        site.tokens["boss2"] = site.client.post("/api/auth/token", json={"username": "boss2", "password": PASSWORD}
                                                ).json()["access_token"]
        assert _patch(site, "boss2", "admin", {"active": False}).json()["active"] is False
        assert _patch(site, "admin", "admin", {"active": False}).status_code == 409  # boss2 is disabled
        assert _patch(site, "boss2", "admin", {"active": True}).json()["active"] is True
        site.tokens["boss2"] = site.client.post("/api/auth/token", json={"username": "boss2", "password": PASSWORD}
                                                ).json()["access_token"]
        assert _patch(site, "admin", "boss2", {"active": False}).status_code == 200
        assert _patch(site, "boss2", "boss2", {"active": False}).status_code == 409

    def test_two_admins_disabling_each_other_at_once_leave_one(self, own_site: Site) -> None:
        with own_site.workspace.sessions() as session:
            create_user(session, username="boss3", password=PASSWORD, role="admin")
        barrier, outcome = threading.Barrier(2), {}

        def disable(username: str) -> None:
            with own_site.workspace.sessions() as session:
                barrier.wait()
                try:
                    set_active(session, username=username, active=False)
                    outcome[username] = "disabled"
                except ConflictError:
                    outcome[username] = "refused"

        threads = [threading.Thread(target=disable, args=(name,)) for name in ("admin", "boss3")]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert sorted(outcome.values()) == ["disabled", "refused"]

    @pytest.mark.parametrize("body", [{"active": 0}, {"active": 1}, {"active": "false"}, {"active": None, "x": 1}])
    def test_booleans_are_strict(self, site: Site, body: dict) -> None:
        r = _patch(site, "reader4", "admin", body)
        if body.get("active") is None:
            assert r.status_code == 200 and r.json()["active"] is True  # nothing to change
        else:
            assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "active"]
        assert site.get("/api/auth/me", "reader4").status_code == 200

    @pytest.mark.parametrize("field", ["seed", "readers_per_image"])
    def test_integers_are_strict(self, site: Site, field: str) -> None:
        r = site.post("/api/projects", "admin", {"name": f"s-{uuid.uuid4().hex[:8]}", field: True})
        assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", field]


# --- item 9: UTC timestamps ------------------------------------------------------------------------------------


def _utc(stamp: str) -> datetime:
    at = datetime.fromisoformat(stamp)
    assert at.utcoffset() == timedelta(0), stamp
    return at


class TestTimestamps:
    def test_every_timestamp_read_back_is_utc_with_an_offset(self, site: Site) -> None:
        p = site.project(train=0, test=1)
        image = p.test[0]
        for who in ("reader1", "reader2", "reader3"):
            assert site.post(f"/api/tasks/{p.tasks[(who, image)]}/submit", who, {"version": 0, **READ}
                             ).status_code == 200
        rid = p.reviews[("reviewer1", image)]
        assert site.post(f"/api/reviews/{rid}/comments", "reviewer1", {"text": "agree"}).status_code == 200
        stamps = [site.get(f"/api/tasks/{p.tasks[('reader1', image)]}", "reader1").json()["submitted_at"],
                  site.get(f"/api/reviews/{rid}", "reviewer1").json()["comments"][0]["at"]]
        bid = site.post("/api/benchmarks", "admin", {"name": f"t-{uuid.uuid4().hex[:8]}"}).json()["id"]
        stamps.append(site.get(f"/api/benchmarks/{bid}", "admin").json()["created_at"])
        for stamp in stamps:
            assert stamp.endswith("Z"), stamp
            assert abs(datetime.now(UTC) - _utc(stamp)) < timedelta(hours=1)

    def test_the_catalog_stores_and_returns_utc(self, site: Site) -> None:
        hanoi = datetime(2026, 3, 1, 12, 0, tzinfo=timezone(timedelta(hours=7)))
        with site.workspace.sessions() as session, session.begin():
            event = Event(stage="test", action=f"tz-{uuid.uuid4().hex[:8]}", at=hanoi)
            session.add(event)
        with site.workspace.sessions() as session:
            at = session.scalar(select(Event.at).where(Event.action == event.action))
            assert at == hanoi and at.tzinfo is UTC and at.hour == 5
            assert session.scalar(select(Event.id).where(Event.action == event.action,
                                                         Event.at < datetime(2026, 3, 1, 6, 0))) is not None


# --- item 10: 401 first, Allow, documented statuses, what the schema can say -----------------------------------


MALFORMED = [(b"{", "application/json"), (b"\xc3\x28{", "application/json"), (b"version=1", "text/plain")]


class TestAuthenticationFirst:
    @pytest.mark.parametrize(("content", "content_type"), MALFORMED)
    def test_a_malformed_body_is_401_before_anything_else(self, site: Site, content: bytes, content_type: str
                                                          ) -> None:
        client, checked = raw(site), 0
        for method, path, op in operations(site):
            if "application/json" not in op.get("requestBody", {}).get("content", {}) or path.startswith("/api/auth"):
                continue
            kw = _request(op, path, {})
            kw.pop("json")
            headers = {"Content-Type": content_type}
            assert client.request(method, content=content, headers=headers, **kw).status_code == 401, path
            r = client.request(method, content=content, headers={**headers, **site.h("admin")}, **kw)
            assert r.status_code == 422 and r.json()["detail"][0]["loc"][0] == "body", (path, r.text)
            checked += 1
        assert checked >= 10

    def test_a_malformed_body_for_an_admin_route_is_403_for_others(self, site: Site) -> None:
        r = raw(site).post("/api/projects", content=b"{", headers={"Content-Type": "application/json",
                                                                   **site.h("reader1")})
        assert r.status_code == 403

    def test_a_login_that_is_not_utf8_is_422(self, site: Site) -> None:
        r = raw(site).post("/api/auth/token", content=b"\xc3\x28{", headers={"Content-Type": "application/json"})
        assert r.status_code == 422 and r.json()["detail"][0]["type"] == "json_invalid"


class TestOpenAPI:
    def test_allow_lists_every_method_of_the_path(self, site: Site) -> None:
        client = raw(site)
        for path, item in openapi(site)["paths"].items():
            url = path.replace("{", "").replace("}", "")  # any value: the methods do not depend on it
            r = client.options(url, headers=site.h("admin"))
            assert r.status_code == 405
            assert set(r.headers["allow"].split(", ")) - {"HEAD"} == {m.upper() for m in item}, path

    def test_every_error_status_is_documented_with_its_body(self, site: Site) -> None:
        documented = {(m, p): op["responses"] for m, p, op in operations(site)}
        for (method, path), responses in documented.items():
            for status, response in responses.items():
                if status.startswith(("4", "5")):
                    assert "schema" in response.get("content", {}).get("application/json", {}), (method, path, status)
        assert {"409"} <= documented[("PATCH", "/api/users/{username}")].keys()
        assert {"429"} <= documented[("POST", "/api/auth/token")].keys()
        for path in ("/api/benchmarks/{benchmark_id}/labels", "/api/benchmarks/{benchmark_id}/sizes"):
            assert {"409", "413", "422"} <= documented[("PUT", path)].keys()
        assert {"409", "413", "422", "429"} <= documented[("POST", "/api/benchmarks/{benchmark_id}/submissions")].keys()
        for path in ("/api/tasks/{task_id}/submit", "/api/reviews/{task_id}/comments"):
            assert {"401", "403", "404", "409", "422"} <= documented[("POST", path)].keys()

    def test_the_schema_says_what_a_comment_and_a_reason_must_be(self, site: Site) -> None:
        schemas = openapi(site)["components"]["schemas"]
        assert schemas["CommentIn"]["properties"]["text"]["minLength"] == 1
        assert schemas["UnusableIn"]["properties"]["reason"]["enum"] == list(UNUSABLE_CODES)
        p = site.project(train=0, test=1)
        image = p.test[0]
        for who in ("reader1", "reader2", "reader3"):
            site.post(f"/api/tasks/{p.tasks[(who, image)]}/submit", who, {"version": 0, **READ})
        for text in ("", "   "):
            r = site.post(f"/api/reviews/{p.reviews[('reviewer1', image)]}/comments", "reviewer1", {"text": text})
            assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "text"]
