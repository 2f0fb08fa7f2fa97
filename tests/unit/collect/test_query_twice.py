"""``query_twice``: a C-FIND exchange lost once is asked again on a new association; lost twice, or refused, it is
raised (queries change nothing, so asking again is safe)."""

from __future__ import annotations

import logging

import pytest

pytest.importorskip("pynetdicom")

from cxrlab.collect.peer import Peer, PeerError  # noqa: E402
from cxrlab.collect.stage import query_twice  # noqa: E402

PEER = Peer(host="127.0.0.1", port=11112, called_aet="PACS")


def _attempts(*outcomes: object):  # noqa: ANN202
    calls = []

    def attempt() -> object:
        calls.append(1)
        out = outcomes[len(calls) - 1]
        if isinstance(out, Exception):
            raise out
        return out

    return attempt, calls


def test_lost_once_is_asked_again(caplog: pytest.LogCaptureFixture) -> None:
    attempt, calls = _attempts(PEER.lost("C-FIND at SERIES level"), "answer")
    with caplog.at_level(logging.WARNING, logger="cxrlab.collect.stage"):
        assert query_twice(PEER, attempt) == "answer"
    assert len(calls) == 2 and "querying again on a new association" in caplog.text


def test_lost_twice_or_refused_is_raised() -> None:
    attempt, calls = _attempts(PEER.lost("C-FIND"), PEER.lost("C-FIND"))
    with pytest.raises(PeerError, match="no valid answer"):
        query_twice(PEER, attempt)
    assert len(calls) == 2
    attempt, calls = _attempts(PeerError("PACS@127.0.0.1:11112: C-FIND failed with status 0xA700"))
    with pytest.raises(PeerError, match="0xA700"):
        query_twice(PEER, attempt)
    assert len(calls) == 1  # a refusal is an answer: not asked again
