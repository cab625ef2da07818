import copy
import json
from pathlib import Path
from typing import Any

import pytest

import datarefinery
from datarefinery.llm.base import Request
from datarefinery.llm.scripted import ScriptedBackend
from tests.support.examples import run_example
from tests.support.fake import prompt_of, read_jsonl
from tests.support.specs import SENTIMENT_TASK

ROWS = [
    {"id": "a", "text": "Loved every minute."},
    {"id": "b", "text": "Mixed feelings, honestly.", "label": "positive"},
    {"id": "c", "text": "Gibberish the model cannot read."},
]


def spec(tmp_path: Path, options: dict[str, Any]) -> dict[str, Any]:
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    return {
        "seed": 8,
        "task": copy.deepcopy(SENTIMENT_TASK),
        "input": str(source),
        "llm": {"temperature": 0.7},
        "steps": [{"label": options}],
    }


def script(request: Request) -> str:
    text = prompt_of(request)
    if "Loved" in text:
        return json.dumps({"label": "positive"})
    if "Mixed" in text:  # 3 of 5 samples say negative, depending on the sample's seed
        return json.dumps({"label": "negative" if (request.seed or 0) % 5 < 3 else "positive"})
    return "not a label"


def test_majority_label_agreement_score_and_previous_label(tmp_path: Path) -> None:
    backend = ScriptedBackend(script)
    result = datarefinery.run(spec(tmp_path, {"k": 5}), tmp_path / "out", backend=backend)
    records = {r["id"]: r for r in read_jsonl(result.dataset_path)}
    assert records["a"]["fields"]["label"] == "positive"
    assert records["a"]["scores"]["label_agreement"] == 1.0
    votes_b = records["b"]["provenance"]["conditioning"]["label_votes"]
    assert sum(votes_b.values()) == 5
    majority = max(votes_b, key=lambda k: votes_b[k])
    assert records["b"]["fields"]["label"] == majority
    assert records["b"]["scores"]["label_agreement"] == votes_b[majority] / 5
    assert records["b"]["provenance"]["conditioning"]["previous_label"] == "positive"
    labeled_by = records["a"]["provenance"]["conditioning"]["labeled_by"]
    assert labeled_by["model"] == "scripted:scripted" and labeled_by["template_hash"]
    (rejected,) = read_jsonl(result.rejected_path)
    assert rejected["record"]["id"] == "c" and rejected["reason"] == "no_label"
    seeds = {r.seed for r in backend.requests if "Loved" in prompt_of(r)}
    assert len(seeds) == 5  # k different samples
    assert all(r.params.temperature == 0.7 for r in backend.requests)


def test_low_agreement_is_rejected_with_the_votes(tmp_path: Path) -> None:
    result = datarefinery.run(
        spec(tmp_path, {"k": 5, "min_agreement": 0.9}),
        tmp_path / "out",
        backend=ScriptedBackend(script),
    )
    assert [r["id"] for r in read_jsonl(result.dataset_path)] == ["a"]
    reasons = {r["record"]["id"]: r for r in read_jsonl(result.rejected_path)}
    assert reasons["b"]["reason"] == "low_agreement" and "votes" in reasons["b"]["detail"]
    assert reasons["b"]["record"]["scores"]["label_agreement"] < 0.9


@pytest.mark.slow
def test_example_on_the_embedded_model(tmp_path: Path) -> None:
    result = run_example("label", tmp_path, {"k": 3}, limit=2)
    assert result.status == "complete"
    kept, rejected = read_jsonl(result.dataset_path), read_jsonl(result.rejected_path)
    assert len(kept) + len(rejected) == 2
    for record in kept:
        assert record["fields"]["label"] in {"positive", "negative"}
        votes = record["provenance"]["conditioning"]["label_votes"]
        assert sum(votes.values()) <= 3
        assert record["scores"]["label_agreement"] == max(votes.values()) / sum(votes.values())
