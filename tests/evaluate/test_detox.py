from __future__ import annotations

import pytest

from datarefinery.evaluate.detox import score_detox


@pytest.mark.slow  # loads the embedding model
def test_score_detox_on_a_hand_made_pair() -> None:
    figures = score_detox(
        ["this movie is fucking shit"], ["this movie is very bad"], [["this movie is bad"]]
    )
    assert figures["non_toxic"] == 1.0
    assert figures["toxicity_before"] > 0.5 > figures["toxicity_after"]
    assert figures["similarity_to_reference"] > 0.8
    assert figures["unchanged"] == 0
