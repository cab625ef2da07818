import json
from pathlib import Path
from typing import Any

import pytest

import datarefinery
from datarefinery.llm.base import Request
from datarefinery.llm.scripted import ScriptedBackend
from datarefinery.steps.synthesize.evol_instruct import (
    OPERATIONS,
    cannot_answer,
    copies_prompt,
    no_new_information,
)
from tests.support.examples import run_example
from tests.support.fake import prompt_of, read_jsonl

TASK = {
    "description": "Assistant instructions.",
    "fields": {"instruction": {"max_chars": 200}, "output": {"max_chars": 200}},
    "seeds": [{"instruction": "Explain why the sky is blue.", "output": "Scattering."}],
}


def test_copies_prompt() -> None:
    assert copies_prompt("#Rewritten Prompt#: explain the sky", "deepen") is not None
    assert copies_prompt("Explain the given prompt in detail", "deepen") is not None
    reason = copies_prompt("Rewrite the task so that it asks about its topic in depth", "deepen")
    assert reason is not None and reason[0] == "copies_prompt"
    assert copies_prompt("Explain why the sky is blue at noon but red at sunset.", "deepen") is None


def test_no_new_information() -> None:
    original = "Explain why the sky is blue."
    assert no_new_information("explain why  the SKY is blue", original, 0.9) is not None
    assert no_new_information("Why is the sky blue? Explain.", original, 0.9) == (
        "no_new_information",
        "no word that the task it came from lacks",
    )
    # a new word, but still ROUGE-L 12/13 = 0.92 with the original
    close = no_new_information("Please explain why the sky is blue.", original, 0.9)
    assert close is not None and close[1].startswith("ROUGE-L 0.92")
    assert (
        no_new_information("Explain why the sky is blue, using Rayleigh's law.", original, 0.9)
        is None
    )


def test_cannot_answer() -> None:
    assert cannot_answer("") is not None
    assert cannot_answer("... the of a !") is not None
    assert cannot_answer("Sorry, I cannot help with that.") == (
        "cannot_answer",
        "a short answer that says 'sorry'",
    )
    long_answer = "Sorry for the long answer. " + "Light scatters off small molecules. " * 20
    assert cannot_answer(long_answer) is None
    assert cannot_answer("Blue light scatters more.") is None


# The scripted model: the evolution of "X" is "X Add step N.", except for the evolve calls (counted
# from 1, one chain at a time) it ruins.
def script(ruined: dict[int, str]) -> Any:
    calls = 0

    def reply(request: Request) -> str:
        nonlocal calls
        prompt = prompt_of(request)
        if "instruction" in (request.json_schema or {})["properties"]:
            calls += 1
            task = prompt.split("Task: ")[1].split("\n\n")[0]
            step = task.count("step") + 1
            return json.dumps({"instruction": ruined.get(calls, f"{task} Add step {step}.")})
        return json.dumps({"output": f"Answer to: {prompt.split(chr(10))[0]}"})

    return reply


def spec(**options: Any) -> dict[str, Any]:
    return {
        "seed": 2,
        "task": TASK,
        "llm": {"max_tokens": 64},
        "steps": [{"evol_instruct": {"rounds": 4} | options}],
    }


def test_chains_link_parents_and_go_on_from_the_last_survivor(tmp_path: Path) -> None:
    # Round 2's evolution copies the prompt; the chain goes on from round 1's instruction.
    backend = ScriptedBackend(script({2: "#Rewritten Prompt#"}))
    result = datarefinery.run(spec(), tmp_path, backend=backend)
    kept = read_jsonl(result.dataset_path)
    rejected = read_jsonl(result.rejected_path)
    assert [r["fields"]["instruction"] for r in kept] == [
        "Explain why the sky is blue. Add step 1.",
        "Explain why the sky is blue. Add step 1. Add step 2.",
        "Explain why the sky is blue. Add step 1. Add step 2. Add step 3.",
    ]
    assert [
        (r["reason"], r["record"]["provenance"]["conditioning"]["round"]) for r in rejected
    ] == [("copies_prompt", 1)]
    assert kept[0]["provenance"]["parent_ids"] == ["seed-0"]
    assert kept[1]["provenance"]["parent_ids"] == [kept[0]["id"]]
    assert rejected[0]["record"]["provenance"]["parent_ids"] == [kept[0]["id"]]
    assert kept[2]["provenance"]["parent_ids"] == [kept[1]["id"]]
    for record in kept:
        conditioning = record["provenance"]["conditioning"]
        assert conditioning["operation"] in OPERATIONS and conditioning["seed_id"] == "seed-0"
        assert record["fields"]["output"].startswith("Answer to: Explain why")
    operations = {r["provenance"]["conditioning"]["operation"] for r in kept}
    assert any(OPERATIONS[op] in prompt_of(backend.requests[0]) for op in operations)


def test_answers_that_refuse_are_eliminated(tmp_path: Path) -> None:
    def refusing(request: Request) -> str:
        if "output" in (request.json_schema or {})["properties"]:
            return json.dumps({"output": "Sorry, I can't."})
        return script({})(request)

    result = datarefinery.run(spec(rounds=2), tmp_path, backend=ScriptedBackend(refusing))
    assert result.dataset_size == 0
    rejected = read_jsonl(result.rejected_path)
    assert [r["reason"] for r in rejected] == ["cannot_answer", "cannot_answer"]
    # the chain could not move on, so round 2 evolved the seed again
    assert rejected[1]["record"]["provenance"]["conditioning"]["evolved_from"] == (
        "Explain why the sky is blue."
    )


def test_the_optional_judge_eliminates_what_it_calls_the_same(tmp_path: Path) -> None:
    def judging(request: Request) -> str:
        if "same" in (request.json_schema or {})["properties"]:
            return json.dumps({"same": "yes"})
        return script({})(request)

    result = datarefinery.run(
        spec(rounds=1, judge_equal=True), tmp_path, backend=ScriptedBackend(judging)
    )
    (rejected,) = read_jsonl(result.rejected_path)
    assert rejected["reason"] == "no_new_information"
    assert "the model judged" in rejected["detail"]


@pytest.mark.parametrize("operations", [["breadth"], ["constraints", "deepen"]])
def test_operations_are_drawn_from_the_configured_list(
    tmp_path: Path, operations: list[str]
) -> None:
    result = datarefinery.run(
        spec(operations=operations, chains_per_seed=3),
        tmp_path,
        backend=ScriptedBackend(script({})),
    )
    drawn = {r["provenance"]["conditioning"]["operation"] for r in read_jsonl(result.dataset_path)}
    assert drawn <= set(operations) and drawn


@pytest.mark.slow
def test_example_on_the_embedded_model(tmp_path: Path) -> None:
    result = run_example(
        "evol_instruct", tmp_path, {"rounds": 1}, max_chars={"instruction": 150, "output": 150}
    )
    assert result.status == "complete"
    kept, rejected = read_jsonl(result.dataset_path), read_jsonl(result.rejected_path)
    assert len(kept) + len(rejected) == 2  # two seeds, one round each
    for record in kept:
        assert record["provenance"]["parent_ids"][0] in {"seed-0", "seed-1"}
        assert record["provenance"]["conditioning"]["operation"] in OPERATIONS
    assert {r["reason"] for r in rejected} <= {
        "copies_prompt",
        "no_new_information",
        "cannot_answer",
        "duplicate",
        "schema",
        "invalid_json",
    }
