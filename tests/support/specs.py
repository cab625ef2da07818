"""Small specs shared by tests."""

from __future__ import annotations

import copy
import json
from typing import Any

from datarefinery.llm.base import Request

SENTIMENT_TASK: dict[str, Any] = {
    "description": "Sentiment classification of English movie reviews.",
    "fields": {
        "text": {"description": "a short movie review", "min_chars": 10, "max_chars": 160},
        "label": {"type": "label"},
    },
    "labels": {"positive": "the reviewer liked it", "negative": "the reviewer disliked it"},
}


def sentiment_spec(
    count: int = 4, per_call: int = 1, shard_size: int = 2, **llm: Any
) -> dict[str, Any]:
    return {
        "name": "test-sentiment",
        "seed": 3,
        "task": copy.deepcopy(SENTIMENT_TASK),
        "llm": {"max_tokens": 96, **llm},
        "shard_size": shard_size,
        "steps": [{"zero_shot": {"count_per_label": count, "per_call": per_call}}],
    }


def review_reply(request: Request) -> str:
    """A scripted model: a distinct review per request (the seed makes it unique)."""
    prompt = request.messages[-1].content
    label = "positive" if '"positive"' in prompt else "negative"
    return json.dumps({"text": f"A {label} review written for call {request.seed}."})
