"""``/api/projects``: projects, their label schema, assignment (admins), progress, agreement, gold-standard images
and the readers' scores on them, and exports. Every admin action is recorded with its author."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from sqlalchemy.orm import Session

from cxrlab.annotate import gold, progress, projects
from cxrlab.annotate.assignment import assign_images
from cxrlab.catalog.models import Project
from cxrlab.consensus import project_agreement, reader_quality
from cxrlab.errors import NotFoundError
from cxrlab.export import project as exports
from cxrlab.models import suggest
from cxrlab.web import models
from cxrlab.web.deps import AdminUser, AuthFirstRoute, CurrentUser, IdPath, SessionDep

router = APIRouter(prefix="/api/projects", tags=["projects"], responses=models.errors(401, 403, 404),
                   route_class=AuthFirstRoute)


@router.get("", response_model=list[models.ProjectOut])
def api_list_projects(user: CurrentUser, session: SessionDep) -> list[models.ProjectOut]:
    """Projects the caller works in (admins: all)."""
    return [models.ProjectOut.of(p) for p in projects.list_projects(session, user=user)]


@router.post("", response_model=models.ProjectOut, status_code=201, responses=models.errors(400))
def api_create_project(body: models.ProjectIn, admin: AdminUser, session: SessionDep) -> models.ProjectOut:
    """Create a project with a preset or custom (YAML) label schema."""
    project = projects.create_project(session, name=body.name, schema=body.schema_name, schema_yaml=body.schema_yaml,
                                      readers_per_image=body.readers_per_image,
                                      reviewers_per_test=body.reviewers_per_test, seed=body.seed,
                                      author=admin.username)
    return models.ProjectOut.of(project)


@router.get("/{project_id}", response_model=models.ProjectOut)
def api_get_project(project_id: IdPath, user: CurrentUser, session: SessionDep) -> models.ProjectOut:
    """One project."""
    return models.ProjectOut.of(projects.get_project(session, project_id, user=user))


@router.get("/{project_id}/schema", response_model=models.SchemaOut, response_model_by_alias=True)
def api_project_schema(project_id: IdPath, user: CurrentUser, session: SessionDep) -> models.SchemaOut:
    """The project's labels: local (boxed findings) and global (image-level), with definitions."""
    schema = projects.project_schema(projects.get_project(session, project_id, user=user))

    def out(kind: str) -> list[models.LabelOut]:
        return [models.LabelOut(number=lb.number, name=lb.name, kind=lb.kind, definition=lb.definition)
                for lb in schema.labels if lb.kind == kind]

    return models.SchemaOut(name=schema.name, no_finding=schema.no_finding, local=out("local"), global_=out("global"))


@router.post("/{project_id}/assign", response_model=models.AssignOut, responses=models.errors(400))
def api_assign(project_id: IdPath, body: models.AssignIn, admin: AdminUser, session: SessionDep,
               request: Request) -> models.AssignOut:
    """Assign the accepted, unassigned images to readers (and test images to reviewers); with ``gold_rate``,
    gold-standard tasks go out with them."""
    project = projects.get_project(session, project_id)
    report = assign_images(session, project=project, test_fraction=body.test_fraction, readers=body.readers,
                           reviewers=body.reviewers, limit=body.limit, image_ids=body.image_ids,
                           gold_rate=body.gold_rate, author=admin.username)
    if project.suggest_model_sha256:
        request.app.state.suggestions.notify()  # the new images are predicted in the background
    return models.AssignOut(counts=dict(report.counts), notes=report.notes)


def _suggest_out(session: Session, project: Project) -> models.SuggestOut:
    counts = suggest.suggestion_counts(session, project=project)
    return models.SuggestOut(run=project.suggest_run, model=project.suggest_model_sha256, **counts)


@router.get("/{project_id}/suggest", response_model=models.SuggestOut)
def api_get_suggest(project_id: IdPath, admin: AdminUser, session: SessionDep) -> models.SuggestOut:
    """Model-assisted reading: the project's detector run (null: off, the default) and how many of its images
    the background worker has predicted."""
    return _suggest_out(session, projects.get_project(session, project_id))


