import copy
import itertools
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

import datarefinery
from datarefinery.config import LlamaCppConfig, TaskSpec
from datarefinery.errors import ConfigError
from datarefinery.llm.scripted import ScriptedBackend, schema_reply
from datarefinery.steps.base import StepContext
from datarefinery.steps.synthesize.attributes import Attributes, AttributesConfig
from tests.support.examples import example_spec, run_example
from tests.support.fake import prompt_of, read_jsonl
from tests.support.specs import SENTIMENT_TASK

ATTRIBUTES = {"tone": {"angry": 3, "calm": 1}, "length": ["short", "long", "medium"]}


def planned(options: dict[str, Any], attributes: Any = ATTRIBUTES) -> list[dict[str, str]]:
    task = TaskSpec.model_validate(copy.deepcopy(SENTIMENT_TASK) | {"attributes": attributes})
    step = Attributes(AttributesConfig.model_validate(options))
    step.setup(StepContext(name="attributes", index=0, seed=11, task=task, llm=LlamaCppConfig()))
    return [job.provenance.conditioning["attributes"] for job in step.plan()]


def test_weighted_draws_follow_the_weights() -> None:
    draws = planned({"count_per_label": 2000, "labels": ["positive"]})
    tones = Counter(d["tone"] for d in draws)
    lengths = Counter(d["length"] for d in draws)
    assert 0.71 < tones["angry"] / 2000 < 0.79  # weight 3 of 4; ±4 sd of a binomial
    assert all(0.29 < lengths[v] / 2000 < 0.38 for v in ("short", "long", "medium"))


def test_uniform_ignores_the_weights() -> None:
    draws = planned({"count_per_label": 2000, "labels": ["positive"], "draw": "uniform"})
    assert 0.45 < Counter(d["tone"] for d in draws)["angry"] / 2000 < 0.55


def test_cycle_covers_the_grid_before_repeating() -> None:
    draws = planned({"count_per_label": 12, "labels": ["positive"], "draw": "cycle"})
    first, second = draws[:6], draws[6:]
    grid = {(t, n) for t, n in itertools.product(["angry", "calm"], ["short", "long", "medium"])}
    assert {(d["tone"], d["length"]) for d in first} == grid
    assert first == second


def test_draws_are_deterministic_and_differ_between_labels() -> None:
    assert planned({"count_per_label": 20}) == planned({"count_per_label": 20})
    draws = planned({"count_per_label": 20})
    assert draws[:20] != draws[20:]


def test_a_subset_of_attributes_and_unknown_ones() -> None:
    assert set(planned({"count_per_label": 1, "attributes": ["length"]})[0]) == {"length"}
    with pytest.raises(ConfigError, match="not in the task's attributes"):
        planned({"attributes": ["genre"]})
    with pytest.raises(ConfigError, match="needs attributes"):
        planned({}, attributes={})


def test_attributes_reach_the_prompt_and_provenance(tmp_path: Path) -> None:
    spec = {
        "seed": 2,
        "task": copy.deepcopy(SENTIMENT_TASK) | {"attributes": ATTRIBUTES},
        "llm": {"max_tokens": 64},
        "steps": [{"attributes": {"count_per_label": 2}}],
    }
    backend = ScriptedBackend(schema_reply())
    result = datarefinery.run(spec, tmp_path, backend=backend)
    records = read_jsonl(result.dataset_path)
    assert len(records) == 4
    for record in records:
        drawn = record["provenance"]["conditioning"]["attributes"]
        assert set(drawn) == {"tone", "length"}
        assert record["provenance"]["technique"] == "attributes"
    prompts = [prompt_of(r) for r in backend.requests]
    assert all("- tone: " in p and "- length: " in p for p in prompts)


def test_attribute_values_are_validated() -> None:
    with pytest.raises(ValueError, match="weights must be positive"):
        TaskSpec.model_validate(SENTIMENT_TASK | {"attributes": {"tone": {"a": 0}}})
    with pytest.raises(ValueError, match="lists a value twice"):
        TaskSpec.model_validate(SENTIMENT_TASK | {"attributes": {"tone": ["a", "a"]}})
    with pytest.raises(ValueError, match="has no values"):
        TaskSpec.model_validate(SENTIMENT_TASK | {"attributes": {"tone": []}})


@pytest.mark.slow
def test_example_on_the_embedded_model(tmp_path: Path) -> None:
    result = run_example("attributes", tmp_path, {"count_per_label": 1}, max_chars={"text": 160})
    assert result.status == "complete"
    kept, rejected = read_jsonl(result.dataset_path), read_jsonl(result.rejected_path)
    assert len(kept) + len(rejected) == 2
    genres = set(example_spec("attributes")["task"]["attributes"]["genre"])
    for record in kept:
        drawn = record["provenance"]["conditioning"]["attributes"]
        assert drawn["genre"] in genres and set(drawn) == {"genre", "length", "viewer"}
        assert record["provenance"]["model"].startswith("llamacpp:SmolLM2")
