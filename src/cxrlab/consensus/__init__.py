"""Consensus: majority vote of labels, weighted boxes fusion of boxes, inter-reader agreement."""

from cxrlab.consensus.agreement import (
    AgreementReport,
    agreement_report,
    box_agreement,
    fleiss_kappa,
    fleiss_kappa_counts,
)
from cxrlab.consensus.fusion import FUSION_METHODS, fuse_reader_boxes, wbf_arrays
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
    "run_consensus",
    "wbf_arrays",
]
