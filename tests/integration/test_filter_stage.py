"""``cxrlab filter run`` with a model on a real SQLite workspace: header rules, then the model, the audit sample,
verification decisions as events with their authors, and training on those decisions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, select, text
from typer.testing import CliRunner

from cxrlab.catalog import init_workspace
from cxrlab.catalog.db import current_revision, upgrade
from cxrlab.catalog.models import Event, FilterScore, Image, ImageState
from cxrlab.cli.main import app
from cxrlab.deid import run_deid
from cxrlab.dicom.phantom import generate_phantoms
from cxrlab.errors import ConflictError
from cxrlab.filter import record_verification, run_filter, training_decisions
from cxrlab.filter.stage import audit_draw
from cxrlab.filter.verify import verification_queue
from cxrlab.ingest import run_ingest
from cxrlab.runtime import Executor
from tests.unit.filter.conftest import HAVE_TRAIN, constant_model, needs_onnx, train_cli

runner = CliRunner()
# slow: each test ingests and de-identifies phantoms into a real SQLite workspace, then runs onnxruntime workers.
pytestmark = [needs_onnx, pytest.mark.slow]


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Says "frontal chest, 90 %, adult" of every image: everything is accepted at the default threshold."""
    return constant_model(tmp_path_factory.mktemp("model") / "frontal.onnx", (0.9, 0.05, 0.03, 0.02), 0.01)


