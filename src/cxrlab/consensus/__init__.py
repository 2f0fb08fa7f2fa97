"""Consensus: aggregate readers (majority vote now; box fusion and agreement later)."""

from cxrlab.consensus.vote import majority_vote, run_consensus

__all__ = ["majority_vote", "run_consensus"]
