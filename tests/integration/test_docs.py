"""The documentation: the site builds offline with ``mkdocs build --strict`` (no warning), loads nothing from the
internet, documents every CLI command with a valid example, and the README stays short and true (its commands
and its library example run)."""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # builds the documentation site and runs its examples

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
BIN = Path(sys.executable).parent
EXAMPLE = ROOT / "docs_src" / "library_example.py"

pytest.importorskip("mkdocs", reason="the docs need the [docs] extra: pip install -e '.[docs]'")


def _load_hook():  # noqa: ANN202 - the docs/_hooks/cli_reference module
    spec = importlib.util.spec_from_file_location("cli_reference", ROOT / "docs" / "_hooks" / "cli_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The site built once with ``--strict`` into a temporary folder; (folder, build log)."""
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    proc = subprocess.run([str(BIN / "mkdocs"), "build", "--strict", "-d", str(out)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log
    return out, log


class _Assets(HTMLParser):
    """Every URL a page loads (scripts, style sheets, icons, images, frames), not the links a reader may click."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag in ("script", "img", "iframe", "source", "video", "audio") and a.get("src"):
            self.urls.append(a["src"])
        if tag == "link" and a.get("href") and a.get("rel") not in ("canonical", "prev", "next", "alternate"):
            self.urls.append(a["href"])


class TestSite:
    def test_builds_strict_without_a_warning(self, site: tuple[Path, str]) -> None:
        out, log = site
        assert "WARNING" not in log, log
        for page in ("index.html", "getting-started/index.html", "reference/cli/index.html",
                     "reference/api/evaluate/index.html", "architecture/index.html", "benchmarks/index.html"):
            assert (out / page).is_file(), page

    def test_pages_load_nothing_from_the_internet(self, site: tuple[Path, str]) -> None:
        out, _ = site
        pages = list(out.rglob("*.html"))
        assert len(pages) > 30
        for page in pages:
            parser = _Assets()
            parser.feed(page.read_text(encoding="utf-8"))
            external = [u for u in parser.urls if re.match(r"^(?:[a-z]+:)?//", u)]
            assert external == [], f"{page.relative_to(out)}: {external}"
        for css in out.rglob("*.css"):
            assert not re.search(r"url\(['\"]?(?:https?:)?//", css.read_text(encoding="utf-8")), css
        assert not any("fonts.googleapis" in p.read_text(encoding="utf-8") for p in pages)

    def test_pages_name_no_path_outside_the_repository(self, site: tuple[Path, str]) -> None:
        out, _ = site
        for page in [*out.rglob("*.html"), out / "search" / "search_index.json"]:
            assert not re.search(r"\.\./shared|/work/|DESIGN\.md", page.read_text(encoding="utf-8")), page

    def test_cli_reference_documents_every_command_and_option(self, site: tuple[Path, str]) -> None:
        out, _ = site
        html = (out / "reference" / "cli" / "index.html").read_text(encoding="utf-8")
        hook = _load_hook()
        root = hook.root_command()
        ctx = __import__("typer").Context(root, info_name="cxrlab")
        for name in root.list_commands(ctx):
            command = root.get_command(ctx, name)
            subs = [command.get_command(ctx, s) for s in command.list_commands(ctx)] if hasattr(
                command, "list_commands") else [command]
            for sub in subs:
                for param in sub.params:
                    for opt in param.opts:
                        if opt.startswith("--") and opt != "--help":
                            assert opt in html, f"cxrlab {name} {sub.name}: {opt} missing"

    def test_api_reference_renders_the_public_names(self, site: tuple[Path, str]) -> None:
        out, _ = site
        for page, names in {
            "evaluate": ["score_submission", "validate_submission", "read_annotations"],
            "consensus": ["majority_vote", "fuse_reader_boxes", "run_consensus"],
            "deid": ["deidentify_file", "deid_folder", "verify_folder"],
            "dicom-display": ["apply_voi", "apply_modality_lut"],
            "catalog": ["init_workspace", "open_workspace", "ImageState"],
            "datasets": ["VinDrDataset", "NIHDataset", "ReleaseDataset", "write_phantom_release"],
        }.items():
            html = (out / "reference" / "api" / page / "index.html").read_text(encoding="utf-8")
            for name in names:
                assert re.search(rf'id="cxrlab\.[a-z_.]*{name}"', html), f"{page}: {name}"
            assert ":func:" not in html and ":class:" not in html  # Sphinx roles are rewritten as code


class TestCliExamples:
    def test_every_top_level_command_has_an_example(self) -> None:
        hook = _load_hook()
        root = hook.root_command()
        ctx = __import__("typer").Context(root, info_name="cxrlab")
        assert set(root.list_commands(ctx)) == set(hook.EXAMPLES)

    def test_examples_name_existing_commands_and_options(self) -> None:
        hook = _load_hook()
        root = hook.root_command()
        ctx = __import__("typer").Context(root, info_name="cxrlab")
        for examples in hook.EXAMPLES.values():
            for example in examples:
                words = shlex.split(example)
                assert words[0] == "cxrlab", example
                command, rest = root, words[1:]
                while hasattr(command, "list_commands") and rest and rest[0] in command.list_commands(ctx):
                    command, rest = command.get_command(ctx, rest[0]), rest[1:]
                assert not hasattr(command, "list_commands"), f"{example}: names a group, not a command"
                known = {o for p in command.params for o in (*p.opts, *p.secondary_opts)}
                for word in rest:
                    if word.startswith("-") and not re.fullmatch(r"-?\d[\d.,]*", word):
                        assert word.split("=", 1)[0] in known, f"{example}: unknown option {word}"


class TestReadme:
    def test_is_short(self) -> None:
        assert len(README.read_text(encoding="utf-8").splitlines()) <= 250

    @pytest.mark.parametrize("path", ["README.md", "CONTRIBUTING.md", "CHANGELOG.md", "docs"])
    def test_names_no_path_outside_the_repository(self, path: str) -> None:
        files = [ROOT / path] if path.endswith(".md") else sorted((ROOT / path).rglob("*.md"))
        for file in files:
            text = file.read_text(encoding="utf-8")
            assert not re.search(r"\.\./shared|/work/|DESIGN\.md|STYLE\.md", text), file

    def test_links_into_the_docs_exist(self) -> None:
        links = re.findall(r"\]\(((?:docs/|CONTRIBUTING|CHANGELOG)[^)#]*)", README.read_text(encoding="utf-8"))
        assert len(links) >= 8
        for link in links:
            assert (ROOT / link).exists(), link

    def test_walk_is_the_one_getting_started_explains(self) -> None:
        walk = "\n".join(_walk_commands())
        guide = (ROOT / "docs" / "getting-started.md").read_text(encoding="utf-8")
        assert walk in "\n".join(line.split("  #")[0].strip() for line in guide.splitlines())

    def test_library_example_is_the_tested_file(self) -> None:
        assert EXAMPLE.read_text(encoding="utf-8").strip() in README.read_text(encoding="utf-8")


def _walk_commands() -> list[str]:
    """The README's pipeline walk: the first ```bash block that runs ``cxrlab init``."""
    for block in re.findall(r"```bash\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S):
        if "cxrlab init" in block:
            return [line.split("  #")[0].strip() for line in block.splitlines() if line.strip()]
    raise AssertionError("README.md has no ```bash block with `cxrlab init`")


def test_readme_walk_and_library_example_run(tmp_path: Path) -> None:
    """Every command of the README's walk succeeds in a fresh folder, then its library example runs there."""
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.pop("CXRLAB_WORKSPACE", None)
    commands = _walk_commands()
    assert 6 <= len(commands) <= 12
    for command in commands:
        proc = subprocess.run(command, shell=True, cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=600)
        assert proc.returncode == 0, f"{command}\n{proc.stdout}\n{proc.stderr}"
    assert (tmp_path / "ws" / "exports" / "v1" / "manifest.json").is_file()
    proc = subprocess.run([sys.executable, str(EXAMPLE)], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert "No finding" in proc.stdout
    assert 0.0 <= float(lines[-1]) <= 1.0
