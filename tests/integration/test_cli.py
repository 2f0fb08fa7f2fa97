"""The CLI: each command's happy path and its clear errors (exit code 1, message naming the file)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage
from typer.testing import CliRunner

from cxrlab.cli.main import app
from tests.support.dicom import make_dicom

runner = CliRunner()


def invoke(*args: str):  # noqa: ANN201
    return runner.invoke(app, [str(a) for a in args])


def assert_one_line_error(result, *parts: str) -> str:  # noqa: ANN001 - a click Result
    """Exit 1 through the CLI's error path (no traceback), one line on the terminal naming every part."""
    assert type(result.exception) is SystemExit and result.exit_code == 1, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    for part in parts:
        assert part in lines[0], (part, lines[0])
    return lines[0]


@contextmanager
def silent_port() -> Iterator[int]:
    """A local TCP port that is bound but never listens: every connection to it is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


UNWRITABLE = Path("/proc/cxrlab-test-out")  # procfs: no file can be created there, not even by root


class TestInitAndIngest:
    @pytest.mark.slow  # every stage of the CLI in turn
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

    def test_ingest_verbose_and_report_name_the_skipped_files(self, tmp_path: Path) -> None:
        """Issue 11: ingest counted duplicates and non-DICOM files without naming them."""
        ws, src = tmp_path / "ws", tmp_path / "in"
        invoke("init", ws)
        make_dicom(src / "a.dcm", sop_uid="1.2.3.4", seed=1)
        make_dicom(src / "b_same_uid.dcm", sop_uid="1.2.3.4", seed=2)
        (src / "notes.txt").write_text("not an image")
        result = invoke("ingest", "folder", src, "-w", ws, "--workers", "1", "--verbose")
        assert result.exit_code == 0, result.output
        assert f"duplicate: {src / 'b_same_uid.dcm'}" in result.output
        assert f"not_dicom: {src / 'notes.txt'}" in result.output
        result = invoke("ingest", "folder", src, "-w", ws, "--workers", "1", "--report", tmp_path / "r.csv")
        assert result.exit_code == 0, result.output
        rows = (tmp_path / "r.csv").read_text().splitlines()
        assert rows[0] == "item,outcome,reason"
        assert sorted(rows[1:]) == sorted([f"{src / 'a.dcm'},already_ingested,", f"{src / 'b_same_uid.dcm'},"
                                           "duplicate,", f"{src / 'notes.txt'},not_dicom,"])

    def test_stages_with_nothing_to_do_say_so(self, tmp_path: Path) -> None:
        """Issue 11: `deid run` with nothing to do printed an empty table."""
        invoke("init", tmp_path / "ws")
        for cmd, why in ((("deid", "run"), "no ingested image"), (("filter", "run"), "no de-identified image"),
                         (("consensus",), "no labeled images")):
            result = invoke(*cmd, "--workspace", tmp_path / "ws")
            assert result.exit_code == 0, result.output
            assert f"{cmd[0]}: nothing to do" in result.output and why in result.output, result.output
            assert "outcome" not in result.output  # no empty table


class TestInitErrors:
    """Issue 11, section 4: each of these was a traceback (and a broken half-made workspace)."""

    def test_existing_file_is_one_line(self, tmp_path: Path) -> None:
        (tmp_path / "afile").write_text("x")
        assert_one_line_error(invoke("init", tmp_path / "afile"), "afile", "not a folder")

    def test_unknown_database_leaves_no_workspace(self, tmp_path: Path) -> None:
        ws = tmp_path / "ws"
        assert_one_line_error(invoke("init", ws, "--database-url", "foo://x"), "database_url", "'foo'")
        assert not ws.exists()
        result = invoke("init", ws)  # the next init starts clean instead of keeping the bad URL
        assert result.exit_code == 0 and "workspace ready" in result.output, result.output
        assert 'database_url = ""' in (ws / "cxrlab.toml").read_text()

    def test_missing_driver_keeps_its_brackets(self, tmp_path: Path) -> None:
        assert_one_line_error(invoke("init", tmp_path / "ws", "--database-url", "postgresql+psycopg2://u@h/db"),
                              "'psycopg2' is not installed", "[postgres]")

    def test_postgres_that_does_not_answer_names_host_and_port_not_password(self, tmp_path: Path) -> None:
        pytest.importorskip("psycopg", reason="needs the [postgres] extra")
        ws = tmp_path / "ws"
        (tmp_path / "keep").mkdir()
        with silent_port() as port:
            url = f"postgresql+psycopg://cxrlab:s3cret-pw@127.0.0.1:{port}/catalog"
            line = assert_one_line_error(invoke("init", ws, "--database-url", url), f"127.0.0.1:{port}")
            assert "s3cret" not in line
            assert not ws.exists()
            # An existing workspace whose server went away: every command says the same one line.
            (tmp_path / "keep" / "cxrlab.toml").write_text(f'[cxrlab]\ndatabase_url = "{url}"\n')
            line = assert_one_line_error(invoke("deid", "run", "-w", tmp_path / "keep"), f"127.0.0.1:{port}")
            assert "s3cret" not in line

    def test_unwritable_folder_is_one_line(self) -> None:
        if not UNWRITABLE.parent.is_dir():
            pytest.skip("needs Linux /proc")
        assert_one_line_error(invoke("init", UNWRITABLE / "ws"), str(UNWRITABLE))


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

    def test_unwritable_output_is_one_line(self, tmp_path: Path) -> None:
        """Issue 11: `cxrlab render F -o /proc/x.png` was a traceback naming a temporary file."""
        if not UNWRITABLE.parent.is_dir():
            pytest.skip("needs Linux /proc")
        src = make_dicom(tmp_path / "a.dcm")
        assert_one_line_error(invoke("render", src, "-o", UNWRITABLE / "x.png"), f"{UNWRITABLE / 'x.png'}: cannot "
                              "write")


class TestPhantom:
    def test_writes_files_and_truth(self, tmp_path: Path) -> None:
        result = invoke("phantom", tmp_path / "p", "-n", "3", "--seed", "4", "--min-size", "256", "--max-size", "300")
        assert result.exit_code == 0, result.output
        assert len(list((tmp_path / "p").rglob("*.dcm"))) == 3
        assert (tmp_path / "p" / "truth.json").is_file()

    def test_unwritable_output_is_one_line(self) -> None:
        if not UNWRITABLE.parent.is_dir():
            pytest.skip("needs Linux /proc")
        assert_one_line_error(invoke("phantom", UNWRITABLE, "-n", "1"), str(UNWRITABLE))


@pytest.mark.parametrize(
    "args",
    [["phantom", "{tmp}/p", "-n", "1"], ["annotate", "assign", "-p", "1"], ["split", "-w", "{tmp}"]],
)
def test_seed_options_are_bounded(tmp_path: Path, args: list[str]) -> None:
    """A seed past the 32-bit catalog columns is a usage error (exit 2) naming the bound, never a traceback."""
    result = runner.invoke(app, [a.format(tmp=tmp_path) for a in args] + ["--seed", str(2**63)])
    assert result.exit_code == 2, result.output
    assert "2147483647" in result.output and "Traceback" not in result.output
