"""``/api/projects``: create (preset or YAML schema), list/see by role, schema, assign."""

from __future__ import annotations

import pytest

from tests.web.conftest import Site

CUSTOM = """
name: site-mini
no_finding: Normal
labels:
  - {name: Nodule, kind: local, definition: A round opacity.}
  - {name: Effusion, kind: local}
  - {name: Normal, kind: global}
  - {name: Pneumonia, kind: global}
"""


class TestCreate:
    def test_admin_creates_preset_project(self, site: Site) -> None:
        r = site.post("/api/projects", "admin", {"name": f"pcxr-{site.backend}", "schema_name": "vindr-pcxr"})
        assert r.status_code == 201
        schema = site.get(f"/api/projects/{r.json()['id']}/schema", "admin").json()
        assert (len(schema["local"]), len(schema["global"])) == (36, 15)
        assert "Brocho-pneumonia" in [lb["name"] for lb in schema["global"]]

    def test_custom_yaml_schema(self, site: Site) -> None:
        r = site.post("/api/projects", "admin", {"name": f"custom-{site.backend}", "schema_yaml": CUSTOM})
        assert r.status_code == 201 and r.json()["schema_name"] == "site-mini"
        schema = site.get(f"/api/projects/{r.json()['id']}/schema", "admin").json()
        assert [lb["name"] for lb in schema["local"]] == ["Nodule", "Effusion"]
        assert schema["no_finding"] == "Normal"

    @pytest.mark.parametrize(("body", "message"), [
        ({"name": "bad-yaml", "schema_yaml": "name: x\nlabels: [{name: A, kind: sideways}]"}, "'kind' must be"),
        ({"name": "bad-preset", "schema_name": "chexpert"}, "unknown label schema"),
    ])
    def test_invalid_schema_is_400(self, site: Site, body: dict, message: str) -> None:
        r = site.post("/api/projects", "admin", body)
        assert r.status_code == 400 and message in r.json()["detail"]

    @pytest.mark.parametrize(("who", "code"), [(None, 401), ("reader1", 403), ("reviewer1", 403)])
    def test_only_admins_create_or_assign(self, site: Site, who: str | None, code: int) -> None:
        assert site.post("/api/projects", who, {"name": "nope"}).status_code == code
        p = site.project(train=1)
        assert site.post(f"/api/projects/{p.id}/assign", who, {}).status_code == code


class TestVisibility:
    def test_users_see_only_their_projects(self, site: Site) -> None:
        p = site.project(train=1)
        assert p.id in [x["id"] for x in site.get("/api/projects", "reader1").json()]
        assert p.id not in [x["id"] for x in site.get("/api/projects", "reader4").json()]
        assert site.get(f"/api/projects/{p.id}", "reader4").status_code == 404
        assert site.get(f"/api/projects/{p.id}/schema", "reader4").status_code == 404
        assert site.get(f"/api/projects/{p.id}", "admin").status_code == 200

    def test_unknown_project_is_404(self, site: Site) -> None:
        assert site.get("/api/projects/999999", "admin").status_code == 404
        assert site.post("/api/projects/999999/assign", "admin", {}).status_code == 404


class TestAssign:
    def test_assign_by_api_gives_each_image_n_readers_in_own_order(self, site: Site) -> None:
        from cxrlab.annotate.assignment import order_key

        r = site.post("/api/projects", "admin", {"name": f"assign-{site.backend}", "readers_per_image": 2, "seed": 5})
        pid = r.json()["id"]
        ids = site.add_images(6, split="train")
        r = site.post(f"/api/projects/{pid}/assign", "admin",
                      {"readers": ["reader1", "reader2", "reader3"], "image_ids": ids})
        assert r.status_code == 200 and r.json()["counts"]["read_tasks"] == 12
        per_image: dict[str, list[str]] = {}
        for who in ("reader1", "reader2", "reader3"):
            uid = site.get("/api/auth/me", who).json()["id"]
            got = [t["image"]["image_id"] for t in site.get("/api/tasks", who, params={"project_id": pid}).json()]
            assert len(got) == 4  # balanced: 12 tasks over 3 readers, least load first
            assert got == sorted(got, key=lambda i: order_key(5, uid, i))  # own seeded shuffle
            for i in got:
                per_image.setdefault(i, []).append(who)
        assert sorted(per_image) == sorted(ids) and all(len(v) == 2 for v in per_image.values())

    def test_assign_twice_adds_nothing(self, site: Site) -> None:
        p = site.project(train=2)
        r = site.post(f"/api/projects/{p.id}/assign", "admin", {"image_ids": p.images})
        assert r.status_code == 200
        assert r.json()["counts"] == {} and "no accepted images" in r.json()["notes"][0]

    def test_too_few_readers_is_400(self, site: Site) -> None:
        r = site.post("/api/projects", "admin", {"name": f"five-{site.backend}", "readers_per_image": 5})
        ids = site.add_images(1, split="train")
        r = site.post(f"/api/projects/{r.json()['id']}/assign", "admin", {"readers": ["reader1"], "image_ids": ids})
        assert r.status_code == 400 and "needs 5 readers" in r.json()["detail"]
