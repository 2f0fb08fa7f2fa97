"""Custom label schemas from YAML, validated with messages that name the file and the label.

Layout::

    name: my-site            # letters, digits, '.', '_', '-' (at most 32: stored in Reading.schema)
    no_finding: No finding   # optional; must be one of the global labels
    labels:
      - {name: Nodule/Mass, kind: local, definition: Any space occupying lesion.}
      - {name: No finding, kind: global}

``kind`` is ``local`` (marked with boxes) or ``global`` (image-level impression), as in the VinDr-CXR data
descriptor ("Data annotation"). Label names are kept exactly as written: released CSV headers use them.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from cxrlab.errors import CxrlabError
from cxrlab.schemas.labels import Label, LabelSchema

__all__ = ["SchemaError", "load_schema_yaml", "parse_schema_yaml"]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$")


class SchemaError(CxrlabError):
    """A custom label schema is invalid; the message names the source and the label."""

    default_message = "invalid label schema"


def parse_schema_yaml(text: str, *, source: str = "<schema>") -> LabelSchema:
    """Build a :class:`LabelSchema` from YAML *text*.

    Raises
    ------
    SchemaError
        Invalid YAML (with its line), or a missing/invalid field (with the label's position and name).
    """
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise SchemaError(f"{source}:{where} invalid YAML") from None
    if not isinstance(data, dict):
        raise SchemaError(f"{source}: expected a mapping with 'name' and 'labels'")
    unknown = set(data) - {"name", "no_finding", "labels"}
    if unknown:
        raise SchemaError(f"{source}: unknown key(s) {', '.join(sorted(map(str, unknown)))}")
    name = data.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise SchemaError(f"{source}: 'name' must be 1-32 letters, digits, '.', '_' or '-'")
    rows = data.get("labels")
    if not isinstance(rows, list) or not rows:
        raise SchemaError(f"{source}: 'labels' must be a non-empty list")
    labels: list[Label] = []
    seen: set[str] = set()
    for i, row in enumerate(rows, start=1):
        where = f"{source}: label #{i}"
        if not isinstance(row, dict):
            raise SchemaError(f"{where}: expected a mapping with 'name' and 'kind'")
        extra = set(row) - {"name", "kind", "definition"}
        if extra:
            raise SchemaError(f"{where}: unknown key(s) {', '.join(sorted(map(str, extra)))}")
        label = row.get("name")
        if not isinstance(label, str) or not label.strip() or len(label) > 128:
            raise SchemaError(f"{where}: 'name' must be a non-empty string of at most 128 characters")
        if label in seen:
            raise SchemaError(f"{where} ({label!r}): duplicate name")
        kind = row.get("kind")
        if kind not in ("local", "global"):
            raise SchemaError(f"{where} ({label!r}): 'kind' must be 'local' or 'global'")
        definition = row.get("definition", "") or ""
        if not isinstance(definition, str):
            raise SchemaError(f"{where} ({label!r}): 'definition' must be a string")
        seen.add(label)
        labels.append(Label(i, label, kind, definition))
    if not any(lb.kind == "global" for lb in labels):
        raise SchemaError(f"{source}: at least one global label is needed (QC asks every reader for one)")
    no_finding = data.get("no_finding")
    if no_finding is not None and not any(lb.name == no_finding and lb.kind == "global" for lb in labels):
        raise SchemaError(f"{source}: no_finding {no_finding!r} is not one of the global labels")
    ordered = tuple([lb for lb in labels if lb.kind == "local"] + [lb for lb in labels if lb.kind == "global"])
    return LabelSchema(name, ordered, no_finding=no_finding)


def load_schema_yaml(path: str | Path) -> LabelSchema:
    """Read and validate the YAML schema file *path* (:func:`parse_schema_yaml`)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SchemaError(f"{path}: cannot read ({exc.__class__.__name__})") from None
    return parse_schema_yaml(text, source=str(path))
