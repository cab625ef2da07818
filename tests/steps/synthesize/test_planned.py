"""The per-label planning base (planned.py), through its plainest step (zero_shot); the run
bookkeeping is in tests/test_runner.py."""

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

import datarefinery
from datarefinery.errors import ConfigError
from datarefinery.llm.base import Request
from datarefinery.llm.scripted import ScriptedBackend, schema_reply
from tests.support.fake import prompt_of, read_jsonl
from tests.support.specs import SENTIMENT_TASK

INSTRUCTION_TASK: dict[str, Any] = {
    "description": "Instructions and answers.",
    "fields": {
        "instruction": {"max_chars": 80},
        "output": {"max_chars": 80},
    },
}


def spec(step: dict[str, Any], task: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "seed": 1,
        "task": copy.deepcopy(task or SENTIMENT_TASK),
        "llm": {"max_tokens": 64},
        "steps": [step],
        **extra,
    }


def test_per_call_batches_and_the_last_partial_call(tmp_path: Path) -> None:
    backend = ScriptedBackend(schema_reply())
    result = datarefinery.run(
        spec({"zero_shot": {"count_per_label": 5, "per_call": 2}}), tmp_path, backend=backend
    )
    sizes = sorted(
        (r.json_schema or {})["properties"].get("records", {}).get("minItems", 1)
        for r in backend.requests
    )
    assert sizes == [1, 1, 2, 2, 2, 2]  # 5 = 2 + 2 + 1 per label
    records = read_jsonl(result.dataset_path)
    assert len(records) == 10
    assert {r["provenance"]["conditioning"]["label"] for r in records} == {"positive", "negative"}


def test_a_task_without_labels_plans_count_in_all(tmp_path: Path) -> None:
    backend = ScriptedBackend(schema_reply())
    result = datarefinery.run(
        spec({"zero_shot": {"count_per_label": 3}}, INSTRUCTION_TASK), tmp_path, backend=backend
    )
    records = read_jsonl(result.dataset_path)
    assert len(records) == 3
    assert set(records[0]["fields"]) == {"instruction", "output"}
    assert records[0]["provenance"]["conditioning"] == {}
    assert '"label"' not in prompt_of(backend.requests[0])


def test_count_falls_back_to_the_task_then_to_ten(tmp_path: Path) -> None:
    task = copy.deepcopy(SENTIMENT_TASK) | {"count_per_label": 2}
    result = datarefinery.run(
        spec({"zero_shot": None}, task), tmp_path / "a", backend=ScriptedBackend(schema_reply())
    )
    assert result.dataset_size == 4
    result = datarefinery.run(
        spec({"zero_shot": None}), tmp_path / "b", backend=ScriptedBackend(schema_reply())
    )
    assert result.dataset_size == 20


def test_task_sampling_sits_between_llm_and_step_options(tmp_path: Path) -> None:
    task = copy.deepcopy(SENTIMENT_TASK) | {"sampling": {"temperature": 1.3, "top_p": 0.5}}
    backend = ScriptedBackend(schema_reply())
    datarefinery.run(
        spec({"zero_shot": {"count_per_label": 1, "temperature": 0.2}}, task, llm={"top_p": 0.9}),
        tmp_path,
        backend=backend,
    )
    params = backend.requests[0].params
    assert params.temperature == 0.2  # the step's option wins
    assert params.top_p == 0.5  # the task's sampling beats llm


def test_templates_are_overridden_by_path_relative_to_the_spec(tmp_path: Path) -> None:
    (tmp_path / "prompts").mkdir()
    (tmp_path / "prompts" / "mine.jinja").write_text(
        "### user\nMY PROMPT for {{ label }}, {{ n }} record(s)."
    )
    (tmp_path / "prompts" / "step.jinja").write_text("### user\nSTEP PROMPT {{ label }}")
    task = copy.deepcopy(SENTIMENT_TASK) | {"templates": {"zero_shot": "prompts/mine.jinja"}}
    for name, step_options, expected in [
        ("task", {"count_per_label": 1}, "MY PROMPT for"),
        ("step", {"count_per_label": 1, "template": "prompts/step.jinja"}, "STEP PROMPT"),
    ]:
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump(spec({"zero_shot": step_options}, task)))
        backend = ScriptedBackend(schema_reply())
        result = datarefinery.run(path, tmp_path / f"out-{name}", backend=backend)
        assert prompt_of(backend.requests[0]).startswith(expected)
        hashes = {r["provenance"]["template_hash"] for r in read_jsonl(result.dataset_path)}
        assert len(hashes) == 1


def test_a_template_path_that_does_not_exist_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no prompt template"):
        datarefinery.run(
            spec({"zero_shot": {"template": "nowhere/missing.jinja"}}),
            tmp_path,
            backend=ScriptedBackend(schema_reply()),
        )


def test_labels_outside_the_task_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not in the task's labels"):
        datarefinery.run(
            spec({"zero_shot": {"labels": ["neutral"]}}),
            tmp_path,
            backend=ScriptedBackend(schema_reply()),
        )


def test_empty_text_is_rejected_with_reason(tmp_path: Path) -> None:
    def text(name: str, request: Request, index: int) -> str:
        return " " * 12 if request.seed and request.seed % 2 else f"review {request.seed}"

    result = datarefinery.run(
        spec({"zero_shot": {"count_per_label": 4}}),
        tmp_path,
        backend=ScriptedBackend(schema_reply(text)),
    )
    rejected = read_jsonl(result.rejected_path)
    assert rejected and {r["reason"] for r in rejected} == {"empty"}
    assert result.dataset_size + len(rejected) == 8
