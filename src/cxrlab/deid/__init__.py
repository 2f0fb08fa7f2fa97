"""De-identification: tag profiles, keyed identifiers and the batch stage."""

from cxrlab.deid.identifiers import image_id_for, new_uid
from cxrlab.deid.profiles import PROFILES, VINDR_KEEP
from cxrlab.deid.stage import deidentify_dataset, deidentify_file, run_deid

__all__ = [
    "PROFILES",
    "VINDR_KEEP",
    "deidentify_dataset",
    "deidentify_file",
    "image_id_for",
    "new_uid",
    "run_deid",
]
