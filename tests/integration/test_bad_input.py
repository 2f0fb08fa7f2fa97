"""Hostile inputs through every command that reads them: one clear line naming the file, no traceback, no
output from damaged data, and a batch that goes on (issue 10: malformed DICOMs, decompression bombs, image sizes
and box coordinates out of range).
"""

from __future__ import annotations

import gzip
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cxrlab.cli.main import app
from tests.support.dicom import make_dicom, make_hostile_dicoms

runner = CliRunner()

#: What each hostile file of :func:`make_hostile_dicoms` is refused for.
REASONS = {
    "nested": "sequences nested too deeply",
    "deflated": "deflated data set cannot be inflated",
    "truncated": "pixel data truncated (6192 of 8192 bytes)",
    "truncated_jpeg": "pixel data truncated (the compressed image has no end marker FFD9)",
}
ANNOTATIONS_HEADER = b"image_id,rad_id,class_name,x_min,y_min,x_max,y_max\n"


def invoke(*args: object):  # noqa: ANN201
    return runner.invoke(app, [str(a) for a in args])


def assert_clean_error(result, *, code: int, needles: tuple[str, ...]) -> None:  # noqa: ANN001 - click Result
    """Exit *code*, no exception escaped (a traceback), one line that holds every needle."""
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code == code, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    for needle in needles:
        assert needle in lines[0], result.output


def write_bomb(path: Path, mib: int) -> Path:
    """A real gzip bomb: a CSV header, then *mib* MiB of zeros (about 1000:1)."""
    with gzip.open(path, "wb", compresslevel=9) as fh:
        fh.write(ANNOTATIONS_HEADER)
        zeros = b"0" * 2**20
        for _ in range(mib):
            fh.write(zeros)
    return path


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return make_hostile_dicoms(tmp_path_factory.mktemp("hostile"))


