"""The filter model: decisions, inputs, training output, deterministic predictions, bad models refused."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image
from typer.testing import CliRunner

from cxrlab.cli.main import app
from cxrlab.dicom.phantom import generate_phantom
from cxrlab.filter import FilterModel, ModelError, Prediction, decide
from cxrlab.filter.classes import VIEW_CLASSES
from cxrlab.filter.model import sidecar_path
from cxrlab.filter.predict import COLUMNS, format_rows, predict_files
from cxrlab.filter.render import INPUT_SIZE, load_input
from cxrlab.runtime import Executor
from tests.unit.filter.conftest import needs_ort

runner = CliRunner()


def _pred(frontal: float, lateral: float = 0.0, other: float = 0.0, low: float = 0.0, ped: float = 0.0) -> Prediction:
    return Prediction((frontal, lateral, other, low), ped)


class TestDecide:
    def test_confident_frontal_adult_is_accepted(self) -> None:
        d = decide(_pred(0.95, 0.05), population="adult", threshold=0.8)
        assert (d.klass, d.decision, d.reason) == ("frontal_chest", "accepted", None)

    def test_confident_outlier_is_filtered_out_with_its_class(self) -> None:
        d = decide(_pred(0.05, 0.0, 0.93, 0.02), threshold=0.8)
        assert (d.klass, d.decision, d.reason) == ("other_body_part", "filtered_out", "other_body_part")

    def test_uncertain_needs_verification(self) -> None:
        d = decide(_pred(0.6, 0.4), threshold=0.8)
        assert d.decision == "needs_verification" and d.reason.startswith("uncertain: frontal_chest")

    def test_child_in_adult_set_and_adult_in_pediatric_set(self) -> None:
        assert decide(_pred(1.0, ped=0.9), population="adult").klass == "pediatric"
        assert decide(_pred(1.0, ped=0.9), population="pediatric").decision == "accepted"
        assert decide(_pred(1.0, ped=0.05), population="pediatric").klass == "adult"
        assert decide(_pred(1.0, ped=0.9), population="any").decision == "accepted"

    def test_model_age_against_a_header_age_goes_to_a_human(self) -> None:
        d = decide(_pred(1.0, ped=0.95), population="adult", header_age_known=True)
        assert d.decision == "needs_verification" and d.klass == "pediatric"
        assert decide(_pred(1.0, ped=0.95), population="adult").decision == "filtered_out"

    def test_scores_split_frontal_by_age(self) -> None:
        # 0.9 frontal with a 50 % child: neither frontal adult (0.45) nor pediatric (0.45) is sure.
        assert decide(_pred(0.9, 0.1, ped=0.5), population="adult").decision == "needs_verification"

    def test_bad_threshold_raises(self) -> None:
        with pytest.raises(ValueError, match="threshold"):
            decide(_pred(1.0), threshold=0.0)


class TestLoadInput:
    def test_dicom_and_png_give_two_windows_in_range(self, tmp_path: Path) -> None:
        ds, _ = generate_phantom(np.random.default_rng(1), 1, size_range=(300, 400), outlier=None)
        ds.save_as(tmp_path / "a.dcm", enforce_file_format=True)
        Image.fromarray((np.arange(300 * 200) % 251).astype(np.uint8).reshape(300, 200)).save(tmp_path / "b.png")
        for name in ("a.dcm", "b.png"):
            x = load_input(tmp_path / name)
            assert x.shape == (2, INPUT_SIZE, INPUT_SIZE) and x.dtype == np.float32
            assert x.min() >= 0.0 and x.max() <= 1.0 and x[0].max() == 1.0

    def test_monochrome1_relabelling_inverts(self, tmp_path: Path) -> None:
        ds, _ = generate_phantom(np.random.default_rng(2), 2, size_range=(300, 400), outlier=None)
        ds.save_as(tmp_path / "a.dcm", enforce_file_format=True)
        flipped = pydicom.dcmread(tmp_path / "a.dcm")
        flipped.PhotometricInterpretation = (
            "MONOCHROME2" if ds.PhotometricInterpretation == "MONOCHROME1" else "MONOCHROME1")
        flipped.save_as(tmp_path / "b.dcm")
        a, b = load_input(tmp_path / "a.dcm"), load_input(tmp_path / "b.dcm")
        np.testing.assert_allclose(a + b, 1.0, atol=1e-6)


@needs_ort
@pytest.mark.slow  # a model trained in a subprocess (the session fixture, about 10 s) and CLI runs with workers
class TestTrainedModel:
    def test_sidecar_records_classes_counts_metrics_versions_and_hash(self, tiny_model: Path) -> None:
        import hashlib

        side = json.loads(sidecar_path(tiny_model).read_text())
        assert side["classes"] == list(VIEW_CLASSES) and side["age_classes"] == ["adult", "pediatric"]
        assert side["input"]["size"] == 256 and side["training"]["source"] == "phantoms"
        assert sum(side["training"]["counts"].values()) == 36
        assert np.array(side["metrics"]["confusion_matrix"]["counts"]).sum() == side["metrics"]["validation_examples"]
        assert side["versions"]["torch"] and side["versions"]["cxrlab"]
        assert side["sha256"] == hashlib.sha256(tiny_model.read_bytes()).hexdigest()

    def test_two_predict_runs_give_identical_csv(self, tiny_model: Path, tmp_path: Path) -> None:
        for i, outlier in enumerate((None, "lateral", "low_quality")):
            ds, _ = generate_phantom(np.random.default_rng(10 + i), i, size_range=(300, 500), outlier=outlier)
            ds.save_as(tmp_path / f"{i}.dcm", enforce_file_format=True)
        (tmp_path / "notes.txt").write_text("not an image")
        a = runner.invoke(app, ["filter", "predict", str(tiny_model), str(tmp_path), "-j", "1"])
        b = runner.invoke(app, ["filter", "predict", str(tiny_model), str(tmp_path), "-j", "2"])
        assert a.exit_code == 0 and b.exit_code == 0, a.output
        lines = a.stdout.splitlines()
        assert lines[0] == ",".join(COLUMNS) and len(lines) == 4
        assert a.stdout == b.stdout  # byte-identical, whatever the number of workers
        assert "skipped 1 file" in a.stderr

    def test_predict_json_and_an_unreadable_file(self, tiny_model: Path, tmp_path: Path) -> None:
        (tmp_path / "broken.dcm").write_bytes(b"\0" * 128 + b"DICM" + b"\x02\x00")
        result = predict_files(tiny_model, [tmp_path / "broken.dcm"], executor=Executor(1))
        assert result.problems and result.rows[0]["decision"] == "needs_verification"
        rows = json.loads(format_rows(result.rows, "json"))
        assert rows[0]["class"] is None and set(rows[0]) == set(COLUMNS)

    def test_probabilities_are_a_distribution(self, tiny_model: Path, tmp_path: Path) -> None:
        ds, _ = generate_phantom(np.random.default_rng(5), 5, size_range=(300, 400), outlier=None)
        ds.save_as(tmp_path / "a.dcm", enforce_file_format=True)
        pred = FilterModel(tiny_model).predict(load_input(tmp_path / "a.dcm"))
        assert sum(pred.view) == pytest.approx(1.0, abs=1e-5) and 0.0 <= pred.pediatric <= 1.0


@needs_ort
@pytest.mark.slow  # the trained model of the session fixture
class TestBadModels:
    def _copy(self, tiny_model: Path, tmp_path: Path) -> Path:
        dst = tmp_path / "m.onnx"
        shutil.copy(tiny_model, dst)
        shutil.copy(sidecar_path(tiny_model), sidecar_path(dst))
        return dst

    def test_truncated_model_raises(self, tiny_model: Path, tmp_path: Path) -> None:
        m = self._copy(tiny_model, tmp_path)
        m.write_bytes(m.read_bytes()[:500])
        with pytest.raises(ModelError, match="corrupt or replaced"):
            FilterModel(m)

    def test_corrupt_model_with_matching_hash_raises_one_line(self, tiny_model: Path, tmp_path: Path) -> None:
        import hashlib

        m = self._copy(tiny_model, tmp_path)
        m.write_bytes(b"this is not an onnx file")
        side = json.loads(sidecar_path(m).read_text())
        side["sha256"] = hashlib.sha256(m.read_bytes()).hexdigest()
        sidecar_path(m).write_text(json.dumps(side))
        with pytest.raises(ModelError, match="not a valid ONNX model"):
            FilterModel(m)
        result = runner.invoke(app, ["filter", "predict", str(m), str(tmp_path)])
        assert result.exit_code == 1
        assert result.stderr.strip().count("\n") == 0 and "not a valid ONNX model" in result.stderr

    def test_mismatched_classes_are_refused(self, tiny_model: Path, tmp_path: Path) -> None:
        m = self._copy(tiny_model, tmp_path)
        side = json.loads(sidecar_path(m).read_text())
        side["classes"] = ["frontal_chest", "lateral", "other_body_part", "low_quality", "cat"]
        sidecar_path(m).write_text(json.dumps(side))
        with pytest.raises(ModelError, match="refused: the model's classes do not match"):
            FilterModel(m)

    def test_missing_sidecar_raises(self, tiny_model: Path, tmp_path: Path) -> None:
        m = self._copy(tiny_model, tmp_path)
        sidecar_path(m).unlink()
        with pytest.raises(ModelError, match="no sidecar m.json"):
            FilterModel(m)


@pytest.mark.slow  # a fresh interpreter
def test_importing_the_filter_imports_no_ml_library() -> None:
    """torch and onnxruntime are optional: the package, its CLI and the stage import neither until a model is used."""
    import subprocess
    import sys

    code = ("import sys; import cxrlab.filter, cxrlab.filter.predict, cxrlab.cli.filter, cxrlab.demo; "
            "print(sorted(m for m in ('torch', 'onnxruntime', 'onnx') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
