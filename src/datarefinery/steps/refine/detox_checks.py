"""What ``detox_rewrite`` checks a rewrite against besides its toxicity, and what it re-asks.

Embedding cosine sees topic, not polarity: "didn't even say thank you" and "said thank you" are
close neighbours. The meaning judge is a separate structured request that reads both texts and
answers whether the rewrite says the same thing without the offence, with a reason the re-ask
passes on. No NLI model is installed offline here, so entailment is left to the judge.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from datarefinery.llm.base import Request, SamplingParams
from datarefinery.llm.engine import Engine
from datarefinery.llm.structured import schema_of
from datarefinery.prompts.render import load_template

CHECKS = ("toxicity", "cosine", "judge")


class MeaningVerdict(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(max_length=300)
    same_meaning: bool


class MeaningJudge:
    """Asks the model whether a rewrite keeps the original's meaning; ``None`` when no valid
    answer came back.
    """

    def __init__(self, engine: Engine, *, template: str = "detox_meaning_judge") -> None:
        self.engine = engine
        self.template = load_template(template)

    async def judge(self, original: str, rewrite: str, *, seed: int) -> MeaningVerdict | None:
        request = Request(
            messages=self.template.render(original=original, rewrite=rewrite),
            params=SamplingParams(temperature=0.0, max_tokens=128),
            json_schema=schema_of(MeaningVerdict),
            seed=seed,
        )
        result = await self.engine.complete_structured(request, MeaningVerdict)
        verdict: Any = result.value
        return verdict if isinstance(verdict, MeaningVerdict) else None


def still_toxic_ask(flagged: list[str]) -> str:
    if not flagged:
        return "Your rewrite is still rude or obscene. Remove every swear word and insult."
    quoted = ", ".join(f'"{w}"' for w in flagged)
    return f"Your rewrite is still offensive: {quoted}. Rewrite without them, keep the meaning."


def meaning_ask(reason: str | None) -> str:
    because = f" ({reason.rstrip('.')})" if reason else ""
    return (
        f"Your rewrite changed the meaning{because}. Keep what the text says, including any "
        "negation; only remove the offence."
    )
