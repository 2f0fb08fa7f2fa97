"""Consensus: WBF against ensemble-boxes, majority boxes, Fleiss' kappa, box agreement, run_consensus."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import select

from cxrlab.consensus import (
    agreement_report,
    box_agreement,
    consensus_tables,
    fleiss_kappa,
    fleiss_kappa_counts,
    fuse_reader_boxes,
    majority_vote,
)
from cxrlab.schemas import BOX_COLUMNS, get_schema
from cxrlab.schemas.synthetic import synthetic_release


def random_reader_boxes(n_images: int, seed: int, *, scores: bool, sizes: bool) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n_images):
        w, h = rng.integers(800, 3000, 2)
        truth = []
        for _ in range(rng.integers(0, 5)):
            bw, bh = rng.uniform(20, w / 3), rng.uniform(20, h / 3)
            x, y = rng.uniform(0, w - bw), rng.uniform(0, h - bh)
            truth.append((rng.choice(["A", "B"]), x, y, x + bw, y + bh))
        readers = [f"R{k}" for k in rng.choice(9, size=rng.integers(1, 5), replace=False)]
        for r in readers:
            drew = False
            for c, x0, y0, x1, y1 in truth:
                for _ in range(1 + int(rng.random() < 0.15)):  # sometimes two boxes of one finding
                    if rng.random() < 0.8:
                        s = 0.08 * (x1 - x0)
                        rows.append((f"im{i:04d}", r, c, max(0, x0 + rng.normal(0, s)), max(0, y0 + rng.normal(0, s)),
                                     min(w, x1 + rng.normal(0, s)), min(h, y1 + rng.normal(0, s)), w, h,
                                     float(rng.choice([1.0, 0.5, 0.75]))))
                        drew = True
            if not drew:
                rows.append((f"im{i:04d}", r, "No finding", np.nan, np.nan, np.nan, np.nan, w, h, 1.0))
    frame = pd.DataFrame(rows, columns=["image_id", "rad_id", "class_name", *BOX_COLUMNS, "width", "height",
                                        "score"])
    if not scores:
        frame = frame.drop(columns="score")
    if not sizes:
        frame = frame.drop(columns=["width", "height"])
    return frame


def reference_wbf(frame: pd.DataFrame, iou_thr: float, skip: float) -> pd.DataFrame:
    """ensemble_boxes.weighted_boxes_fusion per image, one model per reader (sorted rad_id)."""
    from ensemble_boxes import weighted_boxes_fusion

    out = []
    for iid, g in frame.groupby("image_id", sort=True):
        boxes_only = g.dropna(subset=BOX_COLUMNS)
        if boxes_only.empty:
            continue
        if "width" in g:
            w, h = float(g["width"].iloc[0]), float(g["height"].iloc[0])
        else:
            w, h = boxes_only["x_max"].max(), boxes_only["y_max"].max()
        classes = sorted(boxes_only["class_name"].unique())
        bl, sl, ll = [], [], []
        for r in sorted(g["rad_id"].unique()):
            gg = boxes_only[boxes_only["rad_id"] == r]
            bl.append((gg[BOX_COLUMNS].to_numpy() / [w, h, w, h]).tolist())
            sl.append(gg["score"].tolist() if "score" in gg else [1.0] * len(gg))
            ll.append([classes.index(c) for c in gg["class_name"]])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            b, s, lab = weighted_boxes_fusion(bl, sl, ll, iou_thr=iou_thr, skip_box_thr=skip)
        for bb, ss, cl in zip(b, s, lab, strict=True):
            out.append((iid, classes[int(cl)], bb[0] * w, bb[1] * h, bb[2] * w, bb[3] * h, ss))
    return pd.DataFrame(out, columns=["image_id", "class_name", *BOX_COLUMNS, "score"])


def canonical(frame: pd.DataFrame) -> np.ndarray:
    f = frame.sort_values(["image_id", "class_name", "x_min", "y_min", "score"]).reset_index(drop=True)
    return f[[*BOX_COLUMNS, "score"]].to_numpy(dtype=float), list(zip(f["image_id"], f["class_name"], strict=True))


class TestFuseReaderBoxes:
    @pytest.mark.parametrize(
        ("seed", "scores", "sizes", "iou", "skip"),
        [(0, False, True, 0.4, 0.0), (1, True, True, 0.55, 0.0), (2, True, False, 0.4, 0.6),
         (3, False, False, 0.3, 0.0)],
    )
    @pytest.mark.slow  # hypothesis against ensemble-boxes
    def test_identical_to_ensemble_boxes(self, seed: int, scores: bool, sizes: bool, iou: float, skip: float) -> None:
        pytest.importorskip("ensemble_boxes")
        frame = random_reader_boxes(400, seed, scores=scores, sizes=sizes)
        ours = fuse_reader_boxes(frame, iou_thr=iou, skip_box_thr=skip)
        ref = reference_wbf(frame, iou, skip)
        a, ka = canonical(ours)
        b, kb = canonical(ref)
        assert ka == kb
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-9)

    def test_votes_and_scores(self) -> None:
        frame = pd.DataFrame(
            [("i", "R1", "A", 0, 0, 10, 10), ("i", "R2", "A", 1, 1, 11, 11), ("i", "R3", "A", 50, 50, 60, 60),
             ("i", "R3", "No finding", None, None, None, None)],
            columns=["image_id", "rad_id", "class_name", *BOX_COLUMNS],
        )
        out = fuse_reader_boxes(frame, iou_thr=0.4)
        assert out["votes"].tolist() == [2, 1]
        assert out["score"].tolist() == pytest.approx([2 / 3, 1 / 3])
        assert out.loc[0, ["x_min", "x_max"]].tolist() == pytest.approx([0.5, 10.5])
        majority = fuse_reader_boxes(frame, iou_thr=0.4, method="majority")
        assert len(majority) == 1 and majority["votes"].iloc[0] == 2
        # Five readers given explicitly: 2 votes of 5 is not a majority.
        assert fuse_reader_boxes(frame, method="majority", readers=pd.Series({"i": 5})).empty

    def test_empty_and_bad_input(self) -> None:
        empty = pd.DataFrame(columns=["image_id", "rad_id", "class_name", *BOX_COLUMNS])
        assert list(fuse_reader_boxes(empty).columns) == ["image_id", "class_name", *BOX_COLUMNS, "score", "votes"]
        with pytest.raises(ValueError, match="method must be one of"):
            fuse_reader_boxes(empty, method="nms")
        with pytest.raises(ValueError, match="lack column"):
            fuse_reader_boxes(empty.drop(columns="rad_id"))


class TestMajorityVote:
    def test_ties_are_negative_unless_threshold_lowered(self) -> None:
        votes = pd.DataFrame({"image_id": ["a"] * 4 + ["b"] * 2, "rad_id": list("wxyzwx"),
                              "L": [1, 1, 0, 0, 1, 0]})
        assert majority_vote(votes)["L"].tolist() == [0, 0]
        assert majority_vote(votes, threshold=0.49)["L"].tolist() == [1, 1]


class TestFleissKappa:
    def test_textbook_example(self) -> None:
        # Fleiss (1971) as worked on Wikipedia's "Fleiss' kappa" page: 10 subjects, 14 raters, kappa 0.210.
        table = np.array([[0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
                          [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7]])
        assert fleiss_kappa_counts(table) == pytest.approx(0.210, abs=5e-4)

    def test_per_label(self) -> None:
        votes = pd.DataFrame({
            "image_id": ["a", "a", "a", "b", "b", "b", "c", "c", "c"],
            "rad_id": ["R1", "R2", "R3"] * 3,
            "same": [1, 1, 1, 0, 0, 0, 1, 1, 1],
            "never": [0] * 9,
            "split": [1, 0, 1, 0, 1, 0, 1, 1, 0],
        })
        k = fleiss_kappa(votes)
        assert k["same"] == pytest.approx(1.0)
        assert np.isnan(k["never"])  # everybody agrees on one category: undefined
        assert k["split"] < 0.1


class TestBoxAgreement:
    def test_known_matches(self) -> None:
        boxes = pd.DataFrame(
            [("i", "R1", "A", 0, 0, 10, 10), ("i", "R2", "A", 0, 0, 10, 12), ("i", "R3", "A", 40, 40, 50, 50),
             ("j", "R1", "A", 0, 0, 10, 10), ("j", "R2", "No finding", None, None, None, None)],
            columns=["image_id", "rad_id", "class_name", *BOX_COLUMNS],
        )
        per_class, per_pair = box_agreement(boxes, iou_thr=0.4)
        row = per_class.set_index("class_name").loc["A"]
        # Image i: 3 readers, 3 boxes, each counted for 2 pairs -> 6; image j: R1's box counted once -> 7.
        assert row["boxes"] == 7 and row["matched"] == 1 and row["agreement"] == pytest.approx(2 / 7)
        pairs = per_pair.set_index(["rad_a", "rad_b"])
        assert pairs.loc[("R1", "R2"), "images"] == 2 and pairs.loc[("R1", "R2"), "agreement"] == pytest.approx(2 / 3)
        assert pairs.loc[("R1", "R3"), "matched"] == 0

    def test_three_readers_with_the_same_box_agree_in_every_pair(self) -> None:
        """Matching is one-to-one within each pair of readers: R1's box matches R2's and R3's."""
        boxes = pd.DataFrame(
            [("i", r, "A", 0, 0, 10, 10) for r in ("R1", "R2", "R3")],
            columns=["image_id", "rad_id", "class_name", *BOX_COLUMNS],
        )
        per_class, per_pair = box_agreement(boxes, iou_thr=0.4)
        assert per_pair["matched"].tolist() == [1, 1, 1] and per_pair["agreement"].tolist() == [1.0, 1.0, 1.0]
        row = per_class.set_index("class_name").loc["A"]
        assert row["boxes"] == 6 and row["matched"] == 3 and row["agreement"] == 1.0

    def test_agreement_report_dict(self) -> None:
        t = synthetic_release(60, seed=3)
        rep = agreement_report(t.reader_labels, t.reader_boxes, schema=t.schema)
        d = rep.to_dict()
        assert d["iou_thr"] == 0.4 and len(d["labels"]) == len(t.schema.names)
        assert {x["kind"] for x in d["labels"]} == {"local", "global"}
        assert 0 < rep.boxes["agreement"].max() <= 1


