"""Gold-standard tasks: admins mark decided images as gold, ``assign`` mixes them into readers' queues, a reader
cannot tell a gold task from a normal one by any response (compared field by field), each reader is scored
against the gold marks, and gold reads never enter the readings, a review, the consensus or an export."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from sqlalchemy import func, select, update

from cxrlab.annotate.assignment import assign_images
from cxrlab.annotate.projects import get_project
from cxrlab.catalog.models import ConsensusLabel, Event, Image, ImageState, Reading, Task, TaskState
from tests.web.conftest import Proj, Site

NODULE = {"class_name": "Nodule/Mass", "x_min": 10, "y_min": 10, "x_max": 30, "y_max": 30}
#: The expert's (reader1's) read of each decided image: what becomes gold.
EXPERT = [{"labels": ["Lung tumor", "Nodule/Mass"], "boxes": [NODULE]}, {"labels": ["No finding"], "boxes": []}]
OTHER = {"labels": ["Pneumonia"], "boxes": []}


@dataclass
class Gold:
    p: Proj
    gold: list[str]
    normal: list[str]
    tasks: dict[str, int]  # image_id -> reader4's task id


def _decided_project(site: Site, *, new_images: int = 2, rate: float = 0.5) -> Gold:
    """A project whose 2 first images were read (reader1 is the expert) and marked gold from reader1's read; then
    *new_images* more images assigned to reader2, reader3 and reader4 with a gold rate: reader4, who never saw the gold
    images, gets gold tasks among its new ones."""
    p = site.project(train=2)
    for image, expert in zip(p.images, EXPERT, strict=True):
        for who in ("reader1", "reader2", "reader3"):
            marks = expert if who == "reader1" else OTHER
            r = site.post(f"/api/tasks/{p.tasks[(who, image)]}/submit", who, {"version": 0, **marks})
            assert r.status_code == 200, r.text
    rad = site.get("/api/auth/me", "reader1").json()["rad_id"]
    r = site.post(f"/api/projects/{p.id}/gold", "admin", {"image_ids": p.images, "source": f"reader:{rad}"})
    assert r.status_code == 200, r.text
    new = site.add_images(new_images, split="train")
    r = site.post(f"/api/projects/{p.id}/assign", "admin",
                  {"readers": ["reader2", "reader3", "reader4"], "image_ids": new, "gold_rate": rate})
    assert r.status_code == 200, r.text
    mine = site.get("/api/tasks", "reader4", params={"project_id": p.id}).json()
    tasks = {t["image"]["image_id"]: t["id"] for t in mine}
    return Gold(p, list(p.images), new, tasks)


def _shape(value: object) -> object:
    """The JSON's structure: keys and value types, recursively."""
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shape(v) for v in value]
    return type(value).__name__


def _same_but_ids(gold: dict, normal: dict) -> None:
    """Field by field: the same keys and types everywhere; the same values except the task's own id, image and
    time of submission."""
    assert _shape(gold) == _shape(normal)
    for key in gold:
        if key in ("id", "image", "submitted_at"):
            continue
        assert gold[key] == normal[key], key
    assert gold["image"]["rows"] == normal["image"]["rows"] and gold["image"]["columns"] == normal["image"]["columns"]
    assert len(gold["image"]["image_id"]) == len(normal["image"]["image_id"])


