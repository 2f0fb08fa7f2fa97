"""Stored triage thumbnails (:mod:`cxrlab.dicom.thumbnail`): the same bytes the triage route renders, written
through a temporary name and a rename (a crash leaves no partial thumbnail), and refused when stale or cut short."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pydicom
import pytest

from cxrlab.deid.engine import _write_thumbnail
from cxrlab.dicom.display import encode, to_uint8
from cxrlab.dicom.io import read_dataset, read_pixels
from cxrlab.dicom.phantom import generate_phantoms
from cxrlab.dicom.thumbnail import (
    THUMB_SIZE,
    read_thumbnail,
    remove_thumbnail,
    render_thumbnail,
    thumbnail_path,
    write_thumbnail,
)
from cxrlab.runtime.files import remove_stale_temporaries


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Six small phantoms: as generated; relabelled MONOCHROME1; with a window of their own; rescaled (slope 2,
    intercept -1024); with slope 1 and intercept 0 spelled out; and one smaller than a thumbnail."""
    root = tmp_path_factory.mktemp("thumbs")
    generate_phantoms(root, 6, seed=5, size_range=(300, 420), text_prob=0.0, outlier_prob=0.0)
    found = sorted(root.rglob("*.dcm"))
    changes = [{}, {"PhotometricInterpretation": "MONOCHROME1"}, {"WindowCenter": "1800", "WindowWidth": "900"},
               {"RescaleSlope": "2", "RescaleIntercept": "-1024"}, {"RescaleSlope": "1", "RescaleIntercept": "0"}]
    for path, change in zip(found, changes, strict=False):
        ds = pydicom.dcmread(path)
        for keyword, value in change.items():
            setattr(ds, keyword, value)
        ds.save_as(path)
    ds = pydicom.dcmread(found[5])
    small = ds.pixel_array[:200, :150].copy()
    ds.Rows, ds.Columns, ds.PixelData = 200, 150, small.tobytes()
    ds.save_as(found[5])
    return found


def test_same_bytes_as_the_triage_route_renders(files: list[Path]) -> None:
    """The look of the triage grid is unchanged: the route rendered ``encode(to_uint8(f, max_size=256))``."""
    for f in files:
        ds = read_dataset(f)
        data = render_thumbnail(read_pixels(ds, path=f), ds)
        assert data == encode(to_uint8(f, max_size=THUMB_SIZE), "jpeg")
        assert data[:2] == b"\xff\xd8" and data[-2:] == b"\xff\xd9"


def test_names_are_image_ids_only(tmp_path: Path) -> None:
    assert thumbnail_path(tmp_path, "a1b2c3") == tmp_path / "a1b2c3.jpg"
    for bad in ("", "../x", "a/b", "..", ".hidden", "a b", "x" * 200):
        with pytest.raises(ValueError):
            thumbnail_path(tmp_path, bad)
    remove_thumbnail(tmp_path, "../x")  # refused quietly, removes nothing


def test_write_read_remove(tmp_path: Path, files: list[Path]) -> None:
    ds = read_dataset(files[0])
    data = render_thumbnail(read_pixels(ds, path=files[0]), ds)
    path = thumbnail_path(tmp_path / "thumbs", "abc")  # the folder is created
    write_thumbnail(path, data)
    assert read_thumbnail(path) == data
    assert read_thumbnail(path, source=files[0]) == data  # the source is older than its thumbnail
    remove_thumbnail(tmp_path / "thumbs", "abc")
    assert not path.exists() and read_thumbnail(path) is None
    remove_thumbnail(tmp_path / "thumbs", "abc")  # already gone: fine