class TestHostileDicoms:
    @pytest.mark.slow  # a cxrlab process per file
    @pytest.mark.parametrize("name", sorted(REASONS))
    def test_render_refuses_in_one_line_and_writes_nothing(self, hostile: dict[str, Path], name: str,
                                                         tmp_path: Path) -> None:
        out = tmp_path / "out.png"
        proc = subprocess.run([sys.executable, "-m", "cxrlab.cli.main", "render", str(hostile[name]), "-o", str(out)],
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 1, proc.stderr
        assert "Traceback" not in proc.stderr and proc.stdout == ""
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and str(hostile[name]) in lines[0] and REASONS[name] in lines[0], proc.stderr
        assert not out.exists() and not list(tmp_path.iterdir())

    def test_ingest_quarantines_each_with_its_reason_and_goes_on(self, hostile: dict[str, Path],
                                                                 tmp_path: Path) -> None:
        src = tmp_path / "in"
        src.mkdir()
        for path in hostile.values():
            (src / path.name).write_bytes(path.read_bytes())
        make_dicom(src / "good.dcm", seed=3)
        assert invoke("init", tmp_path / "ws").exit_code == 0
        result = invoke("ingest", "folder", src, "--workspace", tmp_path / "ws", "--workers", "2")
        assert result.exit_code == 0 and result.exception is None, result.output
        assert "Traceback" not in result.output
        reasons = {line.split(": ", 1)[0].rsplit("/", 1)[-1]: line for line in result.output.splitlines()
                   if ".dcm: " in line}
        for name, reason in REASONS.items():
            assert reason in reasons[f"{name}.dcm"], result.output
        quarantined = list((tmp_path / "ws" / "quarantine").glob("*.reason.txt"))
        assert len(quarantined) == len(REASONS)
        assert len(list((tmp_path / "ws" / "raw").rglob("*.dcm"))) == 1

    def test_deid_folder_fails_each_file_and_writes_only_the_good_one(self, hostile: dict[str, Path],
                                                                      tmp_path: Path) -> None:
        src = tmp_path / "in"
        src.mkdir()
        for path in hostile.values():
            (src / path.name).write_bytes(path.read_bytes())
        make_dicom(src / "good.dcm", seed=3)
        key = tmp_path / "key.hex"
        key.write_text("ab" * 32)
        result = invoke("deid", "folder", src, tmp_path / "out", "--key-file", key, "--no-text", "--workers", "2")
        assert result.exit_code == 2 and isinstance(result.exception, SystemExit), result.output  # 2: some failed
        assert "Traceback" not in result.output and "unexpected error" not in result.output
        for name in REASONS:
            line = next(x for x in result.output.splitlines() if f"{name}.dcm: " in x)
            assert "truncated" in line or "nested too deeply" in line or "cannot be inflated" in line, line
        assert len(list((tmp_path / "out").glob("*.dicom"))) == 1


class TestDecompressionBombs:
    def test_default_limit_is_2_gib(self) -> None:
        from cxrlab.runtime.unpack import DEFAULT_MAX_UNPACKED, max_unpacked

        assert DEFAULT_MAX_UNPACKED == max_unpacked() == 2 * 2**30

    @pytest.mark.parametrize("command", [
        ("stats", "table2", "--annotations"),
        ("consensus", "-o", "OUT", "--annotations"),
        ("stats", "figures", "-o", "OUT", "--annotations"),
    ])
    def test_table_commands_stop_at_the_limit_with_exit_code_2(self, tmp_path: Path, command: tuple[str, ...]) -> None:
        bomb = write_bomb(tmp_path / "bomb.csv.gz", 50)
        assert bomb.stat().st_size < 200_000
        args = [str(tmp_path / "out") if a == "OUT" else a for a in command]
        result = invoke(*args, bomb, "--max-unpacked", "4MiB")
        assert_clean_error(result, code=2, needles=(str(bomb), "unpacks to more than 4 MiB", "--max-unpacked"))

    def test_evaluate_stops_at_the_limit(self, tmp_path: Path) -> None:
        bomb = write_bomb(tmp_path / "sub.csv.gz", 50)
        result = invoke("evaluate", "validate", bomb, "--max-unpacked", "1MiB")
        assert_clean_error(result, code=2, needles=(str(bomb), "unpacks to more than 1 MiB"))

    def test_nih_commands_stop_at_the_limit(self, tmp_path: Path) -> None:
        bomb = write_bomb(tmp_path / "Data_Entry_2017.csv.gz", 50)
        result = invoke("stats", "cooccurrence", "--nih", bomb, "--max-unpacked", "2MB")
        assert_clean_error(result, code=2, needles=(str(bomb), "unpacks to more than 1.91 MiB"))

    def test_a_raised_limit_reads_the_file(self, tmp_path: Path) -> None:
        rows = b"".join(b"img%d,R1,Aortic enlargement,10,10,20,20\n" % i for i in range(2000))
        path = tmp_path / "annotations_train.csv.gz"
        path.write_bytes(gzip.compress(ANNOTATIONS_HEADER + rows))
        result = invoke("stats", "table2", "--annotations", path, "--max-unpacked", "10KiB")
        assert_clean_error(result, code=2, needles=("unpacks to more than 10 KiB",))
        result = invoke("stats", "table2", "--annotations", path, "--max-unpacked", "1MiB", "--format", "json")
        assert result.exit_code == 0 and '"n_images": 2000' in result.output, result.output

    def test_bad_limit_is_a_usage_error(self, tmp_path: Path) -> None:
        result = invoke("stats", "table2", "--annotations", tmp_path / "a.csv", "--max-unpacked", "lots")
        assert result.exit_code == 2 and "is not a size" in result.output


class TestSizesAndCoordinates:
    def test_meta_sizes_must_be_dicom_rows_and_columns(self, tmp_path: Path) -> None:
        ann = tmp_path / "annotations_train.csv"
        ann.write_bytes(ANNOTATIONS_HEADER + b"a1,R1,Aortic enlargement,10,10,20,20\na2,R1,No finding,,,,\n")
        meta = tmp_path / "meta.csv"
        meta.write_text("image_id,rows,columns\na1,-5,1e12\na2,2000,2.5\n")
        result = invoke("stats", "table2", "--annotations", ann, "--meta", meta)
        assert_clean_error(result, code=1, needles=(
            str(meta), "2 bad row(s)", "line 2: rows is not a whole number from 1 to 65,535",
            "line 3: columns is not a whole number"))
        meta.write_text("image_id,rows,columns\na1,65536,100\na2,0,100\n")
        result = invoke("stats", "table2", "--annotations", ann, "--meta", meta)
        assert_clean_error(result, code=1, needles=(str(meta), "line 2: rows", "line 3: rows"))

    @pytest.mark.parametrize(("coords", "reason"), [
        (b"10,10,1000000000,20", "coordinate beyond 65,535"),
        (b"-1000000000,10,20,20", "negative coordinate"),
        (b"10,10,20,65536", "coordinate beyond 65,535"),
    ])
    def test_coordinates_beyond_dicom_limit_are_bad_rows(self, tmp_path: Path, coords: bytes, reason: str) -> None:
        ann = tmp_path / "annotations_train.csv"
        ann.write_bytes(ANNOTATIONS_HEADER + b"a2,R1,No finding,,,,\na1,R1,Aortic enlargement," + coords + b"\n")
        result = invoke("stats", "table2", "--annotations", ann)
        assert_clean_error(result, code=1, needles=(str(ann), f"line 3: {reason}"))

    def test_coordinates_beyond_a_known_image_size_are_bad_rows(self, tmp_path: Path) -> None:
        ann = tmp_path / "annotations_train.csv"
        ann.write_bytes(ANNOTATIONS_HEADER + b"a1,R1,Aortic enlargement,10,10,101,20\n"
                        b"a2,R1,Aortic enlargement,10,10,500,20\n")
        meta = tmp_path / "meta.csv"
        meta.write_text("image_id,rows,columns\na1,50,100\na2,50,100\n")
        result = invoke("stats", "table2", "--annotations", ann, "--meta", meta)
        assert_clean_error(result, code=1, needles=(str(ann), "1 bad row(s): line 3: coordinate beyond the image"))

    def test_dicom_headers_give_the_image_size(self, tmp_path: Path) -> None:
        make_dicom(tmp_path / "train" / "a1.dicom", rows=64, columns=48)
        ann = tmp_path / "annotations_train.csv"
        ann.write_bytes(ANNOTATIONS_HEADER + b"a1,R1,Aortic enlargement,10,10,60,20\n")
        result = invoke("stats", "table2", "--annotations", ann, "--dicom-dir", tmp_path / "train")
        assert_clean_error(result, code=1, needles=(str(ann), "line 2: coordinate beyond the image"))
        ann.write_bytes(ANNOTATIONS_HEADER + b"a1,R1,Aortic enlargement,10,10,48,64\n")
        result = invoke("stats", "table2", "--annotations", ann, "--dicom-dir", tmp_path / "train")
        assert result.exit_code == 0, result.output
