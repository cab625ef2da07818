"""Toxicity scores in [0, 1]: offline with ``alt-profanity-check`` (a linear model on words, shipped
in its wheel; microseconds per text), or with the run's model as a judge (slower, reads meaning).

The profanity model mostly sees vocabulary: it flags swearing, and misses politely worded insults.
The LLM judge is the complement; ``detox_rewrite`` can require both to pass.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

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

    def flagged_words(self, text: str, threshold: float, *, limit: int = 6) -> list[str]:
        """The words that keep ``text`` at or above ``threshold``, most offending first.

        The scorer is a linear model over words, so a word's weight shows in how far the score
        falls without it: each round removes the word whose removal lowers the score most, until
        the text scores below the threshold, nothing lowers it, or ``limit`` words are named.
        """
        words = list(dict.fromkeys(w.lower() for w in _WORD.findall(text)))
        flagged: list[str] = []
        current = text
        score = self.score([current])[0]
        while score >= threshold and words and len(flagged) < limit:
            variants = [_without(current, w) for w in words]
            scores = self.score(variants)
            best = min(range(len(words)), key=scores.__getitem__)
            if scores[best] >= score:
                break
            flagged.append(words.pop(best))
            current, score = variants[best], scores[best]
        return flagged


_WORD = re.compile(r"[^\W\d_][\w'*]*")


def _without(text: str, word: str) -> str:
    return re.sub(rf"(?<![\w']){re.escape(word)}(?![\w'])", " ", text, flags=re.IGNORECASE)


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

    async def offending(self, text: str, *, seed: int) -> list[str]:
        """The phrases of ``text`` the model calls offensive, quoted; empty when it names none."""
        request = Request(
            messages=load_template("toxicity_quotes").render(text=text),
            params=SamplingParams(temperature=0.0, max_tokens=96),
            json_schema=schema_of(OffendingQuotes),
            seed=seed,
        )
        result = await self.engine.complete_structured(request, OffendingQuotes)
        if result.value is None:
            return []
        quotes: Any = result.value
        return [q for q in dict.fromkeys(str(q).strip() for q in quotes.quotes) if q]


class OffendingQuotes(BaseModel):
    model_config = ConfigDict(extra="forbid")

    quotes: list[str] = Field(max_length=6)
