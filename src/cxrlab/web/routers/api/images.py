"""``/api/images``: list the images the caller may see, render one (PNG/JPEG for first paint), and serve the
downsampled 16-bit pixels, window presets and VOI LUTs the viewer needs for client-side window/level.

Which images a user may see is the labeling stage's rule (:mod:`cxrlab.annotate.images`: anything else is
404). The output schema ``ImagePublic`` carries non-identifying fields only (no raw path, SOP Instance UID or
patient key).
"""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from pydantic import BaseModel, Field

from cxrlab.annotate.images import count_images, deid_file, get_image, list_images, shown_state
from cxrlab.catalog.models import INT_MAX, ImageState, User
from cxrlab.dicom.display import parse_window
from cxrlab.web.deps import AuthFirstRoute, CurrentUser, Offset, SessionDep, WorkspaceDep
from cxrlab.web.models import ErrorOut, ImagePublic, ValidationErrorOut, error, errors
from cxrlab.web.pixels import PixelCache, voi_lut_names

__all__ = ["RenderFormat", "render_image", "router"]

#: Rendered bytes never change for a given URL while the de-identified file stays; browsers may keep them.
CACHE_CONTROL = "private, max-age=86400"

router = APIRouter(prefix="/api/images", tags=["images"], responses=errors(401, 404, 500),
                   route_class=AuthFirstRoute)


def image_public(image: object, user: User) -> ImagePublic:
    """*image* as *user* may see it (the state for admins only, :func:`cxrlab.annotate.images.shown_state`)."""
    return ImagePublic.model_validate(image).model_copy(update={"state": shown_state(image, user)})


class RenderFormat(enum.StrEnum):
    """Encodings of ``/render``."""

    PNG = "png"
    JPEG = "jpeg"


MEDIA_TYPES = {RenderFormat.PNG: "image/png", RenderFormat.JPEG: "image/jpeg"}


def render_image(
    path: Path, *, fmt: RenderFormat, max_size: int | None, window: tuple[float, float] | None
) -> bytes:
    """Render the DICOM file *path* with the display pipeline and encode it (:func:`cxrlab.dicom.display.encode`)."""
    from cxrlab.dicom.display import encode, to_uint8  # the display pipeline pulls in numpy and the decoders

    return encode(to_uint8(path, window=window, max_size=max_size), fmt.value)


# --- handlers ----------------------------------------------------------------------------------------------


def window_query(
    window: Annotated[
        str | None, Query(description="Window 'center,width' in modality units; default: the file's own")
    ] = None,
) -> tuple[float, float] | None:
    """Parse ``?window=C,W`` or answer 422."""
    try:
        return parse_window(window)
    except ValueError:
        raise HTTPException(
            status_code=422, detail="window must be 'center,width' with finite numbers and width > 0"
        ) from None


@router.get("", response_model=list[ImagePublic],
            responses={403: error(403, "Only admins filter by state")})
