"""``/api/triage`` and ``/triage`` (issue 15, item 2): who may use them, and hostile input.

Annotators get the 403 *page* (HTML) on ``/triage`` and 403 JSON on the API; verifiers, reviewers and admins get
in. Ids at 2^63, non-JSON bodies, unknown queues, reasons or actions, malformed boxes and duplicate images are
clear 4xx answers that change nothing; a decision on an image that waits in no queue is its own 404/409 result.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from cxrlab.catalog.models import Event, Image, ImageState
from cxrlab.web.app import create_app
from tests.support.triage import TriageWorkspace, build_triage_workspace
from tests.support.users import PASSWORD

pytestmark = pytest.mark.slow  # builds a workspace through ingest and de-identification (seconds)

BIG = 2**63


class Api:
    def __init__(self, tw: TriageWorkspace) -> None:
        self.tw = tw
        self.client = TestClient(create_app(tw.workspace))
        self.tokens = {}
        for name in ("admin", "reader1", "reviewer1", "verifier1"):
            r = self.client.post("/api/auth/token", json={"username": name, "password": PASSWORD})
            assert r.status_code == 200, r.text
            self.tokens[name] = r.json()["access_token"]

    def h(self, who: str | None) -> dict[str, str]:
        return {} if who is None else {"Authorization": f"Bearer {self.tokens[who]}"}

    def get(self, url: str, who: str | None = "verifier1", **kw):  # noqa: ANN201
        return self.client.get(url, headers=self.h(who), **kw)

    def post(self, url: str, who: str | None = "verifier1", **kw):  # noqa: ANN201
        return self.client.post(url, headers={**self.h(who), **kw.pop("headers", {})}, **kw)

    def state(self) -> tuple[dict[int, ImageState], int]:
        with self.tw.workspace.sessions() as session:
            states = dict(session.execute(select(Image.id, Image.state)).all())
            n_events = session.scalar(select(func.count(Event.id)))
        return states, n_events


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    tw = build_triage_workspace(tmp_path_factory.mktemp("triage-api"), n_filter=4, n_text=2, n_unusable=1)
    a = Api(tw)
    yield a
    a.client.close()
    tw.workspace.engine.dispose()


@pytest.mark.parametrize("who", ["verifier1", "reviewer1", "admin"])
def test_verifiers_reviewers_and_admins_get_in(api: Api, who: str) -> None:
    r = api.get("/triage?queue=text", who)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert 'data-queue="text"' in r.text
    assert api.get("/api/triage/counts", who).json() == {"filter": 4, "text": 2, "unusable": 1}
    assert "Triage" in api.get("/", who).text


def test_annotators_get_the_403_page(api: Api) -> None:
    r = api.get("/triage", "reader1")
    assert r.status_code == 403 and r.headers["content-type"].startswith("text/html")
    assert "<html" in r.text.lower()
    assert 'href="/triage"' not in api.get("/", "reader1").text
    for url in ("/api/triage/counts", "/api/triage/queues/filter", f"/api/triage/images/{api.tw.filter[0]}/render"):
        r = api.get(url, "reader1")
        assert r.status_code == 403 and r.headers["content-type"].startswith("application/json"), url
    body = {"decisions": [{"image": api.tw.filter[0], "queue": "filter", "action": "accept"}]}
    assert api.post("/api/triage/decisions", "reader1", json=body).status_code == 403


def test_no_session(api: Api) -> None:
    r = api.client.get("/triage", follow_redirects=False)
    assert r.status_code in (302, 303, 307) and r.headers["location"].startswith("/login")
    assert api.get("/api/triage/counts", None).status_code == 401
    # Not logged in: 401 before anything is said about a malformed body.
    assert api.post("/api/triage/decisions", None, content=b"\xff\xfe not json").status_code == 401


@pytest.mark.parametrize("url", [
    f"/api/triage/images/{BIG}/render",
    "/api/triage/images/0/render",
    "/api/triage/images/-1/render",
    "/api/triage/images/abc/render",
    f"/api/triage/queues/filter?after={BIG}",
    "/api/triage/queues/filter?limit=0",
    "/api/triage/queues/filter?limit=100000",
    "/api/triage/queues/everything",
    "/api/triage/images/1/render?max_size=99999",
])
def test_hostile_queries_are_422(api: Api, url: str) -> None:
    r = api.get(url)
    assert r.status_code == 422, (url, r.text)
    assert "detail" in r.json()


def _decision(api: Api, **kw: object) -> dict:
    return {"decisions": [{"image": api.tw.filter[0], "queue": "filter", "action": "accept", **kw}]}


@pytest.mark.parametrize("body", [
    b"",
    b"not json",
    b"\xff\xfe\x00",
    b"[1, 2, 3]",
    b'{"decisions": []}',
    b'{"decisions": "all"}',
    b'{"decisions": [{"image": 9223372036854775808, "queue": "filter", "action": "accept"}]}',
    b'{"decisions": [{"image": 1e309, "queue": "filter", "action": "accept"}]}',
])
def test_malformed_bodies_are_422(api: Api, body: bytes) -> None:
    before = api.state()
    r = api.post("/api/triage/decisions", content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 422, r.text
    assert api.state() == before


@pytest.mark.parametrize("change", [
    {"action": "outlier", "reason": "a-reason-nobody-knows"},
    {"action": "outlier"},                                   # outlier without a reason
    {"action": "accept", "reason": "lateral"},               # a reason without outlier
    {"action": "release"},                                   # a text action on the filter queue
    {"action": "launch"},
    {"queue": "other"},
    {"image": BIG},
    {"image": 0},
    {"queue": "text", "action": "redact", "boxes": [[1, 2, 3]]},
    {"queue": "text", "action": "redact", "boxes": [[-1, 2, 3, 4]]},
    {"queue": "text", "action": "redact", "boxes": [[1, 2, 3, BIG]]},
    {"queue": "text", "action": "redact", "boxes": [["1", 2, 3, 4]]},
    {"queue": "text", "action": "redact", "boxes": []},
    {"queue": "text", "action": "redact", "boxes": [[1, 2, 3, 4]] * 65},
    {"queue": "text", "action": "release", "boxes": [[1, 2, 3, 4]]},
    {"author": "someone else"},                              # the author is the caller, never the body
])
def test_invalid_decisions_are_422_and_change_nothing(api: Api, change: dict) -> None:
    before = api.state()
    r = api.post("/api/triage/decisions", json=_decision(api, **change))
    assert r.status_code == 422, r.text
    assert "a-reason-nobody-knows" not in r.text  # the value sent is never echoed
    assert api.state() == before


def test_a_batch_is_checked_whole(api: Api) -> None:
    before = api.state()
    body = {"decisions": [{"image": api.tw.filter[0], "queue": "filter", "action": "accept"},
                          {"image": api.tw.filter[1], "queue": "filter", "action": "outlier", "reason": "nope"}]}
    assert api.post("/api/triage/decisions", json=body).status_code == 422
    dup = {"decisions": [{"image": api.tw.filter[0], "queue": "filter", "action": "accept"}] * 2}
    assert api.post("/api/triage/decisions", json=dup).status_code == 422
    assert api.state() == before


def test_cookie_writes_need_the_csrf_header(api: Api) -> None:
    client = TestClient(api.client.app)
    assert client.post("/api/auth/login", json={"username": "verifier1", "password": PASSWORD}).status_code == 200
    assert client.post("/api/triage/decisions", json=_decision(api)).status_code == 403
    client.close()


def test_decisions_on_images_in_no_queue(api: Api) -> None:
    with api.tw.workspace.sessions() as session:
        accepted = session.scalar(select(Image.id).where(Image.state == ImageState.ACCEPTED))
    assert api.get(f"/api/triage/images/{accepted}/render").status_code == 404
    body = {"decisions": [{"image": accepted, "queue": "filter", "action": "accept"},
                          {"image": 2**31 - 1, "queue": "text", "action": "discard"}]}
    out = api.post("/api/triage/decisions", json=body).json()["results"]
    assert [r["status"] for r in out] == [409, 404]


def test_a_redaction_box_outside_the_image_is_refused(api: Api) -> None:
    pk = api.tw.text[-1]
    body = {"decisions": [{"image": pk, "queue": "text", "action": "redact", "boxes": [[0, 0, 100000, 10]]}]}
    out = api.post("/api/triage/decisions", json=body).json()
    assert out["results"][0]["status"] == 422
    with api.tw.workspace.sessions() as session:
        assert session.get(Image, pk).state == ImageState.FLAGGED_TEXT  # nothing half-written


def test_decisions_land_with_their_author(api: Api) -> None:
    pk = api.tw.filter[-1]
    body = {"decisions": [{"image": pk, "queue": "filter", "action": "outlier", "reason": "pediatric"}]}
    out = api.post("/api/triage/decisions", "reviewer1", json=body).json()
    assert out["results"] == [{"image": pk, "status": 200, "state": "filtered_out", "detail": None}]
    assert out["counts"]["filter"] == 3
    again = api.post("/api/triage/decisions", "verifier1", json=body).json()["results"][0]
    assert again["status"] == 409
    with api.tw.workspace.sessions() as session:
        ev = session.scalars(select(Event).where(Event.image_pk == pk).order_by(Event.id.desc())).first()
    assert (ev.action, ev.author, ev.detail["reason"]) == ("verify.outlier", "reviewer1", "pediatric")


def test_render_is_a_jpeg_of_a_waiting_image(api: Api) -> None:
    for pk in (api.tw.filter[0], api.tw.text[0], api.tw.unusable[0]):
        r = api.get(f"/api/triage/images/{pk}/render?max_size=64")
        assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg" and r.content[:2] == b"\xff\xd8"
