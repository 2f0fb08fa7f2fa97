"""The measuring tools' server side: the ruler's spacing in ``/meta`` (Pixel Spacing, else Imager Pixel Spacing
"at the detector") and the pixel probe's stored and modality values at original-image pixels."""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest

from cxrlab.catalog.models import INT_MAX
from tests.support.dicom import make_dicom
from tests.web.conftest import Site


def _file(tmp: Path, name: str, *, pixel: list | None, imager: list | None, slope: float = 1.0,
          intercept: float = 0.0) -> Path:
    path = make_dicom(tmp / name, rows=64, columns=48, seed=3)
    ds = pydicom.dcmread(path)
    del ds.PixelSpacing
    if pixel:
        ds.PixelSpacing = pixel
    if imager:
        ds.ImagerPixelSpacing = imager
    ds.RescaleSlope, ds.RescaleIntercept = slope, intercept
    ds.save_as(path)
    return path


class TestSpacing:
    def test_pixel_spacing_is_in_the_patient_row_first(self, site: Site, tmp_path: Path) -> None:
        path = _file(tmp_path, "ps.dcm", pixel=[0.2, 0.1], imager=[0.3, 0.3])
        p = site.project(train=1, dicom=path)
        meta = site.get(f"/api/images/{p.images[0]}/meta", "reader1").json()
        assert meta["spacing"] == {"row": 0.2, "column": 0.1, "source": "PixelSpacing",
                                   "note": "in the patient (Pixel Spacing)"}

    def test_imager_pixel_spacing_is_at_the_detector(self, site: Site, tmp_path: Path) -> None:
        path = _file(tmp_path, "ips.dcm", pixel=None, imager=[0.15, 0.16])
        p = site.project(train=1, dicom=path)
        spacing = site.get(f"/api/images/{p.images[0]}/meta", "reader1").json()["spacing"]
        assert (spacing["row"], spacing["column"], spacing["source"]) == (0.15, 0.16, "ImagerPixelSpacing")
        assert spacing["note"].startswith("at the detector")

    def test_no_spacing_is_null(self, site: Site, tmp_path: Path) -> None:
        path = _file(tmp_path, "none.dcm", pixel=None, imager=None)
        p = site.project(train=1, dicom=path)
        assert site.get(f"/api/images/{p.images[0]}/meta", "reader1").json()["spacing"] is None


class TestProbe:
    def test_stored_and_modality_values_of_original_pixels(self, site: Site, tmp_path: Path) -> None:
        path = _file(tmp_path, "rescale.dcm", pixel=[0.2, 0.2], imager=None, slope=2.0, intercept=-1024.0)
        p = site.project(train=1, dicom=path)
        stored = pydicom.dcmread(path).pixel_array
        for x, y in [(0, 0), (47, 63), (10, 33)]:
            r = site.get(f"/api/images/{p.images[0]}/probe", "reader1", params={"x": x, "y": y})
            assert r.status_code == 200, r.text
            assert r.json() == {"x": x, "y": y, "stored": int(stored[y, x]),
                                "modality": 2.0 * int(stored[y, x]) - 1024.0, "unit": "US"}

    @pytest.mark.parametrize(("x", "y", "code"), [(64, 0, 422), (0, 64, 422), (-1, 0, 422), (INT_MAX + 1, 0, 422)])
    def test_outside_the_image_raises(self, site: Site, x: int, y: int, code: int) -> None:
        p = site.project(train=1)
        r = site.get(f"/api/images/{p.images[0]}/probe", "reader1", params={"x": x, "y": y})
        assert r.status_code == code
        if x == 64:
            assert "outside" in r.json()["detail"]

    @pytest.mark.parametrize(("who", "code"), [(None, 401), ("reader4", 404), ("reviewer1", 404)])
    def test_only_who_may_see_the_image(self, site: Site, who: str | None, code: int) -> None:
        p = site.project(train=1)
        assert site.get(f"/api/images/{p.images[0]}/probe", who, params={"x": 1, "y": 1}).status_code == code
