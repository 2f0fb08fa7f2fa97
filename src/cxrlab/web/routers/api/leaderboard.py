"""``/api/benchmarks``: the leaderboard. Admins create benchmarks, upload their hidden test labels, close and
reopen them; any logged-in user uploads submissions, follows their scoring and reads the rankings.

Files are sent as the raw request body (``Content-Type: text/csv`` or ``application/gzip``; a gzip stream is
recognised by its first bytes) with the file's name in ``?filename=``, e.g.
``curl -H "Authorization: Bearer $TOKEN" --data-binary @submission.csv.gz
"http://host/api/benchmarks/1/submissions?filename=submission.csv.gz"``. No multipart parser is needed and
the size limit is enforced while the body arrives.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response

from cxrlab import benchmark as lb
from cxrlab.benchmark.errors import UploadTooLargeError
from cxrlab.catalog.models import BenchmarkState
from cxrlab.web.deps import AdminUser, AuthFirstRoute, CurrentUser, IdPath, SessionDep, WorkspaceDep
from cxrlab.web.models import (
    BenchmarkIn,
    BenchmarkOut,
    LabelsOut,
    LeaderboardOut,
    SizesOut,
    SubmissionOut,
    UploadErrorOut,
    ValidationErrorOut,
    benchmark_view,
    error,
    errors,
    leaderboard_out,
    submission_out,
)

router = APIRouter(prefix="/api/benchmarks", tags=["leaderboard"], responses=errors(401, 403, 404),
                   route_class=AuthFirstRoute)

_FILE = {"schema": {"type": "string", "format": "binary"}}
UPLOAD = {"requestBody": {"required": True, "content": {"text/csv": _FILE, "application/gzip": _FILE}}}
UPLOAD_ERRORS = {409: error(409, "Benchmark closed, or without labels yet"), 413: error(413),
                 422: error(422, "Malformed request, or the validator's messages (`problems`, with line numbers)",
                            ValidationErrorOut | UploadErrorOut)}


async def upload_body(request: Request) -> bytes:
    """The raw request body, refused with 413 as soon as it passes :data:`~lb.MAX_UPLOAD_BYTES`."""
    declared = request.headers.get("content-length", "")
    too_large = UploadTooLargeError(f"the upload is larger than {lb.MAX_UPLOAD_BYTES // 2**20} MiB")
    if declared.isdigit() and int(declared) > lb.MAX_UPLOAD_BYTES:
        raise too_large
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > lb.MAX_UPLOAD_BYTES:
            raise too_large
    return bytes(body)


UploadBody = Annotated[bytes, Depends(upload_body)]
FileName = Annotated[str | None, Query(max_length=255, description="The file's name, used in messages")]


def _wake_scoring(request: Request) -> None:
    request.app.state.scoring.notify()


@router.get("", response_model=list[BenchmarkOut])
def api_list_benchmarks(user: CurrentUser, session: SessionDep) -> list[BenchmarkOut]:
    """Every benchmark, newest first."""
    return [benchmark_view(session, b, user) for b in lb.list_benchmarks(session)]


@router.post("", response_model=BenchmarkOut, status_code=201, responses=errors(400))
def api_create_benchmark(body: BenchmarkIn, admin: AdminUser, session: SessionDep) -> BenchmarkOut:
    """Create an open benchmark; upload its hidden labels next."""
    benchmark = lb.create_benchmark(session, created_by=admin, **body.model_dump())
    return benchmark_view(session, benchmark, admin)


@router.get("/{benchmark_id}", response_model=BenchmarkOut)
def api_get_benchmark(benchmark_id: IdPath, user: CurrentUser, session: SessionDep) -> BenchmarkOut:
    """One benchmark."""
    return benchmark_view(session, lb.get_benchmark(session, benchmark_id), user)


@router.put("/{benchmark_id}/labels", response_model=LabelsOut, openapi_extra=UPLOAD, responses=UPLOAD_ERRORS)
def api_upload_labels(
    benchmark_id: IdPath, request: Request, admin: AdminUser, session: SessionDep, workspace: WorkspaceDep,
    data: UploadBody, filename: FileName = None,
) -> LabelsOut:
    """Upload or replace the hidden test labels (``annotations_test.csv`` layout, CSV or gzip). The test images
    are split into public and private parts once; every submission is scored again."""
    benchmark = lb.get_benchmark(session, benchmark_id)
    report = lb.upload_labels(session, workspace, benchmark=benchmark, data=data, filename=filename)
    if report.rescored:
        _wake_scoring(request)
    return LabelsOut(benchmark=benchmark_view(session, benchmark, admin), images=report.images, boxes=report.boxes,
                     rescored=report.rescored, notes=report.notes)


@router.put("/{benchmark_id}/sizes", response_model=SizesOut, openapi_extra=UPLOAD, responses=UPLOAD_ERRORS)
def api_upload_sizes(
    benchmark_id: IdPath, admin: AdminUser, session: SessionDep, workspace: WorkspaceDep, data: UploadBody,
    filename: FileName = None,
) -> SizesOut:
    """Upload or replace the test images' sizes (``image_id,width,height``, CSV or gzip): from now on a
    submitted box that leaves its image by more than 1 px is an error."""
    benchmark = lb.get_benchmark(session, benchmark_id)
    report = lb.upload_sizes(session, workspace, benchmark=benchmark, data=data, filename=filename)
    return SizesOut(images=report.images, test_images_without_size=report.test_images_without_size,
                    not_test_images=report.not_test_images, notes=report.notes)


@router.delete("/{benchmark_id}/sizes", status_code=204, response_class=Response)
def api_remove_sizes(benchmark_id: IdPath, admin: AdminUser, session: SessionDep, workspace: WorkspaceDep) -> Response:
    """Forget the image sizes (boxes are then checked for negative coordinates only)."""
    lb.remove_sizes(workspace, benchmark=lb.get_benchmark(session, benchmark_id))
    return Response(status_code=204)


@router.post("/{benchmark_id}/close", response_model=BenchmarkOut)
def api_close(benchmark_id: IdPath, admin: AdminUser, session: SessionDep) -> BenchmarkOut:
    """Close the benchmark: no more submissions; private scores and the private ranking become visible."""
    benchmark = lb.set_state(session, benchmark=lb.get_benchmark(session, benchmark_id), state=BenchmarkState.CLOSED)
    return benchmark_view(session, benchmark, admin)


@router.post("/{benchmark_id}/reopen", response_model=BenchmarkOut)
def api_reopen(benchmark_id: IdPath, admin: AdminUser, session: SessionDep) -> BenchmarkOut:
    """Reopen a closed benchmark (private scores are hidden again)."""
    benchmark = lb.set_state(session, benchmark=lb.get_benchmark(session, benchmark_id), state=BenchmarkState.OPEN)
    return benchmark_view(session, benchmark, admin)


@router.post("/{benchmark_id}/submissions", response_model=SubmissionOut, status_code=202, openapi_extra=UPLOAD,
             responses={**UPLOAD_ERRORS, 429: error(429, "Daily limit reached (Retry-After: seconds)")})
def api_submit(
    benchmark_id: IdPath, request: Request, user: CurrentUser, session: SessionDep, workspace: WorkspaceDep,
    data: UploadBody, filename: FileName = None,
) -> SubmissionOut:
    """Upload a submission (``image_id,PredictionString``, CSV or gzip). It is validated at once (422 with
    every problem and its line; recorded as ``invalid``, not counted against the daily limit) and scored in
    the background: poll ``GET .../submissions/{id}`` until ``scored``."""
    benchmark = lb.get_benchmark(session, benchmark_id)
    sub = lb.submit(session, workspace, benchmark=benchmark, user=user, data=data, filename=filename)
    _wake_scoring(request)
    return submission_out(sub, benchmark)


@router.get("/{benchmark_id}/submissions", response_model=list[SubmissionOut])
def api_list_submissions(benchmark_id: IdPath, user: CurrentUser, session: SessionDep) -> list[SubmissionOut]:
    """The caller's own submissions, newest first, with state and the validator's messages."""
    benchmark = lb.get_benchmark(session, benchmark_id)
    return [submission_out(s, benchmark) for s in lb.list_submissions(session, benchmark=benchmark, user=user)]


@router.get("/{benchmark_id}/submissions/{submission_id}", response_model=SubmissionOut)
def api_get_submission(benchmark_id: IdPath, submission_id: IdPath, user: CurrentUser, session: SessionDep
                       ) -> SubmissionOut:
    """One of the caller's submissions (another user's is 404)."""
    benchmark = lb.get_benchmark(session, benchmark_id)
    return submission_out(lb.get_submission(session, benchmark=benchmark, user=user, submission_id=submission_id),
                          benchmark)


@router.get("/{benchmark_id}/leaderboard", response_model=LeaderboardOut)
def api_leaderboard(benchmark_id: IdPath, user: CurrentUser, session: SessionDep) -> LeaderboardOut:
    """Best public score per user (ties to the earlier submission); the private ranking once closed."""
    benchmark = lb.get_benchmark(session, benchmark_id)
    return leaderboard_out(lb.leaderboard(session, benchmark=benchmark), benchmark_view(session, benchmark, user))
