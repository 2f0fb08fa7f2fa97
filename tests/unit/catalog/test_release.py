"""The repository of release tables (catalog/release.py) and the transaction idiom (catalog/db.py)."""

from __future__ import annotations

import warnings

import pandas as pd
import pytest
from sqlalchemy import func, select

from cxrlab.catalog import ConsensusLabel, Event, Image, ImageState, transaction
from cxrlab.catalog.db import writer_lock
from cxrlab.catalog.models import ConsensusBox
from cxrlab.catalog.release import (
    CONSENSUS_STATES,
    add_events,
    add_images,
    load_release,
    replace_consensus,
    set_release_fields,
    store_consensus,
    store_readings,
)
from cxrlab.consensus import label_votes, majority_vote
from cxrlab.schemas import BOX_COLUMNS, get_schema
from cxrlab.schemas.synthetic import synthetic_release


def _records(tables, state: ImageState = ImageState.LABELED) -> list[dict]:  # noqa: ANN001
    return [{"sop_instance_uid": f"import:{iid}", "image_id": iid, "raw_sha256": iid * 2, "raw_path": "",
             "state": state, "rows": 3000, "columns": 2500} for iid in tables.images["image_id"]]


@pytest.fixture
def stored(workspace):  # noqa: ANN001, ANN201
    """A workspace holding 8 synthetic images with 3 readers each; returns (workspace, tables)."""
    tables = synthetic_release(8, seed=3)
    with workspace.transaction() as session:
        add_images(session, _records(tables))
        store_readings(session, tables)
    return workspace, tables


class TestTransaction:
    def test_commits_on_success_and_closes_its_session(self, workspace) -> None:  # noqa: ANN001
        with transaction(workspace) as session:
            session.add(Event(stage="test", action="commit"))
        assert session.get_bind() is not None and not session.in_transaction()
        with workspace.sessions() as s:
            assert s.scalar(select(func.count(Event.id))) == 1

    def test_rolls_back_on_error_raises(self, workspace) -> None:  # noqa: ANN001
        with pytest.raises(RuntimeError, match="boom"), workspace.transaction() as session:
            session.add(Event(stage="test", action="rolled back"))
            session.flush()
            raise RuntimeError("boom")
        with workspace.sessions() as s:
            assert s.scalar(select(func.count(Event.id))) == 0

    def test_holds_the_writer_lock_and_leaves_a_given_session_open(self, workspace) -> None:  # noqa: ANN001
        lock = writer_lock(workspace.engine)
        with workspace.sessions() as session:
            with transaction(session) as same:
                assert same is session and lock.locked()
                session.add(Event(stage="test", action="a"))
            assert not lock.locked()
            session.add(Event(stage="test", action="b"))  # the session is still usable
            with transaction(session):
                pass
        with transaction(workspace.engine) as s:
            assert s.scalar(select(func.count(Event.id))) == 2


class TestLoadRelease:
    def test_round_trip_of_readers(self, stored) -> None:  # noqa: ANN001
        ws, tables = stored
        with ws.sessions() as session:
            loaded = load_release(session, tables.schema, states=CONSENSUS_STATES)
        names = tables.schema.names
        key = ["image_id", "rad_id", "class_name", *BOX_COLUMNS]
        pd.testing.assert_frame_equal(
            loaded.reader_boxes[key].sort_values(key).reset_index(drop=True),
            tables.reader_boxes[key].astype({"rad_id": str}).sort_values(key).reset_index(drop=True))
        # A local label is marked when the reader drew a box of that class.
        drawn = pd.crosstab([tables.reader_boxes["image_id"], tables.reader_boxes["rad_id"]],
                            tables.reader_boxes["class_name"]).clip(upper=1)
        expected = tables.reader_labels.set_index(["image_id", "rad_id"])[names]
        expected = expected | drawn.reindex(index=expected.index, columns=names, fill_value=0)
        got = loaded.reader_labels.set_index(["image_id", "rad_id"])[names]
        pd.testing.assert_frame_equal(got.sort_index(), expected.sort_index().astype(int), check_names=False)
        assert list(loaded.images["image_id"]) == list(tables.images["image_id"])  # catalog order
        assert loaded.images["split"].isna().all() and loaded.consensus_labels.empty

    def test_other_states_are_left_out(self, stored) -> None:  # noqa: ANN001
        ws, tables = stored
        with ws.sessions() as session:
            loaded = load_release(session, tables.schema, states=(ImageState.ACCEPTED,))
        assert loaded.images.empty and loaded.reader_labels.empty and loaded.reader_boxes.empty


