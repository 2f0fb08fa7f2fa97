"""Model-assisted reading (issue 16, item 4): the project's detector run setting, background predictions once per
image, the suggestions of a reader's own task (blinding), and the provenance of accepted boxes (events, the JSON
export), on a real catalog with a real detector run (:func:`tests.support.detector.train_tiny_detector`)."""

from __future__ import annotations

import json
import shutil
import threading
import time
from pathlib import Path

import pydicom
import pytest
from sqlalchemy import func, select

from cxrlab.annotate.assignment import assign_images
from cxrlab.annotate.marks import Box, Marks, keep_provenance
from cxrlab.annotate.projects import create_project
from cxrlab.annotate.readings import QCError
from cxrlab.annotate.tasks import save_draft, submit_task
from cxrlab.catalog import init_workspace
from cxrlab.catalog.models import Event, Image, ImageState, Project, Suggestion, Task, TaskKind, User
from cxrlab.catalog.workspace import Workspace
from cxrlab.consensus import suggest_review
from cxrlab.errors import CxrlabError, NotFoundError
from cxrlab.export.project import project_json
from cxrlab.models.suggest import (
    SuggestionWorker,
    check_suggest_run,
    predict_suggestions,
    set_suggest_run,
    suggestion_counts,
    task_suggestions,
)
from tests.support.users import READERS, REVIEWERS, create_users

CUSTOM = """
name: site-mini
no_finding: Normal
labels:
  - {name: Nodule, kind: local}
  - {name: Normal, kind: global}
  - {name: Pneumonia, kind: global}
"""


def _phantoms(run: Path) -> list[Path]:
    """The phantom DICOMs of the release the tiny detector was trained on (they carry its findings)."""
    return sorted((run.parent / "release").rglob("*.dicom"))


def _workspace(root: Path, run: Path, *, n: int = 4, broken: bool = False) -> Workspace:
    ws = init_workspace(root / "ws")
    with ws.sessions() as session:
        create_users(session)
        with session.begin():
            files = _phantoms(run)[:n]
            for k, path in enumerate(files):
                ds = pydicom.dcmread(path, stop_before_pixels=True)
                session.add(Image(sop_instance_uid=f"1.2.3.{k}", image_id=f"img{k:02d}", raw_sha256=f"{k:064d}",
                                  raw_path="raw/x.dcm", deid_path=str(path), state=ImageState.ACCEPTED,
                                  rows=int(ds.Rows), columns=int(ds.Columns), modality="CR"))
            if broken:
                bad = root / "broken.dicom"
                bad.write_bytes(b"not a DICOM file")
                session.add(Image(sop_instance_uid="1.2.3.99", image_id="img99", raw_sha256="9" * 64,
                                  raw_path="raw/y.dcm", deid_path=str(bad), state=ImageState.ACCEPTED, rows=64,
                                  columns=64, modality="CR"))
    return ws


def _project(ws: Workspace, name: str = "p", schema_yaml: str | None = None, test_fraction: float = 0.0) -> int:
    with ws.sessions() as session:
        project = create_project(session, name=name, schema_yaml=schema_yaml)
        assign_images(session, project=project, readers=READERS, reviewers=REVIEWERS, test_fraction=test_fraction)
        return project.id


@pytest.fixture
def ws(tmp_path: Path, tiny_detector: Path) -> Workspace:
    return _workspace(tmp_path, tiny_detector)


def _task(session, project_id: int, username: str, kind: TaskKind = TaskKind.READ) -> Task:  # noqa: ANN001
    return session.scalars(select(Task).join(User, User.id == Task.user_id).where(
        Task.project_id == project_id, User.username == username, Task.kind == kind).order_by(Task.id)).first()


def _user(session, name: str) -> User:  # noqa: ANN001
    return session.scalar(select(User).where(User.username == name))


