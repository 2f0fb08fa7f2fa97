"""Report labels in a workspace (issue 14): ``cxrlab reports import``, ``reports label -w`` and ``export --source
report --format nih`` on a real SQLite catalog of ingested, de-identified phantom DICOMs.

The phantoms carry real-looking headers (Accession Number, Study Instance UID, patient names in several
character sets; one study holds two images). The reports name the patients, so the PHI tests can grep every file,
the CLI output and the log for those names.
"""

from __future__ import annotations

import csv
import json
import logging
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pydicom
import pytest
from sqlalchemy import func, select, update
from typer.testing import CliRunner

from cxrlab.catalog import Workspace, init_workspace, open_workspace
from cxrlab.catalog.models import ConsensusLabel, Event, Image, ImageState, RadiologyReport, ReportLabel
from cxrlab.catalog.release import load_release
from cxrlab.cli.main import app
from cxrlab.deid import run_deid
from cxrlab.dicom.phantom import generate_phantoms
from cxrlab.export import run_export
from cxrlab.filter import run_filter
from cxrlab.ingest import run_ingest
from cxrlab.reports import Labeler, Match, open_reports, run_import, run_label_workspace
from cxrlab.runtime import Executor
from cxrlab.schemas import get_schema
from tests.support.data import ROOT

runner = CliRunner()

#: What each report says, by the phantom study it belongs to (index in :attr:`Archive.studies`).
FINDINGS = {
    0: "FINDINGS: The heart is enlarged. Small right pleural effusion. IMPRESSION: Cardiomegaly with effusion.",
    1: "FINDINGS: Heart size is normal. No pneumothorax or effusion. IMPRESSION: No acute disease.",
    2: "IMPRESSION: Possible early pneumonia in the left lower lobe.",
    3: "FINDINGS: Small left apical pneumothorax. 8 mm nodule in the right upper lobe.",
}


@dataclass
class Study:
    """One phantom study: its identifiers, its patient's family name and its images' SOP Instance UIDs."""

    accession: str
    study_uid: str
    family: str
    sops: list[str]


@dataclass
class Archive:
    """A workspace template (ingested, de-identified, filtered), its phantom files and the studies they hold, in
    file order."""

    ws: Path
    src: Path
    studies: list[Study]

    @property
    def names(self) -> list[str]:
        """The planted family names (each in a report text)."""
        return [s.family for s in self.studies]


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Archive:
    root = tmp_path_factory.mktemp("archive")
    truths = generate_phantoms(root / "src", 8, seed=3, size_range=(256, 320), text_prob=0, outlier_prob=0)
    studies: dict[str, Study] = {}
    for truth in truths:
        ds = pydicom.dcmread(root / "src" / truth.file, stop_before_pixels=True)
        family = str(ds.PatientName).split("^")[0]
        study = studies.setdefault(ds.StudyInstanceUID, Study(ds.AccessionNumber, ds.StudyInstanceUID, family, []))
        study.sops.append(ds.SOPInstanceUID)
    ws = init_workspace(root / "ws")
    run_ingest(ws, root / "src", executor=Executor(1))
    run_deid(ws, executor=Executor(1), text=False)
    run_filter(ws)
    with ws.sessions() as session:
        assert session.scalar(select(func.count()).where(Image.state == ImageState.ACCEPTED)) == 8
    ws.engine.dispose()
    found = list(studies.values())
    assert len(found[0].sops) == 2 and all(len(s.sops) == 1 for s in found[1:])  # the seed's layout
    return Archive(root / "ws", root / "src", found)


@pytest.fixture
def ws(archive: Archive, tmp_path: Path) -> Workspace:
    """A fresh copy of the archive's workspace."""
    shutil.copytree(archive.ws, tmp_path / "ws")
    workspace = open_workspace(tmp_path / "ws")
    yield workspace
    workspace.engine.dispose()


