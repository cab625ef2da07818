"""The ``extrapolate`` step on its own: k records per example, gold label kept, copies rejected."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

import datarefinery
from datarefinery.errors import ConfigError
from datarefinery.llm.base import Request
from datarefinery.llm.scripted import ScriptedBackend
from datarefinery.steps.synthesize.extrapolate import copied_share
from tests.support.specs import SENTIMENT_TASK

NLI_TASK: dict[str, Any] = {
    "description": "Textual entailment.",
    "fields": {
        "premise": {"max_chars": 400},
        "hypothesis": {"min_chars": 5, "max_chars": 160},
        "label": {"type": "label"},
    },
    "labels": ["entailment", "not_entailment"],
}


def spec(tmp_path: Path, task: dict[str, Any], rows: list[dict[str, Any]], **options: Any) -> Any:
    path = tmp_path / "errors.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return {
        "seed": 2,
        "task": copy.deepcopy(task),
        "llm": {"max_tokens": 64},
        "input": str(path),
        "steps": [{"extrapolate": options}],
    }


def read(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_copied_share_is_not_fooled_by_a_long_example() -> None:
    long_review = "the film opens with a long shot of the sea " * 20
    assert copied_share("the film opens with a long shot", long_review) == 1.0
    assert copied_share("a bright comedy about two sisters", long_review) < 0.5
    assert copied_share("", long_review) == 0.0


def test_k_records_per_example_with_its_gold_label(tmp_path: Path) -> None:
    rows = [
        {
            "id": "e1",
            "text": "A slow start, but the ending moved me to tears.",
            "label": "positive",
        },
        {"id": "e2", "text": "Pretty images cannot save the empty script.", "label": "negative"},
    ]

    def reply(request: Request) -> str:
        prompt = request.messages[-1].content
        assert "got the example below wrong" in prompt and "do not copy" in prompt
        return json.dumps({"text": f"Some brand new words for call number {request.seed}."})

    backend = ScriptedBackend(reply)
    result = datarefinery.run(
        spec(tmp_path, SENTIMENT_TASK, rows, k=3), tmp_path / "out", backend=backend
    )
    made = read(result.dataset_path)
    assert len(made) == 6 and len(backend.requests) == 6
    for record in made:
        parent = record["provenance"]["parent_ids"][0]
        assert record["fields"]["label"] == {"e1": "positive", "e2": "negative"}[parent]
        assert record["provenance"]["conditioning"]["example_id"] == parent
        assert record["provenance"]["technique"] == "extrapolate"


def test_near_copies_and_context_copies_are_rejected(tmp_path: Path) -> None:
    premise = "The council approved the new bridge over the river on Monday."
    rows = [
        {
            "id": "e1",
            "premise": premise,
            "hypothesis": "A bridge was approved.",
            "label": "entailment",
        }
    ]
    replies = iter(
        [
            json.dumps({"hypothesis": "A bridge was approved."}),  # the example's own hypothesis
            json.dumps({"hypothesis": premise}),  # the premise
            json.dumps({"hypothesis": "The council voted on Monday."}),
        ]
    )
    result = datarefinery.run(
        spec(tmp_path, NLI_TASK, rows, k=3, given=["premise"]),
        tmp_path / "out",
        backend=ScriptedBackend(lambda _: next(replies)),
    )
    made = read(result.dataset_path)
    assert [r["fields"]["hypothesis"] for r in made] == ["The council voted on Monday."]
    assert made[0]["fields"]["premise"] == premise
    reasons = sorted(r["reason"] for r in read(result.rejected_path))
    assert reasons == ["copies_context", "near_copy"]


def test_given_fields_must_be_task_fields(tmp_path: Path) -> None:
    rows = [{"id": "e1", "text": "x", "label": "positive"}]
    with pytest.raises(ConfigError, match="given fields"):
        datarefinery.run(
            spec(tmp_path, SENTIMENT_TASK, rows, given=["premise"]),
            tmp_path / "out",
            backend=ScriptedBackend([]),
        )
