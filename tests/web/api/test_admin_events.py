"""Every admin action through the API is an ``events`` row naming its author, and an image's catalog state is
shown to (and filtered by) admins only."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select

from cxrlab.catalog.models import Event
from tests.support.users import PASSWORD
from tests.web.conftest import Site


def _admin_events(site: Site, username: str) -> list[tuple[str, str]]:
    with site.workspace.sessions() as session:
        return [(e.action, e.author) for e in session.scalars(select(Event).where(Event.stage == "admin")
                                                              .order_by(Event.id))
                if (e.detail or {}).get("username") == username]


class TestAdminActionsAreEvents:
    def test_user_add_disable_enable_password(self, site: Site) -> None:
        name = f"u{uuid.uuid4().hex[:8]}"
        assert site.post("/api/users", "admin", {"username": name, "password": PASSWORD,
                                                 "role": "annotator"}).status_code == 201
        for patch in ({"active": False}, {"active": True}, {"password": "a brand new one"}):
            assert site.client.patch(f"/api/users/{name}", json=patch, headers=site.h("admin")).status_code == 200
        assert _admin_events(site, name) == [("user.create", "admin"), ("user.disable", "admin"),
                                             ("user.enable", "admin"), ("user.password", "admin")]
        with site.workspace.sessions() as session:
            details = [e.detail for e in session.scalars(select(Event).where(Event.stage == "admin"))]
        assert all("password" not in str(d).replace("user.password", "") for d in details)
        assert PASSWORD not in str(details) and "a brand new one" not in str(details)

    def test_project_create_and_assign(self, site: Site) -> None:
        name = f"p-{uuid.uuid4().hex[:8]}"
        pid = site.post("/api/projects", "admin", {"name": name}).json()["id"]
        images = site.add_images(1, split="train")
        r = site.post(f"/api/projects/{pid}/assign", "admin", {"readers": ["reader1", "reader2", "reader3"],
                                                               "image_ids": images})
        assert r.status_code == 200
        with site.workspace.sessions() as session:
            created = [(e.action, e.author) for e in session.scalars(select(Event).where(Event.stage == "admin"))
                       if (e.detail or {}).get("project") == name]
            assigned = [e.author for e in session.scalars(select(Event).where(Event.action == "assigned"))
                        if e.detail["project"] == name]
        assert created == [("project.create", "admin")] and assigned == ["admin"]


class TestImageStateForAdminsOnly:
    @pytest.mark.parametrize("who", ["reader1", "reviewer1"])
    def test_readers_see_no_state_and_cannot_filter_by_it(self, site: Site, who: str) -> None:
        p = site.project(train=0, test=1)
        image = p.test[0]
        body = site.get(f"/api/images/{image}", who).json()
        assert body["image_id"] == image and body["state"] is None
        listed = {i["image_id"]: i for i in site.get("/api/images", who, params={"limit": 1000}).json()}
        assert listed[image]["state"] is None
        r = site.get("/api/images", who, params={"state": "assigned"})
        assert r.status_code == 403 and "admins" in r.json()["detail"]

    def test_admin_sees_and_filters_by_state(self, site: Site) -> None:
        p = site.project(train=1)
        assert site.get(f"/api/images/{p.images[0]}", "admin").json()["state"] == "assigned"
        assert p.images[0] in {i["image_id"] for i in site.get("/api/images", "admin", params={
            "state": "assigned", "limit": 1000}).json()}
