"""``/docs`` (Swagger UI) and ``/redoc`` of a real ``cxrlab serve`` need no internet: every script, style sheet
and icon the pages name is served by the app itself, and no page names an outside address."""

from __future__ import annotations

from collections.abc import Iterator
from html.parser import HTMLParser

import httpx
import pytest

from tests.support.server import start_server


class _Assets(HTMLParser):
    """Collect every ``src`` and ``href`` of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.urls += [value for name, value in attrs if name in ("src", "href") and value]


def _asset_urls(html: str) -> list[str]:
    parser = _Assets()
    parser.feed(html)
    return parser.urls


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from cxrlab.catalog import init_workspace

    with start_server(init_workspace(tmp_path_factory.mktemp("offline-docs") / "ws")) as running:
        yield running.url


@pytest.mark.slow  # a real cxrlab serve process
class TestOfflineDocs:
    @pytest.mark.parametrize("page", ["/docs", "/redoc"])
    def test_page_names_no_outside_address(self, server: str, page: str) -> None:
        r = httpx.get(server + page, timeout=10)
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/html")
        assert "http://" not in r.text and "https://" not in r.text and "//cdn" not in r.text
        assert "fonts.googleapis" not in r.text
        # The browser itself refuses anything from another host (ReDoc's bundle names Redocly's logo).
        assert "default-src 'self'" in r.headers["content-security-policy"]
        assert "img-src 'self' data:;" in r.headers["content-security-policy"]

    @pytest.mark.parametrize(("page", "expected"), [
        ("/docs", {"swagger-ui-bundle.js", "swagger-ui.css", "favicon.png"}),
        ("/redoc", {"redoc.standalone.js", "favicon.png"}),
    ])
    def test_every_asset_is_served_by_the_app(self, server: str, page: str, expected: set[str]) -> None:
        urls = _asset_urls(httpx.get(server + page, timeout=10).text)
        assert {u.rsplit("/", 1)[-1] for u in urls} == expected
        for url in urls:
            assert url.startswith("/") and not url.startswith("//"), url
            r = httpx.get(server + url, timeout=10)
            assert r.status_code == 200, url
            assert len(r.content) > 1000, url

    def test_swagger_ui_reads_the_apps_schema_and_no_online_validator(self, server: str) -> None:
        html = httpx.get(server + "/docs", timeout=10).text
        assert "url: '/openapi.json'" in html
        assert '"validatorUrl": null' in html
        schema = httpx.get(server + "/openapi.json", timeout=10).json()
        assert "/api/auth/token" in schema["paths"]
        assert "/docs" not in schema["paths"] and "/redoc" not in schema["paths"]


def test_mount_offline_docs_needs_an_openapi_schema_raises() -> None:
    from fastapi import FastAPI

    from cxrlab.web.offline_docs import mount_offline_docs

    with pytest.raises(ValueError, match="no OpenAPI schema"):
        mount_offline_docs(FastAPI(openapi_url=None, docs_url=None, redoc_url=None))
