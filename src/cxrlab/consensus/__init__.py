"""Consensus: majority vote of labels, weighted boxes fusion of boxes, inter-reader agreement; for the labeling
tool, the review suggestion and the project agreement."""

from cxrlab.consensus.agreement import (
    AgreementReport,
    agreement_report,
    box_agreement,
    fleiss_kappa,
    fleiss_kappa_counts,
)
from cxrlab.consensus.fusion import FUSION_METHODS, fuse_reader_boxes, wbf_arrays
from cxrlab.consensus.labeling import project_agreement, suggest_review
from cxrlab.consensus.vote import (
    REVIEW,
    consensus_tables,
    image_positives,
    label_votes,
    majority_vote,
    run_consensus,
)

__all__ = [
    "FUSION_METHODS",
    "REVIEW",
    "AgreementReport",
    "agreement_report",
    "box_agreement",
    "consensus_tables",
    "fleiss_kappa",
    "fleiss_kappa_counts",
    "fuse_reader_boxes",
    "image_positives",
    "label_votes",
    "majority_vote",
    "project_agreement",
    "run_consensus",
    "suggest_review",
    "wbf_arrays",
]