class TestMarkAndAssign:
    def test_assign_mixes_gold_tasks_into_the_queue(self, site: Site) -> None:
        g = _decided_project(site)
        assert set(g.tasks) == set(g.gold) | set(g.normal)  # 2 normal + 2 gold (rate 0.5)
        with site.workspace.sessions() as session:
            flags = dict(session.execute(select(Task.id, Task.gold).where(Task.id.in_(g.tasks.values()))).all())
            # reader2 and reader3 read the gold images already: none of them gets one
            others = session.scalar(select(func.count(Task.id)).where(Task.project_id == g.p.id,
                                                                      Task.gold.is_(True),
                                                                      Task.id.not_in(list(g.tasks.values()))))
            events = [e.author for e in session.scalars(select(Event).where(Event.action == "gold.mark"))
                      if e.detail["project"] == g.p.name]
        assert sorted(flags[g.tasks[i]] for i in g.gold + g.normal) == [False, False, True, True]
        assert all(flags[g.tasks[i]] for i in g.gold) and others == 0
        assert events == ["admin", "admin"]
        listed = site.get(f"/api/projects/{g.p.id}/gold", "admin").json()
        assert [x["image_id"] for x in listed] == sorted(g.gold)
        assert {x["image_id"]: x["labels"] for x in listed}[g.gold[0]] == ["Lung tumor", "Nodule/Mass"]
        assert all(x["open"] == 1 and x["reads"] == 0 for x in listed)
        prog = site.get(f"/api/projects/{g.p.id}/progress", "admin").json()
        assert prog["gold"] == {"pending": 2}
        assert prog["splits"]["train"]["tasks"]["pending"] == 6  # the 2 new images' 6 normal tasks only

    def test_gold_ids_lie_among_the_new_tasks(self, site: Site) -> None:
        """Gold tasks are created at seeded random places among the run's new tasks: their ids are not simply the
        last ones (a reader who sees ids could otherwise tell)."""
        g = _decided_project(site, new_images=6, rate=0.25)  # 6 normal and 2 gold tasks for reader4
        with site.workspace.sessions() as session:
            pks = select(Image.id).where(Image.image_id.in_(g.normal))
            normal = set(session.scalars(select(Task.id).where(Task.project_id == g.p.id, Task.image_pk.in_(pks))))
            gold = set(session.scalars(select(Task.id).where(Task.project_id == g.p.id, Task.gold.is_(True))))
        assert len(normal) == 18 and len(gold) == 2
        assert min(gold) < max(normal) and min(normal) < max(gold) + len(normal)

    @pytest.mark.parametrize(("body", "message"), [
        ({"image_ids": ["nope"]}, "not found"),
        ({"image_ids": ["X"], "source": "reader:R999"}, "not found"),
    ])
    def test_unknown_image_raises(self, site: Site, body: dict, message: str) -> None:
        p = site.project(train=1)
        r = site.post(f"/api/projects/{p.id}/gold", "admin", body)
        assert r.status_code == 400 and message in r.json()["detail"]

    def test_undecided_image_and_missing_read_raise(self, site: Site) -> None:
        p = site.project(train=1)
        r = site.post(f"/api/projects/{p.id}/gold", "admin", {"image_ids": p.images})
        assert r.status_code == 400 and "not decided" in r.json()["detail"]
        for who in ("reader1", "reader2", "reader3"):
            site.post(f"/api/tasks/{p.tasks[(who, p.images[0])]}/submit", who, {"version": 0, **OTHER})
        r = site.post(f"/api/projects/{p.id}/gold", "admin", {"image_ids": p.images})
        assert r.status_code == 400 and "no consensus" in r.json()["detail"]
        r = site.post(f"/api/projects/{p.id}/gold", "admin", {"image_ids": p.images, "source": "reader:R999"})
        assert r.status_code == 400 and "no read by R999" in r.json()["detail"]

    def test_consensus_source_and_label_outside_the_schema_raises(self, site: Site) -> None:
        from tests.web.api.test_projects import CUSTOM

        p = site.project(train=1)
        image = p.images[0]
        for who in ("reader1", "reader2", "reader3"):
            site.post(f"/api/tasks/{p.tasks[(who, image)]}/submit", who, {"version": 0, **OTHER})
        with site.workspace.transaction() as session:
            pk = session.scalar(select(Image.id).where(Image.image_id == image))
            session.add_all([ConsensusLabel(image_pk=pk, label="Pneumonia", positive=1, votes=3, readers=3),
                             ConsensusLabel(image_pk=pk, label="Lung tumor", positive=1, votes=2, readers=3),
                             ConsensusLabel(image_pk=pk, label="COPD", positive=0, votes=0, readers=3)])
        r = site.post(f"/api/projects/{p.id}/gold", "admin", {"image_ids": [image]})
        assert r.status_code == 200 and r.json()["gold"][0]["labels"] == ["Pneumonia", "Lung tumor"]
        assert r.json()["gold"][0]["source"] == "consensus"
        custom = site.project(train=1, schema_yaml=CUSTOM)
        r = site.post(f"/api/projects/{custom.id}/gold", "admin", {"image_ids": [image]})
        assert r.status_code == 400, r.text
        assert "'Lung tumor' is not in schema site-mini" in r.json()["detail"] and image in r.json()["detail"]

    @pytest.mark.parametrize("who", ["reader1", "reviewer1"])
    def test_gold_routes_are_admin_only(self, site: Site, who: str) -> None:
        p = site.project(train=1)
        assert site.get(f"/api/projects/{p.id}/gold", who).status_code == 403
        assert site.post(f"/api/projects/{p.id}/gold", who, {"image_ids": p.images}).status_code == 403
        assert site.get(f"/api/projects/{p.id}/quality", who).status_code == 403

    def test_gold_rate_bounds_raise(self, site: Site) -> None:
        p = site.project(train=1)
        for rate in (-0.1, 0.6):
            r = site.post(f"/api/projects/{p.id}/assign", "admin", {"gold_rate": rate})
            assert r.status_code == 422


