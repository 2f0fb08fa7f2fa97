"""``cxrlab filter queue --queue`` and ``cxrlab filter verify --text|--set-aside`` (issue 15, item 2): the shell
of the same functions as the web app's triage page."""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from cxrlab.catalog.models import Event, Image, ImageState
from cxrlab.cli.main import app
from tests.support.triage import TEXT_BOX, build_triage_workspace

pytestmark = pytest.mark.slow

runner = CliRunner()


def test_cli_decides_text_and_set_aside_images(tmp_path: Path) -> None:
    tw = build_triage_workspace(tmp_path, n_filter=1, n_text=2, n_unusable=1)
    ws = tw.workspace
    root = str(ws.root)
    with ws.sessions() as s:
        ids = {pk: s.get(Image, pk).image_id for pk in [*tw.text, *tw.unusable]}
    r = runner.invoke(app, ["filter", "queue", "-w", root, "--queue", "text"])
    assert r.exit_code == 0, r.output
    assert "filter 1, text 2, unusable 1" in r.stdout and ids[tw.text[0]] in r.stdout
    assert ",".join(map(str, TEXT_BOX)) in r.stdout
    assert "Plantedname" not in r.stdout
    r = runner.invoke(app, ["filter", "queue", "-w", root, "--queue", "everything"])
    assert r.exit_code == 2
    r = runner.invoke(app, ["filter", "verify", ids[tw.text[0]], "--text", "redact", "--box", "1,2,3", "--author",
                            "vera", "-w", root])
    assert r.exit_code == 2 and "X0,Y0,X1,Y1" in r.output
    r = runner.invoke(app, ["filter", "verify", ids[tw.text[0]], "--text", "shred", "--author", "vera", "-w", root])
    assert r.exit_code == 2 and "release, redact, discard" in r.output
    r = runner.invoke(app, ["filter", "verify", ids[tw.text[0]], "--text", "redact", "--box", "10,10,40,40",
                            "--box", "50,60,70,80", "--author", "vera", "-w", root])
    assert r.exit_code == 0 and "deidentified" in r.stdout, r.output
    r = runner.invoke(app, ["filter", "verify", ids[tw.text[1]], "--text", "release", "--author", "vera", "-w", root])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["filter", "verify", ids[tw.unusable[0]], "--set-aside", "return", "--author", "vera",
                            "-w", root])
    assert r.exit_code == 0 and "assigned" in r.stdout, r.output
    r = runner.invoke(app, ["filter", "verify", ids[tw.unusable[0]], "--set-aside", "confirm", "--author", "vera",
                            "-w", root])
    assert r.exit_code == 1 and "not waiting in the unusable queue" in r.stderr
    with ws.sessions() as s:
        img = s.get(Image, tw.text[0])
        assert img.state == ImageState.DEIDENTIFIED
        redacted = pydicom.dcmread(ws.root / img.deid_path).pixel_array
        assert redacted[10:40, 10:40].min() == redacted[10:40, 10:40].max()
        ev = s.scalars(select(Event).where(Event.image_pk == tw.text[0]).order_by(Event.id.desc())).first()
        assert (ev.action, ev.author) == ("text.redact", "vera") and len(ev.detail["boxes"]) == 2
