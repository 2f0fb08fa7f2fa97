"""Benchmark folder de-identification: cxrlab next to dicognito, dicom-anonymizer and ``cp -r`` (the disk limit).

One run, same inputs for every tool:

- large set: ``--large`` (default 100) 2500x2500 uint16 MONOCHROME2 Explicit VR Little Endian files (12.5 MB);
- small set: ``--small`` (default 500) 256x256 files of the same kind.

Every file carries a realistic header with PHI (names, IDs, dates, institution, accession number, a private
block and nested sequences); pixel data is random noise. Inputs are written with pydicom/numpy into
``--workdir`` (default: a fresh ``mkdtemp`` under /tmp, deleted at the end unless ``--keep``).

Competitors, each timed on each set into a fresh output folder (deleted right after, so disk use stays near
twice the input size), after one untimed ``cat > /dev/null`` pass over the inputs (warm page cache) and an
untimed ``sync`` (no dirty pages left by the previous tool):

- ``cp -r`` — the disk limit;
- a Python floor (``python copy w2``): each file read, written under a temporary name and renamed, in the same
  2-worker pool cxrlab uses, with no DICOM parsing — what any Python tool must at least do;
- cxrlab ``deid_folder`` with the ``vindr`` profile and ``Executor(2)`` (the target row), ``Executor(1)``, and
  the ``basic`` profile with ``Executor(2)``;
- dicognito (``pip install dicognito``; bench only): ``Anonymizer().anonymize(ds)`` + ``ds.save_as`` in one
  process, which is what its CLI does;
- dicom-anonymizer (a cxrlab dependency): ``dicomanonymizer.anonymize(src, out, {}, delete_private_tags=True)``,
  one process.

"s" is the time until the tool returns (the convention of the anchors); "s+sync" adds the ``sync`` that
follows, i.e. until the output is on disk (no tool fsyncs its outputs by default; cxrlab does with
``--sync``). MB are 10^6
bytes of input. A tool that cannot be imported is skipped with a message.

Usage: ``python bench/deid.py [--large N] [--small N] [--workdir DIR] [--keep] [--repeat N] [--tools a,b]``
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import generate_uid

try:
    from cxrlab.deid.batch import deid_folder
    from cxrlab.deid.profiles import get_profile
    from cxrlab.runtime.executor import Executor
    from cxrlab.runtime.files import atomic_path
except ModuleNotFoundError:  # a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from cxrlab.deid.batch import deid_folder
    from cxrlab.deid.profiles import get_profile
    from cxrlab.runtime.executor import Executor
    from cxrlab.runtime.files import atomic_path
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/support: the DICOM writer
from tests.support.dicom import DX_FOR_PRESENTATION, dicom_dataset  # noqa: E402

ANCHORS = "anchors (measured here, large set, one process): dicognito 34 files/s, dicom-anonymizer 33 files/s"
TARGETS = (
    # (set, what, threshold)
    ("large", "dicognito", 2.0),
    ("small", "dicognito", 3.0),
    ("large", "cp", 0.5),
    ("small", "cp", 0.5),
)
TARGET_ROW = "cxrlab vindr w2"
TOOLS = ("cp", "py-copy-w2", "cxrlab-w2", "cxrlab-w1", "cxrlab-basic", "dicognito", "dicom-anonymizer")
FLOOR_ROW = "python copy w2"


# --------------------------------------------------------------------------------------------------- inputs


def make_dataset(i: int, pixels: np.ndarray) -> Dataset:
    """A DX image (:func:`tests.support.dicom.dicom_dataset`) with a hospital-like header full of PHI (private
    block and sequences included)."""
    study, series = generate_uid(), generate_uid()
    ds = dicom_dataset(pixels=pixels, sop_class=DX_FOR_PRESENTATION, modality="DX", header=False)
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["ORIGINAL", "PRIMARY"]
    ds.StudyDate = ds.SeriesDate = ds.ContentDate = ds.AcquisitionDate = f"2024{1 + i % 12:02d}{1 + i % 28:02d}"
    ds.StudyTime = ds.SeriesTime = ds.ContentTime = "101530.123"
    ds.AccessionNumber = f"ACC{100000 + i}"
    ds.Manufacturer = "ACME Medical"
    ds.InstitutionName = "St. Example General Hospital"
    ds.InstitutionAddress = "1 Example Street, Springfield"
    ds.ReferringPhysicianName = "House^Gregory^^Dr"
    ds.StationName = "XR-ROOM-3"
    ds.StudyDescription = "CHEST PA AND LATERAL"
    ds.SeriesDescription = "PA"
    ds.InstitutionalDepartmentName = "Radiology"
    ds.OperatorsName = "Tech^Terry"
    ds.ManufacturerModelName = "DigiRad 5000"
    ds.PatientName = f"Doe^John^Q{i}"
    ds.PatientID = f"MRN{700000 + i}"
    ds.IssuerOfPatientID = "SEGH"
    ds.PatientBirthDate = f"19{40 + i % 60:02d}0{1 + i % 9}15"
    ds.PatientSex = "M" if i % 2 else "F"
    ds.PatientAge = f"{20 + i % 60:03d}Y"
    ds.PatientAddress = f"{i} Elm Street, Springfield"
    ds.PatientTelephoneNumbers = f"555-01{i % 100:02d}"
    ds.OtherPatientIDsSequence = Sequence([_item(PatientID=f"OLD{i}", IssuerOfPatientID="LEGACY")])
    ds.BodyPartExamined = "CHEST"
    ds.ViewPosition = "PA"
    ds.DeviceSerialNumber = "SN-00042"
    ds.SoftwareVersions = "4.2.1"
    ds.StudyInstanceUID = study
    ds.SeriesInstanceUID = series
    ds.StudyID = f"S{i}"
    ds.SeriesNumber = 1
    ds.InstanceNumber = 1
    ds.PatientOrientation = ["L", "F"]
    ds.FrameOfReferenceUID = generate_uid()
    ds.RequestAttributesSequence = Sequence(
        [_item(RequestedProcedureID=f"RP{i}", ScheduledProcedureStepID=f"SPS{i}", RequestedProcedureDescription="XR")]
    )
    ds.ProcedureCodeSequence = Sequence(
        [_item(CodeValue="36643-5", CodingSchemeDesignator="LN", CodeMeaning="XR Chest 2V")]
    )
    ds.ReferencedStudySequence = Sequence(
        [_item(ReferencedSOPClassUID="1.2.840.10008.3.1.2.3.1", ReferencedSOPInstanceUID=study)]
    )
    block = ds.private_block(0x0009, "ACME HOSPITAL PRIVATE", create=True)
    block.add_new(0x01, "LO", f"Doe, John (MRN{700000 + i})")
    block.add_new(0x02, "DA", "20240101")
    ds.PixelSpacing = [0.139, 0.139]
    return ds


def _item(**kw: str) -> Dataset:
    item = Dataset()
    for k, v in kw.items():
        setattr(item, k, v)
    return item


def make_inputs(folder: Path, n: int, size: int, rng: np.random.Generator) -> int:
    """Write *n* files of *size* x *size* pixels into *folder*; return the total bytes."""
    folder.mkdir(parents=True, exist_ok=True)
    base = rng.integers(0, 4096, size=(size, size), dtype=np.uint16)
    total = 0
    for i in range(n):
        # Cheap per-file variation: a different roll of one noise image (files must differ, not be random).
        pixels = np.roll(base, i * 7919 % (size * size))
        path = folder / f"IM{i:06d}.dcm"
        pydicom.dcmwrite(path, make_dataset(i, pixels), enforce_file_format=True)
        total += path.stat().st_size
    return total


def warm(folder: Path) -> None:
    """One untimed ``cat > /dev/null`` pass so every tool starts with the inputs in the page cache."""
    files = sorted(str(p) for p in folder.iterdir())
    for k in range(0, len(files), 200):
        subprocess.run(["cat", *files[k : k + 200]], stdout=subprocess.DEVNULL, check=True)


# --------------------------------------------------------------------------------------------------- tools


def run_cp(src: Path, out: Path) -> None:
    subprocess.run(["cp", "-r", str(src), str(out)], check=True)


def _copy_one(path: Path, out: Path) -> int:
    """Read a file and write it under a temporary name, then rename: what any Python tool must at least do."""
    data = path.read_bytes()
    with atomic_path(out / path.name) as tmp, open(tmp, "wb") as fh:
        fh.write(data)
    return len(data)


def run_python_copy(src: Path, out: Path) -> None:
    """The floor for a Python tool: :func:`_copy_one` over the files with the pool cxrlab uses (2 workers,
    chunks of 16), no DICOM parsing at all."""
    out.mkdir(parents=True)
    for _ in Executor(2).map(_copy_one, sorted(src.iterdir()), out, chunksize=16):
        pass


def make_cxrlab(profile: str, workers: int) -> Callable[[Path, Path], None]:
    def run(src: Path, out: Path) -> None:
        report = deid_folder(
            src,
            out,
            profile=get_profile(profile),
            key=KEY,
            mapping=out.parent / f"{out.name}-mapping.sqlite",
            executor=Executor(workers),
        )
        if report.problems:
            raise RuntimeError(f"cxrlab reported problems: {report.problems[:3]}")

    return run


def run_dicognito(src: Path, out: Path) -> None:
    from dicognito.anonymizer import Anonymizer

    anonymizer = Anonymizer()
    out.mkdir(parents=True)
    for path in sorted(src.iterdir()):
        with pydicom.dcmread(path) as ds:
            anonymizer.anonymize(ds)
            ds.save_as(out / f"{ds.SOPInstanceUID}.dcm", enforce_file_format=True)


def run_dicom_anonymizer(src: Path, out: Path) -> None:
    from dicomanonymizer import anonymize

    out.mkdir(parents=True)
    with contextlib.redirect_stderr(io.StringIO()):  # its tqdm bar
        anonymize(str(src), str(out), {}, delete_private_tags=True)


def available(tool: str) -> str | None:
    """None if *tool* can run, else why not."""
    try:
        if tool == "dicognito":
            import dicognito.anonymizer  # noqa: F401
        elif tool == "dicom-anonymizer":
            import dicomanonymizer  # noqa: F401
        elif tool == "cp" and not shutil.which("cp"):
            return "no cp on PATH"
    except ImportError as exc:
        hint = " (pip install dicognito)" if tool == "dicognito" else ""
        return f"cannot import: {exc}{hint}"
    return None


RUNNERS: dict[str, tuple[str, Callable[[Path, Path], None]]] = {
    "cp": ("cp -r", run_cp),
    "py-copy-w2": (FLOOR_ROW, run_python_copy),
    "cxrlab-w2": (TARGET_ROW, make_cxrlab("vindr", 2)),
    "cxrlab-w1": ("cxrlab vindr w1", make_cxrlab("vindr", 1)),
    "cxrlab-basic": ("cxrlab basic w2", make_cxrlab("basic", 2)),
    "dicognito": ("dicognito", run_dicognito),
    "dicom-anonymizer": ("dicom-anonymizer", run_dicom_anonymizer),
}
KEY = secrets.token_bytes(32)


# --------------------------------------------------------------------------------------------------- timing


@dataclass
class Row:
    tool: str
    set: str
    files: int
    seconds: float
    synced: float
    mb: float

    @property
    def fps(self) -> float:
        return self.files / self.seconds

    @property
    def mbps(self) -> float:
        return self.mb / self.seconds


def count_outputs(out: Path) -> int:
    return sum(1 for p in out.rglob("*") if p.is_file() and not p.name.startswith("."))


def time_tool(
    label: str, fn: Callable[[Path, Path], None], src: Path, runs: Path, n: int, mb: float, repeat: int
) -> Row:
    """Best of *repeat* runs of *fn* on *src*; every run writes to a fresh folder that is deleted afterwards."""
    best: Row | None = None
    for r in range(repeat):
        out = runs / f"{label.replace(' ', '_')}-{src.name}-{r}"
        os.sync()
        t0 = time.perf_counter()
        fn(src, out)
        t1 = time.perf_counter()
        os.sync()
        t2 = time.perf_counter()
        got = count_outputs(out)
        shutil.rmtree(out)
        for extra in runs.glob(f"{out.name}-mapping.*"):
            extra.unlink()
        if got != n:
            raise RuntimeError(f"{label} on {src.name}: {got} output files for {n} inputs")
        row = Row(label, src.name, n, t1 - t0, t2 - t0, mb)
        if best is None or row.seconds < best.seconds:
            best = row
    return best


def print_table(rows: list[Row]) -> None:
    ref = {(r.tool, r.set): r for r in rows}
    head = f"{'tool':<18} {'set':<6} {'files':>6} {'s':>8} {'s+sync':>8} {'files/s':>9} {'MB/s':>8}"
    head += f" {'x dicognito':>11} {'x cp':>6}"
    print(head)
    print("-" * len(head))
    for r in rows:
        dg, cp = ref.get(("dicognito", r.set)), ref.get(("cp -r", r.set))
        x_dg = f"{r.fps / dg.fps:.2f}" if dg else "-"
        x_cp = f"{r.mbps / cp.mbps:.2f}" if cp else "-"
        print(
            f"{r.tool:<18} {r.set:<6} {r.files:>6} {r.seconds:>8.2f} {r.synced:>8.2f} {r.fps:>9.1f} {r.mbps:>8.1f}"
            f" {x_dg:>11} {x_cp:>6}"
        )


def print_targets(rows: list[Row]) -> bool:
    ref = {(r.tool, r.set): r for r in rows}
    ok_all = True
    print(f"\ntargets ({TARGET_ROW} throughput / competitor throughput, same set):")
    for set_name, other, threshold in TARGETS:
        mine, theirs = ref.get((TARGET_ROW, set_name)), ref.get(("cp -r" if other == "cp" else other, set_name))
        if mine is None or theirs is None:
            print(f"  {set_name:<6} >= {threshold:.1f}x {other:<10} not measured")
            continue
        ratio = mine.fps / theirs.fps
        ok = ratio >= threshold
        ok_all &= ok
        print(f"  {set_name:<6} >= {threshold:.1f}x {other:<10} {ratio:5.2f}x  {'met' if ok else 'MISSED'}")
        floor = ref.get((FLOOR_ROW, set_name))
        if not ok and other == "cp" and floor is not None:
            print(f"         (a Python tool that only reads, writes and renames each file, with the same 2-worker pool,"
                  f" reaches {floor.fps / theirs.fps:.2f}x cp here)")
    return ok_all


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--large", type=int, default=100, help="2500x2500 files (default 100)")
    ap.add_argument("--small", type=int, default=500, help="256x256 files (default 500)")
    ap.add_argument("--workdir", type=Path, default=None, help="where inputs and outputs go (default: mkdtemp)")
    ap.add_argument("--keep", action="store_true", help="keep the generated inputs")
    ap.add_argument("--repeat", type=int, default=1, help="runs per tool and set; the best is reported")
    ap.add_argument("--tools", default=",".join(TOOLS), help=f"comma-separated subset of {','.join(TOOLS)}")
    args = ap.parse_args(argv)
    tools = [t.strip() for t in args.tools.split(",") if t.strip()]
    unknown = set(tools) - set(TOOLS)
    if unknown:
        ap.error(f"unknown tool(s): {', '.join(sorted(unknown))}")

    created = args.workdir is None
    workdir = Path(tempfile.mkdtemp(prefix="cxrlab-bench-deid-")) if created else args.workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    inputs, runs = workdir / "inputs", workdir / "runs"
    runs.mkdir(exist_ok=True)
    try:
        rng = np.random.default_rng(0)
        sets: list[tuple[Path, int, float]] = []
        t0 = time.perf_counter()
        for name, n, size in (("large", args.large, 2500), ("small", args.small, 256)):
            if n > 0:
                folder = inputs / name
                sets.append((folder, n, make_inputs(folder, n, size, rng) / 1e6))
        desc = ", ".join(f"{f.name} {n} files {mb:.0f} MB" for f, n, mb in sets)
        print(f"inputs in {inputs}: {desc} (generated in {time.perf_counter() - t0:.1f} s)")
        print(f"cpus available: {len(os.sched_getaffinity(0))}; pydicom {pydicom.__version__}\n")

        rows: list[Row] = []
        for tool in tools:
            why = available(tool)
            if why:
                print(f"skipping {tool}: {why}")
                continue
            label, fn = RUNNERS[tool]
            for folder, n, mb in sets:
                warm(folder)
                row = time_tool(label, fn, folder, runs, n, mb, args.repeat)
                print(f"  {label:<18} {folder.name:<6} {row.seconds:7.2f} s  {row.fps:7.1f} files/s", flush=True)
                rows.append(row)
        print()
        print_table(rows)
        ok = print_targets(rows)
        print(f"\n{ANCHORS}")
        return 0 if ok else 1
    finally:
        if created and not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            shutil.rmtree(runs, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
