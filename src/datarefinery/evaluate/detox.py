"""Detoxification scores for ``refinery eval detox`` (the harness is ``loop/detox_eval.py``).

Toxicity is reported by the gate's own scorer (``alt-profanity-check`` at the step's threshold,
the score ``detox_rewrite`` had to get below, so by construction it favours the step) and by
independent scorers (``evaluate/toxicity_scorers.py``) fitted on a reserved slice of the same file.
The reserved rows are never rewritten or measured: by default 300 rows, chosen by an id hash with
a fixed seed, so every run of the command measures the same remaining rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import Any, Protocol

from datarefinery.detect.toxicity import ProfanityScorer
from datarefinery.embeddings import Embedder, cosine


class EvalScorer(Protocol):
    name: str
    threshold: float

    def score(self, texts: Sequence[str]) -> list[float]: ...

    def describe(self) -> dict[str, Any]: ...


class GateScorer:
    """``alt-profanity-check`` at the step's threshold: what ``detox_rewrite`` itself checks."""

    name = "profanity_check"

    def __init__(self, threshold: float = 0.5, *, is_gate: bool = True) -> None:
        self.threshold = threshold
        self.is_gate = is_gate
        self._scorer = ProfanityScorer()

    def score(self, texts: Sequence[str]) -> list[float]:
        return self._scorer.score(texts)

    def describe(self) -> dict[str, Any]:
        try:
            release = version("alt-profanity-check")
        except PackageNotFoundError:
            release = "?"
        return {
            # With --scorer llm the step gates on the model's own verdict; this scorer then only
            # stands beside the independent ones.
            "role": "gate" if self.is_gate else "offline, not the gate (--scorer llm)",
            "model": f"alt-profanity-check {release} (linear SVM on its own corpus)",
            "threshold": self.threshold,
        }


def score_toxicity(texts: Sequence[str], scorers: Sequence[EvalScorer]) -> dict[str, Any]:
    """How many texts, and per scorer the share of them below its threshold and the mean score."""
    figures: dict[str, Any] = {"count": len(texts)}
    for scorer in scorers:
        scores = scorer.score(texts)
        n = len(scores)
        figures[scorer.name] = {
            "non_toxic": round(sum(s < scorer.threshold for s in scores) / n, 4) if n else None,
            "mean_toxicity": round(sum(scores) / n, 4) if n else None,
        }
    return figures


def score_similarity(
    inputs: list[str], outputs: list[str], references: list[list[str]], embedder: Embedder
) -> dict[str, Any]:
    """Cosine to the input and to the best reference (records without references are left out of
    the latter), and how many outputs are the input unchanged.
    """
    vin, vout = embedder.encode(inputs), embedder.encode(outputs)
    best = []
    for i, refs in enumerate(references):
        if refs:
            best.append(float((embedder.encode(refs) @ vout[i]).max()))
    return {
        "similarity_to_input": round(float(cosine(vin, vout).mean()), 4) if inputs else None,
        "similarity_to_reference": round(sum(best) / len(best), 4) if best else None,
        "unchanged": sum(a == b for a, b in zip(inputs, outputs, strict=True)),
    }
