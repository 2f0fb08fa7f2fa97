"""Admin pages and the reader's history page: admins get the pages, annotators and reviewers the 403 page (HTML,
not the API's JSON), a request without a session goes to the login page; image states are shown to admins only."""

from __future__ import annotations

import pytest

from tests.web.conftest import Site

PAGES = ["/admin/users", "/admin/projects", "/admin/projects/{pid}"]


class TestAdminPagesRoles:
    @pytest.mark.parametrize("page", PAGES)
    @pytest.mark.parametrize("who", ["reader1", "reviewer1"])
    def test_readers_and_reviewers_get_a_403_page(self, sqlite_site: Site, page: str, who: str) -> None:
        p = sqlite_site.project(train=1)
        r = sqlite_site.get(page.format(pid=p.id), who)
        assert r.status_code == 403
        assert r.headers["content-type"].startswith("text/html")
        assert "<h1>Not allowed</h1>" in r.text and "admins only" in r.text
        assert not r.text.lstrip().startswith("{")

    @pytest.mark.parametrize("page", PAGES)
    def test_without_session_redirects_to_login(self, sqlite_site: Site, page: str) -> None:
        p = sqlite_site.project(train=1)
        url = page.format(pid=p.id)
        r = sqlite_site.get(url, None, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == f"/login?next={url}"

    def test_unknown_project_is_a_404_page(self, sqlite_site: Site) -> None:
        r = sqlite_site.get("/admin/projects/99999999", "admin")
        assert r.status_code == 404 and r.headers["content-type"].startswith("text/html")
        assert sqlite_site.get("/admin/projects/2147483648", "admin").status_code == 422


class TestAdminPagesContent:
    def test_users_page_lists_reader_ids_and_forms(self, sqlite_site: Site) -> None:
        page = sqlite_site.get("/admin/users", "admin").text
        rad = sqlite_site.get("/api/auth/me", "reader2").json()["rad_id"]
        assert 'data-user="reader2"' in page and f"<td>{rad}</td>" in page
        assert 'id="add-user"' in page and 'aria-label="Disable reader2"' in page
        assert 'aria-label="Reset the password of reader2"' in page and "admin.js" in page

    def test_projects_page_has_presets_and_yaml_upload(self, sqlite_site: Site) -> None:
        p = sqlite_site.project(train=2)
        page = sqlite_site.get("/admin/projects", "admin").text
        assert f'href="/admin/projects/{p.id}"' in page and "0 / 6" in page  # reads submitted / total
        assert 'name="schema_file" type="file"' in page and "<option selected>vindr-cxr</option>" in page

    def test_project_page_has_assignment_gold_and_progress(self, sqlite_site: Site) -> None:
        p = sqlite_site.project(train=1)
        page = sqlite_site.get(f"/admin/projects/{p.id}", "admin").text
        for needle in ('id="assign"', 'name="readers" value="reader1"', 'name="reviewers" value="reviewer1"',
                       'name="gold_rate"', 'id="gold"', "Progress per split", "pending 3"):
            assert needle in page, needle


class TestHistoryPage:
    def test_lists_submitted_reads_with_reopen_or_frozen(self, sqlite_site: Site) -> None:
        p = sqlite_site.project(train=1, test=1)
        train, test = p.train[0], p.test[0]
        sqlite_site.post(f"/api/tasks/{p.tasks[('reader1', train)]}/submit", "reader1",
                         {"version": 0, "labels": ["No finding"]})
        for who in ("reader1", "reader2", "reader3"):
            sqlite_site.post(f"/api/tasks/{p.tasks[(who, test)]}/submit", who, {"version": 0, "labels": ["COPD"]})
        page = sqlite_site.get(f"/history?project_id={p.id}", "reader1").text
        assert f'data-reopen="{p.tasks[("reader1", train)]}"' in page
        assert f'data-task="{p.tasks[("reader1", test)]}"' in page
        assert "frozen: its image&#39;s review has opened" in page
        assert page.index(f'data-task="{p.tasks[("reader1", test)]}"') < page.index(
            f'data-task="{p.tasks[("reader1", train)]}"')  # newest first
        other = sqlite_site.get(f"/history?project_id={p.id}", "reader4").text
        assert "No submitted read yet" in other

    def test_reader_index_shows_no_image_state(self, sqlite_site: Site) -> None:
        p = sqlite_site.project(train=1)
        page = sqlite_site.get("/", "reader1").text
        assert p.images[0] in page and 'class="state state-assigned"' not in page and 'name="state"' not in page
        assert sqlite_site.get("/?state=assigned", "reader1").status_code == 403
        assert 'class="state state-assigned"' in sqlite_site.get("/", "admin").text
        assert 'href="/history"' in page and 'href="/admin/users"' not in page
