"""Swagger UI (``/docs``) and ReDoc (``/redoc``) render with every request to another host blocked: the API
docs work on a hospital network without internet."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from tests.e2e.conftest import ARTIFACTS


@pytest.fixture
def offline_page(playwright_browser, e2e_site):  # noqa: ANN001, ANN201 - a playwright Page and the blocked URLs
    """A page whose requests to any host but the server's are aborted (and recorded)."""
    host = urlsplit(e2e_site.url).netloc
    blocked: list[str] = []
    context = playwright_browser.new_context(viewport={"width": 1400, "height": 1000})

    def only_local(route) -> None:  # noqa: ANN001
        url = route.request.url
        if urlsplit(url).netloc == host or url.startswith(("data:", "blob:")):
            route.continue_()
        else:
            blocked.append(url)
            route.abort()

    context.route("**/*", only_local)
    page = context.new_page()
    yield page, blocked
    context.close()


def test_swagger_ui_renders_the_operations_offline(offline_page, e2e_site) -> None:  # noqa: ANN001
    page, blocked = offline_page
    page.goto(f"{e2e_site.url}/docs")
    page.wait_for_selector(".opblock-summary-path", timeout=20_000)
    paths = page.locator(".opblock-summary-path").all_inner_texts()
    assert any("/api/tasks/next" in p for p in paths), paths
    assert page.locator(".swagger-ui .info .title").inner_text().startswith("cxrlab")
    # Open one operation: its parameters render from the app's schema.
    page.locator(".opblock-summary-path", has_text="/api/tasks/next").first.click()
    page.wait_for_selector(".opblock.is-open .parameters", timeout=10_000)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "swagger-ui-offline.png"))
    assert blocked == []


def test_redoc_renders_the_operations_offline(offline_page, e2e_site) -> None:  # noqa: ANN001
    page, blocked = offline_page
    page.goto(f"{e2e_site.url}/redoc")
    page.wait_for_selector("h1", timeout=20_000)
    page.get_by_text("/api/tasks/next").first.wait_for(state="attached", timeout=20_000)
    assert page.locator("h1").first.inner_text().startswith("cxrlab")
    assert blocked == []