class TestCheckSuggestRun:
    def test_a_detector_run_of_local_labels_is_accepted(self, ws: Workspace, tiny_detector: Path) -> None:
        pid = _project(ws)
        with ws.sessions() as session:
            model = check_suggest_run(tiny_detector, session.get(Project, pid))
        assert model.classes and len(model.sha256) == 64

    def test_missing_folder_raises(self, ws: Workspace, tmp_path: Path) -> None:
        pid = _project(ws)
        with ws.sessions() as session, pytest.raises(CxrlabError, match="no such run folder"):
            check_suggest_run(tmp_path / "nowhere", session.get(Project, pid))

    def test_a_run_that_is_not_a_detector_raises(self, ws: Workspace, tiny_detector: Path, tmp_path: Path) -> None:
        pid = _project(ws)
        fake = tmp_path / "classifier"
        fake.mkdir()
        shutil.copy(tiny_detector / "model.onnx", fake / "model.onnx")
        side = json.loads((tiny_detector / "model.json").read_text())
        (fake / "model.json").write_text(json.dumps({**side, "format": "cxrlab-classifier/1"}))
        with ws.sessions() as session, pytest.raises(CxrlabError, match="detector model"):
            check_suggest_run(fake, session.get(Project, pid))

    def test_classes_outside_the_projects_local_labels_raise(self, ws: Workspace, tiny_detector: Path) -> None:
        pid = _project(ws, "custom", schema_yaml=CUSTOM)
        with ws.sessions() as session, pytest.raises(CxrlabError, match=r"not local labels of its schema site-mini"):
            set_suggest_run(session, project=session.get(Project, pid), run=tiny_detector)
        with ws.sessions() as session:
            assert session.get(Project, pid).suggest_run is None  # nothing stored


class TestSetSuggestRun:
    def test_off_by_default_then_on_then_off_with_events(self, ws: Workspace, tiny_detector: Path) -> None:
        pid = _project(ws)
        with ws.sessions() as session:
            project = session.get(Project, pid)
            assert project.suggest_run is None and project.suggest_model_sha256 is None
            set_suggest_run(session, project=project, run=tiny_detector, author="boss")
        with ws.sessions() as session:
            project = session.get(Project, pid)
            assert project.suggest_run == str(tiny_detector.resolve()) and len(project.suggest_model_sha256) == 64
            set_suggest_run(session, project=project, run=None, author="boss")
            assert session.get(Project, pid).suggest_model_sha256 is None
            events = session.scalars(select(Event).where(Event.action == "project.suggest").order_by(Event.id)).all()
        assert [(e.author, e.detail["run"] is not None) for e in events] == [("boss", True), ("boss", False)]


class TestPredict:
    def test_each_image_is_predicted_once(self, tmp_path: Path, tiny_detector: Path) -> None:
        ws = _workspace(tmp_path, tiny_detector, broken=True)
        pid = _project(ws)
        with ws.sessions() as session:
            project = session.get(Project, pid)
            with pytest.raises(CxrlabError, match="no model suggestions"):
                predict_suggestions(session, ws, project=project)
            set_suggest_run(session, project=project, run=tiny_detector)
            assert suggestion_counts(session, project=project) == {"images": 5, "predicted": 0, "failed": 0,
                                                                  "pending": 5}
            first = predict_suggestions(session, ws, project=project)
            again = predict_suggestions(session, ws, project=project)
            worker = SuggestionWorker(ws).run_once()
            rows = session.scalars(select(Suggestion).order_by(Suggestion.image_pk)).all()
            counts = suggestion_counts(session, project=project)
        assert (first.counts["predicted"], first.counts["failed"]) == (4, 1)
        assert sum(again.counts.values()) == 0 and worker == 0
        assert len(rows) == 5 and len({r.image_pk for r in rows}) == 5
        assert counts == {"images": 5, "predicted": 4, "failed": 1, "pending": 0}
        broken = [r for r in rows if r.error]
        assert broken[0].error == "image img99: cannot be read (DicomReadError)" and broken[0].boxes == []
        assert str(tmp_path) not in broken[0].error  # no path in what is stored
        boxes = [b for r in rows for b in r.boxes]
        assert boxes, "the tiny detector finds something on its own phantoms"
        assert all(b["x_max"] - b["x_min"] >= 4 and b["y_max"] - b["y_min"] >= 4 for b in boxes)
        assert all(b["class_name"] in ("Cardiomegaly", "Nodule/Mass", "Pleural effusion") for b in boxes)

    def test_the_worker_thread_predicts_an_asked_image(self, ws: Workspace, tiny_detector: Path) -> None:
        pid = _project(ws)
        with ws.sessions() as session:
            set_suggest_run(session, project=session.get(Project, pid), run=tiny_detector)
            task = _task(session, pid, "reader1")
            pending = task_suggestions(session, user=_user(session, "reader1"), task_id=task.id)
        assert pending.status == "pending" and pending.boxes == []
        worker = SuggestionWorker(ws, poll_seconds=3600)
        worker.start()
        try:
            worker.notify(pending.image_pk)
            done = threading.Event()
            for _ in range(600):  # waits for the thread; the assertion below is about the result only
                with ws.sessions() as session:
                    if session.scalar(select(func.count(Suggestion.id))) == 4:
                        done.set()
                        break
                time.sleep(0.1)
        finally:
            worker.stop()
        assert done.is_set()
        with ws.sessions() as session:
            ready = task_suggestions(session, user=_user(session, "reader1"), task_id=task.id)
        assert ready.status == "ready" and ready.model == pending.model


