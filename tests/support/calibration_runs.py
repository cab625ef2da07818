"""Runs on a scripted model whose labels, judge scores and pairwise verdicts are known, with
people's decisions written beside them: the calibration figures can then be worked out by hand.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import datarefinery
from datarefinery.decisions import Decision, DecisionStore
from datarefinery.llm.base import Request
from tests.support.specs import SENTIMENT_TASK

# id, the model's label, the judge's score, the person's decision (None: not decided yet)
LABELLED: list[tuple[str, str, int, tuple[str, ...] | None]] = [
    ("r00", "positive", 5, ("accept",)),
    ("r01", "positive", 5, ("accept",)),
    ("r02", "positive", 4, ("accept",)),
    ("r03", "positive", 4, ("correct", "negative")),
    ("r04", "positive", 2, ("reject",)),
    ("r05", "positive", 3, ("accept",)),
    ("r06", "positive", 1, ("reject",)),
    ("r07", "positive", 4, None),
    ("r08", "negative", 5, ("accept",)),
    ("r09", "negative", 4, ("accept",)),
    ("r10", "negative", 4, ("reject",)),
    ("r11", "negative", 2, ("reject",)),
    ("r12", "negative", 1, ("reject",)),
    ("r13", "negative", 3, ("correct", "positive")),
    ("r14", "negative", 2, ("accept",)),
    ("r15", "negative", 5, ("accept",)),
]

# group (the prompt both candidates share) -> the two candidates, in input order
PAIRS: dict[str, tuple[str, str]] = {
    "prefer the longer one, please": ("Short.", "A longer and fuller answer."),
    "prefer the longer one, again": ("A long and patient answer here.", "Brief."),
    "prefer the shorter one": ("Tiny.", "A needlessly long winded answer."),
    "always say A": ("One answer.", "Other answer here."),
    "always say B": ("First answer.", "Second one."),
    "call it a tie": ("Same.", "Same too."),
}


def _task(**fields: Any) -> dict[str, Any]:
    task = copy.deepcopy(SENTIMENT_TASK)
    if fields:
        task["fields"] = fields
    return task


def _labelling_model(request: Request) -> str:
    prompt = request.messages[-1].content
    if "label" in (request.json_schema or {}).get("properties", {}):
        return json.dumps({"label": "positive" if "thumbs-up" in prompt else "negative"})
    stars = re.search(r"stars (\d)", prompt)
    return json.dumps({"reason": "as scripted", "quality": int(stars.group(1)) if stars else 3})


def labelled_run(tmp: Path, *, decide: bool = True) -> Path:
    """A ``label`` then ``judge`` (threshold 4) run over ``LABELLED``, with its decisions."""
    rows = [
        {
            "id": rid,
            "text": f"Review {rid}: {'thumbs-up' if lab == 'positive' else 'thumbs-down'}"
            f", stars {stars}.",
        }
        for rid, lab, stars, _ in LABELLED
    ]
    source = tmp / "unlabelled.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in rows))
    spec = {
        "name": "calibration",
        "seed": 1,
        "task": _task(),
        "input": str(source),
        "shard_size": 5,
        "steps": [{"label": {"k": 3}}, {"judge": {"threshold": 4}}],
    }
    out = tmp / "run"
    backend = datarefinery.ScriptedBackend(_labelling_model)
    result = datarefinery.run(spec, out, backend=backend, diversity=False)
    assert result.status == "complete"
    if decide:
        DecisionStore.of_run(out).record_many(
            Decision(rid, decision[0], by="ada", label=decision[1] if len(decision) > 1 else None)  # type: ignore[arg-type]
            for rid, _, _, decision in LABELLED
            if decision is not None
        )
    return out


def _pairwise_model(request: Request) -> str:
    prompt = request.messages[-1].content
    group = prompt.split("prompt: ")[1].split("\n")[0]
    first = prompt.split("\nA: ")[1].split("\n")[0]
    second = prompt.split("\nB: ")[1].split("\n")[0]
    if group == "always say A":
        better = "A"
    elif group == "always say B":
        better = "B"
    elif group == "call it a tie":
        better = "tie"
    else:
        longer_first = len(first.split()) > len(second.split())
        better = "A" if longer_first == ("longer" in group) else "B"
    return json.dumps({"reason": "as scripted", "better": better})


def pairwise_run(tmp: Path) -> Path:
    """A pairwise ``judge`` over ``PAIRS``, and one decision so that calibration has something."""
    rows = [
        {"id": f"{i}{side}", "prompt": group, "text": text}
        for i, (group, texts) in enumerate(PAIRS.items())
        for side, text in zip("ab", texts, strict=True)
    ]
    source = tmp / "pairs.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in rows))
    spec = {
        "name": "pairwise-calibration",
        "seed": 1,
        "task": _task(prompt={}, text={}),
        "input": str(source),
        "steps": [{"judge": {"mode": "pairwise", "group_by": "prompt", "compare": "text"}}],
    }
    out = tmp / "pairs-run"
    backend = datarefinery.ScriptedBackend(_pairwise_model)
    result = datarefinery.run(spec, out, backend=backend, diversity=False)
    assert result.status == "complete"
    DecisionStore.of_run(out).record(Decision("0a", "accept", by="ada"))
    return out
