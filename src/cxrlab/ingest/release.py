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
from sqlalchemy import insert, select

from cxrlab.catalog.models import (
    REVIEW_METHOD,
    ConsensusBox,
    ConsensusLabel,
    Event,
    Image,
    ImageState,
    Reading,
    ReadingBox,
    ReadingLabel,
)
from cxrlab.catalog.workspace import Workspace
from cxrlab.errors import CxrlabError
from cxrlab.ingest.nih import read_nih, read_nih_release
from cxrlab.ingest.tables import BadRows
from cxrlab.ingest.vindr import read_meta, read_vindr, read_vindr_release
from cxrlab.runtime.files import atomic_link_or_copy, sha256_file
from cxrlab.runtime.report import StageReport
from cxrlab.schemas import BOX_COLUMNS, ReleaseTables

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



def import_release(ws: Workspace, tables: ReleaseTables, *, link: bool = True) -> StageReport:
    """Import a public release into the workspace catalog (idempotent: known ``image_id`` values are skipped).

    Each image becomes an ``images`` row (``image_id`` kept, ``split`` set; the release's files are already
    de-identified, so the file, when given, is hard-linked or copied to ``images/`` as the de-identified
    file). Reader labels and boxes become readings; images with readings are ``labeled``. Consensus labels and
    boxes (a test set) are recorded as human decisions (``method="review"``), so ``cxrlab consensus`` keeps
    them; images with only a consensus are ``reviewed``.

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
    names = tables.schema.names
    with ws.sessions() as session:
        known = set(session.scalars(select(Image.image_id)))
        images = tables.images.loc[~tables.images["image_id"].isin(known)]
        report.counts["already_imported"] = len(tables.images) - len(images)
        with_readers = set(tables.reader_labels["image_id"]) | set(tables.reader_boxes["image_id"])
        pks: dict[str, int] = {}
        for rec in images.to_dict("records"):
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

            def val(key: str, rec: dict = rec) -> object:
                v = rec.get(key)
                return None if v is None or (isinstance(v, float) and np.isnan(v)) else v

            img = Image(
                sop_instance_uid=f"import:{iid}"[:64],
                image_id=iid,
                raw_sha256=sha,
                raw_path=raw_path or "",
                deid_path=deid_path,
                state=ImageState.LABELED if iid in with_readers else ImageState.REVIEWED,
                split=val("split"),
                sex=val("sex"),
                age_years=val("age_years"),
                study_year=int(val("study_year")) if val("study_year") is not None else None,
                rows=int(val("rows")) if val("rows") is not None else None,
                columns=int(val("columns")) if val("columns") is not None else None,
                patient_key=str(val("patient_id")) if val("patient_id") is not None else None,
                view_position=val("view_position"),
                file_size=int(val("file_size")) if val("file_size") is not None else None,
                deid_file_size=int(val("file_size")) if val("file_size") is not None else None,
            )
            session.add(img)
            session.flush()
            pks[iid] = img.id
        # Readings: one per (image, reader); labels as 0/1 rows, boxes as given.
        labels = tables.reader_labels.loc[tables.reader_labels["image_id"].isin(pks)]
        boxes = tables.reader_boxes.loc[tables.reader_boxes["image_id"].isin(pks)]
        pairs = pd.concat([labels[["image_id", "rad_id"]], boxes[["image_id", "rad_id"]]]).drop_duplicates()
        reading_ids: dict[tuple[str, str], int] = {}
        for iid, rad in pairs.itertuples(index=False):
            r = Reading(image_pk=pks[iid], rad_id=str(rad), schema=tables.schema.name)
            session.add(r)
            session.flush()
            reading_ids[(iid, str(rad))] = r.id
        lab_rows = [
            {"reading_id": reading_ids[(rec["image_id"], str(rec["rad_id"]))], "label": n}
            for rec in labels.to_dict("records")
            for n in names
            if rec.get(n) == 1
        ]
        if lab_rows:
            session.execute(insert(ReadingLabel), lab_rows)
        box_rows = [
            {"reading_id": reading_ids[(rec["image_id"], str(rec["rad_id"]))], "class_name": rec["class_name"],
             **{c: float(rec[c]) for c in BOX_COLUMNS}}
            for rec in boxes.to_dict("records")
        ]
        if box_rows:
            session.execute(insert(ReadingBox), box_rows)
        cons = tables.consensus_labels.loc[tables.consensus_labels["image_id"].isin(pks)]
        cl_rows = [
            {"image_pk": pks[rec["image_id"]], "label": n, "positive": int(rec.get(n, 0) or 0), "votes": 0,
             "readers": 0, "method": REVIEW_METHOD}
            for rec in cons.to_dict("records")
            for n in names
        ]
        if cl_rows:
            session.execute(insert(ConsensusLabel), cl_rows)
        cb = tables.consensus_boxes.loc[tables.consensus_boxes["image_id"].isin(pks)]
        cb_rows = [
            {"image_pk": pks[rec["image_id"]], "class_name": rec["class_name"],
             **{c: float(rec[c]) for c in BOX_COLUMNS},
             "score": None if pd.isna(rec.get("score")) else float(rec["score"]),
             "votes": 1 if pd.isna(rec.get("votes")) else int(rec["votes"]),
             "method": REVIEW_METHOD, "author": f"import:{tables.source or 'release'}"}
            for rec in cb.to_dict("records")
        ]
        if cb_rows:
            session.execute(insert(ConsensusBox), cb_rows)
        if pks:
            session.execute(insert(Event), [{"image_pk": pk, "stage": "import", "action": "imported",
                                             "detail": {"source": tables.source}} for pk in pks.values()])
        session.commit()
    report.counts.update({"images": len(pks), "readings": len(reading_ids), "reader_boxes": len(box_rows),
                          "consensus_boxes": len(cb_rows)})
    report.problems.extend(tables.problems)
    report.seconds = time.perf_counter() - t0
    return report