class TestTaskSuggestions:
    def test_only_the_readers_own_read_task_of_a_project_with_suggestions(self, tmp_path: Path,
                                                                         tiny_detector: Path) -> None:
        ws = _workspace(tmp_path, tiny_detector)
        pid = _project(ws, test_fraction=1.0)
        with ws.sessions() as session:
            task = _task(session, pid, "reader1")
            reader1 = _user(session, "reader1")
            with pytest.raises(NotFoundError, match="no model suggestions"):
                task_suggestions(session, user=reader1, task_id=task.id)
            set_suggest_run(session, project=session.get(Project, pid), run=tiny_detector)
            for who in ("reader4", "admin", "reviewer1"):
                with pytest.raises(NotFoundError, match="not found"):
                    task_suggestions(session, user=_user(session, who), task_id=task.id)
            review = _task(session, pid, "reviewer1", TaskKind.REVIEW)
            with pytest.raises(NotFoundError, match="not found"):
                task_suggestions(session, user=_user(session, "reviewer1"), task_id=review.id)
            assert task_suggestions(session, user=reader1, task_id=task.id).status == "pending"


def _ready(ws: Workspace, tiny_detector: Path) -> tuple[int, Task, list[dict], str]:
    """A project with suggestions on and predicted; reader1's first task, its image's suggestions, the model."""
    pid = _project(ws)
    with ws.sessions() as session:
        project = session.get(Project, pid)
        set_suggest_run(session, project=project, run=tiny_detector)
        predict_suggestions(session, ws, project=project)
        pk = session.scalar(select(Suggestion.image_pk).where(func.json_array_length(Suggestion.boxes) > 0)
                            .order_by(Suggestion.image_pk))
        task = session.scalar(select(Task).join(User, User.id == Task.user_id).where(
            Task.project_id == pid, User.username == "reader1", Task.image_pk == pk))
        found = task_suggestions(session, user=_user(session, "reader1"), task_id=task.id)
    assert found.status == "ready" and found.boxes
    return pid, task, found.boxes, found.model


class TestProvenance:
    def test_keep_provenance_is_fixed_at_creation(self) -> None:
        suggested = [{"class_name": "Nodule/Mass", "score": 0.3, "x_min": 1, "y_min": 1, "x_max": 9, "y_max": 9}]
        old = Marks([], [Box("Nodule/Mass", 1, 1, 9, 9, "sug-0", "suggestion", "m" * 64, 0.3),
                         Box("Nodule/Mass", 20, 20, 30, 30, "drawn")])
        new = Marks([], [Box("Cardiomegaly", 2, 2, 12, 12, "sug-0"),  # edited: stays a suggestion
                         Box("Nodule/Mass", 20, 20, 30, 30, "drawn", "suggestion")])  # a drawn box cannot become one
        kept = keep_provenance(old, new, suggested=suggested, model="m" * 64)
        assert [(b.id, b.source, b.score) for b in kept.boxes] == [("sug-0", "suggestion", 0.3), ("drawn", None, None)]
        assert kept.boxes[0].class_name == "Cardiomegaly"
        for bad in ("sug-1", "sug-x", "other"):
            with pytest.raises(ValueError, match="does not have"):
                keep_provenance(Marks(), Marks([], [Box("Nodule/Mass", 1, 1, 9, 9, bad, "suggestion")]),
                                suggested=suggested, model="m" * 64)
        with pytest.raises(ValueError, match="does not have"):
            keep_provenance(Marks(), Marks([], [Box("Nodule/Mass", 1, 1, 9, 9, "sug-0", "suggestion")]),
                            suggested=None, model=None)

    def test_an_accepted_suggestion_is_recorded_in_the_draft_the_events_and_the_export(
            self, ws: Workspace, tiny_detector: Path) -> None:
        pid, task, boxes, model = _ready(ws, tiny_detector)
        s = boxes[0]
        coords = [s["x_min"], s["y_min"], s["x_max"], s["y_max"]]
        with ws.sessions() as session:
            reader1 = _user(session, "reader1")
            # the client claims a score and a model: the server's stored ones win
            sent = Box(s["class_name"], *coords, "sug-0", "suggestion", "f" * 64, 0.99)
            drawn = Box(s["class_name"], *coords, "mine1")
            view = save_draft(session, user=reader1, task_id=task.id, version=0, marks=Marks([], [sent, drawn]))
            saved = {b.id: b for b in view.marks.boxes}
            assert (saved["sug-0"].source, saved["sug-0"].model, saved["sug-0"].score) == ("suggestion", model,
                                                                                          s["score"])
            assert saved["mine1"].source is None
            moved = Box(s["class_name"], coords[0] + 1, coords[1], coords[2] + 1, coords[3], "sug-0")  # no source sent
            view = save_draft(session, user=reader1, task_id=task.id, version=1, marks=Marks([], [moved, drawn]))
            assert view.marks.boxes[0].source == "suggestion"
            with pytest.raises(QCError, match="does not have") as refused:
                save_draft(session, user=reader1, task_id=task.id, version=2,
                           marks=Marks([], [moved, drawn, Box(s["class_name"], *coords, "sug-77", "suggestion")]))
            assert refused.value.rule == "unknown_suggestion"
            submit_task(session, user=reader1, task_id=task.id, version=2, suggest=suggest_review,
                        marks=Marks(["Other diseases"], [moved, drawn]))
            created = session.scalars(select(Event).where(Event.action == "annotation.create",
                                                          Event.detail["task_id"].as_integer() == task.id)).all()
            exported = project_json(session, project=session.get(Project, pid))
        by_id = {e.detail["id"]: e.detail for e in created}
        assert by_id["sug-0"]["source"] == "suggestion" and by_id["sug-0"]["model"] == model
        assert "source" not in by_id["mine1"]
        assert exported["suggest"] == {"run": tiny_detector.name, "model": model}
        read = next(t for i in exported["images"] for t in i["tasks"] if t["task_id"] == task.id)
        assert {b["id"]: b["source"] for b in read["marks"]["boxes"]} == {"sug-0": "suggestion", "mine1": "reader"}
        assert str(tiny_detector.parent) not in json.dumps(exported)  # the run's name, never the server's path


