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
