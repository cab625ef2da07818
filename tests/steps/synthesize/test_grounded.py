import json
from pathlib import Path
from typing import Any

import pytest

import datarefinery
from datarefinery.errors import ConfigError
from datarefinery.llm.base import Request
from datarefinery.llm.scripted import ScriptedBackend, schema_reply
from datarefinery.steps.synthesize.grounded import support_share
from tests.support.examples import EXAMPLES, run_example
from tests.support.fake import prompt_of, read_jsonl

FACTS = EXAMPLES / "data" / "facts.jsonl"

QA_TASK = {
    "description": "General knowledge QA.",
    "fields": {"question": {"max_chars": 100}, "answer": {"max_chars": 60}},
}


def spec(options: dict[str, Any], task: dict[str, Any] = QA_TASK) -> dict[str, Any]:
    return {"seed": 3, "task": task, "llm": {"max_tokens": 64}, "steps": [{"grounded": options}]}


def test_support_share() -> None:
    fact = "Mount Everest is 8,849 metres high."
    assert support_share("8,849 metres", fact) == 1.0
    assert support_share("It is 8849 metres high", fact) == pytest.approx(2 / 3)  # 8849 ≠ 8 849
    assert support_share("about nine kilometres", fact) == 0.0
    assert support_share("the", "the cat") == 1.0
    assert support_share("it is", "a cat") == 0.0


def answer_from_prompt(name: str, request: Request, index: int) -> str:
    fact = prompt_of(request).split("Fact: ")[1].split("\n")[0]
    if name == "question":
        return f"Question {index} on fact {len(fact)}?"
    # Answer from the fact, except for the fact about the ocean, where the model makes things up.
    return "a huge lake" if "ocean" in fact else fact.split()[-2]


def test_fact_ids_in_provenance_and_unsupported_answers_rejected(tmp_path: Path) -> None:
    facts = tmp_path / "facts.jsonl"
    facts.write_text(
        '{"id": "f1", "fact": "Water boils at 100 degrees Celsius."}\n'
        '{"id": "f2", "fact": "The Pacific is the largest ocean."}\n'
        '{"id": "f3", "fact": "The heart has four chambers."}\n'
    )
    result = datarefinery.run(
        spec({"facts": str(facts), "fact_field": "fact", "per_fact": 2, "per_call": 2}),
        tmp_path / "out",
        backend=ScriptedBackend(schema_reply(answer_from_prompt)),
    )
    kept = read_jsonl(result.dataset_path)
    rejected = read_jsonl(result.rejected_path)
    assert sorted(r["provenance"]["conditioning"]["fact_id"] for r in kept) == [
        "f1",
        "f1",
        "f3",
        "f3",
    ]
    assert {r["fields"]["answer"] for r in kept} == {"degrees", "four"}
    assert len(kept) == 4
    assert [r["reason"] for r in rejected] == ["unsupported_answer"] * 2
    assert {r["record"]["provenance"]["conditioning"]["fact_id"] for r in rejected} == {"f2"}


def test_table_rows_become_facts_and_span_support(tmp_path: Path) -> None:
    table = tmp_path / "planets.csv"
    table.write_text("id,planet,moons\nearth,Earth,1\nmars,Mars,2\n")
    backend = ScriptedBackend(
        schema_reply(lambda name, request, i: "Mars" if name == "answer" else "Which planet?")
    )
    task = {
        "description": "QA about a table.",
        "fields": {
            "context": {"max_chars": 200},
            "question": {"max_chars": 100},
            "answer": {"max_chars": 60},
        },
    }
    result = datarefinery.run(
        spec({"facts": str(table), "support": "span", "context_field": "context"}, task),
        tmp_path / "out",
        backend=backend,
    )
    prompts = [prompt_of(r) for r in backend.requests]
    assert any("Fact: planet: Earth; moons: 1" in p for p in prompts)
    (kept,) = read_jsonl(result.dataset_path)
    assert kept["fields"]["context"] == "planet: Mars; moons: 2"
    assert kept["provenance"]["conditioning"]["fact_id"] == "mars"
    (rejected,) = read_jsonl(result.rejected_path)
    assert rejected["reason"] == "unsupported_answer"
    assert "does not occur in the fact" in rejected["detail"]


def test_labels_and_missing_answer_fields_are_refused(tmp_path: Path) -> None:
    facts = tmp_path / "facts.jsonl"
    facts.write_text(json.dumps({"fact": "A fact."}) + "\n")
    labelled = {
        **QA_TASK,
        "fields": {**QA_TASK["fields"], "label": {"type": "label"}},
        "labels": ["a", "b"],
    }
    with pytest.raises(ConfigError, match="must not have a label"):
        datarefinery.run(
            spec({"facts": str(facts)}, labelled), tmp_path / "1", backend=ScriptedBackend([])
        )
    with pytest.raises(ConfigError, match="answer_field 'reply'"):
        datarefinery.run(
            spec({"facts": str(facts), "answer_field": "reply"}),
            tmp_path / "2",
            backend=ScriptedBackend([]),
        )


@pytest.mark.slow
def test_example_on_the_embedded_model(tmp_path: Path) -> None:
    result = run_example("grounded", tmp_path, {"limit": 2})
    assert result.status == "complete"
    kept, rejected = read_jsonl(result.dataset_path), read_jsonl(result.rejected_path)
    assert len(kept) + len(rejected) == 2
    facts = {r["id"]: r["fact"] for r in map(json.loads, FACTS.read_text().splitlines())}
    for record in kept:
        fact = facts[record["provenance"]["conditioning"]["fact_id"]]
        assert support_share(record["fields"]["answer"], fact) >= 0.6


def test_a_question_that_gives_its_answer_away_is_rejected(tmp_path: Path) -> None:
    facts = tmp_path / "facts.jsonl"
    facts.write_text('{"id": "f1", "fact": "The Pacific is the largest ocean."}\n')
    result = datarefinery.run(
        spec({"facts": str(facts), "fact_field": "fact"}),
        tmp_path / "out",
        backend=ScriptedBackend(
            schema_reply(lambda name, request, i: "The Pacific is the largest ocean.")
        ),
    )
    (rejected,) = read_jsonl(result.rejected_path)
    assert rejected["reason"] == "answer_in_question"
