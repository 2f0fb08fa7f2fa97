"""The pure parts of the reports' workspace side: identifier keys, the key column of the readers, how the labels
of several reports of one image combine, and which label schema a vocabulary fills."""

from __future__ import annotations

from pathlib import Path

import pytest

from cxrlab.dicom.metadata import identifier_key
from cxrlab.reports import Match, ReportError, ReportFileError, open_reports, release_schema_name
from cxrlab.reports.vocabulary import VocabularyError
from cxrlab.reports.workspace import _combine

KEY = bytes(range(32))
NAME = "DOE^JOHN"


class TestIdentifierKey:
    def test_dicom_padding_is_ignored(self) -> None:
        assert identifier_key(KEY, "accession", "ACC123 ") == identifier_key(KEY, "accession", "ACC123")
        assert identifier_key(KEY, "study", "1.2.3\x00") == identifier_key(KEY, "study", "1.2.3")

    def test_kinds_and_keys_differ(self) -> None:
        keys = {identifier_key(KEY, kind, "1.2.3") for kind in ("accession", "study", "report")}
        assert len(keys) == 3
        assert identifier_key(KEY, "study", "1.2.3") != identifier_key(bytes(32), "study", "1.2.3")
        assert len(identifier_key(KEY, "study", "1.2.3")) == 32

    def test_case_is_kept(self) -> None:
        assert identifier_key(KEY, "accession", "acc1") != identifier_key(KEY, "accession", "ACC1")

    @pytest.mark.parametrize("value", [None, "", "  ", "\x00"])
    def test_empty_is_none(self, value: str | None) -> None:
        assert identifier_key(KEY, "accession", value) is None

    def test_unknown_kind_raises(self) -> None:
        with pytest.raises(ValueError, match="unknown identifier kind 'patient'"):
            identifier_key(KEY, "patient", "x")


class TestKeyColumn:
    def test_table_key_column(self, tmp_path: Path) -> None:
        path = tmp_path / "r.csv"
        path.write_text("report_id,accession,text\nr1, ACC1 ,Effusion.\nr2,,No effusion.\n")
        items = list(open_reports(path, key_column="accession"))
        assert items[0].key == "ACC1" and items[0].source.endswith("r.csv:2")
        assert isinstance(items[1], ReportFileError) and items[1].where.endswith("r.csv:3")
        assert "empty 'accession'" in str(items[1])

    def test_jsonl_number_key_and_missing_key(self, tmp_path: Path) -> None:
        path = tmp_path / "r.jsonl"
        path.write_text('{"report_id": 1, "study_uid": 123, "text": "x"}\n'
                        f'{{"report_id": 2, "text": "{NAME}"}}\n')
        first, second = open_reports(path, key_column="study_uid")
        assert first.key == "123"
        assert isinstance(second, ReportFileError) and "r.jsonl:2" in str(second) and NAME not in str(second)

    def test_missing_key_column_raises(self, tmp_path: Path) -> None:
        path = tmp_path / "r.csv"
        path.write_text("report_id,text\nr1,x\n")
        with pytest.raises(ReportError, match=r"no column 'accession'.*--key-column"):
            list(open_reports(path, key_column="accession"))

    def test_openi_key_is_the_file_name(self, tmp_path: Path) -> None:
        (tmp_path / "ACC9.xml").write_text('<r><AbstractText Label="FINDINGS">Effusion.</AbstractText></r>')
        (report,) = open_reports(tmp_path, key_column="accession")
        assert report.key == report.report_id == "ACC9"

    def test_no_key_without_key_column(self, tmp_path: Path) -> None:
        path = tmp_path / "r.csv"
        path.write_text("report_id,text\nr1,x\n")
        assert next(iter(open_reports(path))).key is None


class TestCombine:
    def test_positive_beats_uncertain_beats_negative(self) -> None:
        a = {"Effusion": 0, "Mass": -1, "Nodule": 0, "No finding": 0}
        b = {"Effusion": 1, "Mass": 0, "Nodule": 0, "No finding": 0}
        assert _combine(_combine(None, a, "No finding"), b, "No finding") == {
            "Effusion": 1, "Mass": -1, "Nodule": 0, "No finding": 0}

    def test_no_finding_needs_every_report(self) -> None:
        clear = {"Mass": 0, "No finding": 1}
        assert _combine(clear, clear, "No finding")["No finding"] == 1
        assert _combine(clear, {"Mass": 1, "No finding": 0}, "No finding") == {"Mass": 1, "No finding": 0}


class TestReleaseSchema:
    @pytest.mark.parametrize(("vocabulary", "schema"), [("nih14", "nih14"), ("vindr-cxr-global", "vindr-cxr"),
                                                        ("vindr-cxr-local", "vindr-cxr")])
    def test_builtin(self, vocabulary: str, schema: str) -> None:
        assert release_schema_name(vocabulary) == schema

    def test_unknown_raises(self) -> None:
        with pytest.raises(VocabularyError, match="'site' fills no label schema"):
            release_schema_name("site")


def test_match_kinds() -> None:
    from cxrlab.catalog.reports import MATCHES

    assert {m.value for m in Match} == set(MATCHES)
    assert Match("study-uid").kind == "study" and Match("accession").kind == "accession"
