"""The CLI: each command's happy path and its clear errors (exit code 1, message naming the file)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image as PILImage
from typer.testing import CliRunner

from cxrlab.cli.main import app
from tests.conftest import make_dicom

runner = CliRunner()


def invoke(*args: str):  # noqa: ANN201
    return runner.invoke(app, [str(a) for a in args])


class TestInitAndIngest:
    def test_init_then_ingest_with_bad_files(self, tmp_path: Path) -> None:
        ws = tmp_path / "ws"
        result = invoke("init", ws, "--schema", "vindr-pcxr", "--population", "pediatric")
        assert result.exit_code == 0, result.output
        make_dicom(tmp_path / "in" / "a.dcm", age="003Y")
        (tmp_path / "in" / "bad.dcm").write_bytes(b"\0" * 128 + b"DICM" + b"\x01\x02")
        result = invoke("ingest", "folder", tmp_path / "in", "--workspace", ws, "--workers", "1")
        assert result.exit_code == 0, result.output
        assert "ingested" in result.output and "quarantined" in result.output
        assert "bad.dcm" in result.output
        for cmd in (("deid", "run"), ("filter", "run"), ("annotate", "simulate"), ("consensus",), ("export", "r1")):
            result = invoke(*cmd, "--workspace", ws)
            assert result.exit_code == 0, (cmd, result.output)
        result = invoke("stats", "table2", "r1", "--workspace", ws)
        assert result.exit_code == 0 and "Boot-shaped heart" in result.output

    def test_unknown_schema_is_refused(self, tmp_path: Path) -> None:
        result = invoke("init", tmp_path / "ws", "--schema", "chexpert")
        assert result.exit_code != 0
        assert "unknown label schema" in result.output

    def test_missing_path_exits_1(self, tmp_path: Path) -> None:
        invoke("init", tmp_path / "ws")
        result = invoke("ingest", "folder", tmp_path / "nope", "--workspace", tmp_path / "ws")
        assert result.exit_code == 1
        assert "no such file or folder" in result.output

    def test_not_a_workspace_exits_1(self, tmp_path: Path) -> None:
        result = invoke("deid", "run", "--workspace", tmp_path)
        assert result.exit_code == 1
        assert "not a cxrlab workspace" in result.output

    def test_export_without_labels_exits_1(self, tmp_path: Path) -> None:
        invoke("init", tmp_path / "ws")
        result = invoke("export", "--workspace", tmp_path / "ws")
        assert result.exit_code == 1 and "nothing to export" in result.output


class TestRender:
    def test_png_and_window_and_max_size(self, tmp_path: Path) -> None:
        src = make_dicom(tmp_path / "a.dcm", rows=200, columns=100)
        result = invoke("render", src, "-o", tmp_path / "a.png", "--max-size", "50")
        assert result.exit_code == 0, result.output
        img = PILImage.open(tmp_path / "a.png")
        assert img.size == (25, 50)
        invoke("render", src, "-o", tmp_path / "b.jpg", "--window", "100,1")
        arr = np.asarray(PILImage.open(tmp_path / "b.jpg"))
        assert arr.mean() > 200  # almost every pixel is above a threshold window at 100

    def test_bad_window_is_refused(self, tmp_path: Path) -> None:
        src = make_dicom(tmp_path / "a.dcm")
        result = invoke("render", src, "-o", tmp_path / "a.png", "--window", "abc")
        assert result.exit_code != 0 and "CENTER,WIDTH" in result.output

    def test_missing_and_non_dicom_files_exit_1(self, tmp_path: Path) -> None:
        result = invoke("render", tmp_path / "nope.dcm", "-o", tmp_path / "a.png")
        assert result.exit_code == 1 and "nope.dcm" in result.output and "not found" in result.output
        (tmp_path / "x.dcm").write_text("hello")
        result = invoke("render", tmp_path / "x.dcm", "-o", tmp_path / "a.png")
        assert result.exit_code == 1 and "x.dcm" in result.output and "not a DICOM file" in result.output
        assert not (tmp_path / "a.png").exists()


class TestPhantom:
    def test_writes_files_and_truth(self, tmp_path: Path) -> None:
        result = invoke("phantom", tmp_path / "p", "-n", "3", "--seed", "4", "--min-size", "256", "--max-size", "300")
        assert result.exit_code == 0, result.output
        assert len(list((tmp_path / "p").rglob("*.dcm"))) == 3
        assert (tmp_path / "p" / "truth.json").is_file()
