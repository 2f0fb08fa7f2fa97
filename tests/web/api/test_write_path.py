"""The write path of a reader's loop stays short: what save and submit run inside the catalog's write transaction
(while every other SQLite writer waits), and what they read back afterwards. Counts statements, not time."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest
from sqlalchemy import event, select

from cxrlab.annotate import tasks, writes
from cxrlab.annotate.marks import Box, Marks
from cxrlab.annotate.readings import ReadingInput, record_reading
from cxrlab.annotate.users import get_user
from cxrlab.catalog.models import Event, Reading
from cxrlab.consensus import suggest_review
from cxrlab.schemas import get_schema
from tests.web.conftest import Site


class Statements:
    """The SQL statements a catalog engine runs, and which of them ran inside ``writes.transaction``."""

    def __init__(self) -> None:
        self.all: list[str] = []
        self.locked: list[str] = []
        self.in_transaction = False

    def __call__(self, conn, cursor, statement, parameters, context, executemany) -> None:  # noqa: ANN001
        self.all.append(statement)
        if self.in_transaction:
            self.locked.append(statement)


@pytest.fixture
def statements(site: Site, monkeypatch: pytest.MonkeyPatch) -> Iterator[Statements]:
    seen = Statements()
    original = writes.transaction

    @contextlib.contextmanager
    def watched(session):  # noqa: ANN001, ANN202
        with original(session) as s:
            seen.in_transaction = True
            try:
                yield s
            finally:
                seen.in_transaction = False

    monkeypatch.setattr(tasks, "transaction", watched)
    event.listen(site.workspace.engine, "before_cursor_execute", seen)
    yield seen
    event.remove(site.workspace.engine, "before_cursor_execute", seen)


def _marks(*labels: str) -> Marks:
    return Marks(list(labels), [Box("Cardiomegaly", 10.0, 10.0, 40.0, 40.0, "b1")])


class TestWritePath:
    def test_save_runs_two_statements_in_its_transaction_and_reads_nothing_back(
        self, site: Site, statements: Statements
    ) -> None:
        proj = site.project(train=1)
        task_id = proj.tasks[("reader1", proj.images[0])]
        with site.workspace.sessions() as session:
            user = get_user(session, "reader1")
            statements.all.clear()
            view = tasks.save_draft(session, user=user, task_id=task_id, version=0, marks=_marks("Cardiomegaly"))
            assert (view.task.version, view.task.state.value, view.marks.labels) == (1, "draft", ["Cardiomegaly"])
        # the conditional UPDATE and one INSERT of every audit row (a box and a label: 2 rows)
        assert [s.split()[0] for s in statements.locked] == ["UPDATE", "INSERT"]
        assert len(statements.all) == 3  # and the task read before: no read-back after the commit
        with site.workspace.sessions() as session:
            actions = session.scalars(select(Event.action).where(Event.detail["task_id"].as_integer() == task_id))
            assert sorted(actions) == ["annotation.create", "label.create"]

    def test_submit_runs_one_statement_per_table_in_its_transaction(self, site: Site, statements: Statements) -> None:
        proj = site.project(train=1)
        task_id = proj.tasks[("reader1", proj.images[0])]
        with site.workspace.sessions() as session:
            user = get_user(session, "reader1")
            statements.all.clear()
            view = tasks.submit_task(session, user=user, task_id=task_id, version=0, suggest=suggest_review,
                                     marks=_marks("Other diseases", "Cardiomegaly"))
            assert (view.task.version, view.task.state.value) == (1, "submitted")
            assert view.task.submitted_at is not None
        verbs = [" ".join(s.split()[:3]) for s in statements.locked]
        # lock the image (and read its state), bump the task, replace the reading (delete, insert, labels, boxes),
        # every event in one INSERT (reading, 3 audit rows, the submit), the image's open read tasks
        assert verbs == ["UPDATE images SET", "UPDATE tasks SET", "DELETE FROM readings", "INSERT INTO readings",
                         "INSERT INTO reading_labels", "INSERT INTO reading_boxes", "INSERT INTO events",
                         "SELECT tasks.state FROM"]
        assert len(statements.all) == len(statements.locked) + 1  # the task read before, nothing after
        with site.workspace.sessions() as session:
            reading = session.scalar(select(Reading).where(Reading.rad_id == user.rad_id,
                                                           Reading.image_pk == view.image.id))
            assert sorted(lb.label for lb in reading.labels) == ["Cardiomegaly", "Other diseases"]
            assert [(b.class_name, b.x_max) for b in reading.boxes] == [("Cardiomegaly", 40.0)]
            actions = list(session.scalars(select(Event.action).where(Event.image_pk == view.image.id,
                                                                      Event.stage == "annotate").order_by(Event.id)))
            assert actions[-5:] == ["reading", "annotation.create", "label.create", "label.create", "reading.submit"]

    def test_replacing_a_reading_whose_row_is_still_held(self, site: Site) -> None:
        proj = site.project(train=1)
        schema = get_schema("vindr-cxr")
        with site.workspace.sessions() as session:
            first = record_reading(session, schema, ReadingInput(proj.images[0], "R99", ["Other diseases"]))
            assert [lb.label for lb in first.labels] == ["Other diseases"]
            second = record_reading(session, schema, ReadingInput(proj.images[0], "R99", ["No finding"]))
            session.commit()
            assert [lb.label for lb in second.labels] == ["No finding"] and second.boxes == []
            rows = session.scalars(select(Reading.id).where(Reading.rad_id == "R99")).all()
            assert rows == [second.id]