def report_text(study: Study, index: int) -> str:
    """A report of *study* that names its patient (PHI) before its findings."""
    return f"Patient: {study.family}. INDICATION: cough. {FINDINGS[index]}"


def write_table(path: Path, archive: Archive, *, unmatched: int = 1, bad: bool = False) -> Path:
    """``report_id,accession,text``: one report per study 0-3, *unmatched* reports of unknown accessions, and with
    *bad* a record without an accession and one without text."""
    rows = [[f"R{i}", archive.studies[i].accession, report_text(archive.studies[i], i)] for i in FINDINGS]
    rows += [[f"U{i}", f"ACC00000000{i}", f"Patient: {archive.names[-1]}. No effusion."] for i in range(unmatched)]
    if bad:
        rows += [["B1", "", f"Patient: {archive.names[0]}. Effusion."], ["B2", "ACC1", ""]]
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["report_id", "accession", "text"])
        writer.writerows(rows)
    return path


def image_ids(ws: Workspace, study: Study) -> list[str]:
    with ws.sessions() as session:
        return sorted(session.scalars(select(Image.image_id).where(Image.sop_instance_uid.in_(study.sops))))


def stored_labels(ws: Workspace) -> dict[tuple[str, str], int]:
    """``(image_id, label) -> value`` of every report label."""
    with ws.sessions() as session:
        rows = session.execute(select(Image.image_id, ReportLabel.label, ReportLabel.value)
                               .join(Image, Image.id == ReportLabel.image_pk)).all()
    return {(iid, label): value for iid, label, value in rows}


def positives(ws: Workspace, study: Study) -> dict[str, set[str]]:
    """``image_id -> labels stored as 1`` of a study's images."""
    labels = stored_labels(ws)
    return {iid: {lab for (i, lab), v in labels.items() if i == iid and v == 1} for iid in image_ids(ws, study)}


def data_entry(release: Path) -> dict[str, str]:
    """``Image Index -> Finding Labels`` of a release's NIH ``Data_Entry.csv``."""
    lines = (release / "nih" / "Data_Entry.csv").read_text().splitlines()
    return {line.split(",")[0]: line.split(",")[1] for line in lines[1:]}