class TestConsensusTables:
    def test_labels_by_vote_and_boxes_by_fusion(self) -> None:
        t = synthetic_release(50, seed=1)
        c = consensus_tables(t, method="majority")
        expected = majority_vote(t.reader_labels)
        pd.testing.assert_frame_equal(c.consensus_labels.reset_index(drop=True), expected.reset_index(drop=True))
        assert (c.consensus_boxes["votes"] >= 2).all()


class TestRunConsensus:
    @pytest.mark.slow  # a workspace through every stage
    def test_keeps_review_rows_and_fuses_boxes(self, workspace, tmp_path) -> None:  # noqa: ANN001
        from cxrlab.annotate.readings import simulate_readers
        from cxrlab.catalog.models import ConsensusBox, ConsensusLabel, Image
        from cxrlab.consensus import run_consensus
        from cxrlab.deid import run_deid
        from cxrlab.filter import run_filter
        from cxrlab.ingest import run_ingest
        from cxrlab.runtime import Executor
        from tests.support.dicom import make_dicom

        for i in range(6):
            make_dicom(tmp_path / "in" / f"c{i}.dcm", seed=i, rows=400, columns=400)
        run_ingest(workspace, tmp_path / "in", executor=Executor(1))
        run_deid(workspace, executor=Executor(1))
        run_filter(workspace)
        simulate_readers(workspace, readers=3, seed=4)
        run_consensus(workspace)
        with workspace.sessions() as s:
            pk = s.scalar(select(Image.id).order_by(Image.id))
            row = s.scalar(select(ConsensusLabel).where(ConsensusLabel.image_pk == pk,
                                                        ConsensusLabel.label == "Pneumonia"))
            decided = 1 - row.positive
            row.method, row.positive = "review", decided
            s.add(ConsensusBox(image_pk=pk, class_name="Cardiomegaly", x_min=1, y_min=1, x_max=50, y_max=50,
                               votes=3, method="review", author="dr.who"))
            s.commit()
        report = run_consensus(workspace)
        assert report.counts["reviewed_labels_kept"] == 1
        with workspace.sessions() as s:
            row = s.scalar(select(ConsensusLabel).where(ConsensusLabel.image_pk == pk,
                                                        ConsensusLabel.label == "Pneumonia"))
            assert row.method == "review" and row.positive == decided
            boxes = s.scalars(select(ConsensusBox).where(ConsensusBox.image_pk == pk)).all()
            assert [(b.method, b.author) for b in boxes] == [("review", "dr.who")]
            n_labels = len(s.scalars(select(ConsensusLabel)).all())
            fused = s.scalars(select(ConsensusBox).where(ConsensusBox.method != "review")).all()
        assert n_labels == 6 * len(get_schema("vindr-cxr").names)
        assert all(1 <= b.votes <= 3 for b in fused)