def test_a_source_written_after_its_thumbnail_makes_it_stale(tmp_path: Path, files: list[Path]) -> None:
    path = tmp_path / "t.jpg"
    write_thumbnail(path, b"\xff\xd8 jpeg \xff\xd9")
    src = tmp_path / "src.dicom"
    src.write_bytes(b"x")
    st = path.stat()
    os.utime(src, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    assert read_thumbnail(path, source=src) is None
    os.utime(src, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert read_thumbnail(path, source=src) == b"\xff\xd8 jpeg \xff\xd9"
    assert read_thumbnail(path, source=tmp_path / "gone.dicom") is None


@pytest.mark.parametrize("data", [b"", b"\xff\xd8", b"\xff\xd8 half a jpeg", b"not a jpeg \xff\xd9"])
def test_a_file_cut_short_is_not_served(tmp_path: Path, data: bytes) -> None:
    """A power loss can leave a renamed but empty or short file (thumbnails are not fsynced): it is no JPEG."""
    path = tmp_path / "t.jpg"
    path.write_bytes(data)
    assert read_thumbnail(path) is None


def test_an_error_mid_write_leaves_the_old_thumbnail(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Half the bytes written, then the disk is full: the old thumbnail stays, the temporary is removed."""
    import cxrlab.dicom.thumbnail as thumbs

    path = tmp_path / "t.jpg"
    write_thumbnail(path, b"\xff\xd8 old \xff\xd9")

    class HalfThenFull:
        def __init__(self, fh) -> None:  # noqa: ANN001
            self.fh = fh

        def __enter__(self) -> HalfThenFull:
            return self

        def __exit__(self, *exc: object) -> None:
            self.fh.close()

        def write(self, data: bytes) -> None:
            self.fh.write(data[: len(data) // 2])
            self.fh.flush()
            raise OSError(28, "No space left on device")

    monkeypatch.setattr(thumbs, "open", lambda fd, mode: HalfThenFull(open(fd, mode)),  # noqa: SIM115
                        raising=False)
    with pytest.raises(OSError):
        write_thumbnail(path, b"\xff\xd8" + b"new" * 100 + b"\xff\xd9")
    monkeypatch.undo()
    assert read_thumbnail(path) == b"\xff\xd8 old \xff\xd9"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.jpg"]  # the temporary was removed


def test_a_process_killed_mid_write_leaves_no_partial_thumbnail(tmp_path: Path) -> None:
    """SIGKILL after half the bytes reached the temporary file: the thumbnail's name never holds them; the
    stray temporary is what :func:`remove_stale_temporaries` removes."""
    script = textwrap.dedent(f"""
        import os, signal
        import cxrlab.dicom.thumbnail as t
        real_open = open
        class Half:
            def __init__(self, fh): self.fh = fh
            def __enter__(self): return self
            def __exit__(self, *a): return False
            def write(self, data):
                self.fh.write(data[: len(data) // 2]); self.fh.flush()
                os.kill(os.getpid(), signal.SIGKILL)
        t.open = lambda fd, mode: Half(real_open(fd, mode))
        t.write_thumbnail({str(tmp_path / "img.jpg")!r}, b"\\xff\\xd8" + b"x" * 10000 + b"\\xff\\xd9")
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=120)
    assert done.returncode == -9, done.stderr
    assert not (tmp_path / "img.jpg").exists()
    assert read_thumbnail(tmp_path / "img.jpg") is None
    stray = [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    assert len(stray) == 1 and stray[0].stat().st_size == 10004 // 2
    assert remove_stale_temporaries(tmp_path) == 1 and not any(tmp_path.iterdir())


def test_deid_writes_the_thumbnail_of_a_held_image(tmp_path: Path, files: list[Path]) -> None:
    """What de-identification does when it holds an image for text review: the thumbnail of the source's
    pixels, from the dataset the scan decoded."""
    full = pydicom.dcmread(files[1], force=True)
    full.pixel_array  # noqa: B018 - decoded by the scan
    _write_thumbnail(tmp_path / "thumbs", "held1", full, files[1])
    assert (tmp_path / "thumbs" / "held1.jpg").read_bytes() == encode(to_uint8(files[1], max_size=256), "jpeg")
    _write_thumbnail(tmp_path / "thumbs", "../bad", full, files[1])  # never raises
    assert sorted(p.name for p in (tmp_path / "thumbs").iterdir()) == ["held1.jpg"]


def test_deid_run_writes_thumbnails_of_the_images_it_holds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``cxrlab deid run`` holding an image for text review stores its thumbnail (the source's pixels) beside
    ``review/``; the text scan is replaced by one that holds every image (the OCR models are not needed)."""
    from types import SimpleNamespace

    from sqlalchemy import select

    import cxrlab.deid.engine as engine
    import cxrlab.deid.text as text
    from cxrlab.catalog import init_workspace
    from cxrlab.catalog.models import Image, ImageState
    from cxrlab.deid import run_deid
    from cxrlab.ingest import run_ingest
    from cxrlab.runtime import Executor

    generate_phantoms(tmp_path / "in", 2, seed=8, size_range=(300, 360), text_prob=0.0, outlier_prob=0.0)
    ws = init_workspace(tmp_path / "ws")
    run_ingest(ws, tmp_path / "in", executor=Executor(1))
    held = SimpleNamespace(decision="review", shape=(64, 64), boxes=[],
                           candidates=[SimpleNamespace(box=(1, 2, 10, 12), status="doubtful")])
    monkeypatch.setattr(engine, "_detector", lambda opts: None)
    monkeypatch.setattr(text, "scan_dataset", lambda ds, detector: held)
    report = run_deid(ws, executor=Executor(1), text=True)
    assert report.counts["flagged_text"] == 2
    with ws.sessions() as session:
        images = session.scalars(select(Image)).all()
    assert {img.state for img in images} == {ImageState.FLAGGED_TEXT}
    for img in images:
        thumb = ws.path("thumbs", f"{img.image_id}.jpg")
        assert thumb.read_bytes() == encode(to_uint8(ws.root / img.raw_path, max_size=256), "jpeg")
        assert read_thumbnail(thumb, source=ws.root / img.raw_path) is not None
