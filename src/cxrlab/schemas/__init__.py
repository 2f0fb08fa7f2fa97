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
from cxrlab.schemas.release import (
    BOX_COLUMNS,
    IMAGE_COLUMNS,
    MAX_IMAGE_SIDE,
    ReleaseTables,
    bad_image_sizes,
    box_problems,
)

__all__ = [
    "ALIASES",
    "BOX_COLUMNS",
    "CHALLENGE_CLASSES",
    "IMAGE_COLUMNS",
    "NO_FINDING",
    "SCHEMAS",
    "Label",
    "LabelSchema",
    "MAX_IMAGE_SIDE",
    "ReleaseTables",
    "SchemaError",
    "bad_image_sizes",
    "box_problems",
    "get_schema",
    "guess_schema",
    "load_schema_yaml",
    "parse_schema_yaml",
]
