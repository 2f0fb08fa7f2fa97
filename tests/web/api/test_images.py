"""``/api/images``: only images of the caller's tasks (admins: all); render, 16-bit pixels + presets, VOI LUT."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest

from cxrlab.dicom.display import apply_modality_lut
from tests.support.dicom import make_dicom, make_hostile_dicoms
from tests.web.conftest import Site


class TestAccess:
    @pytest.mark.parametrize("suffix", ["", "/render", "/meta", "/pixels"])
    def test_assigned_image_is_served_and_others_are_404(self, site: Site, suffix: str) -> None:
        p = site.project(train=1)
        url = f"/api/images/{p.images[0]}{suffix}"
        assert site.get(url, "reader1").status_code == 200
        assert site.get(url, "admin").status_code == 200
        assert site.get(url, "reader4").status_code == 404
        assert site.get(url, None).status_code == 401
        assert site.get(f"/api/images/{'0' * 32}{suffix}", "admin").status_code == 404

    def test_list_shows_only_own_images(self, site: Site) -> None:
        p = site.project(train=2)
        mine = {i["image_id"] for i in site.get("/api/images", "reader1", params={"limit": 1000}).json()}
        assert set(p.images) <= mine
        assert not set(p.images) & {i["image_id"] for i in site.get("/api/images", "reader4").json()}


class TestHostileFiles:
    def test_render_meta_and_pixels_answer_a_clean_error(self, sqlite_site: Site, tmp_path) -> None:  # noqa: ANN001
        """Deep sequences, a corrupt deflate stream and truncated pixels (native or JPEG-LS) never give an image
        and never escape as an unhandled exception (issue 10)."""
        for name, path in make_hostile_dicoms(tmp_path).items():
            image = sqlite_site.project(train=1, dicom=path).images[0]
            for suffix in ("/render", "/meta", "/pixels"):
                r = sqlite_site.get(f"/api/images/{image}{suffix}", "reader1")
                assert r.status_code == 500, (name, suffix, r.status_code)
                assert r.json() == {"detail": "the image file could not be read or decoded"}
        # ... and the OpenAPI document says so for every route that reads the file.
        paths = sqlite_site.get("/openapi.json", None).json()["paths"]
        for suffix in ("/render", "/meta", "/pixels"):
            assert "500" in paths[f"/api/images/{{image_id}}{suffix}"]["get"]["responses"], suffix


class TestPixels:
    def test_pixels_reproduce_modality_values(self, site: Site) -> None:
        p = site.project(train=1)
        image = p.images[0]
        meta = site.get(f"/api/images/{image}/meta", "reader1").json()
        assert (meta["rows"], meta["columns"], meta["shape"]) == (64, 64, [64, 64])
        names = [x["name"] for x in meta["presets"]]
        assert names[0] == "file 1" and "full range" in names
        assert {"auto 1-99%", "auto 2-98%", "auto 5-95%"} <= set(names)
        r = site.get(f"/api/images/{image}/pixels", "reader1")
        assert r.headers["content-type"] == "application/octet-stream" and r.headers["x-shape"] == "64,64"
        u16 = np.frombuffer(r.content, dtype="<u2").reshape(64, 64)
        ds = pydicom.dcmread(site.dicom)
        expected = apply_modality_lut(ds.pixel_array, ds)
        got = meta["offset"] + meta["scale"] * u16.astype(float)
        assert np.abs(got - expected).max() <= meta["scale"] / 2 + 1e-9

    def test_downsampled_pixels(self, site: Site) -> None:
        p = site.project(train=1)
        r = site.get(f"/api/images/{p.images[0]}/pixels", "reader1", params={"max_size": 32})
        assert r.headers["x-shape"] == "32,32" and len(r.content) == 32 * 32 * 2

    def test_voi_lut_preset_and_table(self, site: Site, tmp_path) -> None:  # noqa: ANN001
        from pydicom.dataset import Dataset

        from cxrlab.dicom.display import apply_voi

        path = tmp_path / f"voi-{site.backend}.dcm"
        make_dicom(path, rows=64, columns=64)
        ds = pydicom.dcmread(path)
        item = Dataset()
        item.LUTDescriptor = [4096, 0, 8]  # PS3.3 C.11.2.1.1: 4096 entries from stored value 0, 8 bits
        lut_data = (255 * (np.arange(4096) / 4095) ** 0.5).astype("<u2")
        item.add_new(0x00283006, "US", lut_data.tolist())  # LUT Data
        item.LUTExplanation = "SQRT"
        ds.VOILUTSequence = [item]
        ds.save_as(path)
        p = site.project(train=1, dicom=path)
        meta = site.get(f"/api/images/{p.images[0]}/meta", "reader1").json()
        assert meta["presets"][0] == {"name": "SQRT", "kind": "lut", "index": 0, "center": None, "width": None,
                                      "function": "LINEAR"}
        assert meta["default"]["kind"] == "lut"
        lut = np.frombuffer(site.get(f"/api/images/{p.images[0]}/voi-lut/0", "reader1").content, dtype=np.uint8)
        assert lut.shape == (65536,)
        values = meta["offset"] + meta["scale"] * np.arange(65536, dtype=float)
        expected = np.clip(np.rint(apply_voi(values, pydicom.dcmread(path), index=0) * 255), 0, 255)
        assert np.array_equal(lut, expected.astype(np.uint8))
        assert lut[0] <= 5 and lut[-1] >= 254 and (np.diff(lut.astype(int)) >= 0).all()  # sqrt, rising
        assert site.get(f"/api/images/{p.images[0]}/voi-lut/1", "reader1").status_code == 404

    def test_missing_voi_lut_is_404(self, site: Site) -> None:
        p = site.project(train=1)
        assert site.get(f"/api/images/{p.images[0]}/voi-lut/0", "reader1").status_code == 404
