"""Consensus: majority vote of labels, weighted boxes fusion of boxes, inter-reader agreement; for the labeling
tool, the review suggestion, the project agreement and the readers' scores on gold-standard images."""

from cxrlab.consensus.agreement import (
    AgreementReport,
    agreement_report,
    box_agreement,
    fleiss_kappa,
    fleiss_kappa_counts,
)
from cxrlab.consensus.fusion import FUSION_METHODS, fuse_reader_boxes, wbf_arrays
from cxrlab.consensus.labeling import project_agreement, suggest_review
from cxrlab.consensus.quality import GOLD_IOU, reader_quality, score_reads
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
    "GOLD_IOU",
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
    "reader_quality",
    "run_consensus",
    "score_reads",
    "suggest_review",
    "wbf_arrays",
]
