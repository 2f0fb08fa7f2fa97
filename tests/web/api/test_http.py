"""The image list, the renderer, ``/health`` and the OpenAPI document over real HTTP (``cxrlab serve`` in its own
process: the ``web`` fixture of ``tests/web/conftest.py``). The client logs in as an admin with the session cookie
(admins see every de-identified image); the labeling API has its own tests beside this file."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image as PILImage

import cxrlab
from tests.web.conftest import FORBIDDEN, Web, image_id_of

pytestmark = pytest.mark.slow  # a real cxrlab serve process


def _decode(content: bytes) -> PILImage.Image:
    picture = PILImage.open(io.BytesIO(content))
    picture.load()
    return picture


def test_health_reports_ok_count_and_version(web: Web) -> None:
    r = web.client.get("/health")
    assert r.status_code == 200
    assert r.json() == {"status": "ok", "images": 3, "version": cxrlab.__version__}


def test_list_images_exposes_only_public_fields(web: Web) -> None:
    r = web.client.get("/api/images")
    assert r.status_code == 200
    for field in FORBIDDEN:
        assert field not in r.text
    body = r.json()
    ids = [item["image_id"] for item in body]
    assert web.undeidentified not in ids
    assert set(web.served) <= set(ids)
    first = next(item for item in body if item["image_id"] == web.served[0])
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


def test_list_images_filters_and_pages(web: Web) -> None:
    accepted = web.client.get("/api/images", params={"state": "accepted"}).json()
    assert [item["image_id"] for item in accepted] == [image_id_of("b")]
    assert web.client.get("/api/images", params={"state": "ingested"}).json() == []
    page = web.client.get("/api/images", params={"limit": 1, "offset": 1})
    assert page.status_code == 200 and len(page.json()) == 1
    assert page.headers["x-total-count"] == "3"
    assert web.client.get("/api/images", params={"state": "bogus"}).status_code == 422
    assert web.client.get("/api/images", params={"limit": 0}).status_code == 422


@pytest.mark.parametrize(
    ("fmt", "pil_format", "media_type"), [("png", "PNG", "image/png"), ("jpeg", "JPEG", "image/jpeg")]
)
def test_render_returns_decodable_image(web: Web, fmt: str, pil_format: str, media_type: str) -> None:
    for image_id in web.served:
        r = web.client.get(f"/api/images/{image_id}/render", params={"format": fmt})
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == media_type
        assert "max-age" in r.headers["cache-control"]
        picture = _decode(r.content)
        assert picture.format == pil_format
        assert picture.size == (64, 64)


def test_render_respects_max_size(web: Web) -> None:
    r = web.client.get(f"/api/images/{web.served[0]}/render", params={"max_size": 32})
    assert r.status_code == 200
    assert _decode(r.content).size == (32, 32)
    assert web.client.get(f"/api/images/{web.served[0]}/render", params={"max_size": 0}).status_code == 422


def test_render_applies_window(web: Web) -> None:
    url = f"/api/images/{web.served[0]}/render"
    above = np.asarray(_decode(web.client.get(url, params={"window": "-1000,10"}).content))
    below = np.asarray(_decode(web.client.get(url, params={"window": "100000,10"}).content))
    assert above.min() == 255
    assert below.max() == 0


@pytest.mark.parametrize("window", ["abc", "100", "100,0", "100,-5", "1,2,3", "nan,10", ","])
def test_render_rejects_bad_window(web: Web, window: str) -> None:
    r = web.client.get(f"/api/images/{web.served[0]}/render", params={"window": window})
    assert r.status_code == 422
    assert "window" in r.json()["detail"]


def test_unknown_image_is_404(web: Web) -> None:
    for url in ("/api/images/deadbeef/render", "/api/images/deadbeef"):
        r = web.client.get(url)
        assert r.status_code == 404
        assert "not found" in r.json()["detail"]


def test_image_without_deid_file_is_never_served(web: Web) -> None:
    listed = [item["image_id"] for item in web.client.get("/api/images").json()]
    assert web.undeidentified not in listed
    assert web.client.get(f"/api/images/{web.undeidentified}/render").status_code == 404
    r = web.client.get(f"/api/images/{web.in_raw}/render")
    assert r.status_code == 404
    assert "raw" not in r.json()["detail"]


def test_openapi_docs(web: Web) -> None:
    assert web.client.get("/docs").status_code == 200
    spec = web.client.get("/openapi.json").json()
    assert "/api/images" in spec["paths"] and "/health" in spec["paths"]
    assert spec["info"]["version"] == cxrlab.__version__
