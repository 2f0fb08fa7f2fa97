"""Label sets as data (VinDr-CXR, VinDr-PCXR, NIH ChestX-ray14) and custom schemas from YAML."""

from cxrlab.schemas.custom import SchemaError, load_schema_yaml, parse_schema_yaml
from cxrlab.schemas.labels import NO_FINDING, SCHEMAS, Label, LabelSchema, get_schema

__all__ = [
    "NO_FINDING",
    "SCHEMAS",
    "Label",
    "LabelSchema",
    "SchemaError",
    "get_schema",
    "load_schema_yaml",
    "parse_schema_yaml",
]
