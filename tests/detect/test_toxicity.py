from __future__ import annotations

import asyncio
import json

from datarefinery.detect.toxicity import LLMToxicityJudge, ProfanityScorer
from datarefinery.llm.engine import Engine
from datarefinery.llm.scripted import ScriptedBackend


def test_profanity_scorer_separates_swearing_from_polite_text() -> None:
    scores = ProfanityScorer().score(["you are a fucking idiot", "have a lovely day"])
    assert scores[0] > 0.9 > 0.2 > scores[1]
    assert ProfanityScorer().score([]) == []


def test_llm_judge_maps_levels_and_reports_no_answer_as_none() -> None:
    replies = [json.dumps({"toxicity": "severe"}), "nonsense", "still nonsense"]
    engine = Engine(ScriptedBackend(replies))
    judge = LLMToxicityJudge(engine)
    assert asyncio.run(judge.score_one("x", seed=1)) == 1.0
    assert asyncio.run(judge.score_one("y", seed=2)) is None