class TestImport:
    def test_by_accession_links_every_image_of_the_study(self, ws: Workspace, archive: Archive,
                                                         tmp_path: Path) -> None:
        source = open_reports(write_table(tmp_path / "reports.csv", archive), key_column="accession")
        report = run_import(ws, source, match="accession")
        assert report.counts["imported"] == 5 and report.counts["matched"] == 4
        assert report.counts["unmatched"] == 1 and report.skipped == [("U0", "unmatched")]
        assert report.counts["images_linked"] == 5  # study 0 holds two images
        with ws.sessions() as session:
            stored = session.scalars(select(RadiologyReport).order_by(RadiologyReport.id)).all()
            keys = set(session.scalars(select(Image.accession_key)))
        assert len(stored) == 5 and {r.match for r in stored} == {"accession"}
        assert all(r.match_key in keys for r in stored[:4]) and stored[4].match_key not in keys
        assert stored[0].sections["findings"].startswith("The heart is enlarged")

    def test_by_study_uid(self, ws: Workspace, archive: Archive, tmp_path: Path) -> None:
        path = tmp_path / "reports.jsonl"
        path.write_text("".join(
            json.dumps({"id": f"S{i}", "StudyInstanceUID": archive.studies[i].study_uid,
                        "report": report_text(archive.studies[i], i)}) + "\n" for i in FINDINGS))
        source = open_reports(path, id_column="id", text_column="report", key_column="StudyInstanceUID")
        report = run_import(ws, source, match=Match.STUDY_UID)
        assert report.counts["matched"] == 4 and report.counts["unmatched"] == 0
        run_label_workspace(ws, labeler=Labeler.from_schema("nih14"))
        assert all(labels == {"Cardiomegaly", "Effusion"} for labels in positives(ws, archive.studies[0]).values())
        assert list(positives(ws, archive.studies[3]).values()) == [{"Pneumothorax", "Nodule"}]

    def test_identifiers_are_stored_only_as_keyed_hashes(self, ws: Workspace, archive: Archive,
                                                         tmp_path: Path) -> None:
        run_import(ws, open_reports(write_table(tmp_path / "r.csv", archive), key_column="accession"),
                   match="accession")
        ws.engine.dispose()
        catalog = (ws.root / "catalog.db").read_bytes()
        for study in archive.studies:
            assert study.accession.encode() not in catalog
        assert archive.studies[0].study_uid.encode() not in catalog
        assert b"Patient: " in catalog  # the text itself is kept, in the catalog only

    def test_reimport_is_idempotent_and_an_edit_updates(self, ws: Workspace, archive: Archive,
                                                        tmp_path: Path) -> None:
        path = write_table(tmp_path / "reports.csv", archive)
        run_import(ws, open_reports(path, key_column="accession"), match="accession")
        again = run_import(ws, open_reports(path, key_column="accession"), match="accession")
        assert again.counts["unchanged"] == 5 and not again.counts["imported"] and not again.counts["updated"]
        path.write_text(path.read_text().replace("Possible early pneumonia", "Right lower lobe pneumonia"))
        edited = run_import(ws, open_reports(path, key_column="accession"), match="accession")
        assert edited.counts["updated"] == 1 and edited.counts["unchanged"] == 4
        with ws.sessions() as session:
            assert session.scalar(select(func.count(RadiologyReport.id))) == 5

    def test_bad_records_are_listed_by_line_and_the_batch_goes_on(self, ws: Workspace, archive: Archive,
                                                                  tmp_path: Path) -> None:
        path = write_table(tmp_path / "reports.csv", archive, bad=True)
        with open(path, "ab") as fh:  # a record that is not UTF-8 (line 9)
            fh.write(f"B3,ACC2,{archive.names[1]} \xe9panchement\n".encode("latin-1"))
        report = run_import(ws, open_reports(path, key_column="accession"), match="accession")
        assert report.counts["imported"] == 5 and report.counts["failed"] == 3
        assert [(Path(w).name, r) for w, r in report.problems] == [
            ("reports.csv:7", "empty 'accession'"), ("reports.csv:8", "empty report (no text)"),
            ("reports.csv:9", "not valid utf-8 (pass the file's encoding)")]

    def test_images_ingested_before_0009_are_keyed_from_their_originals(self, ws: Workspace, archive: Archive,
                                                                        tmp_path: Path) -> None:
        with ws.transaction() as session:
            session.execute(update(Image).values(accession_key=None, study_key=None))
        report = run_import(ws, open_reports(write_table(tmp_path / "r.csv", archive), key_column="accession"),
                            match="accession")
        assert report.counts["matched"] == 4
        assert "8 image(s) ingested before reports were supported" in report.notes[0]
        again = run_import(ws, open_reports(tmp_path / "r.csv", key_column="accession"), match="accession")
        assert again.notes == []


