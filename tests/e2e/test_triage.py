"""End-to-end: the grid triage page (issue 15, item 2) in Debian's Chromium against a real ``cxrlab serve``.

A verifier clears each queue with the keyboard only: marks outliers with their reason keys and accepts the rest
with Enter (the decisions land in the catalog as events with the verifier as author); redacts the candidate
box of an image held for burned-in text (the output is valid DICOM, re-encoded, and the pixels in the box
changed), discards another and releases the third; returns an image a reader set aside to the reading queue and
confirms the other. Before any decision, every page and every ``/api/triage`` response is searched for the
header values planted in the phantoms: none may appear.

Each test decides one queue, so the order of the tests in this file does not matter except that the blinding
test runs first (it reads every queue while it is full).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
import pytest
from sqlalchemy import select

from cxrlab.catalog.models import Event, Image, ImageState, Redaction, Task, TaskKind, TaskState, User
from tests.e2e.conftest import PASSWORD
from tests.support.browser import form_login
from tests.support.server import start_server
from tests.support.triage import TEXT_BOX, TriageWorkspace, build_triage_workspace

pytestmark = pytest.mark.slow


@dataclass
class TriageSite:
    url: str
    tw: TriageWorkspace


@pytest.fixture(scope="module")
def triage_site(tmp_path_factory: pytest.TempPathFactory, playwright_browser) -> Iterator[TriageSite]:  # noqa: ANN001
    tw = build_triage_workspace(tmp_path_factory.mktemp("triage"))
    try:
        with start_server(tw.workspace) as server:
            yield TriageSite(server.url, tw)
    finally:
        tw.workspace.engine.dispose()


def open_queue(browser, site: TriageSite, queue: str, username: str = "verifier1"):  # noqa: ANN001, ANN201
    """A logged-in page on ``/triage?queue=QUEUE`` with its first page of thumbnails shown."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.js_errors = []
    page.on("pageerror", lambda exc: page.js_errors.append(str(exc)))
    form_login(page, site.url, username, PASSWORD)
    page.goto(f"{site.url}/triage?queue={queue}")
    page.wait_for_selector("#triage-grid li.focus")
    return page


def events(site: TriageSite, pks: list[int]) -> dict[int, tuple[str, str, dict]]:
    """The last triage event (action, author, detail) of each image."""
    with site.tw.workspace.sessions() as session:
        rows = session.execute(select(Event.image_pk, Event.action, Event.author, Event.detail)
                               .where(Event.image_pk.in_(pks), Event.author != "system").order_by(Event.id)).all()
    return {pk: (action, author, detail or {}) for pk, action, author, detail in rows}


def wait_decided(page, n: int) -> None:  # noqa: ANN001
    page.wait_for_function("(n) => document.getElementById('triage-status').textContent.startsWith(n + ' decided')",
                           arg=n)


def test_the_verifier_sees_no_header_value(playwright_browser, triage_site: TriageSite) -> None:  # noqa: ANN001
    bodies: list[str] = []
    for queue in ("filter", "text", "unusable"):
        page = open_queue(playwright_browser, triage_site, queue)
        page.keyboard.press("Space")  # the large view too
        page.wait_for_selector("#triage-large[open]")
        bodies.append(page.content())
        for url in (f"/api/triage/queues/{queue}?limit=200", "/api/triage/counts"):
            r = page.request.get(f"{triage_site.url}{url}")
            assert r.ok
            bodies.append(r.text())
        assert page.js_errors == []
        page.context.close()
    home = playwright_browser.new_context().new_page()
    form_login(home, triage_site.url, "verifier1", PASSWORD)
    bodies.append(home.content())
    home.context.close()
    text = "\n".join(bodies).lower()
    assert len(bodies) == 10 and all(i.lower() in text for i in ("image_id", "triage-grid"))
    assert len(triage_site.tw.secrets) >= 8 * 13
    leaked = [s for s in triage_site.tw.secrets if s.lower() in text]
    assert leaked == []
    for date in ("1973-11-07", "19731107", "1945-03-17", "19450317", "planted", "plantedname"):
        assert date not in text


def test_keyboard_triage_of_the_filter_queue(playwright_browser, triage_site: TriageSite) -> None:  # noqa: ANN001
    pks = triage_site.tw.filter
    page = open_queue(playwright_browser, triage_site, "filter")
    assert page.locator("#triage-grid li").count() == len(pks)
    assert page.locator("[data-count=filter]").first.text_content() == str(len(pks))
    # Second image: lateral (l); fourth: low quality (3); the fifth marked then unmarked (Backspace).
    page.keyboard.press("ArrowRight")
    page.keyboard.press("l")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("3")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("o")
    page.keyboard.press("Backspace")
    assert page.locator("#triage-grid li.marked").count() == 2
    page.keyboard.press("Enter")
    wait_decided(page, len(pks))
    page.wait_for_selector("#triage-empty:not([hidden])")
    assert page.locator("[data-count=filter]").first.text_content() == "0"
    assert page.js_errors == []
    found = events(triage_site, pks)
    assert {pk: found[pk][0] for pk in pks} == {
        pk: ("verify.outlier" if k in (1, 3) else "verify.accept") for k, pk in enumerate(pks)}
    assert {found[pk][1] for pk in pks} == {"verifier1"}
    assert found[pks[1]][2]["reason"] == "lateral" and found[pks[3]][2]["reason"] == "low_quality"
    with triage_site.tw.workspace.sessions() as session:
        states = dict(session.execute(select(Image.id, Image.state).where(Image.id.in_(pks))).all())
    assert states == {pk: ImageState.FILTERED_OUT if k in (1, 3) else ImageState.ACCEPTED for k, pk in enumerate(pks)}


