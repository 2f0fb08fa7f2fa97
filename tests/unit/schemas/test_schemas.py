"""Label schemas: the presets match the seeds; custom YAML schemas are validated with clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from cxrlab.schemas import SchemaError, get_schema, load_schema_yaml, parse_schema_yaml


class TestPresets:
    @pytest.mark.parametrize(("name", "n_local", "n_global"), [("vindr-cxr", 22, 6), ("vindr-pcxr", 36, 15),
                                                                ("nih14", 0, 14)])
    def test_label_counts_match_the_seeds(self, name: str, n_local: int, n_global: int) -> None:
        # VinDr-CXR data descriptor: "22 local labels ... and 6 global labels"; VinDr-PCXR: 36 findings and
        # 15 diagnoses (Table 2, #1-#36 local, #37-#52 global without #39); NIH README: 14 labels.
        schema = get_schema(name)
        assert (len(schema.local), len(schema.global_)) == (n_local, n_global)

    def test_seed_spellings_are_kept(self) -> None:
        assert "Brocho-pneumonia" in get_schema("vindr-pcxr").names
        assert "Diffuse aveolar opacity" in get_schema("vindr-pcxr").names
        assert get_schema("vindr-cxr").names[:3] == ["Aortic enlargement", "Atelectasis", "Cardiomegaly"]
        assert all(lb.definition for lb in get_schema("vindr-cxr").labels)


class TestParseSchemaYaml:
    def test_valid_schema(self, tmp_path: Path) -> None:
        path = tmp_path / "s.yaml"
        path.write_text("name: mini\nno_finding: Normal\nlabels:\n  - {name: Normal, kind: global}\n"
                        "  - {name: Nodule, kind: local, definition: round}\n")
        schema = load_schema_yaml(path)
        assert schema.name == "mini" and schema.names == ["Nodule", "Normal"] and schema.no_finding == "Normal"
        assert schema.class_id("Nodule") == 0

    @pytest.mark.parametrize(("text", "message"), [
        ("name: [", "line 1"),
        ("- a\n- b", "expected a mapping"),
        ("name: x\nlabels: []", "non-empty list"),
        ("name: 'bad name'\nlabels: [{name: A, kind: global}]", "'name' must be"),
        ("name: x\nlabels: [{name: A, kind: global}, {name: A, kind: local}]", "label #2 ('A'): duplicate"),
        ("name: x\nlabels: [{name: A, kind: other}]", "label #1 ('A'): 'kind'"),
        ("name: x\nlabels: [{kind: global}]", "label #1: 'name'"),
        ("name: x\nlabels: [{name: A, kind: local}]", "at least one global label"),
        ("name: x\nno_finding: None\nlabels: [{name: A, kind: global}]", "no_finding 'None'"),
        ("name: x\ncolour: red\nlabels: [{name: A, kind: global}]", "unknown key(s) colour"),
    ])
    def test_invalid_schema_raises(self, text: str, message: str) -> None:
        with pytest.raises(SchemaError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
            parse_schema_yaml(text, source="s.yaml")

    def test_unreadable_file_raises(self, tmp_path: Path) -> None:
        with pytest.raises(SchemaError, match="cannot read"):
            load_schema_yaml(tmp_path / "missing.yaml")
