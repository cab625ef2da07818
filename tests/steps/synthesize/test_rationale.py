import copy
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

import datarefinery
from datarefinery.llm.base import Request
from datarefinery.llm.scripted import ScriptedBackend
from datarefinery.steps.synthesize.rationale import dedup_reasons
from tests.support.examples import run_example
from tests.support.fake import prompt_of, read_jsonl
from tests.support.specs import SENTIMENT_TASK

REASONS = {
    "positive": ["great acting", "Great acting.", "a moving story", "the great acting", "so fun"],
    "negative": ["a boring plot", "bad sound", "the plot is boring", "poor jokes", "slow pace"],
}


def test_dedup_drops_exact_and_near_repeats_in_order() -> None:
    assert dedup_reasons(
        ["Great acting.", "great  ACTING", "the acting is great", "the great acting", "", "fun"],
        0.7,
    ) == ["Great acting", "the acting is great"]
    assert dedup_reasons(["Positive", "a positive ending", "fun"], 0.7, ["positive"]) == [
        "a positive ending"
    ]


def spec(options: dict[str, Any]) -> dict[str, Any]:
    return {
        "seed": 4,
        "task": copy.deepcopy(SENTIMENT_TASK),
        "llm": {"max_tokens": 64},
        "shard_size": 3,
        "steps": [{"rationale": options}],
    }


def script(request: Request) -> str:
    prompt = prompt_of(request)
    label = "positive" if '"positive"' in prompt else "negative"
    if "reasons" in (request.json_schema or {}).get("properties", {}):
        return json.dumps({"reasons": REASONS[label]})
    reason = prompt.split("The reason for the label: ")[1].split(".\n")[0]
    return json.dumps({"text": f"A {label} review about {reason}, call {request.seed}."})


def test_reasons_are_asked_once_per_label_deduplicated_and_rotated(tmp_path: Path) -> None:
    backend = ScriptedBackend(script)
    result = datarefinery.run(
        spec({"count_per_label": 6, "rationales": 5}), tmp_path, backend=backend
    )
    listing = [r for r in backend.requests if "reasons" in (r.json_schema or {})["properties"]]
    assert len(listing) == 2
    records = read_jsonl(result.dataset_path)
    assert len(records) == 12
    used: dict[str, Counter[str]] = {"positive": Counter(), "negative": Counter()}
    for record in records:
        conditioning = record["provenance"]["conditioning"]
        assert conditioning["rationale"] in record["fields"]["text"]
        used[conditioning["label"]][conditioning["rationale"]] += 1
    # "Great acting." repeats "great acting" exactly, "the great acting" nearly (ROUGE-L 0.8);
    # "the plot is boring" shares one word in order with "a boring plot" (0.29) and stays.
    assert set(used["positive"]) == {"great acting", "a moving story", "so fun"}
    assert set(used["negative"]) == {
        "a boring plot",
        "bad sound",
        "the plot is boring",
        "poor jokes",
        "slow pace",
    }
    assert sorted(used["positive"].values()) == [2, 2, 2]  # 6 calls over 3 reasons, in turn
    assert record["provenance"]["template_hash"]


def test_a_label_without_reasons_rejects_its_calls(tmp_path: Path) -> None:
    def broken(request: Request) -> str:
        first_turn = request.messages[1].content  # the same on the re-ask
        if '"negative"' in first_turn and "reasons" in (request.json_schema or {})["properties"]:
            return "I cannot think of any."
        return script(request)

    result = datarefinery.run(
        spec({"count_per_label": 2, "rationales": 5}), tmp_path, backend=ScriptedBackend(broken)
    )
    assert {r["fields"]["label"] for r in read_jsonl(result.dataset_path)} == {"positive"}
    rejected = read_jsonl(result.rejected_path)
    assert [r["reason"] for r in rejected] == ["rationale_failed", "rationale_failed"]
    assert "no reasons for label 'negative'" in rejected[0]["detail"]


def test_resume_reuses_the_same_reasons(tmp_path: Path) -> None:
    options = {"count_per_label": 6, "rationales": 5}
    datarefinery.run(spec(options), tmp_path, backend=ScriptedBackend(script))
    before = (tmp_path / "dataset.jsonl").read_text()
    # Lose the last shards: the rerun asks for the reasons again (from the cache) and redoes them.
    shards = sorted((tmp_path / "steps" / "01-rationale").glob("*.done"))
    for marker in shards[2:]:
        marker.unlink()
    (tmp_path / "steps" / "01-rationale" / "_COMPLETE").unlink()
    backend = ScriptedBackend(script)
    datarefinery.run(spec(options), tmp_path, backend=backend)
    assert backend.requests == []
    assert (tmp_path / "dataset.jsonl").read_text() == before


@pytest.mark.slow
def test_example_on_the_embedded_model(tmp_path: Path) -> None:
    result = run_example(
        "rationale", tmp_path, {"count_per_label": 1, "rationales": 3}, max_chars={"text": 160}
    )
    assert result.status == "complete"
    kept, rejected = read_jsonl(result.dataset_path), read_jsonl(result.rejected_path)
    assert len(kept) + len(rejected) == 2
    for record in kept:
        conditioning = record["provenance"]["conditioning"]
        assert len(conditioning["rationale"].split()) >= 2  # a reason, deduplicated and non-empty
        assert conditioning["label"] == record["fields"]["label"]
