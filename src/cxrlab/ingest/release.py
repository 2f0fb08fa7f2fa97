"""Public releases: read them from files into memory, or import them into a workspace's catalog.

:func:`load_release_files` is what the file-mode commands (``cxrlab consensus|split|stats|export`` without a
workspace) call; :func:`import_release` puts a release into the catalog, where the other stages see it as
labeled (train: one reading per reader) or reviewed (test: the consensus, ``method == "review"``) images.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from cxrlab.catalog.models import ImageState
from cxrlab.catalog.release import add_events, add_images, image_pks, store_consensus, store_readings
from cxrlab.catalog.workspace import Workspace
from cxrlab.errors import CxrlabError
from cxrlab.ingest.nih import read_nih, read_nih_release
from cxrlab.ingest.tables import BadRows
from cxrlab.ingest.vindr import read_meta, read_vindr, read_vindr_release
from cxrlab.runtime.executor import Executor
from cxrlab.runtime.files import atomic_link_or_copy, sha256_file
from cxrlab.runtime.report import ProgressCallback, StageReport
from cxrlab.schemas import ReleaseTables

__all__ = ["import_release", "load_release_files"]



def load_release_files(
    *,
    annotations: Sequence[str | Path] = (),
    image_labels: Sequence[str | Path] = (),
    meta: str | Path | None = None,
    dicom_dirs: Sequence[str | Path] = (),
    nih: str | Path | None = None,
    bbox_list: str | Path | None = None,
    vindr_dir: str | Path | None = None,
    nih_dir: str | Path | None = None,
    schema: str | None = None,
    on_bad_rows: BadRows = "raise",
    read_headers: bool = True,
) -> ReleaseTables:
    """Read whichever release files are given into one :class:`ReleaseTables`.

    VinDr files (``annotations``, ``image_labels``, ``dicom_dirs`` or a ``vindr_dir``) or NIH files
    (``nih`` = ``Data_Entry``, ``bbox_list``, or an ``nih_dir``); ``meta`` adds image metadata (size, age,
    sex, year, file size) by ``image_id``, overriding what the other sources said.

    Raises
    ------
    CxrlabError
        Nothing given, or both VinDr and NIH inputs.
    """
    vindr_given = bool(annotations or image_labels or dicom_dirs or vindr_dir)
    nih_given = bool(nih or nih_dir)
    if vindr_given and nih_given:
        raise CxrlabError("give either VinDr files or NIH files, not both")
    if not vindr_given and not nih_given:
        raise CxrlabError("no input: give --annotations/--image-labels (VinDr) or --nih (Data_Entry)")
    extra = read_meta(meta, on_bad_rows=on_bad_rows) if meta is not None else None
    if nih_dir:
        tables = read_nih_release(nih_dir, on_bad_rows=on_bad_rows)
    elif nih:
        tables = read_nih(nih, bbox_list=bbox_list, on_bad_rows=on_bad_rows)
    elif vindr_dir:
        tables = read_vindr_release(vindr_dir, schema=schema, on_bad_rows=on_bad_rows, read_headers=read_headers,
                                    image_sizes=extra)
    else:
        tables = read_vindr(annotations, image_labels, dicom_dirs=dicom_dirs, schema=schema,
                            on_bad_rows=on_bad_rows, read_headers=read_headers, image_sizes=extra)
    if extra is not None:
        extra = extra.dropna(axis=1, how="all")
        images = tables.images.set_index("image_id")
        extra = extra.drop_duplicates("image_id").set_index("image_id")
        for col in extra.columns:
            if col == "split" and "split" in images and images["split"].notna().any():
                continue
            images[col] = extra[col].reindex(images.index).combine_first(images[col]) if col in images \
                else extra[col].reindex(images.index)
        tables.images = images.reset_index()
    return tables



def import_release(
    ws: Workspace,
    tables: ReleaseTables,
    *,
    link: bool = True,
    executor: Executor | None = None,
    on_progress: ProgressCallback | None = None,
) -> StageReport:
    """Import a public release into the workspace catalog (idempotent: known ``image_id`` values are skipped).

    Each image becomes an ``images`` row (``image_id`` kept, ``split`` set; the release's files are already
    de-identified, so the file, when given, is hard-linked or copied to ``images/`` as the de-identified
    file). Reader labels and boxes become readings; images with readings are ``labeled``. Consensus labels and
    boxes (a test set) are recorded as human decisions (``method="review"``), so ``cxrlab consensus`` keeps
    them; images with only a consensus are ``reviewed``. *executor* is accepted for the stage contract (files
    are linked in this process); *on_progress* is called per image.

    Raises
    ------
    CxrlabError
        The release's label schema differs from the workspace's.
    """
    t0 = time.perf_counter()
    report = StageReport("import")
    if tables.schema.name != ws.settings.schema:
        raise CxrlabError(
            f"the release uses label schema {tables.schema.name}, the workspace {ws.settings.schema}: "
            f"create a workspace with --schema {tables.schema.name}"
        )
    with ws.transaction() as session:
        known = image_pks(session, tables.images["image_id"])
        images = tables.images.loc[~tables.images["image_id"].isin(known)]
        report.counts["already_imported"] = len(tables.images) - len(images)
        with_readers = set(tables.reader_labels["image_id"]) | set(tables.reader_boxes["image_id"])
        records = []
        for done, rec in enumerate(images.to_dict("records"), start=1):
            records.append(_image_record(ws, rec, labeled=str(rec["image_id"]) in with_readers, link=link))
            if on_progress:
                on_progress(done, len(images))
        new = tables.subset(list(add_images(session, records)))
        stored = store_readings(session, new)
        stored.update(store_consensus(session, new, author=f"import:{tables.source or 'release'}"))
        add_events(session, new.images["image_id"], stage="import", action="imported",
                   detail={"source": tables.source})
    report.counts.update({"images": len(new.images), "readings": stored["readings"],
                          "reader_boxes": stored["reader_boxes"], "consensus_boxes": stored["consensus_boxes"]})
    report.problems.extend(tables.problems)
    report.seconds = time.perf_counter() - t0
    return report


def _image_record(ws: Workspace, rec: dict, *, labeled: bool, link: bool) -> dict:
    """The ``images`` row of one release image; its file, when given, is linked to ``images/`` first."""
    iid = str(rec["image_id"])
    src = Path(rec["path"]) if rec.get("path") and not pd.isna(rec.get("path")) else None
    deid_path = raw_path = None
    sha = hashlib.sha256(f"import:{iid}".encode()).hexdigest()
    if src is not None and src.is_file():
        suffix = ".dicom" if src.suffix.lower() in (".dicom", ".dcm") else src.suffix.lower()
        rel = Path("images") / f"{Path(iid).stem}{suffix}"
        dst = ws.root / rel
        atomic_link_or_copy(src, dst, link=link)
        deid_path = raw_path = str(rel)
        sha = sha256_file(dst)

    def val(key: str) -> object:
        v = rec.get(key)
        return None if v is None or (isinstance(v, float) and np.isnan(v)) else v

    def whole(key: str) -> int | None:
        return int(val(key)) if val(key) is not None else None

    return {
        "sop_instance_uid": f"import:{iid}"[:64],
        "image_id": iid,
        "raw_sha256": sha,
        "raw_path": raw_path or "",
        "deid_path": deid_path,
        "state": ImageState.LABELED if labeled else ImageState.REVIEWED,
        "split": val("split"),
        "sex": val("sex"),
        "age_years": val("age_years"),
        "study_year": whole("study_year"),
        "rows": whole("rows"),
        "columns": whole("columns"),
        "patient_key": str(val("patient_id")) if val("patient_id") is not None else None,
        "view_position": val("view_position"),
        "file_size": whole("file_size"),
        "deid_file_size": whole("file_size"),
    }
