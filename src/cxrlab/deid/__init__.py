"""De-identification: profiles, keyed identifiers, the streaming engine, batch runs and verification."""

from cxrlab.deid.batch import deid_folder, load_key
from cxrlab.deid.engine import DeidResult, deidentify_dataset, deidentify_file
from cxrlab.deid.identifiers import image_id_for, new_uid
from cxrlab.deid.profiles import PROFILES, VINDR_KEEP, Action, Profile, get_profile, load_profile
from cxrlab.deid.stage import run_deid
from cxrlab.deid.verify import VerifyReport, verify_folder

__all__ = [
    "PROFILES",
    "VINDR_KEEP",
    "Action",
    "DeidResult",
    "Profile",
    "VerifyReport",
    "deid_folder",
    "deidentify_dataset",
    "deidentify_file",
    "get_profile",
    "image_id_for",
    "load_key",
    "load_profile",
    "new_uid",
    "run_deid",
    "verify_folder",
]