class TestLabel:
    def test_labels_are_stored_per_image_with_source_report(self, ws: Workspace, archive: Archive,
                                                            tmp_path: Path) -> None:
        run_import(ws, open_reports(write_table(tmp_path / "r.csv", archive), key_column="accession"),
                   match="accession")
        run = run_label_workspace(ws, labeler=Labeler.from_schema("nih14"))
        assert run.report.counts["labeled"] == 4 and run.report.counts["images_labeled"] == 5
        assert run.report.counts["unmatched"] == 1 and run.report.skipped[0][0].endswith("r.csv:6")
        labels = stored_labels(ws)
        assert len(labels) == 5 * 14
        assert all(v == {"Cardiomegaly", "Effusion"} for v in positives(ws, archive.studies[0]).values())
        assert list(positives(ws, archive.studies[1]).values()) == [set()]
        (pneumonia_image,) = image_ids(ws, archive.studies[2])
        assert labels[pneumonia_image, "Pneumonia"] == -1
        assert run.counts["Effusion"][1] == 2 and run.counts["Pneumonia"][-1] == 1
        with ws.sessions() as session:
            events = session.scalars(select(Event).where(Event.stage == "reports")).all()
            states = set(session.scalars(select(Image.state)))
        assert len(events) == 5 and events[0].detail == {"schema": "nih14", "reports": 1}
        assert states == {ImageState.ACCEPTED}  # report labels move no image along

    def test_relabel_replaces(self, ws: Workspace, archive: Archive, tmp_path: Path) -> None:
        run_import(ws, open_reports(write_table(tmp_path / "r.csv", archive), key_column="accession"),
                   match="accession")
        labeler = Labeler.from_schema("nih14")
        run_label_workspace(ws, labeler=labeler)
        first = stored_labels(ws)
        run_label_workspace(ws, labeler=labeler)
        assert stored_labels(ws) == first
        run_label_workspace(ws, labeler=labeler, uncertain="positive")
        (pneumonia_image,) = image_ids(ws, archive.studies[2])
        assert stored_labels(ws)[pneumonia_image, "Pneumonia"] == 1
        run_label_workspace(ws, labeler=Labeler.from_schema("vindr-cxr-global"))
        labels = stored_labels(ws)
        assert len(labels) == 5 * 6 and (pneumonia_image, "Pneumonia") in labels
        assert not any(label == "Effusion" for _, label in labels)

    def test_reports_of_one_study_combine(self, ws: Workspace, archive: Archive, tmp_path: Path) -> None:
        path = write_table(tmp_path / "r.csv", archive)
        with open(path, "a", newline="") as fh:  # an addendum to study 1: a new finding
            csv.writer(fh).writerow(["R1-add", archive.studies[1].accession, "ADDENDUM: small left effusion."])
        run_import(ws, open_reports(path, key_column="accession"), match="accession")
        run_label_workspace(ws, labeler=Labeler.from_schema("nih14"))
        assert list(positives(ws, archive.studies[1]).values()) == [{"Effusion"}]
        with ws.sessions() as session:
            assert session.scalar(select(func.max(ReportLabel.reports))) == 2

    def test_nothing_imported_raises(self, ws: Workspace) -> None:
        from cxrlab.reports import ReportError

        with pytest.raises(ReportError, match="no report in the catalog: run `cxrlab reports import` first"):
            run_label_workspace(ws, labeler=Labeler.from_schema("nih14"))


