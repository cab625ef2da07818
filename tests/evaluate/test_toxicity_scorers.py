from __future__ import annotations

import pytest

from datarefinery.errors import UsageError
from datarefinery.evaluate.toxicity_scorers import (
    calibrate,
    fit_independent_scorers,
    fit_tfidf_scorer,
    reserve_split,
)

TOPICS = [
    "the bus was late again this morning",
    "this code does not compile on my laptop",
    "the referee missed the penalty call",
    "my neighbour plays music all night",
    "the meeting ran over by an hour",
    "the printer jammed during the report",
    "the delivery came without the cable",
    "the update broke the login page",
    "the coffee machine is empty again",
    "the train was cancelled without notice",
    "the form rejected my postcode twice",
    "the game crashed before the last level",
]
INSULTS = ["you fucking idiot", "what a load of shit", "stupid bastards", "damn morons"]


def pairs() -> list[tuple[str, str, list[str]]]:
    """Toxic sentences (a topic with an insult) and their neutral references (the topic)."""
    rows = []
    for i, topic in enumerate(TOPICS * 2):
        insult = INSULTS[i % len(INSULTS)]
        rows.append((f"row-{i}", f"{topic}, {insult}", [topic, f"sadly {topic}"]))
    return rows


def test_reserve_split_is_disjoint_complete_and_deterministic() -> None:
    ids = [f"paradetox-row-{i}" for i in range(1000)]
    reserved, measured = reserve_split(ids, 300, 0)
    assert len(reserved) == 300 and len(measured) == 700
    assert not set(reserved) & set(measured)
    assert set(reserved) | set(measured) == set(ids)
    assert reserve_split(ids, 300, 0) == (reserved, measured)
    # The slice depends on the ids, not on their order, and changes with the seed.
    again, _ = reserve_split(list(reversed(ids)), 300, 0)
    assert set(again) == set(reserved)
    other, _ = reserve_split(ids, 300, 1)
    assert set(other) != set(reserved)
    assert reserve_split(ids, 0, 0) == ([], ids)


def test_reserve_split_refuses_duplicate_ids_and_negative_sizes() -> None:
    with pytest.raises(UsageError, match="unique"):
        reserve_split(["a", "a", "b"], 1, 0)
    with pytest.raises(UsageError, match=">= 0"):
        reserve_split(["a"], -1, 0)


def test_calibrate_picks_the_separating_threshold() -> None:
    found = calibrate([0.9, 0.8, 0.35], [0.1, 0.2, 0.3])
    assert found.threshold == pytest.approx(0.325)
    assert found.balanced_accuracy == 1.0
    overlapping = calibrate([0.9, 0.4], [0.1, 0.6])
    # No cut separates them: the best ones (0.25, 0.75) misclassify one of the four.
    assert overlapping.balanced_accuracy == 0.75
    assert overlapping.threshold in (0.25, 0.75)
    with pytest.raises(UsageError):
        calibrate([], [0.1])


def test_tfidf_scorer_learns_toxic_from_neutral_on_a_tiny_fixture() -> None:
    rows = pairs()
    scorer = fit_tfidf_scorer([t for _, t, _ in rows], [n for _, _, refs in rows for n in refs])
    toxic, polite = scorer.score(["the lift is broken, you fucking idiot", "the lift is broken"])
    assert toxic > 0.5 > polite
    assert scorer.score([]) == []
    assert scorer.name == "tfidf_lr" and "logistic regression" in scorer.model


def test_fitted_scorers_are_calibrated_on_a_held_out_part() -> None:
    (scorer,) = fit_independent_scorers(pairs(), names=["tfidf_lr"], seed=0)
    assert scorer.trained_on == {"rows": 16, "toxic": 16, "neutral": 32, "calibration_rows": 8}
    assert scorer.calibration is not None and scorer.calibration.toxic == 8
    assert scorer.threshold == scorer.calibration.threshold
    about = scorer.describe()
    assert about["role"] == "independent" and about["calibration"]["neutral"] == 16
    with pytest.raises(UsageError, match="too few"):
        fit_independent_scorers(pairs()[:1], names=["tfidf_lr"])
    with pytest.raises(UsageError, match="unknown toxicity scorer"):
        fit_independent_scorers(pairs(), names=["detoxify"])
