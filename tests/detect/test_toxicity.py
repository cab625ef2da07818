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


def test_flagged_words_are_those_that_keep_the_score_over_the_threshold() -> None:
    scorer = ProfanityScorer()
    text = "Shut up, you Fucking idiot: the build is broken again"
    flagged = scorer.flagged_words(text, 0.5)
    assert set(flagged) >= {"fucking", "idiot"} and "build" not in flagged
    cleaned = text
    for word in flagged:
        cleaned = cleaned.replace(word, "").replace(word.capitalize(), "")
    assert scorer.score([cleaned])[0] < 0.5  # without them the text passes the gate
    assert scorer.flagged_words("have a lovely day", 0.5) == []
    assert len(scorer.flagged_words(text, 0.5, limit=1)) == 1


def test_llm_judge_quotes_offending_phrases_or_none() -> None:
    replies = [json.dumps({"quotes": ["you clown", "you clown", " "]}), "nonsense", "nonsense"]
    judge = LLMToxicityJudge(Engine(ScriptedBackend(replies)))
    assert asyncio.run(judge.offending("x", seed=1)) == ["you clown"]
    assert asyncio.run(judge.offending("y", seed=2)) == []