class TestExportNih:
    def test_finding_labels_from_report_labels(self, ws: Workspace, archive: Archive, tmp_path: Path) -> None:
        run_import(ws, open_reports(write_table(tmp_path / "r.csv", archive), key_column="accession"),
                   match="accession")
        run_label_workspace(ws, labeler=Labeler.from_schema("nih14"))
        report = run_export(ws, "weak", formats=("nih",), source="report")
        release = ws.path("exports", "weak")
        entries = data_entry(release)
        assert len(entries) == 5 and report.counts["images"] == 5
        for iid in image_ids(ws, archive.studies[0]):
            assert entries[f"{iid}.png"] == "Cardiomegaly|Effusion"
        assert entries[f"{image_ids(ws, archive.studies[1])[0]}.png"] == "No Finding"
        assert entries[f"{image_ids(ws, archive.studies[2])[0]}.png"] == "No Finding"  # uncertain: dropped
        assert entries[f"{image_ids(ws, archive.studies[3])[0]}.png"] == "Nodule|Pneumothorax"
        header = (release / "nih" / "Data_Entry.csv").read_text().splitlines()[0]
        assert header.startswith("Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age")
        assert (release / "nih" / "BBox_List.csv").read_text().count("\n") == 1  # header only: reports draw no box
        labels = pd.read_csv(release / "image_labels_train.csv")
        assert list(labels.columns) == ["image_id", "rad_id", *get_schema("nih14").names]
        assert set(labels["rad_id"]) == {"report"} and len(labels) == 5
        manifest = json.loads((release / "manifest.json").read_text())
        assert manifest["label_source"] == "report" and manifest["label_schema"]["name"] == "nih14"
        with ws.sessions() as session:
            assert set(session.scalars(select(Image.state))) == {ImageState.ACCEPTED}
            assert session.scalar(select(func.count(Event.id)).where(Event.action == "exported")) == 5

    def test_uncertain_positive_at_label_time(self, ws: Workspace, archive: Archive, tmp_path: Path) -> None:
        run_import(ws, open_reports(write_table(tmp_path / "r.csv", archive), key_column="accession"),
                   match="accession")
        run_label_workspace(ws, labeler=Labeler.from_schema("nih14"), uncertain="positive")
        run_export(ws, "weak", formats=("nih",), source="report")
        entries = data_entry(ws.path("exports", "weak"))
        assert entries[f"{image_ids(ws, archive.studies[2])[0]}.png"] == "Pneumonia"

    def test_images_not_past_the_filter_are_left_out(self, ws: Workspace, archive: Archive, tmp_path: Path) -> None:
        run_import(ws, open_reports(write_table(tmp_path / "r.csv", archive), key_column="accession"),
                   match="accession")
        run_label_workspace(ws, labeler=Labeler.from_schema("nih14"))
        held = image_ids(ws, archive.studies[3])
        with ws.transaction() as session:
            session.execute(update(Image).where(Image.image_id.in_(held)).values(state=ImageState.FLAGGED_TEXT))
        report = run_export(ws, "weak", formats=("nih",), source="report")
        assert f"{held[0]}.png" not in data_entry(ws.path("exports", "weak"))
        assert any("1 image(s) with report labels left out" in n for n in report.notes)

    def test_no_report_labels_raises(self, ws: Workspace) -> None:
        from cxrlab.errors import CxrlabError

        with pytest.raises(CxrlabError, match="no accepted image has report labels"):
            run_export(ws, "weak", formats=("nih",), source="report")


class TestReadersUnchanged:
    """Report labels are a source of their own: the readers' tables, consensus and exports do not see them."""

    def test_readers_export_and_consensus_are_the_same_with_report_labels(self, ws: Workspace, archive: Archive,
                                                                          tmp_path: Path) -> None:
        from cxrlab.annotate.readings import simulate_readers
        from cxrlab.consensus import run_consensus

        simulate_readers(ws, readers=3, seed=1)
        run_consensus(ws)
        with ws.sessions() as session:
            before = load_release(session, get_schema(ws.settings.schema))
            consensus = session.execute(select(ConsensusLabel.image_pk, ConsensusLabel.label,
                                               ConsensusLabel.positive).order_by(ConsensusLabel.id)).all()
        run_export(ws, "before", formats=("nih", "json"))
        run_import(ws, open_reports(write_table(tmp_path / "r.csv", archive), key_column="accession"),
                   match="accession")
        run_label_workspace(ws, labeler=Labeler.from_schema("vindr-cxr-global"), uncertain="positive")
        assert stored_labels(ws)  # report labels exist for the same images
        run_consensus(ws)
        with ws.sessions() as session:
            after = load_release(session, get_schema(ws.settings.schema))
            assert session.execute(select(ConsensusLabel.image_pk, ConsensusLabel.label, ConsensusLabel.positive)
                                   .order_by(ConsensusLabel.id)).all() == consensus
        pd.testing.assert_frame_equal(before.reader_labels, after.reader_labels)
        pd.testing.assert_frame_equal(before.consensus_labels, after.consensus_labels)
        run_export(ws, "after", formats=("nih", "json"))
        old, new = ws.path("exports", "before"), ws.path("exports", "after")
        files = sorted(p.relative_to(old) for p in old.rglob("*") if p.is_file())
        assert files == sorted(p.relative_to(new) for p in new.rglob("*") if p.is_file())
        for rel in files:
            if rel.name != "manifest.json":
                assert (old / rel).read_bytes() == (new / rel).read_bytes(), rel
        assert json.loads((new / "manifest.json").read_text())["label_source"] == "readers"
        # ... and the report labels export on their own, for the same (now released) images
        run_export(ws, "weak", formats=("nih",), source="report")
        assert len(data_entry(ws.path("exports", "weak"))) == 5