def api_list_images(
    user: CurrentUser,
    session: SessionDep,
    response: Response,
    state: Annotated[ImageState | None, Query(description="Admins only")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Offset = 0,
) -> list[ImagePublic]:
    """De-identified images the caller may see, by ``image_id``; ``X-Total-Count`` gives the total. The state
    is shown (and filtered by) for admins only."""
    response.headers["X-Total-Count"] = str(count_images(session, state, user))
    return [image_public(i, user) for i in list_images(session, state=state, limit=limit, offset=offset, user=user)]


@router.get("/{image_id}", response_model=ImagePublic)
def api_get_image(image_id: str, user: CurrentUser, session: SessionDep) -> ImagePublic:
    """One de-identified image's metadata (its state for admins only)."""
    return image_public(get_image(session, image_id, user), user)


@router.get(
    "/{image_id}/render",
    response_class=Response,
    responses={200: {"content": {"image/png": {}, "image/jpeg": {}}},
               422: error(422, "Malformed request or window", ValidationErrorOut | ErrorOut)},
)
def api_render_image(
    image_id: str,
    request: Request,
    user: CurrentUser,
    session: SessionDep,
    workspace: WorkspaceDep,
    window: Annotated[tuple[float, float] | None, Depends(window_query)],
    format: RenderFormat = RenderFormat.PNG,
    max_size: Annotated[int | None, Query(ge=16, le=8192, description="Longest side in pixels")] = 1024,
) -> Response:
    """The de-identified image rendered for display (8-bit grayscale), downsized to ``max_size``: the first
    paint of the viewer (JPEG), before the 16-bit pixels arrive."""
    path = deid_file(workspace, get_image(session, image_id, user))
    session.close()  # rendering takes tens of ms: give the connection back first
    data = request.app.state.pixel_cache.rendered(
        path, (format.value, max_size, window), lambda: render_image(path, fmt=format, max_size=max_size, window=window)
    )
    return Response(content=data, media_type=MEDIA_TYPES[format], headers={"Cache-Control": CACHE_CONTROL})


class WindowPreset(BaseModel):
    """A window in modality units; ``kind`` ``window`` (center/width, the file's VOI LUT Function) or ``lut``
    (a VOI LUT Sequence item: fetch ``/voi-lut/{index}``)."""

    name: str
    kind: str = "window"
    center: float | None = None
    width: float | None = None
    function: str = "LINEAR"
    index: int | None = None


class Spacing(BaseModel):
    """The spacing the viewer's ruler measures with, in mm (:func:`cxrlab.dicom.metadata.measurement_spacing`)."""

    row: float = Field(description="Between the centres of adjacent rows (vertical), mm")
    column: float = Field(description="Between the centres of adjacent columns (horizontal), mm")
    source: Literal["PixelSpacing", "ImagerPixelSpacing"] = Field(description=(
        "PixelSpacing: in the patient (PS3.3 10.7.1.1); ImagerPixelSpacing: at the detector (PS3.3 C.8.11.4)"))
    note: str = Field(description="What a distance measured with it means (shown beside the ruler)")


class PixelMeta(BaseModel):
    """How to turn ``/pixels`` into modality values and display them.

    ``modality = offset + scale * u16`` (error at most ``scale / 2``); window in modality units; for
    ``MONOCHROME1`` invert after windowing (PS3.3 C.7.6.3.1.2). ``rows``/``columns`` are the original size (box
    coordinates are in these pixels); ``shape`` is ``[rows, columns]`` of the array sent.
    """

    image_id: str
    rows: int
    columns: int
    shape: list[int]
    dtype: str = "<u2"
    offset: float
    scale: float
    photometric: str
    default: WindowPreset
    presets: list[WindowPreset]
    spacing: Spacing | None = Field(default=None, description="For the ruler; null when the file gives none")


def pixel_meta(image_id: str, path: Path, cache: PixelCache, max_size: int) -> PixelMeta:
    """The metadata of ``/pixels``: offset/scale, size, photometric and window presets (the file's windows and
    VOI LUTs, full range, histogram-based auto windows of several contrasts)."""
    _, meta = cache.get(path, max_size)
    fn = meta["window"].get("function", "LINEAR")
    presets = [WindowPreset(name=name, kind="lut", index=i) for i, name in enumerate(voi_lut_names(path))]
    names = {p["name"] for p in meta["presets"]}
    for p in meta["presets"]:
        computed = p["name"] == "full range" or p["name"].startswith("auto ")
        presets.append(WindowPreset(name=p["name"], center=p["center"], width=p["width"],
                                    function="LINEAR_EXACT" if computed else fn))
    w = meta["window"]
    if presets and presets[0].kind == "lut":
        default = presets[0]
    else:
        default = WindowPreset(name="default" if "default" not in names else "file default", center=w["center"],
                               width=w["width"], function=w["function"])
    return PixelMeta(image_id=image_id, rows=meta["rows"], columns=meta["columns"], shape=meta["shape"],
                     offset=meta["offset"], scale=meta["scale"], photometric=meta["photometric"], default=default,
                     presets=presets, spacing=meta.get("spacing"))


MaxSize = Annotated[int, Query(ge=16, le=4096, description="Longest side of the array in pixels")]


@router.get("/{image_id}/meta", response_model=PixelMeta)
def api_pixel_meta(image_id: str, user: CurrentUser, session: SessionDep, workspace: WorkspaceDep,
                   request: Request, max_size: MaxSize = 1024) -> PixelMeta:
    """Offset/scale, sizes and window presets for client-side window/level of ``/pixels``."""
    path = deid_file(workspace, get_image(session, image_id, user))
    session.close()
    return pixel_meta(image_id, path, request.app.state.pixel_cache, max_size)


@router.get("/{image_id}/pixels", response_class=Response,
            responses={200: {"content": {"application/octet-stream": {}}}})
def api_pixels(image_id: str, user: CurrentUser, session: SessionDep, workspace: WorkspaceDep, request: Request,
               max_size: MaxSize = 1024) -> Response:
    """Modality values downsampled (area average) and packed as little-endian uint16, row-major.

    Headers ``X-Shape`` (rows,columns), ``X-Offset`` and ``X-Scale`` (``modality = offset + scale * u16``)
    and ``X-Photometric``; ``/meta`` has the same and the window presets.
    """
    path = deid_file(workspace, get_image(session, image_id, user))
    session.close()
    packed, meta = request.app.state.pixel_cache.get(path, max_size)
    headers = {"Cache-Control": CACHE_CONTROL, "X-Shape": f"{meta['shape'][0]},{meta['shape'][1]}",
               "X-Offset": repr(float(meta["offset"])), "X-Scale": repr(float(meta["scale"])),
               "X-Photometric": meta["photometric"]}
    return Response(packed.astype("<u2", copy=False).tobytes(), media_type="application/octet-stream",
                    headers=headers)


class ProbeValue(BaseModel):
    """One pixel of the original image: its stored value and its modality value."""

    x: int
    y: int
    stored: int = Field(description="The pixel as the file stores it")
    modality: float = Field(description="After the Modality LUT (Rescale Slope/Intercept or the LUT Sequence)")
    unit: str = Field(description="(0028,1054) Rescale Type, US (unspecified) when absent")


Coordinate = Annotated[int, Query(ge=0, le=INT_MAX, description="Pixel of the original image (0 = first)")]


@router.get("/{image_id}/probe", response_model=ProbeValue,
            responses={422: error(422, "Malformed request, or the pixel lies outside the image",
                                  ValidationErrorOut | ErrorOut)})
def api_probe(image_id: str, x: Coordinate, y: Coordinate, user: CurrentUser, session: SessionDep,
              workspace: WorkspaceDep, request: Request) -> ProbeValue:
    """The viewer's pixel probe: the stored and the modality value of pixel (x, y) of the original image (not of
    the downsampled array the viewer windows). Measuring tools never change the marks."""
    path = deid_file(workspace, get_image(session, image_id, user))
    session.close()
    try:
        (value,) = request.app.state.pixel_cache.probe(path, [(x, y)])
    except ValueError as exc:
        raise HTTPException(status_code=422, detail=str(exc)) from None
    return ProbeValue(**value)


@router.get("/{image_id}/voi-lut/{index}", response_class=Response,
            responses={200: {"content": {"application/octet-stream": {}}}})
def api_voi_lut(image_id: str, index: int, user: CurrentUser, session: SessionDep, workspace: WorkspaceDep,
                request: Request, max_size: MaxSize = 1024) -> Response:
    """VOI LUT item *index* as 65,536 uint8 display levels indexed by the packed ``/pixels`` values."""
    path = deid_file(workspace, get_image(session, image_id, user))
    session.close()
    lut = request.app.state.pixel_cache.voi_lut(path, max_size, index)
    return Response(lut.tobytes(), media_type="application/octet-stream", headers={"Cache-Control": CACHE_CONTROL})
