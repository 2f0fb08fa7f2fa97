"""``/api/images``: only images of the caller's tasks (admins: all); render, 16-bit pixels + presets, VOI LUT."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest

from cxrlab.dicom.display import apply_modality_lut
from tests.api.conftest import Site


class TestAccess:
    @pytest.mark.parametrize("suffix", ["", "/render", "/meta", "/pixels"])
    def test_assigned_image_is_served_and_others_are_404(self, site: Site, suffix: str) -> None:
        p = site.project(train=1)
        url = f"/api/images/{p.images[0]}{suffix}"
        assert site.get(url, "ann1").status_code == 200
        assert site.get(url, "admin").status_code == 200
        assert site.get(url, "ann4").status_code == 404
        assert site.get(url, None).status_code == 401
        assert site.get(f"/api/images/{'0' * 32}{suffix}", "admin").status_code == 404

    def test_list_shows_only_own_images(self, site: Site) -> None:
        p = site.project(train=2)
        mine = {i["image_id"] for i in site.get("/api/images", "ann1", params={"limit": 1000}).json()}
        assert set(p.images) <= mine
        assert not set(p.images) & {i["image_id"] for i in site.get("/api/images", "ann4").json()}


class TestPixels:
    def test_pixels_reproduce_modality_values(self, site: Site) -> None:
        p = site.project(train=1)
        image = p.images[0]
        meta = site.get(f"/api/images/{image}/meta", "ann1").json()
        assert (meta["rows"], meta["columns"], meta["shape"]) == (64, 64, [64, 64])
        names = [x["name"] for x in meta["presets"]]
        assert names[0] == "file 1" and "full range" in names
        assert {"auto 1-99%", "auto 2-98%", "auto 5-95%"} <= set(names)
        r = site.get(f"/api/images/{image}/pixels", "ann1")
        assert r.headers["content-type"] == "application/octet-stream" and r.headers["x-shape"] == "64,64"
        u16 = np.frombuffer(r.content, dtype="<u2").reshape(64, 64)
        ds = pydicom.dcmread(site.dicom)
        expected = apply_modality_lut(ds.pixel_array, ds)
        got = meta["offset"] + meta["scale"] * u16.astype(float)
        assert np.abs(got - expected).max() <= meta["scale"] / 2 + 1e-9

    def test_downsampled_pixels(self, site: Site) -> None:
        p = site.project(train=1)
        r = site.get(f"/api/images/{p.images[0]}/pixels", "ann1", params={"max_size": 32})
        assert r.headers["x-shape"] == "32,32" and len(r.content) == 32 * 32 * 2

    def test_missing_voi_lut_is_404(self, site: Site) -> None:
        p = site.project(train=1)
        assert site.get(f"/api/images/{p.images[0]}/voi-lut/0", "ann1").status_code == 404
