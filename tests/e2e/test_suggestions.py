"""End-to-end model-assisted reading (issue 16, item 4): Debian's Chromium (Playwright) against a real
``cxrlab serve`` over a workspace with a real detector run (:func:`tests.support.detector.train_tiny_detector`).

A project without a detector run shows no suggestion and asks for none. An admin turns suggestions on from the
project's admin page; the reader's viewer then shows the model's boxes as a dashed layer with class and score
once the server's background worker has predicted the image (the viewer asks again while it answers
"pending"); one key (A) accepts one as the reader's box; undo and redo take the accept back and do it again;
the saved box, its ``annotation.create`` event and the JSON export record it as a suggestion.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pydicom
import pytest
from sqlalchemy import select

from tests.e2e.conftest import ARTIFACTS, PASSWORD
from tests.support.browser import form_login
from tests.support.server import start_server
from tests.support.users import READERS, create_users

pytestmark = pytest.mark.slow  # a server process, a browser and a detector trained for the session

#: Records every box outline the canvas draws, with its dash pattern and colour (the viewer draws suggestions
#: dashed, the reader's own boxes solid).
RECORD_STROKES = """
window.__strokes = [];
const strokeRect = CanvasRenderingContext2D.prototype.strokeRect;
CanvasRenderingContext2D.prototype.strokeRect = function (...args) {
  window.__strokes.push({ dashed: this.getLineDash().length > 0, color: String(this.strokeStyle) });
  if (window.__strokes.length > 2000) window.__strokes.splice(0, 1000);
  return strokeRect.apply(this, args);
};
"""


@dataclass
class Site:
    url: str
    workspace: object
    plain: int
    assisted: int
    run: Path


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, tiny_detector: Path, playwright_browser) -> Iterator[Site]:  # noqa: ANN001
    """A workspace of the detector's own phantoms: project "plain" (no suggestions) and project "assisted" over
    images the detector finds something on; each image is read by the three readers."""
    from cxrlab.annotate.assignment import assign_images
    from cxrlab.annotate.projects import create_project
    from cxrlab.catalog import init_workspace
    from cxrlab.catalog.models import Image, ImageState
    from cxrlab.models.predict import DetectorModel
    from cxrlab.models.suggest import _boxes

    ws = init_workspace(tmp_path_factory.mktemp("suggest-e2e") / "ws")
    model = DetectorModel(tiny_detector)
    files = sorted((tiny_detector.parent / "release").rglob("*.dicom"))
    found = [f for f in files if _boxes(model, f)][:3]
    assert len(found) == 3, "the tiny detector finds something on its own phantoms"
    chosen = {"plain": [f for f in files if f not in found][:2], "assisted": found}
    with ws.sessions() as session:
        create_users(session)
        ids: dict[str, int] = {}
        for name, paths in chosen.items():
            with session.begin():
                for path in paths:
                    ds = pydicom.dcmread(path, stop_before_pixels=True)
                    session.add(Image(sop_instance_uid=str(ds.SOPInstanceUID), image_id=path.stem,
                                      raw_sha256=path.stem * 2, raw_path="raw/x.dcm", deid_path=str(path),
                                      state=ImageState.ACCEPTED, rows=int(ds.Rows), columns=int(ds.Columns),
                                      modality="CR"))
            project = create_project(session, name=name)
            assign_images(session, project=project, readers=READERS, image_ids=[p.stem for p in paths])
            ids[name] = project.id
    try:
        with start_server(ws) as server:
            yield Site(server.url, ws, ids["plain"], ids["assisted"], tiny_detector)
    finally:
        ws.engine.dispose()


def _page(browser, site: Site, username: str):  # noqa: ANN001, ANN202 - playwright objects
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    context.add_init_script(RECORD_STROKES)
    page = context.new_page()
    page.js_errors = []
    page.on("pageerror", lambda exc: page.js_errors.append(str(exc)))
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.requests_seen = requests
    form_login(page, site.url, username, PASSWORD)
    return page


def _read(page, site: Site, project_id: int) -> None:  # noqa: ANN001
    page.goto(f"{site.url}/projects/{project_id}/read")
    page.wait_for_function("() => { const v = window.cxrViewer; return v && v.state.task && v.view.image"
                           " && v.view.image.imageId === v.state.task.image.image_id; }")
    page.get_by_role("img", name="Chest X-ray").focus()


def _draft(site: Site, task_id: int) -> dict:
    from cxrlab.catalog.models import Task

    with site.workspace.sessions() as session:
        return session.get(Task, task_id).draft or {}


MINE = "window.cxrViewer.view.editableLayer.boxes"
MODEL = "(window.cxrViewer.view.layers.find((l) => l.key === 'model')?.boxes ?? [])"


class TestModelAssistedReading:
    def test_no_suggestions_when_the_project_has_none(self, playwright_browser, site: Site) -> None:
        page = _page(playwright_browser, site, "reader1")
        _read(page, site, site.plain)
        assert page.evaluate("window.cxrViewer.suggest.on") is False
        page.keyboard.press("a")  # the accept key does nothing here
        page.wait_for_timeout(300)
        assert page.evaluate(f"{MODEL}.length") == 0 and page.evaluate(f"{MINE}.length") == 0
        assert page.evaluate("window.__strokes.filter((s) => s.dashed).length") == 0
        assert "suggestions" not in page.get_by_role("status").text_content()
        assert not [u for u in page.requests_seen if "/suggestions" in u]
        assert page.js_errors == []
        page.context.close()

    def test_enabled_suggestions_are_dashed_accepted_with_one_key_and_recorded(self, playwright_browser,
                                                                              site: Site) -> None:
        # The admin turns suggestions on from the project's admin page.
        admin = _page(playwright_browser, site, "admin")
        admin.goto(f"{site.url}/admin/projects/{site.assisted}")
        admin.get_by_label("Detector run folder (on the server)").fill(str(site.run))
        admin.get_by_role("button", name="Turn suggestions on").click()
        admin.wait_for_function("document.getElementById('suggest-status').textContent.startsWith('Suggestions on')")
        admin.context.close()

        page = _page(playwright_browser, site, "reader1")
        _read(page, site, site.assisted)
        assert page.evaluate("window.cxrViewer.suggest.on") is True
        # the server predicts in the background; the viewer shows the boxes once they are stored
        page.wait_for_function(f"{MODEL}.length > 0")
        offered = page.evaluate(MODEL)
        assert all(b["id"].startswith("sug-") and 0 < b["score"] <= 1 for b in offered)
        assert page.evaluate("window.cxrViewer.view.layers.find((l) => l.key === 'model').editable") is False
        page.wait_for_function("window.__strokes.some((s) => s.dashed && s.color === '#ffb74d')")  # drawn dashed
        assert f"suggestions {len(offered)} left (A accepts)" in page.get_by_role("status").text_content()
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "viewer-suggestions.png"))

        # One key accepts the best one as the reader's box; it leaves the model's layer.
        task_id = page.evaluate("window.cxrViewer.state.task.id")
        page.keyboard.press("a")
        mine = page.evaluate(MINE)
        assert [(b["id"], b["class_name"], b["source"]) for b in mine] == [
            (offered[0]["id"], offered[0]["class_name"], "suggestion")]
        assert page.evaluate(f"{MODEL}.length") == len(offered) - 1
        page.wait_for_function("document.getElementById('status').dataset.save === 'saved'")
        saved = _draft(site, task_id)["boxes"]
        assert [(b["id"], b["source"], b["score"]) for b in saved] == [(offered[0]["id"], "suggestion",
                                                                         offered[0]["score"])]

        # Undo takes the accept back (the suggestion is offered again); redo accepts it again.
        page.keyboard.press("Control+z")
        assert page.evaluate(f"{MINE}.length") == 0 and page.evaluate(f"{MODEL}.length") == len(offered)
        page.wait_for_function("document.getElementById('status').dataset.save === 'saved'")
        assert _draft(site, task_id)["boxes"] == []
        page.keyboard.press("Control+Shift+z")
        page.wait_for_function("document.getElementById('status').dataset.save === 'saved'")
        assert [b.get("source") for b in _draft(site, task_id)["boxes"]] == ["suggestion"]

        # A global label and Enter submit the read; the export says the box came from the model.
        page.get_by_role("checkbox", name="Other diseases").check()
        page.get_by_role("img", name="Chest X-ray").focus()
        page.keyboard.press("Enter")
        page.wait_for_function(f"!window.cxrViewer.state.task || window.cxrViewer.state.task.id !== {task_id}")
        assert page.js_errors == []
        # Blinding: the viewer asked only for the model's boxes of the reader's own tasks.
        assert not [u for u in page.requests_seen if "/api/reviews" in u or "/export" in u]
        page.context.close()

        client = httpx.Client(base_url=site.url, timeout=30)
        token = client.post("/api/auth/token", json={"username": "admin", "password": PASSWORD}).json()
        client.headers["Authorization"] = f"Bearer {token['access_token']}"
        exported = client.get(f"/api/projects/{site.assisted}/export.json").json()
        client.close()
        read = next(t for i in exported["images"] for t in i["tasks"] if t["task_id"] == task_id)
        assert read["state"] == "submitted"
        assert [(b["id"], b["source"], b["model"]) for b in read["marks"]["boxes"]] == [
            (offered[0]["id"], "suggestion", exported["suggest"]["model"])]

        from cxrlab.catalog.models import Event

        with site.workspace.sessions() as session:
            created = session.scalars(select(Event).where(Event.action == "annotation.create")).all()
        accepted = [e.detail for e in created if e.detail.get("task_id") == task_id]
        assert accepted and all(d["source"] == "suggestion" for d in accepted)
