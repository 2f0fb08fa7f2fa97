"""``cxrlab leaderboard create|list|upload-labels|upload-sizes|remove-sizes|close|reopen|scores|score-pending``."""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from cxrlab import benchmark as lb
from cxrlab.annotate.users import create_user
from cxrlab.benchmark.errors import InvalidUploadError
from cxrlab.cli.main import app
from cxrlab.evaluate import score_submission
from tests.support.leaderboard_data import csv_bytes, make_gt, make_submission
from tests.support.users import PASSWORD

runner = CliRunner()


class TestLeaderboardCli:
    @pytest.mark.slow  # scores submissions end to end
    def test_create_labels_score_close(self, workspace, tmp_path: Path) -> None:  # noqa: ANN001
        w = ["-w", str(workspace.root)]
        gt = make_gt(12)
        (tmp_path / "annotations_test.csv").write_bytes(csv_bytes(gt))
        r = runner.invoke(app, ["leaderboard", "create", "vindr", "--daily-limit", "3", "--seed", "4",
                                "--classes", "vindr-cxr-challenge", *w])
        assert r.exit_code == 0 and "split seed 4" in r.output, r.output
        r = runner.invoke(app, ["leaderboard", "upload-labels", "vindr", str(tmp_path / "annotations_test.csv"), *w])
        assert r.exit_code == 0 and "12 test images (6 public, 6 private)" in r.output, r.output
        assert "vindr" in runner.invoke(app, ["leaderboard", "list", *w]).output

        sub = csv_bytes(make_submission(gt, seed=1, noise=2.0))
        with workspace.sessions() as session:
            user = create_user(session, username="researcher", password=PASSWORD, role="annotator")
            bench = lb.get_benchmark_by_name(session, "vindr")
            lb.submit(session, workspace, benchmark=bench, user=user, data=sub)
            public = lb.image_parts(session, bench)["public"]
        r = runner.invoke(app, ["leaderboard", "score-pending", *w])
        assert r.exit_code == 0 and "scored 1 submission(s)" in r.output, r.output
        expected = score_submission(gt, pd.read_csv(io.BytesIO(sub)), image_ids=public).mAP
        r = runner.invoke(app, ["leaderboard", "scores", "vindr", *w])
        assert "researcher" in r.output and f"{expected:.4f}" in r.output
        assert "private scores are shown when the benchmark is closed" in r.output
        assert runner.invoke(app, ["leaderboard", "close", "vindr", *w]).exit_code == 0
        r = runner.invoke(app, ["leaderboard", "scores", "vindr", *w])
        assert "vindr: private" in r.output and "shown when" not in r.output
        assert runner.invoke(app, ["leaderboard", "reopen", "vindr", *w]).exit_code == 0

    def test_errors_exit_1(self, workspace, tmp_path: Path) -> None:  # noqa: ANN001
        w = ["-w", str(workspace.root)]
        bad = tmp_path / "gt.csv"
        bad.write_text("image_id,class_name,x_min,y_min,x_max,y_max\na,Cardiomegaly,1,2,x,4\n")
        r = runner.invoke(app, ["leaderboard", "upload-labels", "ghost", str(bad), *w])
        assert r.exit_code == 1 and "not found" in r.output
        r = runner.invoke(app, ["leaderboard", "create", "b", *w])  # class ids: the workspace's schema by default
        assert r.exit_code == 0 and "class ids vindr-cxr," in r.output, r.output
        r = runner.invoke(app, ["leaderboard", "upload-labels", "b", str(bad), *w])
        assert r.exit_code == 1 and "gt.csv:2:" in r.output, r.output
        r = runner.invoke(app, ["leaderboard", "create", "c", "--metric", "f1", *w])
        assert r.exit_code == 1 and "unknown metric" in r.output

    @pytest.mark.slow  # scores a submission with image sizes
    def test_sizes(self, workspace, tmp_path: Path) -> None:  # noqa: ANN001
        w = ["-w", str(workspace.root)]
        gt = make_gt(6)
        (tmp_path / "gt.csv").write_bytes(csv_bytes(gt))
        ids = gt["image_id"].unique()
        pd.DataFrame({"image_id": ids[:5], "width": 2000, "height": 2000}).to_csv(tmp_path / "sizes.csv", index=False)
        assert runner.invoke(app, ["leaderboard", "create", "s", "--classes", "vindr-cxr-challenge", *w]).exit_code == 0
        assert runner.invoke(app, ["leaderboard", "upload-labels", "s", str(tmp_path / "gt.csv"), *w]).exit_code == 0
        r = runner.invoke(app, ["leaderboard", "upload-sizes", "s", str(tmp_path / "sizes.csv"), *w])
        assert r.exit_code == 0 and "5 image sizes stored" in r.output and "1 test image(s) have no size" in r.output
        frame = make_submission(gt, seed=1, noise=2.0)
        row = frame["image_id"].tolist().index(ids[0])
        frame.loc[row, "PredictionString"] += " 2 0.5 10 10 2050 50"
        with workspace.sessions() as session:
            user = create_user(session, username="researcher", password=PASSWORD, role="annotator")
            bench = lb.get_benchmark_by_name(session, "s")
            with pytest.raises(InvalidUploadError) as err:
                lb.submit(session, workspace, benchmark=bench, user=user, data=csv_bytes(frame))
            assert any(f"submission.csv:{row + 2}: error: 1 group outside the image" in p for p in err.value.problems)
        r = runner.invoke(app, ["leaderboard", "remove-sizes", "s", *w])
        assert r.exit_code == 0 and "image sizes removed" in r.output
        with workspace.sessions() as session:
            bench = lb.get_benchmark_by_name(session, "s")
            user = session.get(type(user), user.id)
            sub = lb.submit(session, workspace, benchmark=bench, user=user, data=csv_bytes(frame))
            assert sub.state.value == "queued"
        (tmp_path / "bad.csv").write_text("image_id,width,height\na,100,-3\n")
        r = runner.invoke(app, ["leaderboard", "upload-sizes", "s", str(tmp_path / "bad.csv"), *w])
        assert r.exit_code == 1 and "bad.csv:2: width and height must be positive" in r.output, r.output


class TestLeaderboardCliBadInput:
    def test_gzip_bomb_and_missing_file_exit_2_in_one_line(self, workspace, tmp_path: Path,  # noqa: ANN001
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
        import gzip

        w = ["-w", str(workspace.root)]
        assert runner.invoke(app, ["leaderboard", "create", "b", *w]).exit_code == 0
        monkeypatch.setattr(lb.benchmarks, "MAX_CSV_BYTES", 2**20)
        bomb = tmp_path / "gt.csv.gz"
        bomb.write_bytes(gzip.compress(b"image_id,class_name,x_min,y_min,x_max,y_max\n" + b"0" * 2**25))
        r = runner.invoke(app, ["leaderboard", "upload-labels", "b", str(bomb), *w])
        assert r.exit_code == 2 and isinstance(r.exception, SystemExit), r.output
        assert r.output.strip() == "error: gt.csv.gz: the label file unpacks to more than 1 MiB"
        r = runner.invoke(app, ["leaderboard", "upload-sizes", "b", str(tmp_path / "nope.csv"), *w])
        assert r.exit_code == 2 and "does not exist" in r.output and isinstance(r.exception, SystemExit)
