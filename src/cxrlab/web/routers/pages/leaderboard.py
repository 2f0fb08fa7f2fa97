"""HTML pages of the leaderboard: ``GET /benchmarks`` (every benchmark; admins create one) and
``GET /benchmarks/{id}`` (the public ranking, the private one once closed, the upload form, the caller's own
submissions; admins upload the hidden labels and close or reopen the benchmark).

Class ids: the creation form offers the workspace's label schema as the benchmark's numbering when it is a
class list (``vindr-cxr``: the ``class_id`` of the project's own ``annotations_*.csv``), the VinBigData
challenge's otherwise; each benchmark's page says which numbering its submissions use, id by id.

The pages are built from the same services and output schemas as ``/api/benchmarks``, so they show nothing the
API would not (no private score before the benchmark is closed). ``static/leaderboard.js`` sends the files,
shows the validator's messages and refreshes the tables when a submission is scored.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from cxrlab import benchmark as lb
from cxrlab.catalog.models import UserRole
from cxrlab.evaluate import CHALLENGE, CLASS_LISTS, Metric, get_class_list
from cxrlab.web.deps import IdPath, SessionDep, WorkspaceDep
from cxrlab.web.models import benchmark_view, leaderboard_out, submission_out
from cxrlab.web.pages import PAGE_TAG, PageUser, render

__all__ = ["router"]

router = APIRouter(tags=[PAGE_TAG], include_in_schema=False)


@router.get("/benchmarks", response_class=HTMLResponse)
def page_benchmarks(request: Request, user: PageUser, session: SessionDep, workspace: WorkspaceDep) -> Response:
    """Every benchmark; admins also get the form that creates one."""
    schema = workspace.settings.schema
    context = {
        "benchmarks": [benchmark_view(session, b, user) for b in lb.list_benchmarks(session)],
        "admin": user.role is UserRole.ADMIN,
        "metrics": [m.value for m in Metric],
        "class_lists": [{"name": name, "ids": get_class_list(name).ids_text} for name in CLASS_LISTS],
        "schema": schema,
        "default_classes": schema if schema in CLASS_LISTS else CHALLENGE.name,
    }
    return render(request, "benchmarks.html", workspace=workspace, user=user, **context)


@router.get("/benchmarks/{benchmark_id}", response_class=HTMLResponse)
def page_benchmark(
    request: Request, benchmark_id: IdPath, user: PageUser, session: SessionDep, workspace: WorkspaceDep
) -> Response:
    """One benchmark: rankings, upload form, the caller's submissions (and admin controls)."""
    benchmark = lb.get_benchmark(session, benchmark_id)
    view = benchmark_view(session, benchmark, user)
    context = {
        "b": view,
        "board": leaderboard_out(lb.leaderboard(session, benchmark=benchmark), view),
        "mine": [submission_out(s, benchmark) for s in lb.list_submissions(session, benchmark=benchmark, user=user)],
        "class_list": get_class_list(benchmark.classes),
        "admin": user.role is UserRole.ADMIN,
    }
    return render(request, "benchmark.html", workspace=workspace, user=user, **context)