class TestBlinding:
    def test_a_reader_cannot_tell_a_gold_task_from_its_responses(self, site: Site) -> None:
        g = _decided_project(site)
        gold_id, normal_id = g.tasks[g.gold[0]], g.tasks[g.normal[0]]
        gold_image, normal_image = g.gold[0], g.normal[0]
        # one task
        _same_but_ids(site.get(f"/api/tasks/{gold_id}", "reader4").json(),
                      site.get(f"/api/tasks/{normal_id}", "reader4").json())
        # the queue: the same entries, and nothing in the list says more than each task
        nxt = site.get("/api/tasks/next", "reader4", params={"project_id": g.p.id, "limit": 10}).json()
        by_id = {t["id"]: t for t in nxt["tasks"]}
        _same_but_ids(by_id[gold_id], by_id[normal_id])
        assert nxt["counts"] == {"pending": 4}
        # the image's metadata: no state for a reader, so "reviewed" cannot tell a decided image
        gi, ni = site.get(f"/api/images/{gold_image}", "reader4").json(), site.get(f"/api/images/{normal_image}",
                                                                                 "reader4").json()
        assert gi["state"] is None and ni["state"] is None and _shape(gi) == _shape(ni)
        assert site.get("/api/images", "reader4", params={"state": "labeled"}).status_code == 403
        # the other readers' marks of the gold image never reach reader4
        assert "Lung tumor" not in site.get(f"/api/tasks/{gold_id}", "reader4").text
        # a draft, a submit, the history, a reopen: answered alike
        draft = {"version": 0, "labels": [], "boxes": [{**NODULE, "id": "b1"}]}
        _same_but_ids(site.put(f"/api/tasks/{gold_id}/draft", "reader4", draft).json(),
                      site.put(f"/api/tasks/{normal_id}/draft", "reader4", draft).json())
        read = {"version": 1, "labels": ["Lung tumor", "Nodule/Mass"], "boxes": [{**NODULE, "id": "b1"}]}
        g_sub = site.post(f"/api/tasks/{gold_id}/submit", "reader4", read)
        n_sub = site.post(f"/api/tasks/{normal_id}/submit", "reader4", read)
        assert g_sub.status_code == n_sub.status_code == 200
        _same_but_ids(g_sub.json(), n_sub.json())
        hist = {t["id"]: t for t in site.get("/api/tasks", "reader4", params={"state": "submitted", "mine": 1}).json()}
        _same_but_ids(hist[gold_id], hist[normal_id])
        g_re = site.post(f"/api/tasks/{gold_id}/reopen", "reader4", {"version": 2})
        n_re = site.post(f"/api/tasks/{normal_id}/reopen", "reader4", {"version": 2})
        assert g_re.status_code == n_re.status_code == 200, (g_re.text, n_re.text)
        _same_but_ids(g_re.json(), n_re.json())

    def test_a_release_freezes_a_gold_read_as_it_freezes_the_readers_earlier_reads(self, site: Site) -> None:
        """A gold image's own review or release says nothing about the reader's read: a gold read freezes when a
        release holds the reader's reads submitted before it, as a training read would. Both 409s alike."""
        g = _decided_project(site)
        gold_id, normal_id = g.tasks[g.gold[0]], g.tasks[g.normal[0]]
        read = {"version": 0, "labels": ["No finding"]}
        assert site.post(f"/api/tasks/{normal_id}/submit", "reader4", read).status_code == 200
        assert site.post(f"/api/tasks/{gold_id}/submit", "reader4", read).status_code == 200
        # not frozen yet: the gold image is decided (its review or release is not the reader's business)
        assert site.get(f"/api/tasks/{gold_id}", "reader4").json()["frozen"] is None
        with site.workspace.transaction() as session:
            session.execute(update(Image).where(Image.image_id == g.normal[0]).values(state=ImageState.RELEASED))
        answers = [site.post(f"/api/tasks/{tid}/reopen", "reader4", {"version": 1}) for tid in (gold_id, normal_id)]
        assert [a.status_code for a in answers] == [409, 409]
        assert answers[0].json() == answers[1].json()
        assert answers[0].json()["rule"] == "read_frozen" and "a release holds its image" in answers[0].json()["detail"]

    def test_unusable_on_a_gold_task_answers_alike_and_closes_only_it(self, site: Site) -> None:
        g = _decided_project(site)
        gold_id, normal_id = g.tasks[g.gold[0]], g.tasks[g.normal[0]]
        body = {"version": 0, "reason": "lateral"}
        g_r = site.post(f"/api/tasks/{gold_id}/unusable", "reader4", body).json()
        n_r = site.post(f"/api/tasks/{normal_id}/unusable", "reader4", body).json()
        _same_but_ids(g_r, n_r)
        with site.workspace.sessions() as session:
            state = session.scalar(select(Image.state).where(Image.image_id == g.gold[0]))
        assert state is ImageState.LABELED  # the decided image stays as it was
        others = site.get("/api/tasks", "reader2", params={"project_id": g.p.id}).json()
        assert all(t["state"] != "cancelled" for t in others if t["image"]["image_id"] == g.gold[0])