class TestPHI:
    """Report text never leaves the catalog: plant the patients' names in the reports, run the commands as a user
    would (separate processes, and in-process with DEBUG logging), and grep everything they wrote."""

    @pytest.mark.slow  # three cxrlab processes
    def test_names_absent_from_exports_cli_output_and_logs(self, ws: Workspace, archive: Archive, tmp_path: Path,
                                                           caplog: pytest.LogCaptureFixture) -> None:
        table = write_table(tmp_path / "reports.csv", archive, unmatched=2, bad=True)
        jsonl = tmp_path / "reports.jsonl"
        jsonl.write_text(f'{{"report_id": "J1", "study_uid": "{archive.studies[0].study_uid}", "text": '
                         f'"Patient: {archive.names[0]}. Effusion."}}\n{{"report_id": "J2", "text": '
                         f'"{archive.names[1]}"}}\nPatient: {archive.names[2]}\n')
        ws.engine.dispose()
        w = ["-w", str(ws.root)]
        processes = [  # as a user runs them: stdout and stderr of the real console
            ["reports", "import", str(table), "--match", "accession", *w, "--report", str(tmp_path / "import.csv")],
            ["reports", "label", *w, "--schema", "vindr-cxr-global", "--sections", "indication,findings"],
            ["export", "weak", "--format", "nih", "--format", "json", "--format", "coco", "--source", "report", *w],
        ]
        outputs = []
        for args in processes:
            proc = subprocess.run([sys.executable, "-m", "cxrlab.cli.main", *args], capture_output=True, text=True,
                                  cwd=ROOT, timeout=300)
            assert proc.returncode in (0, 2), (args, proc.stderr)
            outputs += [proc.stdout, proc.stderr]
        caplog.set_level(logging.DEBUG)
        caplog.set_level(logging.INFO, logger="sqlalchemy.engine")  # a site debugging its catalog: every statement
        in_process = [
            ["reports", "import", str(table), "--match", "accession", *w],
            ["reports", "import", str(jsonl), "--match", "study-uid", *w],
            ["reports", "label", *w],
            ["export", "weak2", "--format", "nih", "--source", "report", *w],
        ]
        for args in in_process:
            result = runner.invoke(app, args)
            assert result.exit_code in (0, 2), result.output
            outputs.append(result.output)
        outputs.append(caplog.text)
        joined = "\n".join(outputs)
        # the run did happen and said what went wrong, by file and line or report id ...
        assert "reports.csv:7" in joined and "reports.jsonl:2" in joined and "reports.jsonl:3" in joined
        assert "2 unmatched report(s)" in joined and "U0, U1" in joined
        assert "[SQL parameters hidden" in caplog.text  # SQLAlchemy logged its statements, not their values
        files = [p for p in ws.path("exports").rglob("*") if p.is_file()] + [tmp_path / "import.csv"]
        assert any(p.name == "Data_Entry.csv" for p in files) and any(p.suffix == ".dicom" for p in files)
        blobs = [p.read_bytes() for p in files]
        # ... without a word of the reports: no name, in any spelling or encoding, anywhere
        for name in archive.names:
            variants = {name, name.upper(), name.lower()}
            assert not any(v in joined for v in variants), name
            for blob in blobs:
                for v in variants:
                    for encoding in ("utf-8", "latin-1", "utf-16-le"):
                        try:
                            assert v.encode(encoding) not in blob, (name, encoding)
                        except UnicodeEncodeError:
                            continue
        assert "Patient:" not in joined and "pleural effusion" not in joined.lower()

    def test_the_web_app_never_reads_reports(self) -> None:
        web = ROOT / "src" / "cxrlab" / "web"
        offenders = [p.relative_to(web) for p in web.rglob("*.py")
                     if any(word in p.read_text() for word in ("RadiologyReport", "catalog.reports", "reports."))]
        assert offenders == []


