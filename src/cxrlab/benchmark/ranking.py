"""The rankings of a benchmark: the best scored submission of each user, public, and private once closed."""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from cxrlab.benchmark.benchmarks import reveal_private
from cxrlab.catalog.models import (
    Benchmark,
    Submission,
    SubmissionState,
    User,
)

__all__ = [
    "Board",
    "BoardEntry",
    "leaderboard",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BoardEntry:
    """One user's line on a leaderboard: the submission with the user's best public score."""

    rank: int
    username: str
    submission_id: int
    public_score: float
    private_score: float | None
    submitted_at: datetime
    entries: int


@dataclass
class Board:
    """The public ranking, and the private one once the benchmark is closed (None before)."""

    benchmark: Benchmark
    public: list[BoardEntry]
    private: list[BoardEntry] | None


def leaderboard(session: Session, *, benchmark: Benchmark) -> Board:
    """Rank users by their best public score; ties go to the earlier submission.

    Each user is represented by the submission with the best public score (the earliest among equals), as a
    participant picks a final submission without seeing private scores. Once the benchmark is closed the same
    submissions are ranked again by their private scores (ties again to the earlier one; a part without ground
    truth of any scored class has no score and goes last). Before that, private scores are None here.
    """
    rows = session.execute(
        select(Submission.id, Submission.public_score, Submission.private_score, Submission.created_at,
               User.username)
        .join(User, User.id == Submission.user_id)
        .where(Submission.benchmark_id == benchmark.id, Submission.state == SubmissionState.SCORED,
               Submission.public_score.is_not(None))
        .order_by(Submission.public_score.desc(), Submission.created_at, Submission.id)
    ).all()
    entries = Counter(r.username for r in rows)
    best: dict[str, tuple] = {}
    for r in rows:
        best.setdefault(r.username, r)
    reveal = reveal_private(benchmark)

    def line(rank: int, r: tuple) -> BoardEntry:
        return BoardEntry(rank, r.username, r.id, r.public_score, r.private_score if reveal else None,
                          r.created_at, entries[r.username])

    public = [line(k + 1, r) for k, r in enumerate(best.values())]
    private = None
    if reveal:
        order = sorted(best.values(), key=lambda r: (r.private_score is None, -(r.private_score or 0.0),
                                                     r.created_at, r.id))
        private = [line(k + 1, r) for k, r in enumerate(order)]
    return Board(benchmark, public, private)