class TestCli:
    def test_assign_with_suggest_predicts_and_suggest_off_turns_it_off(self, tmp_path: Path,
                                                                      tiny_detector: Path) -> None:
        from typer.testing import CliRunner

        from cxrlab.cli.main import app

        runner = CliRunner()
        ws = _workspace(tmp_path, tiny_detector)
        w = str(ws.root)
        bad = runner.invoke(app, ["annotate", "assign", "-p", "study", "-w", w, "--suggest", str(tmp_path / "no")])
        assert bad.exit_code == 1 and "no such run folder" in bad.output
        with ws.sessions() as session:
            assert session.scalar(select(func.count(Task.id))) == 0  # refused before anything was assigned
        ok = runner.invoke(app, ["annotate", "assign", "-p", "study", "-w", w, "--suggest", str(tiny_detector)])
        assert ok.exit_code == 0, ok.output
        assert "model suggestions on for project 'study'" in ok.output and "predicted" in ok.output
        with ws.sessions() as session:
            assert session.scalar(select(func.count(Suggestion.id))) == 4
        neither = runner.invoke(app, ["annotate", "suggest", "-p", "study", "-w", w])
        assert neither.exit_code == 1 and "give a detector run folder, or --off" in neither.output
        off = runner.invoke(app, ["annotate", "suggest", "-p", "study", "-w", w, "--off"])
        assert off.exit_code == 0 and "model suggestions off" in off.output
        again = runner.invoke(app, ["annotate", "suggest", "-p", "study", "-w", w, str(tiny_detector)])
        assert again.exit_code == 0 and "nothing to do" in again.output  # predicted once per image and model
        with ws.sessions() as session:
            assert session.scalar(select(Project.suggest_run).where(Project.name == "study")) is not None
        with ws.sessions() as session, session.begin():  # one more image arrives; assigning it predicts it too
            path = _phantoms(tiny_detector)[5]
            ds = pydicom.dcmread(path, stop_before_pixels=True)
            session.add(Image(sop_instance_uid="1.2.3.50", image_id="img50", raw_sha256="5" * 64,
                              raw_path="raw/z.dcm", deid_path=str(path), state=ImageState.ACCEPTED,
                              rows=int(ds.Rows), columns=int(ds.Columns), modality="CR"))
        more = runner.invoke(app, ["annotate", "assign", "-p", "study", "-w", w])
        assert more.exit_code == 0, more.output
        with ws.sessions() as session:
            assert session.scalar(select(func.count(Suggestion.id))) == 5
