"""Detoxification scores: how many rewrites are no longer toxic, and how much of the input's
meaning (and of the human references') they keep."""

from __future__ import annotations

from typing import Any

from datarefinery.detect.toxicity import ProfanityScorer
from datarefinery.embeddings import Embedder, cosine


def score_detox(
    inputs: list[str], outputs: list[str], references: list[list[str]], threshold: float = 0.5
) -> dict[str, Any]:
    """Share of outputs non-toxic, mean toxicity before/after, cosine to input and to the best
    reference (records without references are left out of the latter)."""
    scorer = ProfanityScorer()
    before, after = scorer.score(inputs), scorer.score(outputs)
    embedder = Embedder()
    vin, vout = embedder.encode(inputs), embedder.encode(outputs)
    to_input = cosine(vin, vout)
    best = []
    for i, refs in enumerate(references):
        if refs:
            vref = embedder.encode(refs)
            best.append(float((vref @ vout[i]).max()))
    n = len(inputs)
    return {
        "non_toxic": round(sum(a < threshold for a in after) / n, 4) if n else None,
        "toxicity_before": round(sum(before) / n, 4) if n else None,
        "toxicity_after": round(sum(after) / n, 4) if n else None,
        "similarity_to_input": round(float(to_input.mean()), 4) if n else None,
        "similarity_to_reference": round(sum(best) / len(best), 4) if best else None,
        "unchanged": sum(a == b for a, b in zip(inputs, outputs, strict=True)),
    }
