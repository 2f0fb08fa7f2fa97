"""The image pages, the static assets and the login redirect over real HTTP (the ``web`` fixture of
``tests/web/conftest.py``: ``cxrlab serve`` in its own process, an admin's session cookie)."""

from __future__ import annotations

import httpx
import pytest

from tests.web.conftest import FORBIDDEN, Web

pytestmark = pytest.mark.slow  # a real cxrlab serve process


def test_index_page_lists_images(web: Web) -> None:
    r = web.client.get("/")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    for image_id in web.served:
        assert image_id in r.text
        assert f"/api/images/{image_id}/render?format=jpeg&amp;max_size=256" in r.text
    assert web.undeidentified not in r.text
    assert "http://" not in r.text.replace("http://127.0.0.1", "") and "https://" not in r.text


def test_image_page_and_static_assets(web: Web) -> None:
    image_id = web.served[0]
    r = web.client.get(f"/images/{image_id}")
    assert r.status_code == 200
    assert image_id in r.text and "full range" in r.text and "File default" in r.text
    for field in FORBIDDEN:
        assert field not in r.text
    js = web.client.get("/static/viewer.js")
    assert js.status_code == 200 and "javascript" in js.headers["content-type"]
    assert web.client.get("/static/style.css").status_code == 200


def test_unknown_image_page_is_a_404_page(web: Web) -> None:
    page = web.client.get("/images/deadbeef")  # a page answers with a page
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
    assert "not found" in page.text


def test_pages_redirect_to_login_and_api_needs_auth(web: Web) -> None:
    with httpx.Client(base_url=str(web.client.base_url), timeout=10) as anonymous:
        r = anonymous.get("/", follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].startswith("/login")
        assert anonymous.get("/login").status_code == 200
        assert anonymous.get("/api/images").status_code == 401
        assert anonymous.get(f"/api/images/{web.served[0]}/render").status_code == 401