@pytest.fixture(scope="module")
def unsure(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Says "frontal chest, 60 %" of every image: everything needs verification at the default threshold."""
    return constant_model(tmp_path_factory.mktemp("model") / "unsure.onnx", (0.6, 0.3, 0.05, 0.05), 0.01)


def _workspace(root: Path, n: int = 14):  # noqa: ANN202 - a Workspace
    """Phantoms (half of them outliers, every outlier's header lying) ingested and de-identified."""
    truths = generate_phantoms(root / "in", n, seed=11, size_range=(256, 384), text_prob=0.0, outlier_prob=0.5,
                               mislabel_prob=1.0)
    ws = init_workspace(root / "ws")
    run_ingest(ws, root / "in", executor=Executor(1))
    run_deid(ws, executor=Executor(1), text=False)
    return ws, truths


class TestRunFilterWithModel:
    def test_states_events_scores_and_rerun(self, tmp_path: Path) -> None:
        ws, truths = _workspace(tmp_path)
        assert sum(t.header_mislabelled for t in truths) == sum(t.outlier is not None for t in truths) > 0
        model = constant_model(tmp_path / "lateral.onnx", (0.04, 0.95, 0.005, 0.005), 0.0)
        report = run_filter(ws, model=model, audit_fraction=0.0, executor=Executor(2))
        assert report.counts == {"filtered_out": len(truths)}
        with ws.sessions() as s:
            images = s.scalars(select(Image)).all()
            states = {img.state for img in images}
            assert states <= {ImageState.ACCEPTED, ImageState.FILTERED_OUT, ImageState.NEEDS_VERIFICATION}
            assert sum(report.counts.values()) == len(images) == len(truths)
            scores = s.scalars(select(FilterScore)).all()
            assert len(scores) == len(images)  # every header lies, so the model decides every image
            for sc in scores:
                img = s.get(Image, sc.image_pk)
                assert img.state.value == sc.decision
                if img.state == ImageState.FILTERED_OUT:
                    assert img.state_reason == sc.klass
                assert set(sc.probabilities) == {"frontal_chest", "lateral", "other_body_part", "low_quality",
                                                 "pediatric"}
            events = s.scalars(select(Event).where(Event.stage == "filter")).all()
            assert {e.detail["by"] for e in events} == {"model"} and len(events) == len(images)
        again = run_filter(ws, model=model)
        assert not any(again.counts.values()) and "no de-identified image" in again.notes[0]

    def test_audit_sample_is_seeded_and_counted(self, model: Path, tmp_path: Path) -> None:
        ws, _ = _workspace(tmp_path)
        # Every image is accepted by the model; audit 1.0: every accepted image waits for a human.
        report = run_filter(ws, model=model, audit_fraction=1.0, executor=Executor(1))
        with ws.sessions() as s:
            accepted = s.scalars(select(Image).where(Image.state == ImageState.ACCEPTED)).all()
            audited = s.scalars(select(Image).where(Image.state_reason == "audit")).all()
        assert not accepted and report.counts["audit"] == len(audited) == report.counts["needs_verification"] > 0
        assert all(img.state == ImageState.NEEDS_VERIFICATION for img in audited)
        assert audit_draw("abc", 0) == audit_draw("abc", 0) != audit_draw("abc", 1)

    def test_a_thumbnail_for_every_image_the_model_decided(self, unsure: Path, tmp_path: Path) -> None:
        """``filter run`` writes ``thumbs/<image_id>.jpg`` from the decode it does for the model: one per image it
        decided, the bytes the triage route rendered before (same window and size), and no temporary left; an
        unreadable file gets none (the triage route answers for it as before)."""
        from cxrlab.dicom.display import encode, to_uint8

        ws, truths = _workspace(tmp_path, n=8)
        with ws.sessions() as s:
            bad = s.scalars(select(Image).order_by(Image.id)).first()
            (ws.root / bad.deid_path).write_bytes(b"garbage")
            bad_id = bad.image_id
        for f in ws.path("thumbs").iterdir():
            f.unlink()
        report = run_filter(ws, model=unsure, audit_fraction=0.0, executor=Executor(2))
        assert sum(report.counts.values()) == len(truths)
        with ws.sessions() as s:
            decided = {img.image_id: img for img in s.scalars(select(Image)) if img.image_id != bad_id}
        assert sorted(p.name for p in ws.path("thumbs").iterdir()) == sorted(f"{i}.jpg" for i in decided)
        for image_id, img in decided.items():
            assert img.state == ImageState.NEEDS_VERIFICATION
            data = ws.path("thumbs", f"{image_id}.jpg").read_bytes()
            assert data == encode(to_uint8(ws.root / img.deid_path, max_size=256), "jpeg")
        assert any("1 triage thumbnail(s) not written" in n for n in report.notes)

    def test_bad_file_does_not_stop_the_batch(self, model: Path, tmp_path: Path) -> None:
        ws, truths = _workspace(tmp_path, n=6)
        with ws.sessions() as s:
            first = s.scalars(select(Image).order_by(Image.id)).first()
            (ws.root / first.deid_path).write_bytes(b"garbage")
            first_pk = first.id
        report = run_filter(ws, model=model, executor=Executor(1))
        # "audit" counts the sampled images among needs_verification (the draw depends on the workspace's random
        # key), so it is not a decision of its own
        decisions = sum(n for name, n in report.counts.items() if name != "audit")
        assert decisions == len(truths) and len(report.problems) == 1
        with ws.sessions() as s:
            img = s.get(Image, first_pk)
            assert img.state == ImageState.NEEDS_VERIFICATION and img.state_reason.startswith("not readable")

    def test_cli_run_queue_verify_and_train(self, unsure: Path, tmp_path: Path) -> None:
        ws, _ = _workspace(tmp_path)
        r = runner.invoke(app, ["filter", "run", "-w", str(ws.root), "--model", str(unsure), "-j", "1"])
        assert r.exit_code == 0, r.output
        assert "needs_verification" in r.stdout and "model " in r.stdout
        r = runner.invoke(app, ["filter", "train", "-w", str(ws.root), "-o", str(tmp_path / "ws.onnx")])
        assert r.exit_code == 1 and "no human decisions to train on" in r.stderr
        with ws.sessions() as s:
            waiting = [img.image_id for img in verification_queue(s)]
        assert len(waiting) >= 2
        r = runner.invoke(app, ["filter", "queue", "-w", str(ws.root)])
        assert r.exit_code == 0 and waiting[0] in r.stdout
        r = runner.invoke(app, ["filter", "verify", waiting[0], "--accept", "--author", "vera", "-w", str(ws.root)])
        assert r.exit_code == 0 and "accepted" in r.stdout, r.output
        r = runner.invoke(app, ["filter", "verify", waiting[1], "--outlier", "lateral", "--author", "vera",
                                "-w", str(ws.root)])
        assert r.exit_code == 0 and "filtered_out" in r.stdout, r.output
        r = runner.invoke(app, ["filter", "verify", waiting[1], "--accept", "--author", "vera", "-w", str(ws.root)])
        assert r.exit_code == 1 and "not waiting for verification" in r.stderr


class TestVerification:
    def test_decisions_are_events_with_authors_and_feed_training(self, unsure: Path, tmp_path: Path) -> None:
        ws, _ = _workspace(tmp_path)
        run_filter(ws, model=unsure, executor=Executor(1))
        with ws.sessions() as s:
            assert training_decisions(s, population="adult") == []
            page = verification_queue(s, limit=2)
            assert len(page) == 2 and verification_queue(s, after_pk=page[0].id)[0].id == page[1].id
            a = record_verification(s, image_pk=page[0].id, action="accept", author="vera")
            b = record_verification(s, image_pk=page[1].id, action="outlier", reason="lateral", author="otto")
            assert a.state == ImageState.ACCEPTED and b.state == ImageState.FILTERED_OUT
            assert b.state_reason == "verified: lateral"
            with pytest.raises(ConflictError):
                record_verification(s, image_pk=page[0].id, action="accept", author="vera")
            with pytest.raises(ValueError, match="outlier needs one of the reasons"):
                record_verification(s, image_pk=page[1].id, action="outlier", reason="cat", author="otto")
            events = s.scalars(select(Event).where(Event.action.like("verify.%")).order_by(Event.id)).all()
            assert [(e.action, e.author) for e in events] == [("verify.accept", "vera"), ("verify.outlier", "otto")]
            got = training_decisions(s, population="adult")
            assert [(d.image_pk, d.klass, d.source) for d in got] == [
                (page[0].id, "frontal_chest", "verification"), (page[1].id, "lateral", "verification")]
        # A reader's "unusable" code counts too (as the annotate stage records it), the later decision winning.
        with ws.transaction() as s:
            s.add(Event(image_pk=page[0].id, stage="annotate", action="image.unusable", author="reader1",
                        detail={"reason": "wrong_age_group"}))
        with ws.sessions() as s:
            assert training_decisions(s, population="adult")[0].klass == "pediatric"

    @pytest.mark.skipif(not HAVE_TRAIN, reason="needs the [ml] extra (torch, onnx, onnxruntime)")
    def test_train_on_workspace_decisions(self, unsure: Path, tmp_path: Path) -> None:
        ws, _ = _workspace(tmp_path, n=12)
        run_filter(ws, model=unsure, executor=Executor(1))
        with ws.sessions() as s:
            waiting = verification_queue(s)
            for i, img in enumerate(waiting):
                if i % 2:
                    record_verification(s, image_pk=img.id, action="outlier", reason="low_quality", author="vera")
                else:
                    record_verification(s, image_pk=img.id, action="accept", author="vera")
        assert len(waiting) == 12
        out = tmp_path / "ws.onnx"
        done = train_cli(out, "-w", str(ws.root), "--epochs", "1", "--width", "tiny")
        assert done.returncode == 0, done.stderr
        side = json.loads(out.with_suffix(".json").read_text())
        assert side["training"]["source"] == "workspace"
        assert side["training"]["decisions"] == {"verification": len(waiting)}


def test_migration_0011_up_down_up(tmp_path: Path) -> None:
    from alembic import command

    from cxrlab.catalog.db import _alembic_config

    engine = create_engine(f"sqlite:///{tmp_path / 'old.db'}")
    upgrade(engine, "0010")
    upgrade(engine, "0011")
    assert "filter_scores" in inspect(engine).get_table_names()
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO images (sop_instance_uid, raw_sha256, raw_path, state, state_reason, "
                          "created_at, updated_at) VALUES ('1.2', 'ab', 'raw/ab', 'needs_verification', 'audit', "
                          "'2026-01-01', '2026-01-01')"))
    config = _alembic_config()
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0010")
    assert current_revision(engine) == "0010" and "filter_scores" not in inspect(engine).get_table_names()
    with engine.begin() as conn:  # an older cxrlab filters the image again
        assert conn.execute(text("SELECT state, state_reason FROM images")).all() == [("deidentified", None)]
    upgrade(engine, "0011")
    assert current_revision(engine) == "0011"
    engine.dispose()
