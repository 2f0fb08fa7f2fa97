"""Report labels: mine image labels from radiology reports (the NIH ChestX-ray14 method), and score them.

Readers (OpenI XML folders, CSV/TSV/JSONL tables), a rule-based labeler (vocabulary per label schema as YAML data,
NegEx/ConText negation and uncertainty), the OpenI MeSH reference and per-label precision/recall/F1; in a workspace,
reports imported into the catalog and linked to their images by keyed identifiers, and their labels stored as
image labels (``source = report``). Report text is PHI: it never appears in an output, a log or an error message.
"""

from cxrlab.reports.exceptions import ReportError, ReportFileError, VocabularyError
from cxrlab.reports.labeler import Labeler, Mention, Status, UncertainPolicy
from cxrlab.reports.metrics import NIH8, LabelScore, LabelScores, score_labels
from cxrlab.reports.readers import Report, ReportSource, open_reports, read_openi_report
from cxrlab.reports.reference import OPENI_NIH14, mesh_to_nih14, read_openi_reference
from cxrlab.reports.stage import Evaluation, LabelRun, read_label_csv, run_evaluate, run_label, run_reference
from cxrlab.reports.vocabulary import Vocabulary, builtin_schemas, load_vocabulary, release_schema_name
from cxrlab.reports.workspace import KEY_COLUMNS, Match, key_images, run_import, run_label_workspace

__all__ = [
    "KEY_COLUMNS",
    "NIH8",
    "OPENI_NIH14",
    "Evaluation",
    "LabelRun",
    "LabelScore",
    "LabelScores",
    "Labeler",
    "Match",
    "Mention",
    "Report",
    "ReportError",
    "ReportFileError",
    "ReportSource",
    "Status",
    "UncertainPolicy",
    "Vocabulary",
    "VocabularyError",
    "builtin_schemas",
    "key_images",
    "load_vocabulary",
    "mesh_to_nih14",
    "open_reports",
    "read_label_csv",
    "read_openi_reference",
    "read_openi_report",
    "release_schema_name",
    "run_evaluate",
    "run_import",
    "run_label",
    "run_label_workspace",
    "run_reference",
    "score_labels",
]
