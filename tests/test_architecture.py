"""The shape of the house (issue 11): only the web shell imports FastAPI, data moves forward through the stages,
routers import no router, and no block of code stands twice."""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "cxrlab"

#: Support packages first, then the pipeline stages in the order data moves through them (README, "How it is
#: built"); a package may import only packages on its left. The shells (cli, web, demo) may import anything.
ORDER = ["errors", "deprecation", "runtime", "dicom", "schemas", "catalog", "ingest", "collect", "deid", "filter",
         "reports", "annotate", "consensus", "split", "stats", "export", "datasets", "models", "evaluate", "benchmark"]
SHELLS = {"cli", "web", "demo"}


def _imports(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
        elif isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
    return names


def _modules() -> list[tuple[str, Path]]:
    """``(top-level package or module name, file)`` for every module of cxrlab."""
    return [(path.relative_to(SRC).parts[0].removesuffix(".py"), path) for path in sorted(SRC.rglob("*.py"))]


def test_every_package_is_placed() -> None:
    placed = set(ORDER) | SHELLS | {"__init__"}
    assert {top for top, _ in _modules()} <= placed, "a new package must be placed in ORDER or SHELLS"


def test_only_the_web_shell_imports_fastapi_or_starlette() -> None:
    offenders = [f"{path.relative_to(SRC)}: {name}" for top, path in _modules() if top != "web"
                 for name in _imports(path) if name.split(".")[0] in ("fastapi", "starlette", "uvicorn")]
    assert offenders == []


def test_no_stage_imports_a_later_stage_or_a_shell() -> None:
    offenders = []
    for top, path in _modules():
        if top in SHELLS or top == "__init__":
            continue
        for name in _imports(path):
            parts = name.split(".")
            if parts[0] != "cxrlab" or len(parts) < 2 or parts[1] == top:
                continue
            target = parts[1]
            if target in SHELLS or (target in ORDER and ORDER.index(target) > ORDER.index(top)):
                offenders.append(f"{path.relative_to(SRC)}: {name}")
    assert offenders == []


def test_routers_import_no_router() -> None:
    routers = SRC / "web" / "routers"
    offenders = [f"{path.relative_to(SRC)}: {name}" for path in routers.rglob("*.py")
                 for name in _imports(path) if name.startswith("cxrlab.web.routers")]
    assert offenders == []


@pytest.mark.skipif(shutil.which("duplicates") is None, reason="the `duplicates` tool is not installed here")
def test_no_block_of_more_than_ten_lines_stands_twice() -> None:
    found = subprocess.run(["duplicates", "--repo", str(ROOT / "src"), "--min-lines", "11", "--most", "200"],
                           capture_output=True, text=True, check=True).stdout
    pairs = [line for line in found.splitlines() if re.match(r"D\d+ ", line) and "/migrations/" not in line]
    assert pairs == [], found
