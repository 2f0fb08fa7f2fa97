"""PHI fuzz benchmark of the de-identification engine: 10,000 generated data sets by default.

The data sets come from :func:`tests.support.phi_strategies.phi_datasets` (PHI tokens in standard, private, nested,
overlay and file-meta elements under several character sets), split evenly between the ``vindr`` and ``basic``
profiles. Each one is de-identified with ``deidentify_dataset`` and written with pydicom; every ``--file-every``-th
one also goes through ``deidentify_file`` (streaming writer, Pixel Data copied from the source file). The checks
are those of ``tests/unit/deid/test_fuzz.py``: no planted value in any output byte, no element the profile removes.

Prints data sets/s, the number of leaks and of elements outside the profile (both must be 0) and the first
failures; exits 1 on any failure.

``--known-bugs`` adds the triggers of the leaks this fuzzer found (a malformed DA value with a suffix, a birth date
in an alternative calendar) to show they are still there.

Usage: ``python bench/deid_fuzz.py [--n 10000] [--seed 0] [--file-every 10] [--known-bugs]``
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings
from collections import Counter
from io import BytesIO
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import pydicom  # noqa: E402
from hypothesis import HealthCheck, Phase, given, seed, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from tests.support.phi_strategies import elements_outside_profile, find_leaks, phi_datasets, read_back  # noqa: E402

from cxrlab.deid.engine import deidentify_dataset, deidentify_file  # noqa: E402
from cxrlab.deid.profiles import get_profile  # noqa: E402

KEY = b"phi-fuzz-bench-key-0123456789abc"


def _with_known_bugs(profile_name: str) -> st.SearchStrategy:
    @st.composite
    def strategy(draw: st.DrawFn) -> tuple[pydicom.FileDataset, list[str]]:
        ds, planted = draw(phi_datasets(profile_name))
        suffix = "PHIsfx" + draw(st.text(alphabet="abcdefghijkmnpqrstuvwxyz23456789", min_size=6, max_size=8))
        ds.ContentDate = ds.get("StudyDate") or "20200315"
        ds.ContentDate = str(ds.ContentDate)[:8] + suffix
        alt = "PHIalt" + draw(st.text(alphabet="abcdefghijkmnpqrstuvwxyz23456789", min_size=6, max_size=8))
        ds.PatientBirthDateInAlternativeCalendar = alt
        return ds, [*planted, suffix, alt]

    return strategy()


def run(profile_name: str, n: int, file_every: int, known_bugs: bool, rng_seed: int, stats: Counter,
        failures: list[str]) -> None:
    profile = get_profile(profile_name)
    strategy = _with_known_bugs(profile_name) if known_bugs else phi_datasets(profile_name)
    tmp = Path(tempfile.mkdtemp(prefix="deid_fuzz_"))

    def check(label: str, ds: pydicom.FileDataset, planted: list[str], data: bytes) -> None:
        out = read_back(data)
        leaks = find_leaks(data, planted, ds.get("SpecificCharacterSet"), out)
        outside = elements_outside_profile(out, profile)
        stats["leaks"] += len(leaks)
        stats["outside"] += len(outside)
        stats["datasets with a leak"] += bool(leaks)
        if (leaks or outside) and len(failures) < 20:
            where = [f"{e.tag} {e.keyword or 'private'} {e.VR}" for e in ds.iterall()
                     if any(v in str(e.value) for v in leaks)]
            failures.append(f"{profile_name}/{label}: leaks={leaks} (source elements {where}) outside={outside}")

    @seed(rng_seed)
    @settings(max_examples=n, deadline=None, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(strategy)
    def one(example: tuple[pydicom.FileDataset, list[str]]) -> None:
        ds, planted = example
        index = stats[f"{profile_name} datasets"]
        stats[f"{profile_name} datasets"] += 1
        stats["planted values"] += len(planted)
        try:
            result = deidentify_dataset(ds, profile=profile, key=KEY)
            buf = BytesIO()
            pydicom.dcmwrite(buf, result.dataset, enforce_file_format=True)
            check("dataset", ds, planted, buf.getvalue())
            if file_every and index % file_every == 0:
                src = tmp / "src.dcm"
                pydicom.dcmwrite(src, ds, enforce_file_format=True)
                res = deidentify_file(src, tmp / "out", profile=profile, key=KEY)
                out_path = tmp / "out" / f"{res.image_id}.dicom"
                check("file", ds, planted, out_path.read_bytes())
                out_path.unlink()
                stats["via deidentify_file"] += 1
        except Exception as exc:  # noqa: BLE001 - count and report, keep fuzzing
            stats["errors"] += 1
            if len(failures) < 20:
                failures.append(f"{profile_name}: {type(exc).__name__}: {exc}")

    one()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000, help="data sets in all (split between the two profiles)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--file-every", type=int, default=10, help="also run deidentify_file on every k-th (0: never)")
    parser.add_argument("--profiles", default="vindr,basic")
    parser.add_argument("--known-bugs", action="store_true", help="add the triggers of the known leaks")
    args = parser.parse_args(argv)
    profiles = [p.strip() for p in args.profiles.split(",") if p.strip()]
    stats: Counter = Counter()
    failures: list[str] = []
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i, name in enumerate(profiles):
            share = args.n // len(profiles) + (1 if i < args.n % len(profiles) else 0)
            run(name, share, args.file_every, args.known_bugs, args.seed + i, stats, failures)
    elapsed = time.perf_counter() - start
    total = sum(stats[f"{p} datasets"] for p in profiles)
    per_profile = ", ".join(f"{p} {stats[p + ' datasets']}" for p in profiles)
    print(f"datasets: {total} ({per_profile}), "
          f"{stats['via deidentify_file']} also via deidentify_file, {stats['planted values']} planted values")
    print(f"time: {elapsed:.1f} s, {total / elapsed:.1f} datasets/s")
    print(f"leaks: {stats['leaks']} (in {stats['datasets with a leak']} datasets)")
    print(f"elements outside profile: {stats['outside']}")
    print(f"errors: {stats['errors']}")
    for line in failures:
        print("  " + line)
    ok = total >= args.n and not (stats["leaks"] or stats["outside"] or stats["errors"])
    print("OK" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
