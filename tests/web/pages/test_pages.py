"""HTML pages of the labeling tool: the reading viewer, the review pages and the index links. Pages hand the ES
modules their ids only; access follows the API (another user's review task, or a project without tasks, is 404)
and a request without a session is sent to the login page."""

from __future__ import annotations

from tests.web.api.test_reviews import _read_all
from tests.web.conftest import Site


class TestReadPage:
    def test_viewer_page_for_a_reader(self, sqlite_site: Site) -> None:
        p = sqlite_site.project(train=2)
        r = sqlite_site.get(f"/projects/{p.id}/read", "reader1")
        assert r.status_code == 200
        assert f'data-project-id="{p.id}"' in r.text and "read.js" in r.text
        assert 'aria-label="Chest X-ray"' not in r.text  # the canvas is made by the module
        assert sqlite_site.get(f"/projects/{p.id}/read?task=5&max_size=2048", "reader1").status_code == 200

    def test_index_links_to_the_viewer_with_open_counts(self, sqlite_site: Site) -> None:
        p = sqlite_site.project(train=2)
        page = sqlite_site.get("/", "reader1").text
        assert f'href="/projects/{p.id}/read"' in page and "(2 open)" in page

    def test_project_without_tasks_is_404(self, sqlite_site: Site) -> None:
        p = sqlite_site.project(train=1)
        assert sqlite_site.get(f"/projects/{p.id}/read", "reader4").status_code == 404

    def test_without_session_redirects_to_login(self, sqlite_site: Site) -> None:
        p = sqlite_site.project(train=1)
        r = sqlite_site.get(f"/projects/{p.id}/read", None, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == f"/login?next=/projects/{p.id}/read"

    def test_max_size_out_of_range_is_422(self, sqlite_site: Site) -> None:
        p = sqlite_site.project(train=1)
        assert sqlite_site.get(f"/projects/{p.id}/read?max_size=10", "reader1").status_code == 422


class TestReviewPages:
    def test_next_review_redirects_to_the_open_review(self, sqlite_site: Site) -> None:
        p = sqlite_site.project(train=0, test=1)
        image = p.test[0]
        waiting = sqlite_site.get(f"/projects/{p.id}/review", "reviewer1", follow_redirects=False)
        assert waiting.status_code == 200 and "No review is open" in waiting.text
        _read_all(sqlite_site, p, image)
        r = sqlite_site.get(f"/projects/{p.id}/review", "reviewer1", follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == f"/reviews/{p.reviews[('reviewer1', image)]}"

    def test_review_page_is_its_reviewers_only(self, sqlite_site: Site) -> None:
        p = sqlite_site.project(train=0, test=1)
        task = p.reviews[("reviewer1", p.test[0])]
        r = sqlite_site.get(f"/reviews/{task}", "reviewer1")
        assert r.status_code == 200 and f'data-task-id="{task}"' in r.text and "review.js" in r.text
        assert sqlite_site.get(f"/reviews/{task}", "reviewer2").status_code == 404
        assert sqlite_site.get(f"/reviews/{task}", "reader1").status_code == 404
        read_task = p.tasks[("reader1", p.test[0])]
        assert sqlite_site.get(f"/reviews/{read_task}", "reader1").status_code == 404  # a read task is no review


class TestDashboardPage:
    def test_dashboard_has_progress_and_export_buttons(self, sqlite_site: Site) -> None:
        p = sqlite_site.project(train=1)
        page = sqlite_site.get(f"/projects/{p.id}/dashboard", "admin").text
        assert 'role="progressbar"' in page
        for name in ("export.json", "annotations_train.csv", "image_labels_test.csv"):
            assert f"/api/projects/{p.id}/{'' if name.endswith('json') else 'export/'}{name}" in page
        assert sqlite_site.get(f"/projects/{p.id}/dashboard", "reader1").status_code == 403  # the "admins only" page
