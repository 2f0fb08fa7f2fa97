"""Label sets as data (VinDr-CXR, VinDr-PCXR, NIH ChestX-ray14)."""

from cxrlab.schemas.labels import NO_FINDING, SCHEMAS, Label, LabelSchema, get_schema

__all__ = ["NO_FINDING", "SCHEMAS", "Label", "LabelSchema", "get_schema"]
