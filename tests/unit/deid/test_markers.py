"""Positioning markers and technical words (:func:`cxrlab.deid.text.settle_markers`): decided without a human."""

from __future__ import annotations

import numpy as np
import pytest

from cxrlab.deid.text import Candidate, classify, is_technical, settle_markers

SHAPE = (1024, 1024)


def _doubtful(box: tuple[int, int, int, int], text: str, conf: float = 0.9, vertical: bool = False) -> Candidate:
    return Candidate(box, 0.8, text=text, rec_conf=conf, status="doubtful", reason="aspect", vertical=vertical)


class TestIsTechnical:
    @pytest.mark.parametrize("text", ["AP", "PORTABLE", " portable ", "AP SUPINE", "PA-ERECT", "L", "R", "UPRIGHT"])
    def test_technical_words(self, text: str) -> None:
        assert is_technical(text)

    @pytest.mark.parametrize("text", ["", "DOE", "AP 2016", "PORTABLE JOHN", "45Y", "ID: 123"])
    def test_anything_else(self, text: str) -> None:
        assert not is_technical(text)


class TestSettleMarkers:
    def test_short_token_at_the_edge_becomes_a_marker_and_is_redacted(self) -> None:
        c = _doubtful((920, 110, 960, 150), "8H")
        settle_markers([c], SHAPE)
        assert c.status == "marker" and classify([c], SHAPE) == "redact"

    def test_short_token_in_the_middle_stays_doubtful(self) -> None:
        c = _doubtful((500, 500, 540, 540), "8H")
        settle_markers([c], SHAPE)
        assert c.status == "doubtful" and classify([c], SHAPE) == "review"

    def test_technical_word_anywhere_becomes_a_marker(self) -> None:
        c = _doubtful((450, 500, 500, 540), "AP")
        settle_markers([c], SHAPE)
        assert c.status == "marker" and c.reason == "technical word"

    def test_long_or_unreadable_tokens_stay_doubtful(self) -> None:
        cands = [_doubtful((900, 10, 1000, 40), "DOE JA"), _doubtful((920, 110, 960, 150), "8H", conf=0.1),
                 _doubtful((920, 110, 960, 150), "肺")]
        settle_markers(cands, SHAPE)
        assert [c.status for c in cands] == ["doubtful"] * 3

    def test_too_large_stays_doubtful(self) -> None:
        c = _doubtful((800, 0, 1024, 200), "DC")  # 4 % of the image, taller than a marker
        settle_markers([c], SHAPE)
        assert c.status == "doubtful"

    def test_token_that_text_continues_stays_doubtful(self) -> None:
        strokes = np.zeros(SHAPE, dtype=np.uint8)
        strokes[115:145, 960:1024:3] = 1  # strokes go on to the right of the box: part of a longer line
        c = _doubtful((920, 110, 960, 150), "48")
        settle_markers([c], SHAPE, strokes)
        assert c.status == "doubtful"
        alone = _doubtful((920, 110, 960, 150), "48")
        settle_markers([alone], SHAPE, np.zeros(SHAPE, dtype=np.uint8))
        assert alone.status == "marker"

    def test_confirmed_and_ignored_are_left_alone(self) -> None:
        cands = [Candidate((920, 110, 960, 150), 0.8, text="AP", rec_conf=0.9, status="confirmed"),
                 Candidate((920, 110, 960, 150), 0.8, text="AP", rec_conf=0.9, status="ignored")]
        settle_markers(cands, SHAPE)
        assert [c.status for c in cands] == ["confirmed", "ignored"]
