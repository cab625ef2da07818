"""Toxicity scores in [0, 1]: offline with ``alt-profanity-check`` (a linear model on words, shipped
in its wheel; microseconds per text), or with the run's model as a judge (slower, reads meaning).

The profanity model mostly sees vocabulary: it flags swearing, and misses politely worded insults.
The LLM judge is the complement; ``detox_rewrite`` can require both to pass.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict

from datarefinery.errors import MissingDependencyError
from datarefinery.llm.base import Request, SamplingParams
from datarefinery.llm.engine import Engine
from datarefinery.llm.structured import schema_of
from datarefinery.prompts.render import load_template


class ProfanityScorer:
    """``alt-profanity-check``'s probability that a text is offensive."""

    name = "profanity_check"
    _lock = threading.Lock()

    def score(self, texts: Sequence[str]) -> list[float]:
        if not texts:
            return []
        try:
            from profanity_check import predict_prob
        except ImportError as exc:
            raise MissingDependencyError("offline toxicity scoring", "refine") from exc
        with self._lock:
            return [float(p) for p in predict_prob(list(texts))]


class ToxicityLevel(StrEnum):
    none = "none"
    mild = "mild"
    severe = "severe"


LEVEL_SCORES = {ToxicityLevel.none: 0.0, ToxicityLevel.mild: 0.5, ToxicityLevel.severe: 1.0}


class ToxicityVerdict(BaseModel):
    model_config = ConfigDict(extra="forbid")

    toxicity: ToxicityLevel


class LLMToxicityJudge:
    """The model rates a text ``none`` / ``mild`` / ``severe`` (0, 0.5, 1) under a JSON enum, so a
    constrained backend cannot answer anything else. ``None`` when no valid answer came back.
    """

    name = "llm_judge"

    def __init__(self, engine: Engine, *, template: str = "toxicity_judge") -> None:
        self.engine = engine
        self.template = load_template(template)

    async def score_one(self, text: str, *, seed: int) -> float | None:
        request = Request(
            messages=self.template.render(text=text),
            params=SamplingParams(temperature=0.0, max_tokens=24),
            json_schema=schema_of(ToxicityVerdict),
            seed=seed,
        )
        result = await self.engine.complete_structured(request, ToxicityVerdict)
        if result.value is None:
            return None
        verdict: Any = result.value
        return LEVEL_SCORES[verdict.toxicity]
