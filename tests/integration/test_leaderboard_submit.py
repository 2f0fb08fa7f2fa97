"""``cxrlab leaderboard submit`` against a real ``cxrlab serve``: the upload is validated, scored in the server's
background worker, and the score printed is the one the scorer gives; refusals are one clear line, exit 1."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from cxrlab import benchmark as lb
from cxrlab.annotate.users import create_user
from cxrlab.cli.main import app
from cxrlab.evaluate import score_submission
from tests.support.leaderboard_data import csv_bytes, make_gt, make_submission
from tests.support.server import start_server
from tests.support.users import PASSWORD

pytestmark = pytest.mark.slow  # a real cxrlab serve process

runner = CliRunner()
GT = make_gt(16, seed=3)


@pytest.fixture
def served(workspace) -> Iterator[tuple[str, list[str]]]:  # noqa: ANN001
    """A server with the benchmark "phantoms" (labels uploaded, daily limit 2) and the user "researcher";
    yields its URL and the public image ids."""
    with workspace.sessions() as session:
        create_user(session, username="researcher", password=PASSWORD, role="annotator")
        bench = lb.create_benchmark(session, name="phantoms", metric="kaggle", iou=None, classes="vindr-cxr-challenge",
                                    seed=5, public_fraction=0.5, daily_limit=2, description=None)
        lb.upload_labels(session, workspace, benchmark=bench, data=csv_bytes(GT), filename="annotations_test.csv")
        public = lb.image_parts(session, bench)["public"]
    with start_server(workspace) as server:
        yield server.url, public


def _submit(url: str, path: Path, *extra: str, password: str = PASSWORD):  # noqa: ANN202
    return runner.invoke(app, ["leaderboard", "submit", str(path), "-b", "phantoms", "--server", url,
                               "-u", "researcher", *extra], env={"CXRLAB_PASSWORD": password})


class TestSubmit:
    def test_scored_like_the_scorer_and_refusals(self, served: tuple[str, list[str]], tmp_path: Path) -> None:
        url, public = served
        sub = make_submission(GT, seed=2, noise=3.0)
        path = tmp_path / "submission.csv.gz"
        path.write_bytes(gzip.compress(csv_bytes(sub)))
        r = _submit(url, path)
        assert r.exit_code == 0, r.output
        expected = score_submission(GT, sub, image_ids=public).mAP
        assert f"public score {expected:.4f}" in r.output
        assert "private score" not in r.output  # open benchmark: private scores stay on the server

        r = _submit(url, path, password="not the password")
        assert r.exit_code == 1 and "wrong user name or password" in r.output
        assert "not the password" not in r.output

        broken = tmp_path / "broken.csv"
        broken.write_text("image_id,PredictionString\n" + f"{GT['image_id'].iloc[0]},14 0.5 0 0\n")
        r = _submit(url, broken)
        assert r.exit_code == 1 and "broken.csv" in r.output and "HTTP 422" in r.output, r.output

        r = runner.invoke(app, ["leaderboard", "submit", str(path), "-b", "nope", "--server", url, "-u",
                                "researcher"], env={"CXRLAB_PASSWORD": PASSWORD})
        assert r.exit_code == 1 and "no benchmark 'nope'" in r.output and "phantoms" in r.output

        r = _submit(url, path, "--no-wait")  # the second counted submission today: queued, not waited for
        assert r.exit_code == 0 and ": queued" in r.output and "public score" not in r.output, r.output
        r = _submit(url, path)  # daily limit 2
        assert r.exit_code == 1 and "HTTP 429" in r.output, r.output

    def test_unreachable_and_bad_urls(self, tmp_path: Path) -> None:
        path = tmp_path / "s.csv"
        pd.DataFrame({"image_id": ["a"], "PredictionString": ["14 1 0 0 1 1"]}).to_csv(path, index=False)
        r = _submit("file:///etc/passwd", path)
        assert r.exit_code == 1 and "http:// or https://" in r.output
        r = _submit("http://127.0.0.1:9", path)  # the discard port: nothing listens
        assert r.exit_code == 1 and "cannot reach http://127.0.0.1:9" in r.output
