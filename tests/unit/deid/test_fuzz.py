"""PHI fuzz test of the de-identification engine (issue acceptance: >= 500 generated data sets in the suite).

Every data set from :func:`tests.support.phi_strategies.phi_datasets` carries PHI tokens in standard, private, nested
(depth <= 3), overlay and file-meta elements under several character sets; after de-identification no planted
value may occur in any output byte (as written or upper-cased, in UTF-8 or the data set's encoding) and no output
element may be one the profile removes (``vindr``: only its 25 attributes plus the two PS3.15 markers, no
sequences). ``bench/deid_fuzz.py`` runs the same checks on 10,000 data sets.
"""

from __future__ import annotations

import tempfile
import warnings
from io import BytesIO
from pathlib import Path

import pydicom
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cxrlab.deid.engine import deidentify_dataset, deidentify_file
from cxrlab.deid.profiles import Action, get_profile
from tests.support.phi_strategies import elements_outside_profile, find_leaks, phi_datasets, read_back

pytestmark = pytest.mark.slow  # hypothesis fuzzing of the de-identification

KEY = b"phi-fuzz-test-key-0123456789abcd"
HEALTH = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example,
          HealthCheck.filter_too_much]


def _check(ds: pydicom.FileDataset, planted: list[str], data: bytes, profile_name: str) -> None:
    profile = get_profile(profile_name)
    out = read_back(data)
    charset = ds.get("SpecificCharacterSet")
    leaks = find_leaks(data, planted, charset, out)
    assert not leaks, f"{profile_name}: planted PHI in the output: {leaks}"
    outside = elements_outside_profile(out, profile)
    assert not outside, f"{profile_name}: elements the profile removes: {outside}"
    assert out.file_meta.MediaStorageSOPInstanceUID != ds.SOPInstanceUID
    assert bytes(out.preamble or b"") == b"\0" * 128


@pytest.mark.parametrize("profile_name", ["vindr", "basic"])
@settings(max_examples=300, deadline=None, suppress_health_check=HEALTH, database=None)
@given(data=st.data())
def test_deidentify_dataset_plants_nothing(profile_name: str, data: st.DataObject) -> None:
    ds, planted = data.draw(phi_datasets(profile_name), label="dataset")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = deidentify_dataset(ds, profile=get_profile(profile_name), key=KEY)
        assert not elements_outside_profile(result.dataset, get_profile(profile_name))
        buf = BytesIO()
        pydicom.dcmwrite(buf, result.dataset, enforce_file_format=True)
        _check(ds, planted, buf.getvalue(), profile_name)


@pytest.mark.parametrize("profile_name", ["vindr", "basic"])
@settings(max_examples=40, deadline=None, suppress_health_check=HEALTH, database=None)
@given(data=st.data())
def test_deidentify_file_plants_nothing(profile_name: str, data: st.DataObject) -> None:
    """The streaming writer (header by pydicom + Pixel Data bytes copied from the source) leaks nothing either."""
    ds, planted = data.draw(phi_datasets(profile_name), label="dataset")
    with warnings.catch_warnings(), tempfile.TemporaryDirectory() as tmp:
        warnings.simplefilter("ignore")
        src = Path(tmp) / "src.dcm"
        pydicom.dcmwrite(src, ds, enforce_file_format=True)
        result = deidentify_file(src, Path(tmp) / "out", profile=get_profile(profile_name), key=KEY)
        out_path = Path(tmp) / "out" / f"{result.image_id}.dicom"
        data_out = out_path.read_bytes()
        _check(ds, planted, data_out, profile_name)
        assert read_back(data_out).PixelData == ds.PixelData


# --- regressions: leaks this fuzzer found in the engine (fixed) ---------------------------------------------------
def _minimal(**attrs: str) -> pydicom.Dataset:
    ds = pydicom.Dataset()
    ds.SOPClassUID, ds.SOPInstanceUID, ds.PatientID = "1.2.840.10008.5.1.4.1.1.1", "1.2.3.4", "PID1"
    for keyword, value in attrs.items():
        setattr(ds, keyword, value)
    return ds


def test_malformed_date_suffix_is_not_kept() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = _minimal(StudyDate="20200315^DOE^JOHN", ContentDate="20200315 PHIsuffix01")
        out = deidentify_dataset(ds, profile=get_profile("basic"), key=KEY).dataset
    assert "DOE" not in str(out.get("StudyDate", "")) and "PHIsuffix01" not in str(out.get("ContentDate", ""))


def test_birth_date_in_alternative_calendar_is_not_kept() -> None:
    ds = _minimal(PatientBirthDate="19550304", PatientBirthDateInAlternativeCalendar="Ất Mùi 1955 PHIalt01")
    profile = get_profile("basic")
    out = deidentify_dataset(ds, profile=profile, key=KEY).dataset
    assert profile.rule_for(0x00100033, "PatientBirthDateInAlternativeCalendar").action != Action.KEEP
    assert "PHIalt01" not in str(out.get("PatientBirthDateInAlternativeCalendar", ""))
