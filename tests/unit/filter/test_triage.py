"""The triage queues (:mod:`cxrlab.filter.triage`) and the set-aside decisions (:mod:`cxrlab.annotate.setaside`)
on catalog rows alone: what a queue item carries (codes, never a reader id or a path), how decisions are checked,
and that they are events with their authors that feed training."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select

from cxrlab.annotate.setaside import decide_set_aside
from cxrlab.catalog import init_workspace
from cxrlab.catalog.models import Event, Image, ImageState
from cxrlab.errors import ConflictError, NotFoundError
from cxrlab.filter.triage import candidate_boxes, queue_counts, record_text_decision, triage_image, triage_page
from cxrlab.filter.verify import training_decisions

ROWS = [("f1", ImageState.NEEDS_VERIFICATION, "audit"), ("f2", ImageState.NEEDS_VERIFICATION, "uncertain: lateral 0.6"),
        ("f3", ImageState.NEEDS_VERIFICATION, "not readable by the model: /secret/path.dcm"),
        ("t1", ImageState.FLAGGED_TEXT, "doubtful burned-in text"),
        ("u1", ImageState.FILTERED_OUT, "unusable (R7): poor_quality"),
        ("u2", ImageState.FILTERED_OUT, "unusable (R7): not_chest"),
        ("x1", ImageState.FILTERED_OUT, "body part HAND is not chest"), ("a1", ImageState.ACCEPTED, None)]


@pytest.fixture
def ws(tmp_path: Path):  # noqa: ANN201
    ws = init_workspace(tmp_path / "ws")
    with ws.sessions() as session, session.begin():
        for name, state, reason in ROWS:
            session.add(Image(sop_instance_uid=f"2.25.{len(name)}{ord(name[0])}{name[1]}", image_id=name * 8,
                              raw_sha256="0" * 64, raw_path=f"raw/{name}.dcm",
                              deid_path=None if state == ImageState.FLAGGED_TEXT else f"images/{name}.dicom",
                              state=state, state_reason=reason, rows=100, columns=80))
    yield ws
    ws.engine.dispose()


def pk(ws, name: str) -> int:  # noqa: ANN001
    with ws.sessions() as session:
        return session.scalar(select(Image.id).where(Image.image_id == name * 8))


def test_queues_carry_codes_only(ws) -> None:  # noqa: ANN001
    ws.path("review").mkdir(exist_ok=True)
    ws.path("review", "t1" * 8 + ".json").write_text(json.dumps({"candidates": [
        {"box": [1, 2, 30, 40], "status": "doubtful"}, {"box": [5, 5, 9, 9], "status": "ignored"}]}))
    with ws.sessions() as session:
        assert queue_counts(session) == {"filter": 3, "text": 1, "unusable": 2}
        f = triage_page(session, ws, "filter")
        t = triage_page(session, ws, "text")
        u = triage_page(session, ws, "unusable")
        assert [i.why for i in f] == ["audit", "uncertain", "unreadable"]
        assert t[0].boxes == [[1, 2, 30, 40]] and (t[0].rows, t[0].columns) == (100, 80)
        assert [i.why for i in u] == ["poor_quality", "not_chest"]
        assert "R7" not in repr(u) and "secret" not in repr(f)
        assert [i.pk for i in triage_page(session, ws, "filter", limit=1, after_pk=f[0].pk)] == [f[1].pk]
        with pytest.raises(ValueError):
            triage_page(session, ws, "everything")
        with pytest.raises(NotFoundError):
            triage_image(session, pk(ws, "a1"))
        with pytest.raises(NotFoundError):
            triage_image(session, pk(ws, "x1"))
        assert triage_image(session, pk(ws, "u1")).image_id == "u1" * 8


@pytest.mark.parametrize("text", ["not json", "[]", '{"candidates": [{"box": "abc"}]}', '{"candidates": 3}'])
def test_unreadable_candidate_files_give_no_boxes(ws, text: str) -> None:  # noqa: ANN001
    ws.path("review").mkdir(exist_ok=True)
    ws.path("review", "t1" * 8 + ".json").write_text(text)
    assert candidate_boxes(ws, "t1" * 8) == []


def test_text_decisions_are_checked(ws) -> None:  # noqa: ANN001
    t1 = pk(ws, "t1")
    with ws.sessions() as session:
        for kwargs in ({"action": "shred"}, {"action": "discard", "author": " "},
                       {"action": "redact", "boxes": [[1, 2, 3]]}, {"action": "redact", "boxes": [[1, 2, 3, -4]]},
                       {"action": "redact", "boxes": []}, {"action": "redact"}):  # no candidates recorded
            with pytest.raises(ValueError):
                record_text_decision(session, ws, image_pk=t1, **{"author": "vera", **kwargs})
        with pytest.raises(NotFoundError):
            record_text_decision(session, ws, image_pk=10**6, action="discard", author="vera")
        with pytest.raises(ConflictError):
            record_text_decision(session, ws, image_pk=pk(ws, "f1"), action="discard", author="vera")
        img = record_text_decision(session, ws, image_pk=t1, action="discard", author="vera")
        assert (img.state, img.state_reason) == (ImageState.FILTERED_OUT, "discarded: burned-in text")
        ev = session.scalars(select(Event).where(Event.image_pk == t1)).one()
        assert (ev.stage, ev.action, ev.author) == ("deid", "text.discard", "vera")
        assert queue_counts(session)["text"] == 0


def test_set_aside_decisions(ws) -> None:  # noqa: ANN001
    u1, u2 = pk(ws, "u1"), pk(ws, "u2")
    with ws.sessions() as session:
        with pytest.raises(ValueError):
            decide_set_aside(session, image_pk=u1, action="shred", author="vera")
        with pytest.raises(ConflictError):
            decide_set_aside(session, image_pk=pk(ws, "x1"), action="confirm", author="vera")
        img = decide_set_aside(session, image_pk=u1, action="confirm", author="vera")
        assert img.state == ImageState.FILTERED_OUT and img.state_reason == "unusable, confirmed: poor_quality"
        with pytest.raises(ConflictError):
            decide_set_aside(session, image_pk=u1, action="return", author="otto")
        img = decide_set_aside(session, image_pk=u2, action="return", author="otto")
        assert img.state == ImageState.ASSIGNED and img.state_reason is None
        assert queue_counts(session)["unusable"] == 0
        events = session.execute(select(Event.image_pk, Event.action, Event.author, Event.detail)
                                 .order_by(Event.id)).all()
        assert [(e[1], e[2], e[3]["reason"]) for e in events] == [("verify.confirm", "vera", "poor_quality"),
                                                                   ("verify.return", "otto", "not_chest")]
        # A return trains the model as a frontal chest.
        assert [(d.image_pk, d.klass) for d in training_decisions(session, population="adult")] == [
            (u2, "frontal_chest")]
