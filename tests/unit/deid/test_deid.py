"""De-identification engine, batch, verification: real files, profiles, identifiers (kill -9 recovery is in
tests/integration/test_kill.py)."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from cxrlab.deid import (
    VINDR_KEEP,
    Action,
    deid_folder,
    deidentify_dataset,
    get_profile,
    image_id_for,
    load_profile,
    verify_folder,
)
from cxrlab.deid.verify import MARKERS
from cxrlab.errors import CxrlabError
from cxrlab.runtime import Executor
from tests.support.dicom import make_dicom

KEY = bytes(range(32))


def _copy_real(shared_dicom: Path, tmp_path: Path, names: list[str]) -> Path:
    src = tmp_path / "src"
    src.mkdir()
    for name in names:
        shutil.copy(shared_dicom / name, src / name)
    return src


@pytest.mark.slow  # every real DICOM file, both profiles
class TestRealFiles:
    @pytest.mark.parametrize("profile", ["vindr", "basic"])
    def test_real_files_deidentify_and_verify_clean(self, shared_dicom: Path, tmp_path: Path, profile: str) -> None:
        # RG1_J2KI shares RG1_UNCI's SOP Instance UID, so it gets a folder of its own.
        src = _copy_real(shared_dicom, tmp_path, ["RG1_UNCI.dcm", "RG3_UNCI.dcm"])
        j2k = tmp_path / "j2k"
        j2k.mkdir()
        shutil.copy(shared_dicom / "RG1_J2KI.dcm", j2k / "RG1_J2KI.dcm")
        deid_folder(j2k, tmp_path / "out_j2k", profile=get_profile(profile), key=KEY, mapping=tmp_path / "j.sqlite",
                    executor=Executor(1))
        assert verify_folder(tmp_path / "out_j2k", profile=get_profile(profile), source_dir=j2k, key=KEY).ok
        out = tmp_path / "out"
        report = deid_folder(src, out, profile=get_profile(profile), key=KEY, mapping=tmp_path / "map.sqlite",
                             executor=Executor(1))
        assert report.counts["failed"] == 0
        result = verify_folder(out, profile=get_profile(profile), source_dir=src, key=KEY)
        assert result.ok, result.to_json()
        # Pixels unchanged: decoded arrays equal, and the encapsulated bytes of the JPEG 2000 file are untouched.
        for folder, result_dir, name in ((src, out, "RG1_UNCI.dcm"), (j2k, tmp_path / "out_j2k", "RG1_J2KI.dcm")):
            s = pydicom.dcmread(folder / name)
            o = pydicom.dcmread(result_dir / f"{image_id_for(s.SOPInstanceUID, KEY)}.dicom")
            assert o.PixelData == s.PixelData
            assert np.array_equal(o.pixel_array, s.pixel_array)
        # chrJapMulti: Japanese person names (ISO 2022 IR 87) and no Pixel Data; its header de-identifies, but as a
        # file it is refused (an output without its image is a failure, issue 10 item 2).
        jap = deidentify_dataset(pydicom.dcmread(shared_dicom / "chrJapMulti.dcm"), profile=get_profile(profile),
                                 key=KEY).dataset
        assert jap.PatientIdentityRemoved == "YES"
        assert not jap.get("PatientName")
        shutil.copy(shared_dicom / "chrJapMulti.dcm", src / "chrJapMulti.dcm")
        report = deid_folder(src, out, profile=get_profile(profile), key=KEY, mapping=tmp_path / "map.sqlite",
                             executor=Executor(1))
        assert report.counts["failed"] == 1 and report.counts["already"] == 2
        assert report.problems == [(str(src / "chrJapMulti.dcm"), "no pixel data (7FE0,0010)")]

    def test_vindr_keeps_exactly_the_keep_list(self, shared_dicom: Path, tmp_path: Path) -> None:
        src = _copy_real(shared_dicom, tmp_path, ["RG1_UNCI.dcm"])
        deid_folder(src, tmp_path / "out", profile=get_profile("vindr"), key=KEY, mapping=tmp_path / "m.sqlite",
                    executor=Executor(1))
        (out,) = (tmp_path / "out").glob("*.dicom")
        ds = pydicom.dcmread(out)
        source = pydicom.dcmread(src / "RG1_UNCI.dcm")
        keep = {int(t) for t, _ in VINDR_KEEP}
        assert {int(e.tag) for e in ds} - MARKERS == keep & {int(e.tag) for e in source}
        assert ds.file_meta.ImplementationClassUID.startswith("2.25.")
        assert ds.file_meta.MediaStorageSOPInstanceUID != source.SOPInstanceUID


class TestBasicProfile:
    def _source(self) -> Dataset:
        path = make_dicom(Path(os.environ.get("TMPDIR", "/tmp")) / f"b{os.getpid()}.dcm", patient_id="PID777777")
        ds = pydicom.dcmread(path)
        item = Dataset()  # a kept sequence (not in Table E.1-1) carrying PHI at depth 1 and 2
        item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = "T-D3000", "SRT", "Chest"
        item.ReferencedSOPInstanceUID = ds.SOPInstanceUID
        item.PatientName = "INNER^NAME"
        item.add_new(0x00191010, "LO", "PRIVATE SECRET")
        inner = Dataset()
        inner.OperatorsName = "DEEP^OPERATOR"
        inner.CodeValue = "X"
        item.AnatomicRegionModifierSequence = Sequence([inner])
        ds.AnatomicRegionSequence = Sequence([item])
        request = Dataset()
        request.RequestedProcedureDescription = "SECRET PROCEDURE NOTE"
        ds.RequestAttributesSequence = Sequence([request])
        ds.StudyDescription = "CHEST PA"
        ds.SeriesDescription = "Dr Smith follow-up"
        ds.StationName = "XR-ROOM-1"
        return ds

    def test_actions(self) -> None:
        ds = self._source()
        res = deidentify_dataset(ds, profile=get_profile("basic"), key=KEY)
        out = res.dataset
        assert "PatientName" in out and not out.PatientName and not out.PatientID
        assert "InstitutionName" not in out
        assert out.PatientAge == "045Y" and out.StationName == "XR-ROOM-1"  # retained options
        assert out.StudyDescription == "CHEST PA" and "SeriesDescription" not in out  # clean descriptors
        assert out.StudyDate != ds.StudyDate and len(out.StudyDate) == 8  # modified dates
        assert not out.get("PatientBirthDate")
        assert out.SOPInstanceUID == res.sop_instance_uid != ds.SOPInstanceUID
        assert "RequestAttributesSequence" not in out  # X in Table E.1-1
        item = out.AnatomicRegionSequence[0]
        assert item.CodeMeaning == "Chest"
        assert item.ReferencedSOPInstanceUID == out.SOPInstanceUID  # references stay consistent
        assert not item.PatientName and all(int(e.tag) >> 16 != 0x0019 for e in item)
        assert "OperatorsName" not in item.AnatomicRegionModifierSequence[0]
        assert all(int(e.tag) >> 16 != 0x0009 for e in out)  # private removed
        assert out.LongitudinalTemporalInformationModified == "MODIFIED"

    def test_same_key_same_ids_other_key_other_ids(self) -> None:
        ds = self._source()
        a = deidentify_dataset(ds, profile=get_profile("basic"), key=KEY)
        b = deidentify_dataset(ds, profile=get_profile("basic"), key=KEY)
        c = deidentify_dataset(ds, profile=get_profile("basic"), key=b"x" * 32)
        assert a.image_id == b.image_id != c.image_id
        assert a.dataset.StudyInstanceUID == b.dataset.StudyInstanceUID != c.dataset.StudyInstanceUID
        assert a.dataset.StudyDate == b.dataset.StudyDate


class TestIdentifiers:
    def test_hmac_is_32_hex_and_md5_matches_vindr_scheme(self) -> None:
        uid = "1.2.3.4.5"
        assert len(image_id_for(uid, KEY)) == 32
        assert image_id_for(uid, KEY, "md5") == hashlib.md5(uid.encode()).hexdigest()
        with pytest.raises(ValueError, match="unknown id scheme"):
            image_id_for(uid, KEY, "sha1")


class TestYamlProfile:
    def test_rules(self, tmp_path: Path) -> None:
        yml = tmp_path / "p.yaml"
        yml.write_text(
            "name: site\nbase: vindr\nrules:\n"
            "  - {keyword: StudyDescription, action: keep}\n"
            "  - {tag: '(0010,0020)', action: hash}\n"
            "  - {keyword: InstitutionName, action: replace, value: SITE-A}\n"
            "  - {pattern: '*Date', action: shift}\n"
        )
        prof = load_profile(yml)
        ds = pydicom.dcmread(make_dicom(tmp_path / "a.dcm"))
        ds.StudyDescription = "CHEST"
        out = deidentify_dataset(ds, profile=prof, key=KEY).dataset
        assert out.StudyDescription == "CHEST" and out.InstitutionName == "SITE-A"
        assert len(out.PatientID) == 64 and out.PatientID != "PID123456"
        assert out.StudyDate != "20200315" and "PatientName" not in out
        assert prof.rule_for(0x00100040, "PatientSex").action == Action.KEEP  # from the base

    @pytest.mark.parametrize(
        ("text", "msg"),
        [("rules:\n  - {keyword: Nope, action: keep}\n", "unknown DICOM keyword"),
         ("rules:\n  - {keyword: PatientName, action: burn}\n", "unknown action"),
         ("rules:\n  - {keyword: PatientName, action: replace}\n", "replace needs a value"),
         ("- just a list\n", "is a mapping")],
    )
    def test_invalid_profile_raises(self, tmp_path: Path, text: str, msg: str) -> None:
        yml = tmp_path / "bad.yaml"
        yml.write_text(text)
        with pytest.raises(CxrlabError, match=msg):
            load_profile(yml)

    def test_unknown_profile_name_raises(self) -> None:
        with pytest.raises(CxrlabError, match="unknown de-identification profile"):
            get_profile("hipaa-max")


class TestRawKeptElements:
    """Kept elements are written back as the bytes read, never decoded and re-encoded (engine._apply)."""

    def _element_bytes(self, data: bytes, tag: int) -> bytes:
        """The encoded (group, element) header + value of *tag* in explicit VR LE file bytes."""
        key = tag.to_bytes(4, "big")
        head = key[1::-1] + key[3:1:-1]
        i = data.index(head, 132)
        length = int.from_bytes(data[i + 6 : i + 8], "little")
        return data[i : i + 8 + length]

    @pytest.mark.parametrize("charset", [None, "ISO_IR 100", "ISO_IR 192"])
    def test_kept_values_are_copied_byte_for_byte(self, tmp_path: Path, charset: str | None) -> None:
        from cxrlab.deid.engine import encode_header, read_header

        path = make_dicom(tmp_path / "a.dcm")
        ds = pydicom.dcmread(path)
        if charset:
            ds.SpecificCharacterSet = charset
        ds.PatientAge = "045Y"
        ds.WindowCenter = "2048.50"  # a DS string pydicom would not write back the same way if it re-encoded it
        ds.save_as(path, enforce_file_format=True)
        src = path.read_bytes()
        header, _span = read_header(path)
        result = deidentify_dataset(header, profile=get_profile("vindr"), key=KEY)
        kept = {int(t): e for t, e in result.dataset._dict.items()}
        assert all(kept[int(t)].is_raw for t, _ in VINDR_KEEP if int(t) in kept and int(t) != 0x7FE00010)
        out = encode_header(result)
        for tag in (0x00101010, 0x00281050, 0x00280030, 0x00280010):
            assert self._element_bytes(out, tag) == self._element_bytes(src, tag)
        back = pydicom.dcmread(pydicom.filebase.DicomBytesIO(out), force=True)
        assert back.PatientAge == "045Y" and float(back.WindowCenter) == 2048.5
        assert "SpecificCharacterSet" not in back and back.PatientIdentityRemoved == "YES"

    def test_implicit_vr_source_round_trips(self, tmp_path: Path) -> None:
        from pydicom.uid import ImplicitVRLittleEndian

        path = make_dicom(tmp_path / "src" / "a.dcm")
        ds = pydicom.dcmread(path)
        ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
        ds.save_as(path, enforce_file_format=True)
        out = tmp_path / "out"
        deid_folder(path.parent, out, profile=get_profile("vindr"), key=KEY, mapping=tmp_path / "m.sqlite",
                    executor=Executor(1))
        (written,) = list(out.glob("*.dicom"))
        back = pydicom.dcmread(written)
        assert back.file_meta.TransferSyntaxUID == ImplicitVRLittleEndian
        assert back.Rows == 64 and np.array_equal(back.pixel_array, ds.pixel_array)
        assert verify_folder(out, profile=get_profile("vindr"), source_dir=path.parent, key=KEY).ok


class TestDamagedSources:
    """A source whose pixels are incomplete gets no output: the output would carry the damage on (issue 10)."""

    def test_short_native_pixel_data_and_cut_codestream_fail(self, tmp_path: Path) -> None:
        from pydicom.encaps import encapsulate, generate_frames
        from pydicom.uid import JPEGLSLossless

        src = tmp_path / "src"
        ds = pydicom.dcmread(make_dicom(src / "short.dcm", seed=1))
        ds.PixelData = ds.PixelData[:-100]  # a consistent file: only the image attributes say it is short
        ds.save_as(src / "short.dcm", enforce_file_format=True)
        ds = pydicom.dcmread(make_dicom(src / "cut.dcm", seed=2))
        ds.compress(JPEGLSLossless)
        frame = next(generate_frames(ds.PixelData, number_of_frames=1))
        ds.PixelData = encapsulate([frame[:-30]])
        ds.save_as(src / "cut.dcm", enforce_file_format=True)
        make_dicom(src / "good.dcm", seed=3)
        out = tmp_path / "out"
        report = deid_folder(src, out, profile=get_profile("vindr"), key=KEY, mapping=tmp_path / "m.sqlite",
                             executor=Executor(1))
        assert (report.counts["deidentified"], report.counts["failed"]) == (1, 2)
        reasons = {Path(p).name: r for p, r in report.problems}
        assert reasons == {"short.dcm": "pixel data truncated (8092 of 8192 bytes)",
                           "cut.dcm": "pixel data truncated (the compressed image has no end marker FFD9)"}
        assert len(list(out.glob("*.dicom"))) == 1


class TestVerify:
    def _out(self, tmp_path: Path) -> tuple[Path, Path]:
        src = tmp_path / "src"
        for i in range(3):
            make_dicom(src / f"{i}.dcm", seed=i)
        out = tmp_path / "out"
        deid_folder(src, out, profile=get_profile("vindr"), key=KEY, mapping=tmp_path / "m.sqlite",
                    executor=Executor(1))
        return src, out

    def test_clean_folder_passes(self, tmp_path: Path) -> None:
        src, out = self._out(tmp_path)
        report = verify_folder(out, profile=get_profile("vindr"), source_dir=src, key=KEY,
                               phi_strings=["DOE^JOHN", "PID123456"], report_path=tmp_path / "r.json")
        assert report.ok and report.files == 3
        assert (tmp_path / "r.json").read_text().count('"ok": true') == 1

    def test_leak_outside_profile_pixels_missing_and_extra_are_found(self, tmp_path: Path) -> None:
        src, out = self._out(tmp_path)
        files = sorted(out.glob("*.dicom"))
        ds = pydicom.dcmread(files[0])
        ds.add_new(0x00100010, "PN", "DOE^JOHN")  # a leaked name, outside the vindr profile
        ds.save_as(files[0], enforce_file_format=True)
        ds = pydicom.dcmread(files[1])
        arr = ds.pixel_array.copy()
        arr[0, 0] ^= 1
        ds.PixelData = arr.tobytes()
        ds.save_as(files[1], enforce_file_format=True)
        files[2].rename(out / "0123456789abcdef0123456789abcdef.dicom")
        report = verify_folder(out, profile=get_profile("vindr"), source_dir=src, key=KEY)
        checks = {f.check for f in report.findings}
        assert {"outside_profile", "phi", "pixels", "missing", "extra"} <= checks
        assert not report.ok
        assert "DOE" not in report.to_json()  # the report itself carries no PHI


class TestDeidFolderResume:
    def test_outputs_truncated_by_a_crash_are_redone(self, tmp_path: Path) -> None:
        """A machine crash can leave renamed outputs empty or short; a rerun must not skip them."""
        from cxrlab.deid.batch import output_complete

        src = tmp_path / "src"
        for i in range(4):
            make_dicom(src / f"{i}.dcm", seed=i, rows=96, columns=96)
        out = tmp_path / "out"
        run = dict(profile=get_profile("vindr"), key=KEY, mapping=tmp_path / "m.sqlite", executor=Executor(1))
        deid_folder(src, out, **run)
        files = sorted(out.glob("*.dicom"))
        good = {p.name: p.read_bytes() for p in files}
        files[0].write_bytes(b"")
        files[1].write_bytes(good[files[1].name][:-100])
        # Cut at the element boundary before group 0028 (the image pixel module): it parses, with no Rows.
        data = good[files[2].name]
        files[2].write_bytes(data[: data.index(b"\x28\x00\x02\x00", 132)])
        assert not any(output_complete(f) for f in files[:3]) and output_complete(files[3])
        report = deid_folder(src, out, **run, sync=True)
        assert report.counts["deidentified"] == 3 and report.counts["already"] == 1
        assert {p.name: p.read_bytes() for p in out.glob("*.dicom")} == good


@pytest.mark.ocr
class TestBurnedInTextInBatch:
    def test_text_is_redacted_or_held_for_review_and_verify_accounts_for_it(self, tmp_path: Path) -> None:
        import json

        from cxrlab.deid.batch import mapping_engine
        from cxrlab.deid.engine import TextOptions
        from cxrlab.dicom.phantom import generate_phantoms

        src = tmp_path / "src"
        truths = generate_phantoms(src, 8, seed=11, size_range=(1024, 1280), text_prob=0.7, outlier_prob=0.0)
        out, review = tmp_path / "out", tmp_path / "review"
        report = deid_folder(src, out, profile=get_profile("vindr"), key=KEY, mapping=tmp_path / "m.sqlite",
                             executor=Executor(2), text=TextOptions(review_dir=review))
        with_text = [t for t in truths if t.text_boxes]
        assert with_text, "the phantom set must contain burned-in text"
        assert report.counts["redacted"] + report.counts["review"] >= 1
        held = {p.stem for p in review.glob("*.json")}
        for t in with_text:
            image_id = image_id_for(t.sop_instance_uid, KEY)
            if image_id in held:
                record = json.loads((review / f"{image_id}.json").read_text())
                assert record["decision"] == "review" and (review / f"{image_id}.png").is_file()
                assert "text" not in json.dumps(record["candidates"])  # recognised text may be PHI
                assert not (out / f"{image_id}.dicom").exists()
        from sqlalchemy import select
        from sqlalchemy.orm import Session

        from cxrlab.catalog import Redaction

        with Session(mapping_engine(tmp_path / "m.sqlite")) as session:
            redactions = {r.image_id: r.boxes for r in session.scalars(select(Redaction))}
        assert len(redactions) == report.counts["redacted"]
        result = verify_folder(out, profile=get_profile("vindr"), source_dir=src, key=KEY, redactions=redactions,
                               held_back=held)
        assert result.ok, result.to_json()
        # Without the redaction record, the changed pixels are caught.
        if redactions:
            strict = verify_folder(out, profile=get_profile("vindr"), source_dir=src, key=KEY, held_back=held)
            assert "pixels" in {f.check for f in strict.findings}
