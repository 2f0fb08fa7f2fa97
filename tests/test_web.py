"""The web app over real HTTP: uvicorn in a background thread, httpx as the client.

Each test builds its own workspace in ``tmp_path`` with small real DICOM files (64x64, 12-bit MONOCHROME2,
Explicit VR Little Endian) and catalog rows, and starts its own server on a free port. The client logs in as
an admin with the session cookie (admins see every de-identified image); the labeling API has its own tests
in ``tests/api``.
"""

from __future__ import annotations

import hashlib
import io
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pytest
import uvicorn
from PIL import Image as PILImage
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

import cxrlab
from cxrlab.annotate.users import create_user
from cxrlab.catalog.models import Image, ImageState
from cxrlab.catalog.workspace import Workspace, init_workspace
from cxrlab.web.app import create_app

DX_FOR_PRESENTATION = "1.2.840.10008.5.1.4.1.1.1.1"
FORBIDDEN = ("raw_path", "sop_instance_uid", "patient_key", "raw_sha256")


def _id(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()[:32]


def write_dicom(path: Path, *, window: tuple[float, float] | None = None, size: int = 64) -> None:
    """A small real DICOM file: a 12-bit horizontal gradient in a 16-bit container."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = DX_FOR_PRESENTATION
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID = DX_FOR_PRESENTATION
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "DX"
    ds.Rows = ds.Columns = size
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    if window is not None:
        ds.WindowCenter, ds.WindowWidth = window
    row = np.linspace(0, 4095, size).astype(np.uint16)
    ds.PixelData = np.tile(row, (size, 1)).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)


@dataclass
class Site:
    """A running server over a fresh workspace."""

    client: httpx.Client
    workspace: Workspace
    served: list[str]
    undeidentified: str
    in_raw: str


def _add(ws: Workspace, name: str, *, deid_path: str | None, state: ImageState, raw_path: str) -> str:
    image_id = _id(name)
    with ws.sessions() as session, session.begin():
        session.add(
            Image(
                sop_instance_uid=generate_uid(),
                image_id=image_id,
                patient_key=_id("patient-" + name),
                raw_sha256=hashlib.sha256(name.encode()).hexdigest(),
                raw_path=raw_path,
                deid_path=deid_path,
                state=state,
                rows=64,
                columns=64,
                modality="DX",
                view_position="PA",
                sex="F",
                age_years=42.0,
            )
        )
    return image_id


def _build_workspace(root: Path) -> tuple[Workspace, list[str], str, str]:
    ws = init_workspace(root)
    a, b = _id("a"), _id("b")
    # One absolute deid_path with a window in the header, one relative to the workspace root.
    write_dicom(ws.path("images", f"{a}.dicom"), window=(2048, 4096))
    write_dicom(ws.path("images", f"{b}.dicom"))
    raw_a = str(ws.path("raw", "a.dcm"))
    _add(
        ws, "a", deid_path=str(ws.path("images", f"{a}.dicom")), state=ImageState.DEIDENTIFIED, raw_path=raw_a
    )
    _add(ws, "b", deid_path=f"images/{b}.dicom", state=ImageState.ACCEPTED, raw_path="raw/b.dcm")
    undeid = _add(ws, "c", deid_path=None, state=ImageState.INGESTED, raw_path="raw/c.dcm")
    # A catalog row whose "de-identified" path points into raw/ must never be served.
    write_dicom(ws.path("raw", "d.dcm"))
    in_raw = _add(ws, "d", deid_path="raw/d.dcm", state=ImageState.DEIDENTIFIED, raw_path="raw/d.dcm")
    with ws.sessions() as session:
        create_user(session, username="admin", password=PASSWORD, role="admin")
    return ws, sorted([a, b]), undeid, in_raw


PASSWORD = "web test password"


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    ws, served, undeid, in_raw = _build_workspace(tmp_path / "ws")
    config = uvicorn.Config(create_app(ws), host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive(), "uvicorn exited during start-up"
        assert time.monotonic() < deadline, "uvicorn did not start within 10 s"
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            r = client.post("/api/auth/login", json={"username": "admin", "password": PASSWORD})
            assert r.status_code == 200, r.text
            yield Site(client, ws, served, undeid, in_raw)
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def _decode(content: bytes) -> PILImage.Image:
    picture = PILImage.open(io.BytesIO(content))
    picture.load()
    return picture


def test_health_reports_ok_count_and_version(site: Site) -> None:
    r = site.client.get("/health")
    assert r.status_code == 200
    assert r.json() == {"status": "ok", "images": 3, "version": cxrlab.__version__}


def test_list_images_exposes_only_public_fields(site: Site) -> None:
    r = site.client.get("/api/images")
    assert r.status_code == 200
    for field in FORBIDDEN:
        assert field not in r.text
    body = r.json()
    ids = [item["image_id"] for item in body]
    assert site.undeidentified not in ids
    assert set(site.served) <= set(ids)
    first = next(item for item in body if item["image_id"] == site.served[0])
    assert set(first) == {
        "image_id",
        "state",
        "rows",
        "columns",
        "modality",
        "view_position",
        "sex",
        "age_years",
    }
    assert (first["rows"], first["columns"], first["modality"]) == (64, 64, "DX")


def test_list_images_filters_and_pages(site: Site) -> None:
    accepted = site.client.get("/api/images", params={"state": "accepted"}).json()
    assert [item["image_id"] for item in accepted] == [_id("b")]
    assert site.client.get("/api/images", params={"state": "ingested"}).json() == []
    page = site.client.get("/api/images", params={"limit": 1, "offset": 1})
    assert page.status_code == 200 and len(page.json()) == 1
    assert page.headers["x-total-count"] == "3"
    assert site.client.get("/api/images", params={"state": "bogus"}).status_code == 422
    assert site.client.get("/api/images", params={"limit": 0}).status_code == 422


@pytest.mark.parametrize(
    ("fmt", "pil_format", "media_type"), [("png", "PNG", "image/png"), ("jpeg", "JPEG", "image/jpeg")]
)
def test_render_returns_decodable_image(site: Site, fmt: str, pil_format: str, media_type: str) -> None:
    for image_id in site.served:
        r = site.client.get(f"/api/images/{image_id}/render", params={"format": fmt})
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == media_type
        assert "max-age" in r.headers["cache-control"]
        picture = _decode(r.content)
        assert picture.format == pil_format
        assert picture.size == (64, 64)


def test_render_respects_max_size(site: Site) -> None:
    r = site.client.get(f"/api/images/{site.served[0]}/render", params={"max_size": 32})
    assert r.status_code == 200
    assert _decode(r.content).size == (32, 32)
    assert site.client.get(f"/api/images/{site.served[0]}/render", params={"max_size": 0}).status_code == 422


def test_render_applies_window(site: Site) -> None:
    url = f"/api/images/{site.served[0]}/render"
    above = np.asarray(_decode(site.client.get(url, params={"window": "-1000,10"}).content))
    below = np.asarray(_decode(site.client.get(url, params={"window": "100000,10"}).content))
    assert above.min() == 255
    assert below.max() == 0


@pytest.mark.parametrize("window", ["abc", "100", "100,0", "100,-5", "1,2,3", "nan,10", ","])
def test_render_rejects_bad_window(site: Site, window: str) -> None:
    r = site.client.get(f"/api/images/{site.served[0]}/render", params={"window": window})
    assert r.status_code == 422
    assert "window" in r.json()["detail"]


def test_unknown_image_is_404(site: Site) -> None:
    for url in ("/api/images/deadbeef/render", "/api/images/deadbeef"):
        r = site.client.get(url)
        assert r.status_code == 404
        assert "not found" in r.json()["detail"]
    page = site.client.get("/images/deadbeef")  # a page answers with a page
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
    assert "not found" in page.text


def test_image_without_deid_file_is_never_served(site: Site) -> None:
    listed = [item["image_id"] for item in site.client.get("/api/images").json()]
    assert site.undeidentified not in listed
    assert site.client.get(f"/api/images/{site.undeidentified}/render").status_code == 404
    r = site.client.get(f"/api/images/{site.in_raw}/render")
    assert r.status_code == 404
    assert "raw" not in r.json()["detail"]


def test_index_page_lists_images(site: Site) -> None:
    r = site.client.get("/")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    for image_id in site.served:
        assert image_id in r.text
        assert f"/api/images/{image_id}/render?format=jpeg&amp;max_size=256" in r.text
    assert site.undeidentified not in r.text
    assert "http://" not in r.text.replace("http://127.0.0.1", "") and "https://" not in r.text


def test_image_page_and_static_assets(site: Site) -> None:
    image_id = site.served[0]
    r = site.client.get(f"/images/{image_id}")
    assert r.status_code == 200
    assert image_id in r.text and "full range" in r.text and "File default" in r.text
    for field in FORBIDDEN:
        assert field not in r.text
    js = site.client.get("/static/viewer.js")
    assert js.status_code == 200 and "javascript" in js.headers["content-type"]
    assert site.client.get("/static/style.css").status_code == 200


def test_openapi_docs(site: Site) -> None:
    assert site.client.get("/docs").status_code == 200
    spec = site.client.get("/openapi.json").json()
    assert "/api/images" in spec["paths"] and "/health" in spec["paths"]
    assert spec["info"]["version"] == cxrlab.__version__


def test_pages_redirect_to_login_and_api_needs_auth(site: Site) -> None:
    with httpx.Client(base_url=str(site.client.base_url), timeout=10) as anonymous:
        r = anonymous.get("/", follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].startswith("/login")
        assert anonymous.get("/login").status_code == 200
        assert anonymous.get("/api/images").status_code == 401
        assert anonymous.get(f"/api/images/{site.served[0]}/render").status_code == 401
