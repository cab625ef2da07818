import json
from pathlib import Path
from typing import Any

import pytest

import datarefinery
from datarefinery.errors import ConfigError, InputFileError
from datarefinery.llm.base import Request
from datarefinery.llm.scripted import ScriptedBackend, schema_reply
from tests.support.examples import EXAMPLES, run_example
from tests.support.fake import prompt_of, read_jsonl

PREMISES = EXAMPLES / "data" / "premises.jsonl"

NLI_TASK = {
    "description": "Textual entailment.",
    "fields": {
        "premise": {"max_chars": 300},
        "hypothesis": {"max_chars": 100},
        "label": {"type": "label"},
    },
    "labels": {"entailment": "follows", "not_entailment": "does not follow"},
}
QA_TASK = {
    "description": "Extractive QA.",
    "fields": {
        "context": {"max_chars": 500},
        "question": {"max_chars": 100},
        "answer": {"max_chars": 40},
    },
}


def write(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def spec(task: dict[str, Any], options: dict[str, Any]) -> dict[str, Any]:
    return {"seed": 9, "task": task, "llm": {"max_tokens": 64}, "steps": [{"conditioned": options}]}


def test_nli_copies_premises_and_pairs_them_across_labels(tmp_path: Path) -> None:
    pool = write(
        tmp_path / "rte.jsonl",
        [
            {"id": f"p{i}", "premise": f"Premise number {i} about a town.", "hypothesis": "x"}
            for i in range(3)
        ]
        # a premise listed twice in the pool (RTE does this) is drawn once
        + [{"id": "p0-again", "premise": "Premise number 0 about a town.", "hypothesis": "y"}],
    )
    backend = ScriptedBackend(schema_reply())
    result = datarefinery.run(
        spec(NLI_TASK, {"pool": str(pool), "given": ["premise"], "count_per_label": 3}),
        tmp_path / "out",
        backend=backend,
    )
    records = read_jsonl(result.dataset_path)
    assert len(records) == 6
    by_label: dict[str, list[str]] = {}
    for record in records:
        conditioning = record["provenance"]["conditioning"]
        premise = record["fields"]["premise"]
        assert premise == f"Premise number {conditioning['context_id'][1]} about a town."
        by_label.setdefault(conditioning["label"], []).append(conditioning["context_id"])
        assert list(record["fields"]) == ["premise", "hypothesis", "label"]
    assert sorted(by_label["entailment"]) == ["p0", "p1", "p2"]
    assert by_label["entailment"] == by_label["not_entailment"]
    prompt = prompt_of(backend.requests[0])
    assert "premise: Premise number" in prompt and "Write the hypothesis for this premise" in prompt
    assert 'The label must be "entailment": follows' in prompt
    assert "premise" not in (backend.requests[0].json_schema or {})["properties"]


def qa_text(name: str, request: Request, index: int) -> str:
    if name == "answer":  # every other call answers with words that are not in the context
        return "Lisbon" if (request.seed or 0) % 2 else "the bridge"
    return f"What crosses the river? ({request.seed})"


def test_qa_rejects_answers_that_are_not_in_the_context(tmp_path: Path) -> None:
    pool = write(
        tmp_path / "contexts.jsonl",
        [{"id": "c1", "context": "In the old town, THE  Bridge crosses the river twice."}],
    )
    result = datarefinery.run(
        spec(
            QA_TASK,
            {
                "pool": str(pool),
                "given": ["context"],
                "must_occur_in": {"answer": "context"},
                "count_per_label": 6,
            },
        ),
        tmp_path / "out",
        backend=ScriptedBackend(schema_reply(qa_text)),
    )
    kept = read_jsonl(result.dataset_path)
    rejected = read_jsonl(result.rejected_path)
    assert kept and rejected and len(kept) + len(rejected) == 6
    assert all(r["fields"]["answer"] == "the bridge" for r in kept)  # case and spacing ignored
    assert {r["reason"] for r in rejected} == {"not_in_context"}
    assert "answer 'Lisbon' does not occur in the context" in rejected[0]["detail"]
    assert rejected[0]["record"]["provenance"]["conditioning"]["context_id"] == "c1"


def test_bad_pools_and_options_are_usage_errors(tmp_path: Path) -> None:
    pool = write(tmp_path / "pool.jsonl", [{"id": "a", "premise": "P."}, {"id": "b"}])
    options = {"pool": str(pool), "given": ["premise"]}
    with pytest.raises(InputFileError, match=r"pool.jsonl, line 2, field 'premise'"):
        datarefinery.run(spec(NLI_TASK, options), tmp_path / "1", backend=ScriptedBackend([]))
    with pytest.raises(ConfigError, match="not among the task's fields"):
        datarefinery.run(
            spec(NLI_TASK, options | {"given": ["context"]}),
            tmp_path / "2",
            backend=ScriptedBackend([]),
        )
    with pytest.raises(ConfigError, match="nothing is left to write"):
        datarefinery.run(
            spec(NLI_TASK, options | {"given": ["premise", "hypothesis"]}),
            tmp_path / "3",
            backend=ScriptedBackend([]),
        )
    with pytest.raises(ConfigError, match="must_occur_in"):
        datarefinery.run(
            spec(NLI_TASK, options | {"must_occur_in": {"premise": "hypothesis"}}),
            tmp_path / "4",
            backend=ScriptedBackend([]),
        )


def test_copies_of_the_context_and_of_the_instructions_are_rejected(tmp_path: Path) -> None:
    pool = write(tmp_path / "pool.jsonl", [{"id": "p", "premise": "The cat sat on the mat."}])
    task = {**NLI_TASK, "fields": {**NLI_TASK["fields"]}}
    task["fields"]["hypothesis"] = {"description": "one short sentence", "max_chars": 100}
    answers = iter(["The cat sat on the mat", "One short sentence.", "not_entailment", "A cat."])

    result = datarefinery.run(
        spec(task, {"pool": str(pool), "given": ["premise"], "count_per_label": 2}),
        tmp_path / "out",
        backend=ScriptedBackend(lambda request: json.dumps({"hypothesis": next(answers)})),
    )
    reasons = [(r["reason"], r["detail"]) for r in read_jsonl(result.rejected_path)]
    assert reasons == [
        ("copies_context", "hypothesis is ROUGE-L 1.00 with the premise"),
        ("copies_instructions", "hypothesis repeats its description 'one short sentence'"),
        ("copies_instructions", "hypothesis is only the word 'not_entailment'"),
    ]
    assert [r["fields"]["hypothesis"] for r in read_jsonl(result.dataset_path)] == ["A cat."]


@pytest.mark.slow
def test_nli_example_on_the_embedded_model(tmp_path: Path) -> None:
    result = run_example("conditioned_nli", tmp_path, {"count_per_label": 1})
    assert result.status == "complete"
    kept, rejected = read_jsonl(result.dataset_path), read_jsonl(result.rejected_path)
    assert len(kept) + len(rejected) == 2
    premises = {r["id"]: r["premise"] for r in map(json.loads, PREMISES.read_text().splitlines())}
    for record in kept + [r["record"] for r in rejected if r["record"]["fields"]]:
        context_id = record["provenance"]["conditioning"]["context_id"]
        assert record["fields"]["premise"] == premises[context_id]


@pytest.mark.slow
def test_qa_example_on_the_embedded_model(tmp_path: Path) -> None:
    result = run_example("conditioned_qa", tmp_path, {"count_per_label": 2})
    assert result.status == "complete"
    kept, rejected = read_jsonl(result.dataset_path), read_jsonl(result.rejected_path)
    assert len(kept) + len(rejected) == 2
    for record in kept:  # whatever the model wrote, what is kept answers from the context
        assert record["fields"]["answer"].lower() in record["fields"]["context"].lower()
    assert {r["reason"] for r in rejected} <= {
        "not_in_context",
        "copies_context",
        "copies_instructions",
        "schema",
        "invalid_json",
        "duplicate",
    }