class TestReplaceConsensus:
    def test_replaces_automatic_rows_and_keeps_review_decisions(self, stored) -> None:  # noqa: ANN001
        ws, tables = stored
        names = tables.schema.names
        first, second = tables.images["image_id"].iloc[:2]
        decided = tables.subset([first])
        decided.consensus_labels = pd.DataFrame([{"image_id": first, **dict.fromkeys(names, 1)}])
        decided.consensus_boxes = pd.DataFrame([{"image_id": first, "class_name": "Nodule/Mass", "x_min": 1.0,
                                                 "y_min": 2.0, "x_max": 30.0, "y_max": 40.0, "score": None,
                                                 "votes": None}])
        labels = label_votes(tables.reader_labels, names)
        boxes = pd.DataFrame([{"image_id": iid, "class_name": "Cardiomegaly", "x_min": 10.0, "y_min": 10.0,
                               "x_max": 99.0, "y_max": 99.0, "score": 1.0, "votes": 3} for iid in (first, second)])
        with ws.transaction() as session:
            store_consensus(session, decided, author="dr.who")
            for _ in range(2):  # idempotent
                stored_counts = replace_consensus(session, image_ids=tables.images["image_id"], labels=labels,
                                                  boxes=boxes, label_method="majority>0.5", box_method="wbf@0.4")
        assert stored_counts == {"reviewed_labels_kept": len(names), "images_with_reviewed_boxes": 1,
                                 "fused_boxes": 1}
        with ws.sessions() as session:
            rows = session.execute(select(Image.image_id, ConsensusLabel.label, ConsensusLabel.positive,
                                          ConsensusLabel.method).join(Image)).all()
            box_rows = session.execute(select(Image.image_id, ConsensusBox.method).join(Image)).all()
        assert len(rows) == len(names) * len(tables.images)
        assert {(p, m) for iid, _, p, m in rows if iid == first} == {(1, "review")}
        auto = labels.set_index(["image_id", "label"])["positive"]
        assert all(auto[(iid, lab)] == p for iid, lab, p, m in rows if iid != first)
        assert sorted(box_rows) == sorted([(first, "review"), (second, "wbf@0.4")])


class TestReleaseFields:
    def test_split_state_and_events(self, stored) -> None:  # noqa: ANN001
        ws, tables = stored
        ids = list(tables.images["image_id"])
        split = pd.Series(["test" if i < 3 else "train" for i in range(len(ids))], index=ids)
        with ws.transaction() as session:
            set_release_fields(session, split, state=ImageState.RELEASED)
            add_events(session, ids, stage="export", action="released", detail={"tag": "v1"})
        with ws.sessions() as session:
            got = dict(session.execute(select(Image.image_id, Image.split)).all())
            states = set(session.scalars(select(Image.state)))
            events = session.execute(select(Event.action, Event.detail)).all()
        assert got == split.to_dict() and states == {ImageState.RELEASED}
        assert events == [("released", {"tag": "v1"})] * len(ids)


class TestLabelVotes:
    def test_tally_and_strict_majority(self) -> None:
        names = get_schema("vindr-cxr").names
        readers = pd.DataFrame({"image_id": ["a"] * 3 + ["b"] * 4,
                                "rad_id": ["R1", "R2", "R3", "R1", "R2", "R3", "R4"]})
        for n in names:
            readers[n] = 0
        readers.loc[[0, 1], "Nodule/Mass"] = 1  # 2 of 3: positive
        readers.loc[[3, 4], "Nodule/Mass"] = 1  # 2 of 4: a tie is negative
        votes = label_votes(readers, names).set_index(["image_id", "label"])
        assert tuple(votes.loc[("a", "Nodule/Mass")]) == (1, 2, 3)
        assert tuple(votes.loc[("b", "Nodule/Mass")]) == (0, 2, 4)
        assert len(votes) == 2 * len(names)
        wide = votes["positive"].unstack()[names].reset_index()
        pd.testing.assert_frame_equal(wide, majority_vote(readers), check_names=False, check_dtype=False)


class TestRenamedStages:
    def test_old_names_still_work_and_warn(self) -> None:
        from cxrlab.export import run_export
        from cxrlab.ingest import run_ingest

        with pytest.warns(DeprecationWarning, match="use cxrlab.ingest.run_ingest"):
            from cxrlab.ingest import ingest_folder
        with pytest.warns(DeprecationWarning, match="use cxrlab.export.run_export"):
            from cxrlab.export import export_release
        assert ingest_folder is run_ingest and export_release is run_export
        with warnings.catch_warnings(), pytest.raises(ImportError):
            warnings.simplefilter("error")
            from cxrlab.ingest import no_such_name  # noqa: F401
