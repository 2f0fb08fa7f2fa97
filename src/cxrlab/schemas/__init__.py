"""Label sets as data (VinDr-CXR, VinDr-PCXR, NIH ChestX-ray14), custom schemas from YAML, and the in-memory tables
of a release."""

from cxrlab.schemas.custom import SchemaError, load_schema_yaml, parse_schema_yaml
from cxrlab.schemas.labels import (
    ALIASES,
    CHALLENGE_CLASSES,
    NO_FINDING,
    SCHEMAS,
    Label,
    LabelSchema,
    get_schema,
    guess_schema,
)
from cxrlab.schemas.release import BOX_COLUMNS, IMAGE_COLUMNS, ReleaseTables

__all__ = [
    "ALIASES",
    "BOX_COLUMNS",
    "CHALLENGE_CLASSES",
    "IMAGE_COLUMNS",
    "NO_FINDING",
    "SCHEMAS",
    "Label",
    "LabelSchema",
    "ReleaseTables",
    "SchemaError",
    "get_schema",
    "guess_schema",
    "load_schema_yaml",
    "parse_schema_yaml",
]
