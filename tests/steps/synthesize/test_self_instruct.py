import json
from pathlib import Path
from typing import Any

import pytest

import datarefinery
from datarefinery.errors import ConfigError
from datarefinery.llm.base import Request
from datarefinery.llm.scripted import ScriptedBackend
from datarefinery.text import SimilarityPool
from tests.support.examples import example_spec, run_example
from tests.support.fake import prompt_of, read_jsonl

SEEDS = [
    {"instruction": "Give three tips for staying healthy.", "input": "", "output": "Sleep."},
    {"instruction": "Translate the sentence into French.", "input": "Hi.", "output": "Salut."},
    {"instruction": "Sort the numbers from small to large.", "input": "3, 1", "output": "1, 3"},
]
TASK = {
    "description": "Assistant instructions.",
    "fields": {
        "instruction": {"max_chars": 120},
        "input": {"min_chars": 0, "max_chars": 120},
        "output": {"max_chars": 120},
    },
    "seeds": SEEDS,
}

# What the scripted model proposes in each round (keyed by the first demo it is shown does not
# work: demos are drawn at random). Round 1 (no machine demos yet) and round 2 get their own lists.
ROUND_1 = [
    "Give three tips for staying very healthy.",  # ROUGE-L 12/13 = 0.92 with a seed: too similar
    "Write a limerick about a cat on a boat.",
    "Name the capital city of every country in Europe.",
    "Write a limerick about a cat on a boat!",  # the same as one accepted this round
]
ROUND_2 = [
    "Name the capital city of each country in Europe.",  # too close to round 1's
    "Explain how a rainbow forms in the sky.",
    "Hi",  # too short
    "Count the vowels in the given word.",
]


def script(request: Request) -> str:
    prompt = prompt_of(request)
    if "instructions" in (request.json_schema or {})["properties"]:
        machine = "limerick" in prompt or "capital city" in prompt
        return json.dumps({"instructions": ROUND_2 if machine else ROUND_1})
    task = prompt.split("Task: ")[1].split("\n")[0]
    reply = {"input": "", "output": f"Done: {task}"}
    return json.dumps({k: v for k, v in reply.items() if k in request.json_schema["properties"]})


def spec(**options: Any) -> dict[str, Any]:
    step = {"rounds": 2, "instructions_per_round": 4, "per_call": 4, "demos": 2, "machine_demos": 2}
    return {
        "seed": 1,
        "task": TASK,
        "llm": {"max_tokens": 64},
        "shard_size": 1,
        "steps": [{"self_instruct": step | options}],
    }


def test_rounds_filter_by_rouge_l_and_grow_the_pool(tmp_path: Path) -> None:
    backend = ScriptedBackend(script)
    result = datarefinery.run(spec(), tmp_path, backend=backend)
    kept = read_jsonl(result.dataset_path)
    assert [
        (r["provenance"]["conditioning"]["round"], r["fields"]["instruction"]) for r in kept
    ] == [
        (0, "Write a limerick about a cat on a boat."),
        (0, "Name the capital city of every country in Europe."),
        (1, "Explain how a rainbow forms in the sky."),
        (1, "Count the vowels in the given word."),
    ]
    assert kept[0]["fields"]["output"] == "Done: Write a limerick about a cat on a boat."
    reasons = [
        (r["reason"], r["record"]["fields"]["instruction"])
        for r in read_jsonl(result.rejected_path)
    ]
    assert reasons == [
        ("too_similar", ROUND_1[0]),
        ("too_similar", ROUND_1[3]),
        ("too_similar", ROUND_2[0]),
        ("too_short", "Hi"),
    ]
    detail = read_jsonl(result.rejected_path)[0]["detail"]
    assert detail.startswith("ROUGE-L 0.92 with 'Give three tips for staying healthy.'")
    # Round 2's calls were shown round 1's instructions, whose ids are in provenance.
    listing = [
        prompt_of(r)
        for r in backend.requests
        if "instructions" in (r.json_schema or {})["properties"]
    ]
    assert len(listing) == 2
    assert "limerick" not in listing[0] and "limerick" in listing[1]
    machine_ids = {kept[0]["id"], kept[1]["id"]}
    assert set(kept[2]["provenance"]["conditioning"]["demo_ids"]) & machine_ids
    assert kept[0]["provenance"]["conditioning"]["rouge_l_max"] < 0.7


def test_a_resumed_run_rebuilds_the_pool_and_repeats_the_uninterrupted_one(tmp_path: Path) -> None:
    reference = datarefinery.run(spec(rounds=3), tmp_path / "ref", backend=ScriptedBackend(script))
    expected = reference.dataset_path.read_text()
    resumed_dir = tmp_path / "resumed"
    datarefinery.run(spec(rounds=3), resumed_dir, backend=ScriptedBackend(script))
    # Lose rounds 2 and 3 and the cache: round 2 must see round 1's instructions from disk.
    step_dir = resumed_dir / "steps" / "01-self_instruct"
    for index in (1, 2):
        (step_dir / f"shard-{index:05d}.done").unlink()
    (step_dir / "_COMPLETE").unlink()
    (resumed_dir / "cache.sqlite").unlink()
    backend = ScriptedBackend(script)
    result = datarefinery.run(spec(rounds=3), resumed_dir, backend=backend)
    assert backend.requests  # rounds 2 and 3 were asked again
    assert result.dataset_path.read_text() == expected


def test_the_task_must_match_the_fields(tmp_path: Path) -> None:
    bad = spec()
    bad["task"] = {**TASK, "fields": {**TASK["fields"], "extra": {"max_chars": 10}}}
    bad["task"]["seeds"] = [s | {"extra": "x"} for s in SEEDS]
    with pytest.raises(ConfigError, match="must be exactly those"):
        datarefinery.run(bad, tmp_path / "1", backend=ScriptedBackend(script))
    no_input = spec()
    no_input["task"] = {
        "description": "d",
        "fields": {"instruction": {"max_chars": 120}, "output": {"max_chars": 120}},
        "seeds": [{"instruction": s["instruction"], "output": s["output"]} for s in SEEDS],
    }
    result = datarefinery.run(no_input, tmp_path / "2", backend=ScriptedBackend(script))
    assert set(read_jsonl(result.dataset_path)[0]["fields"]) == {"instruction", "output"}


@pytest.mark.slow
def test_example_on_the_embedded_model(tmp_path: Path) -> None:
    result = run_example(
        "self_instruct",
        tmp_path,
        {"rounds": 2, "instructions_per_round": 2, "per_call": 2},
        max_chars={"instruction": 100, "input": 80, "output": 120},
    )
    assert result.status == "complete"
    kept, rejected = read_jsonl(result.dataset_path), read_jsonl(result.rejected_path)
    assert kept or rejected
    seeds = [s["instruction"] for s in example_spec("self_instruct")["task"]["seeds"]]
    pool = SimilarityPool(seeds)
    for record in kept:  # the filter held: no kept instruction is close to the pool before it
        assert pool.closest(record["fields"]["instruction"])[0] <= 0.7
        pool.add(record["fields"]["instruction"])
    assert {r["reason"] for r in rejected} <= {
        "too_similar",
        "too_short",
        "duplicate",
        "empty",
        "schema",
        "invalid_json",
    }
