"""Logging in through the site's login form in a real browser (Playwright), for the e2e tests and bench/."""

from __future__ import annotations

from typing import Any


def form_login(page: Any, url: str, username: str, password: str) -> None:
    """Log *page* (a Playwright page) in at *url* through the login form, and wait for the home page."""
    page.goto(f"{url}/login")
    page.get_by_label("User name").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{url}/")