class TestPostgres:
    def test_import_label_export_on_postgresql(self, archive: Archive, tmp_path: Path,
                                               pg_database_url: str) -> None:
        from cxrlab.catalog import Settings

        ws = init_workspace(tmp_path / "ws", settings=Settings(database_url=pg_database_url))
        try:
            run_ingest(ws, archive.src, executor=Executor(1))
            run_deid(ws, executor=Executor(1), text=False)
            run_filter(ws)
            table = write_table(tmp_path / "r.csv", archive)
            first = run_import(ws, open_reports(table, key_column="accession"), match="accession")
            again = run_import(ws, open_reports(table, key_column="accession"), match="accession")
            assert first.counts["matched"] == 4 and again.counts["unchanged"] == 5
            run_label_workspace(ws, labeler=Labeler.from_schema("nih14"))
            run_label_workspace(ws, labeler=Labeler.from_schema("nih14"))
            assert len(stored_labels(ws)) == 5 * 14
            run_export(ws, "weak", formats=("nih",), source="report")
            entries = data_entry(ws.path("exports", "weak"))
            assert entries[f"{image_ids(ws, archive.studies[3])[0]}.png"] == "Nodule|Pneumothorax"
        finally:
            ws.engine.dispose()


class TestCli:
    def test_import_label_export(self, ws: Workspace, archive: Archive, tmp_path: Path) -> None:
        table = write_table(tmp_path / "reports.csv", archive, bad=True)
        w = ["-w", str(ws.root)]
        result = runner.invoke(app, ["reports", "import", str(table), "--match", "accession", *w])
        assert result.exit_code == 2  # two bad records, listed; the others imported
        assert "reports.csv:7" in result.output and "1 unmatched report(s) (no image with that identifier): U0" \
            in result.output
        result = runner.invoke(app, ["reports", "label", *w, "--uncertain", "negative"])
        assert result.exit_code == 0, result.output
        assert "4 reports labeled -> 5 images" in result.output and "labels (nih14), images" in result.output
        result = runner.invoke(app, ["export", "weak", "--format", "nih", "--source", "report", *w])
        assert result.exit_code == 0, result.output
        assert "nih/ 4 files" in result.output
        assert len(data_entry(ws.path("exports", "weak"))) == 5

    @pytest.mark.parametrize(("args", "message"), [
        (["reports", "label", "in.csv", "-w", "ws"], "not both"),
        (["reports", "label", "in.csv"], "INPUT needs -o OUT.csv"),
        (["reports", "label", "-o", "l.csv"], "-o is for INPUT"),
    ])
    def test_label_modes_raise(self, args: list[str], message: str) -> None:
        result = runner.invoke(app, args)
        assert result.exit_code == 2 and message in result.output

    def test_missing_key_column_is_one_line(self, ws: Workspace, tmp_path: Path) -> None:
        table = tmp_path / "r.csv"
        table.write_text("report_id,text\nr1,Effusion.\n")
        result = runner.invoke(app, ["reports", "import", str(table), "--match", "study-uid", "-w", str(ws.root)])
        assert result.exit_code == 1 and "r.csv: no column 'study_uid'" in result.output

    def test_source_report_needs_a_workspace(self, tmp_path: Path) -> None:
        result = runner.invoke(app, ["export", "r1", "--from-nih", str(tmp_path), "-o", str(tmp_path),
                                     "--source", "report"])
        assert result.exit_code == 1 and "--source report exports a workspace's report labels" in result.output
