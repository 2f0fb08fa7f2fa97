"""``cxrlab users add|list|disable`` and ``cxrlab annotate assign|status``."""

from __future__ import annotations

import hashlib

import pytest
from pydicom.uid import generate_uid
from sqlalchemy import func, select
from typer.testing import CliRunner

from cxrlab.catalog.models import Image, ImageState, Task, TaskKind
from cxrlab.cli.main import app
from tests.support.users import PASSWORD

runner = CliRunner()


def _add(ws, n: int) -> None:  # noqa: ANN001
    with ws.sessions() as session, session.begin():
        for i in range(n):
            image_id = hashlib.sha256(f"img{i}".encode()).hexdigest()[:32]
            session.add(Image(sop_instance_uid=generate_uid(), image_id=image_id, raw_sha256=image_id * 2,
                              raw_path="raw/x", deid_path="images/x.dicom", state=ImageState.ACCEPTED, rows=64,
                              columns=64))


class TestUsersCli:
    def test_add_list_disable(self, workspace) -> None:  # noqa: ANN001
        w = ["-w", str(workspace.root)]
        r = runner.invoke(app, ["users", "add", "alice", "--role", "annotator", "--password-stdin", *w],
                          input=f"{PASSWORD}\n")
        assert r.exit_code == 0, r.output
        assert "reader id R1" in r.output
        r = runner.invoke(app, ["users", "list", *w])
        assert "alice" in r.output and "annotator" in r.output
        assert runner.invoke(app, ["users", "disable", "alice", *w]).exit_code == 0
        assert "no" in runner.invoke(app, ["users", "list", *w]).output

    def test_only_annotators_get_reader_ids(self, workspace) -> None:  # noqa: ANN001
        """Admins and reviewers read no image: they take no reader id, so the first annotator is R1."""
        w = ["-w", str(workspace.root)]
        for name, role in (("boss", "admin"), ("rev", "reviewer"), ("ann", "annotator")):
            r = runner.invoke(app, ["users", "add", name, "--role", role, "--password-stdin", *w],
                              input=f"{PASSWORD}\n")
            assert r.exit_code == 0, r.output
        assert "added ann (annotator, reader id R1)" in r.output
        listing = runner.invoke(app, ["users", "list", *w]).output
        assert "R2" not in listing and "R3" not in listing

    def test_errors_exit_1(self, workspace) -> None:  # noqa: ANN001
        w = ["-w", str(workspace.root)]
        r = runner.invoke(app, ["users", "add", "bob", "--password-stdin", *w], input="short\n")
        assert r.exit_code == 1 and "at least 8" in r.output
        r = runner.invoke(app, ["users", "add", "bob", "--role", "boss", "--password-stdin", *w],
                          input=f"{PASSWORD}\n")
        assert r.exit_code == 1 and "unknown role" in r.output
        assert runner.invoke(app, ["users", "disable", "ghost", *w]).exit_code == 1


class TestAssignCli:
    @pytest.mark.slow  # five users (Argon2 hashes) and a project of 8 images
    def test_assign_and_status(self, workspace) -> None:  # noqa: ANN001
        w = ["-w", str(workspace.root)]
        for name, role in [("a1", "annotator"), ("a2", "annotator"), ("a3", "annotator"), ("r1", "reviewer"),
                           ("r2", "reviewer")]:
            runner.invoke(app, ["users", "add", name, "--role", role, "--password-stdin", *w],
                          input=f"{PASSWORD}\n")
        _add(workspace, 8)
        r = runner.invoke(app, ["annotate", "assign", "-p", "study", "--test-fraction", "0.25", *w])
        assert r.exit_code == 0, r.output
        assert "created project 'study'" in r.output
        with workspace.sessions() as session:
            reads = session.scalar(select(func.count(Task.id)).where(Task.kind == TaskKind.READ))
            reviews = session.scalar(select(func.count(Task.id)).where(Task.kind == TaskKind.REVIEW))
        assert (reads, reviews) == (24, 4)  # 8 images x 3 readers; 2 test images x 2 reviewers
        r = runner.invoke(app, ["annotate", "status", "-p", "study", *w])
        assert r.exit_code == 0 and "test" in r.output and "train" in r.output and "pending 18" in r.output
        assert runner.invoke(app, ["annotate", "status", "-p", "nope", *w]).exit_code == 1

    def test_not_enough_readers_exits_1(self, workspace) -> None:  # noqa: ANN001
        _add(workspace, 1)
        r = runner.invoke(app, ["annotate", "assign", "-p", "study", "-w", str(workspace.root)])
        assert r.exit_code == 1 and "needs 3 readers" in r.output

    def test_bad_schema_file_exits_1(self, workspace, tmp_path) -> None:  # noqa: ANN001
        bad = tmp_path / "bad.yaml"
        bad.write_text("name: x\nlabels: [{name: A, kind: nope}]\n")
        r = runner.invoke(app, ["annotate", "assign", "-p", "s2", "--schema-file", str(bad), "-w", str(workspace.root)])
        assert r.exit_code == 1 and "bad.yaml: label #1" in r.output


