"""End-to-end: pages answer pages (issue 11, section 4).

An annotator who opens a project's dashboard in the browser sees the 403 page "admins only" (the project exists),
and anyone who opens the dashboard of a project that does not exist sees the 404 page: an HTML page in the site's
frame (header, "back" link), never the API's bare JSON ``{"detail": "project 1 not found"}``.
"""

from __future__ import annotations

import pytest

from tests.e2e.conftest import E2ESite
from tests.e2e.test_viewer import login, screenshot

pytestmark = pytest.mark.slow


def test_an_annotator_opening_a_dashboard_gets_the_admins_only_page(playwright_browser, e2e_site: E2ESite) -> None:
    page = login(playwright_browser, e2e_site, "reader1")
    response = page.goto(f"{e2e_site.url}/projects/{e2e_site.project_id}/dashboard")
    assert response.status == 403 and response.headers["content-type"].startswith("text/html")
    assert page.get_by_role("heading", level=1).text_content() == "Not allowed"
    assert page.get_by_role("alert").text_content() == "admins only"
    assert "detail" not in page.locator("body").text_content()  # not the API's JSON shown as text
    assert page.get_by_role("button", name="Log out").is_visible()  # the site's frame, with the user's header
    screenshot(page, "dashboard-admins-only")
    page.get_by_role("link", name="back").click()
    page.wait_for_url(f"{e2e_site.url}/")
    assert page.js_errors == []
    page.context.close()


@pytest.mark.parametrize("username", ["reader1", "admin"])
def test_the_dashboard_of_an_unknown_project_is_the_not_found_page(playwright_browser, e2e_site: E2ESite,
                                                                   username: str) -> None:
    page = login(playwright_browser, e2e_site, username)
    response = page.goto(f"{e2e_site.url}/projects/999999/dashboard")
    assert response.status == 404 and response.headers["content-type"].startswith("text/html")
    assert page.get_by_role("heading", level=1).text_content() == "Not found"
    assert "project 999999 not found" in page.get_by_role("alert").text_content()
    assert page.js_errors == []
    page.context.close()