class TestScoringAndIsolation:
    def _read_gold(self, site: Site, g: Gold) -> None:
        # gold[0] (expert: Lung tumor + a nodule box): reader4 marks the tumor, its box shifted a little (IoU >= 0.4)
        # and adds a false Pneumonia; gold[1] (No finding): reader4 says No finding.
        reads = {g.gold[0]: {"labels": ["Lung tumor", "Nodule/Mass", "Pneumonia"],
                             "boxes": [{**NODULE, "x_min": 12, "x_max": 32}]},
                 g.gold[1]: {"labels": ["No finding"], "boxes": []}}
        for image, marks in reads.items():
            r = site.post(f"/api/tasks/{g.tasks[image]}/submit", "reader4", {"version": 0, **marks})
            assert r.status_code == 200, r.text

    def test_reader_quality_per_label_and_box_f1(self, site: Site) -> None:
        g = _decided_project(site)
        self._read_gold(site, g)
        q = site.get(f"/api/projects/{g.p.id}/quality", "admin")
        assert q.status_code == 200, q.text
        body = q.json()
        assert body["gold_images"] == 2 and body["box_iou"] == 0.4
        (reader4,) = body["readers"]
        assert reader4["username"] == "reader4" and reader4["images"] == 2
        assert reader4["labels"]["Lung tumor"] == {"tp": 1, "fn": 0, "tn": 1, "fp": 0, "sensitivity": 1.0,
                                                "specificity": 1.0}
        assert reader4["labels"]["Pneumonia"] == {"tp": 0, "fn": 0, "tn": 1, "fp": 1, "sensitivity": None,
                                               "specificity": 0.5}
        assert reader4["boxes"] == {"gold": 1, "reader": 1, "matched": 1, "f1": 1.0}

    def test_a_box_below_iou_0_4_is_a_miss(self, site: Site) -> None:
        g = _decided_project(site)
        far = {"labels": ["Lung tumor", "Nodule/Mass"], "boxes": [{**NODULE, "x_min": 24, "x_max": 44}]}  # IoU 0.18
        site.post(f"/api/tasks/{g.tasks[g.gold[0]]}/submit", "reader4", {"version": 0, **far})
        (reader4,) = site.get(f"/api/projects/{g.p.id}/quality", "admin").json()["readers"]
        assert reader4["boxes"] == {"gold": 1, "reader": 1, "matched": 0, "f1": 0.0}

    def test_gold_reads_never_enter_readings_reviews_consensus_or_exports(self, site: Site) -> None:
        g = _decided_project(site)
        self._read_gold(site, g)
        rad4 = site.get("/api/auth/me", "reader4").json()["rad_id"]
        with site.workspace.sessions() as session:
            gold_pks = select(Image.id).where(Image.image_id.in_(g.gold))
            assert session.scalar(select(func.count(Reading.id)).where(Reading.rad_id == rad4,
                                                                       Reading.image_pk.in_(gold_pks))) == 0
            states = set(session.scalars(select(Image.state).where(Image.image_id.in_(g.gold))))
        assert states == {ImageState.LABELED}
        csv = site.get(f"/api/projects/{g.p.id}/export/annotations_train.csv", "admin").text
        labels = site.get(f"/api/projects/{g.p.id}/export/image_labels_train.csv", "admin").text
        assert rad4 not in csv and rad4 not in labels
        agreement = site.get(f"/api/projects/{g.p.id}/agreement", "admin").json()
        assert all(rad4 not in (pair["rad_a"], pair["rad_b"]) for pair in agreement["box_agreement"])
        full = site.get(f"/api/projects/{g.p.id}/export.json", "admin").json()
        gold_rows = [t for img in full["images"] for t in img["tasks"] if t["gold"]]
        assert len(gold_rows) == 2 and {t["rad_id"] for t in gold_rows} == {rad4}

    def test_a_rerun_without_new_images_adds_no_gold_task(self, site: Site) -> None:
        """Gold tasks go out only among new normal ones (their ids would tell otherwise)."""
        g = _decided_project(site)
        with site.workspace.sessions() as session:
            project = get_project(session, g.p.id)
            assert session.scalar(select(func.count(Task.id)).where(
                Task.project_id == project.id, Task.gold.is_(True), Task.state == TaskState.PENDING)) == 2
            report = assign_images(session, project=project, readers=["reader2", "reader3", "reader4"], gold_rate=0.5)
        assert report.counts.get("gold_tasks", 0) == 0