def _raw_pixels(site: TriageSite, pk: int) -> np.ndarray:
    ws = site.tw.workspace
    with ws.sessions() as session:
        raw = session.scalar(select(Image.raw_path).where(Image.id == pk))
    path = Path(raw) if Path(raw).is_absolute() else ws.root / raw
    return pydicom.dcmread(path).pixel_array


def test_text_review_redacts_and_reencodes(playwright_browser, triage_site: TriageSite) -> None:  # noqa: ANN001
    tw = triage_site.tw
    first, second, third = tw.text
    assert first == tw.compressed_text
    page = open_queue(playwright_browser, triage_site, "text")
    assert page.locator("#triage-grid li").count() == 3
    assert page.locator("#triage-grid li .box").count() == 3  # the candidate boxes are drawn
    page.keyboard.press("r")                # redact the candidate box of the first
    page.keyboard.press("ArrowRight")
    page.keyboard.press("d")                # discard the second
    page.keyboard.press("Enter")            # refused: the third has no decision (no default for PHI)
    page.wait_for_function("document.getElementById('triage-status').textContent.startsWith('1 image not decided')")
    assert page.locator("#triage-grid li").count() == 3
    page.keyboard.press("n")                # the focus moved to the undecided third: no PHI
    page.keyboard.press("Enter")
    wait_decided(page, 3)
    assert page.js_errors == []
    ws = tw.workspace
    with ws.sessions() as session:
        imgs = {i.id: i for i in session.scalars(select(Image).where(Image.id.in_(tw.text)))}
        redaction = session.get(Redaction, imgs[first].image_id)
    assert imgs[first].state == ImageState.DEIDENTIFIED and imgs[third].state == ImageState.DEIDENTIFIED
    assert imgs[second].state == ImageState.FILTERED_OUT and imgs[second].deid_path is None
    out = pydicom.dcmread(ws.root / imgs[first].deid_path)  # a valid DICOM file
    assert out.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.4.80" and redaction.reencoded
    x0, y0, x1, y1 = TEXT_BOX
    before, after = _raw_pixels(triage_site, first)[y0:y1, x0:x1], out.pixel_array[y0:y1, x0:x1]
    assert (before != after).any() and after.max() == after.min()
    assert "PatientName" not in out or "Plantedname" not in str(out.PatientName)
    released = pydicom.dcmread(ws.root / imgs[third].deid_path)
    assert (released.pixel_array == _raw_pixels(triage_site, third)).all()  # "no PHI": pixels as they were
    found = events(triage_site, tw.text)
    assert {pk: found[pk][:2] for pk in tw.text} == {first: ("text.redact", "verifier1"),
                                                     second: ("text.discard", "verifier1"),
                                                     third: ("text.release", "verifier1")}
    boxes = found[first][2]["boxes"]
    assert boxes == redaction.boxes and all(isinstance(v, int) for b in boxes for v in b)  # coordinates, no text


def test_set_aside_images_return_or_are_confirmed(playwright_browser, triage_site: TriageSite) -> None:  # noqa: ANN001
    back, confirmed = triage_site.tw.unusable
    page = open_queue(playwright_browser, triage_site, "unusable")
    assert page.locator("#triage-grid li").count() == 2
    assert re.search(r"lateral", page.locator("#triage-grid li").first.text_content())
    page.keyboard.press("r")
    page.keyboard.press("Enter")
    wait_decided(page, 2)
    ws = triage_site.tw.workspace
    with ws.sessions() as session:
        states = dict(session.execute(select(Image.id, Image.state).where(Image.id.in_([back, confirmed]))).all())
        reader_tasks = session.execute(
            select(User.username, Task.state).join(User, User.id == Task.user_id)
            .where(Task.image_pk == back, Task.kind == TaskKind.READ)).all()
    assert states == {back: ImageState.ASSIGNED, confirmed: ImageState.FILTERED_OUT}
    assert {state for _, state in reader_tasks} == {TaskState.PENDING}
    found = events(triage_site, [back, confirmed])
    assert found[back][:2] == ("verify.return", "verifier1") and found[confirmed][:2] == ("verify.confirm", "verifier1")
