"""``/api/auth`` and ``/api/users``: login, tokens, cookies with the CSRF header, logout, expiry, roles."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from cxrlab.catalog.models import AuthSession
from cxrlab.web.app import create_app
from tests.support.users import PASSWORD
from tests.web.conftest import Site


class TestLogin:
    def test_token_login_and_me(self, site: Site) -> None:
        r = site.client.post("/api/auth/token", json={"username": "reader1", "password": PASSWORD})
        assert r.status_code == 200
        token = r.json()["access_token"]
        me = site.client.get("/api/auth/me", headers={"Authorization": f"Bearer {token}"}).json()
        assert me["username"] == "reader1" and me["role"] == "annotator" and me["rad_id"].startswith("R")
        assert "password" not in str(me) and "hash" not in str(me)

    def test_wrong_password_is_401(self, site: Site) -> None:
        for user in ("reader1", "nobody"):
            r = site.client.post("/api/auth/token", json={"username": user, "password": "wrong password"})
            assert r.status_code == 401
            assert r.json()["detail"] == "wrong user name or password"

    def test_unauthenticated_is_401(self, site: Site) -> None:
        for url in ("/api/auth/me", "/api/projects", "/api/tasks/next", "/api/images", "/api/users"):
            assert site.client.get(url).status_code == 401, url

    @pytest.mark.slow  # a dozen Argon2 hashes
    def test_repeated_failures_are_rate_limited(self, tmp_path, sqlite_site: Site) -> None:
        client = TestClient(create_app(sqlite_site.workspace))  # own limiter
        codes = [client.post("/api/auth/token", json={"username": "reviewer2", "password": "nope nope"}).status_code
                 for _ in range(11)]
        assert codes[:10] == [401] * 10 and codes[10] == 429
        # the limit applies even with the right password until the window passes
        assert client.post("/api/auth/token", json={"username": "reviewer2", "password": PASSWORD}).status_code == 429


class TestCookieSession:
    def test_cookie_login_sets_strict_httponly_cookie_and_needs_csrf_header(self, site: Site) -> None:
        client = TestClient(create_app(site.workspace))
        r = client.post("/api/auth/login", json={"username": "admin", "password": PASSWORD})
        assert r.status_code == 200
        cookie = r.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie and "max-age=" in cookie
        assert client.get("/api/auth/me").json()["username"] == "admin"
        body = {"name": "csrf-check", "schema_name": "vindr-cxr"}
        refused = client.post("/api/projects", json=body)
        assert refused.status_code == 403 and "X-CXRLab-CSRF" in refused.json()["detail"]
        ok = client.post("/api/projects", json=body, headers={"X-CXRLab-CSRF": "1"})
        assert ok.status_code == 201

    def test_logout_ends_the_session(self, site: Site) -> None:
        client = TestClient(create_app(site.workspace))
        client.post("/api/auth/login", json={"username": "reader2", "password": PASSWORD})
        assert client.get("/api/auth/me").status_code == 200
        assert client.post("/api/auth/logout", headers={"X-CXRLab-CSRF": "1"}).status_code == 204
        client.cookies.clear()
        assert client.get("/api/auth/me").status_code == 401

    def test_logout_revokes_a_bearer_token(self, site: Site) -> None:
        token = site.client.post("/api/auth/token", json={"username": "reader3", "password": PASSWORD}).json()
        headers = {"Authorization": f"Bearer {token['access_token']}"}
        assert site.client.post("/api/auth/logout", headers=headers).status_code == 204
        assert site.client.get("/api/auth/me", headers=headers).status_code == 401

    def test_expired_session_is_401(self, site: Site) -> None:
        token = site.client.post("/api/auth/token", json={"username": "reviewer1", "password": PASSWORD}).json()
        headers = {"Authorization": f"Bearer {token['access_token']}"}
        assert site.client.get("/api/auth/me", headers=headers).status_code == 200
        digest = hashlib.sha256(token["access_token"].encode()).hexdigest()  # the catalog keeps only this
        with site.workspace.sessions() as session, session.begin():
            session.execute(update(AuthSession).where(AuthSession.token_hash == digest)
                            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))
        r = site.client.get("/api/auth/me", headers=headers)
        assert r.status_code == 401 and "expired" in r.json()["detail"]


class TestUsers:
    @pytest.mark.parametrize("who", [None, "reader1", "reviewer1"])
    def test_only_admins_manage_users(self, site: Site, who: str | None) -> None:
        expected = 401 if who is None else 403
        assert site.get("/api/users", who).status_code == expected
        assert site.post("/api/users", who, {"username": "x1", "password": PASSWORD, "role": "annotator"}
                         ).status_code == expected

    def test_admin_adds_lists_and_disables_users(self, site: Site) -> None:
        r = site.post("/api/users", "admin", {"username": "temp-user", "password": PASSWORD, "role": "annotator"})
        assert r.status_code == 201 and r.json()["rad_id"].startswith("R")
        assert "temp-user" in [u["username"] for u in site.get("/api/users", "admin").json()]
        token = site.client.post("/api/auth/token", json={"username": "temp-user", "password": PASSWORD}).json()
        headers = {"Authorization": f"Bearer {token['access_token']}"}
        assert site.client.patch("/api/users/temp-user", json={"active": False},
                                 headers=site.h("admin")).json()["active"] is False
        assert site.client.get("/api/auth/me", headers=headers).status_code == 401
        assert site.client.post("/api/auth/token", json={"username": "temp-user", "password": PASSWORD}
                                ).status_code == 401

    def test_duplicate_or_bad_users_are_refused(self, site: Site) -> None:
        r = site.post("/api/users", "admin", {"username": "reader1", "password": PASSWORD, "role": "annotator"})
        assert r.status_code == 400 and "exists" in r.json()["detail"]
        r = site.post("/api/users", "admin", {"username": "bad name!", "password": PASSWORD, "role": "annotator"})
        assert r.status_code == 400
        assert site.post("/api/users", "admin", {"username": "y", "password": "short", "role": "annotator"}
                         ).status_code == 422

    def test_patch_unknown_user_is_404(self, site: Site) -> None:
        assert site.client.patch("/api/users/ghost", json={"active": False}, headers=site.h("admin")
                                 ).status_code == 404
