"""The SR coding table (``cxrlab/export/data/sr_codes.csv``): every built-in label coded, the PS3.16 codes as
PS3.16 lists them, a private code with one meaning, stable private codes for custom labels."""

from __future__ import annotations

import csv

import pytest


class TestCodes:
    def test_every_label_of_the_built_in_schemas_has_a_code(self) -> None:
        from cxrlab.export.sr import load_codes
        from cxrlab.schemas import SCHEMAS

        codes = load_codes()
        for schema in SCHEMAS.values():
            for label in schema.labels:
                assert label.name in codes, label.name

    def test_codes_said_to_be_in_ps3_16_are_there_with_that_meaning(self) -> None:
        from pydicom.sr._concepts_dict import concepts

        from cxrlab.export.sr import load_codes

        for c in load_codes().values():
            assert len(c.code) <= 16 and len(c.meaning) <= 64
            if c.source == "PS3.16":
                meanings = {m for entry in concepts[c.scheme].values() for code, (m, _) in entry.items()
                            if code == c.code}
                assert c.meaning in meanings, (c.label, c.code, meanings)

    def test_a_private_code_means_one_thing(self) -> None:
        from cxrlab.export.sr import CODES_FILE, PRIVATE_SCHEME

        with open(CODES_FILE, newline="") as fh:
            rows = list(csv.DictReader(line for line in fh if not line.startswith("#")))
        meaning_of: dict[str, str] = {}
        for r in rows:
            if r["scheme"] == PRIVATE_SCHEME:
                assert meaning_of.setdefault(r["code"], r["meaning"]) == r["meaning"], r

    def test_a_custom_label_gets_a_stable_private_code(self) -> None:
        pytest.importorskip("highdicom", reason="needs the pacs extra: pip install -e '.[pacs]'")
        from cxrlab.export.sr import PRIVATE_SCHEME, code_for

        a, b = code_for("Pleural plaque (site)"), code_for("Pleural plaque (site)")
        assert a.scheme_designator == PRIVATE_SCHEME and a.value == b.value and a.value.startswith("CXRH")
        assert len(a.value) == 16