@router.put("/{project_id}/suggest", response_model=models.SuggestOut, responses=models.errors(400))
def api_set_suggest(project_id: IdPath, body: models.SuggestIn, admin: AdminUser, session: SessionDep,
                    request: Request) -> models.SuggestOut:
    """Turn model suggestions on with a detector run folder on the server (400 naming the folder and the reason
    when it is not a detector run or a class is not a local label of the project), or off with ``run: null``.
    The project's images are then predicted in the background, once each."""
    project = suggest.set_suggest_run(session, project=projects.get_project(session, project_id),
                                      run=body.run, author=admin.username)
    request.app.state.suggestions.notify()
    return _suggest_out(session, project)


@router.get("/{project_id}/progress", response_model=models.ProgressOut)
def api_progress(project_id: IdPath, admin: AdminUser, session: SessionDep) -> dict:
    """Progress per split and per reader, throughput, unusable images."""
    return progress.progress(session, project=projects.get_project(session, project_id))


@router.get("/{project_id}/agreement", response_model=models.AgreementOut)
def api_agreement(project_id: IdPath, admin: AdminUser, session: SessionDep) -> dict:
    """Inter-reader agreement: Fleiss' kappa per label; pairwise box agreement at IoU 0.4."""
    return project_agreement(session, project=projects.get_project(session, project_id))


@router.get("/{project_id}/gold", response_model=list[models.GoldImageOut])
def api_list_gold(project_id: IdPath, admin: AdminUser, session: SessionDep) -> list[dict]:
    """The project's gold-standard images, their decided marks (labels, box count) and gold reads so far."""
    return gold.list_gold(session, project=projects.get_project(session, project_id))


@router.post("/{project_id}/gold", response_model=models.GoldReportOut, responses=models.errors(400))
def api_mark_gold(project_id: IdPath, body: models.GoldIn, admin: AdminUser, session: SessionDep) -> dict:
    """Mark decided images as gold (their consensus, or an expert reader's read, becomes the gold standard). A
    missing, undecided image or a label outside the project's schema is 400, naming it; nothing is stored then."""
    project = projects.get_project(session, project_id)
    report = gold.mark_gold(session, project=project, image_ids=body.image_ids, source=body.source,
                            author=admin.username)
    return {"counts": dict(report.counts), "gold": gold.list_gold(session, project=project)}


@router.post("/{project_id}/gold/remove", response_model=models.GoldReportOut)
def api_unmark_gold(project_id: IdPath, body: models.GoldIn, admin: AdminUser, session: SessionDep) -> dict:
    """Stop using images as gold: gold tasks not yet submitted leave the queues (``source`` is ignored)."""
    project = projects.get_project(session, project_id)
    report = gold.unmark_gold(session, project=project, image_ids=body.image_ids, author=admin.username)
    return {"counts": dict(report.counts), "gold": gold.list_gold(session, project=project)}


@router.get("/{project_id}/quality", response_model=models.QualityOut)
def api_quality(project_id: IdPath, admin: AdminUser, session: SessionDep) -> dict:
    """Each reader's score on the gold images: per-label sensitivity and specificity, box F1 at IoU 0.4."""
    return reader_quality(session, project=projects.get_project(session, project_id))


@router.get("/{project_id}/export.json")
def api_export_json(
    project_id: IdPath,
    admin: AdminUser,
    session: SessionDep,
    free_text: Annotated[bool, Query(description=(
        "Include free text typed by users (read comments, unusable notes, review comments). It is not "
        "de-identified; the export then carries a top-level warning"))] = False,
) -> dict:
    """Full-fidelity export: every reader's marks, unusable decisions (codes), reviews and the final consensus;
    free text only with ``?free_text=true``."""
    return exports.project_json(session, project=projects.get_project(session, project_id),
                                include_free_text=free_text)


@router.get("/{project_id}/export/{name}", response_class=Response,
            responses={200: {"content": {"text/csv": {}}}})
def api_export_csv(project_id: IdPath, name: str, admin: AdminUser, session: SessionDep) -> Response:
    """A seed CSV: annotations_train.csv, image_labels_train.csv (one row per reader), annotations_test.csv,
    image_labels_test.csv (the reviewed consensus). The seed layouts carry no free text."""
    project = projects.get_project(session, project_id)
    if name not in exports.CSV_NAMES:
        raise NotFoundError(f"export {name!r} not found")
    text = exports.project_csv(session, project=project, name=name)
    return Response(text, media_type="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})
