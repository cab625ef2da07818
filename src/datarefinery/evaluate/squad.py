"""Exact match and F1 of extractive QA answers, as the SQuAD evaluation script defines them.

Both compare normalized answers: lower-cased, punctuation removed, the articles "a", "an" and
"the" removed, whitespace collapsed. F1 is over the normalized answers' word bags (a word counts
as often as it occurs in both); two answers that normalize to nothing score 1, one alone 0.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Sequence

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = str.maketrans("", "", string.punctuation)


def normalize_answer(text: str) -> str:
    # The SQuAD script's order: punctuation is deleted, not spaced ("shopping-centre" is one
    # word), before the articles go, so scores compare with published ones.
    text = text.lower().translate(_PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_match(prediction: str, gold: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(gold))


def f1(prediction: str, gold: str) -> float:
    predicted = normalize_answer(prediction).split()
    expected = normalize_answer(gold).split()
    if not predicted or not expected:
        return float(predicted == expected)
    common = sum((Counter(predicted) & Counter(expected)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(predicted), common / len(expected)
    return 2 * precision * recall / (precision + recall)


def squad_scores(predictions: Sequence[str], golds: Sequence[str]) -> dict[str, float]:
    """Mean exact match and F1 (0-1) over paired predictions and gold answers (0 for none)."""
    if len(predictions) != len(golds):
        raise ValueError(f"{len(predictions)} predictions for {len(golds)} gold answers")
    if not golds:
        return {"em": 0.0, "f1": 0.0}
    pairs = list(zip(predictions, golds, strict=True))
    return {
        "em": sum(exact_match(p, g) for p, g in pairs) / len(pairs),
        "f1": sum(f1(p, g) for p, g in pairs) / len(pairs),
    }