class TestGoldCli:
    def test_gold_assign_with_rate_and_quality(self, workspace) -> None:  # noqa: ANN001
        """Mark decided images as gold from an expert's read, mix them into a new reader's queue with
        ``--gold-rate``, and score that reader with ``annotate quality``."""
        from cxrlab.annotate.marks import Box, Marks
        from cxrlab.annotate.tasks import list_tasks, submit_task
        from cxrlab.annotate.users import get_user
        from cxrlab.consensus import suggest_review

        w = ["-w", str(workspace.root)]
        for name in ("a1", "a2", "a3", "a4"):
            runner.invoke(app, ["users", "add", name, "--password-stdin", *w], input="long enough password\n")
        _add(workspace, 2)
        assert runner.invoke(app, ["annotate", "assign", "-p", "study", "--reader", "a1", "--reader", "a2",
                                   "--reader", "a3", *w]).exit_code == 0
        expert = Marks(["Lung tumor", "Nodule/Mass"], [Box("Nodule/Mass", 10, 10, 30, 30)])
        with workspace.sessions() as session:
            for name in ("a1", "a2", "a3"):
                user = get_user(session, name)
                for view in list_tasks(session, user=user)[0]:
                    marks = expert if name == "a1" else Marks(["No finding"])
                    submit_task(session, user=user, task_id=view.task.id, version=0, marks=marks,
                                suggest=suggest_review)
            gold_ids = sorted(v.image.image_id for v in list_tasks(session, user=get_user(session, "a1"))[0])
        r = runner.invoke(app, ["annotate", "gold", "-p", "study", "--source", "reader:R1", *gold_ids, *w])
        assert r.exit_code == 0, r.output
        assert "marked" in r.output and "Lung tumor," in r.output and "Nodule/Mass" in r.output
        assert all(i[:8] in r.output for i in gold_ids) and "…" not in r.output
        r = runner.invoke(app, ["annotate", "gold", "-p", "study", "--source", "reader:R1", "nope", *w])
        assert r.exit_code == 1 and "'nope' not found" in r.output
        with workspace.sessions() as session, session.begin():
            for i in range(2, 4):
                image_id = hashlib.sha256(f"img{i}".encode()).hexdigest()[:32]
                session.add(Image(sop_instance_uid=generate_uid(), image_id=image_id, raw_sha256=image_id * 2,
                                  raw_path="raw/x", deid_path="images/x.dicom", state=ImageState.ACCEPTED, rows=64,
                                  columns=64))
        r = runner.invoke(app, ["annotate", "assign", "-p", "study", "--gold-rate", "0.5", "--reader", "a2",
                                "--reader", "a3", "--reader", "a4", *w])
        assert r.exit_code == 0, r.output
        assert "gold_tasks" in r.output
        assert runner.invoke(app, ["annotate", "assign", "-p", "study", "--gold-rate", "0.9", *w]).exit_code == 2
        with workspace.sessions() as session:
            a4 = get_user(session, "a4")
            for view in list_tasks(session, user=a4)[0]:
                if view.image.image_id in gold_ids:
                    marks = expert if view.image.image_id == gold_ids[0] else Marks(["Pneumonia"])
                    submit_task(session, user=a4, task_id=view.task.id, version=0, marks=marks,
                                suggest=suggest_review)
        r = runner.invoke(app, ["annotate", "quality", "-p", "study", *w])
        assert r.exit_code == 0, r.output
        assert "R4" in r.output and "a4" in r.output and "2 gold image(s)" in r.output
        r = runner.invoke(app, ["annotate", "quality", "-p", "study", "--json", *w])
        (reader,) = __import__("json").loads(r.output)["readers"]
        # both gold images hold the expert's box; a4 drew it on one of them only
        assert reader["boxes"] == {"gold": 2, "reader": 1, "matched": 1, "f1": 0.6667}
        assert reader["labels"]["Lung tumor"]["sensitivity"] == 0.5 and reader["labels"]["Pneumonia"]["fp"] == 1


class TestPasswordCli:
    def test_password_resets_and_is_an_event(self, workspace) -> None:  # noqa: ANN001
        from cxrlab.annotate.users import authenticate
        from cxrlab.catalog.models import Event

        w = ["-w", str(workspace.root)]
        runner.invoke(app, ["users", "add", "alice", "--password-stdin", *w], input="long enough password\n")
        r = runner.invoke(app, ["users", "password", "alice", "--password-stdin", *w], input="another long one\n")
        assert r.exit_code == 0 and "new password set for alice" in r.output
        with workspace.sessions() as session:
            assert authenticate(session, username="alice", password="another long one").username == "alice"
            actions = [(e.action, e.author) for e in session.scalars(select(Event).where(Event.stage == "admin"))]
        assert actions == [("user.create", "cli"), ("user.password", "cli")]
        assert runner.invoke(app, ["users", "password", "ghost", "--password-stdin", *w],
                             input="long enough password\n").exit_code == 1
