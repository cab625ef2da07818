"""The methods' S3 specs: budgets, the ablations, sentence pairs, what a spec may seed with."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from datarefinery.errors import ConfigError
from datarefinery.loop.methods import (
    NOT_FOR_PAIRS,
    Budget,
    method_spec,
    preset_dataset,
    spec_dataset,
)
from datarefinery.loop.spec import LoadedS3Spec
from tests.support.specs import SENTIMENT_TASK

BUDGET = Budget(records=20, rounds=2, k=2, seed_share=0.5)


def pairs_spec(tmp_path: Path) -> Path:
    """A sentence-pair task (a claim about a given context) described by a spec."""
    (tmp_path / "pairs.jsonl").write_text(
        '{"context": "The shop opens at nine.", "claim": "It opens in the morning.", '
        '"verdict": "holds"}\n'
        '{"context": "The shop opens at nine.", "claim": "It opens at noon.", '
        '"verdict": "fails"}\n'
    )
    spec = {
        "task": {
            "description": "Does the claim hold given the context?",
            "fields": {
                "context": {"description": "a sentence"},
                "claim": {"description": "a short claim about the context"},
                "label": {"type": "label"},
            },
            "labels": {"holds": "the claim is true", "fails": "the claim is false"},
        },
        "synthesis": [{"conditioned": {"pool": "pairs.jsonl", "given": ["context"]}}],
        "data": {"validation": "pairs.jsonl", "test": "pairs.jsonl", "label_field": "verdict"},
        "loop": {"extrapolate": {"k": 2}},  # given: taken from the conditioned seed step
    }
    path = tmp_path / "pairs.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def single_spec(tmp_path: Path, **changes: Any) -> Path:
    spec: dict[str, Any] = {
        "seed": 9,
        "task": copy.deepcopy(SENTIMENT_TASK),
        "synthesis": [{"rationale": {"rationales": 3}}, {"filter": {"min_chars": 5}}],
        "data": {"validation": "v.jsonl", "test": "t.jsonl"},
        "loop": {"rounds": 3, "small_model": "tfidf-lr"},
        **changes,
    }
    path = tmp_path / "single.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def options(**given: Any) -> dict[str, Any]:
    return {"small_model": None, "k": None, "seed": None, "test_limit": None, **given}


def spec_of(result: LoadedS3Spec | str) -> dict[str, Any]:
    assert isinstance(result, LoadedS3Spec), result
    return result.spec.model_dump(mode="json")


def test_budget_split() -> None:
    assert BUDGET.seed_per_label(2) == 5  # half of 20 records, per label
    assert BUDGET.per_round(2) == 3  # 10 left: 2 rounds of 3 examples x k 2
    assert BUDGET.checkpoints(2) == [10, 16, 20]


def test_methods_of_a_single_text_spec(tmp_path: Path) -> None:
    dataset = spec_dataset(single_spec(tmp_path), None, **options())
    assert dataset.seed == 9 and dataset.rounds == 3 and dataset.given == []
    cache = tmp_path / "cache.sqlite"

    def make(method: str) -> dict[str, Any]:
        return spec_of(method_spec(dataset, method, seed=1, budget=BUDGET, cache=cache))

    s3 = make("s3")
    assert s3["synthesis"] == [
        {"rationale": {"rationales": 3, "count_per_label": 5}},
        {"filter": {"min_chars": 5}},
    ]
    assert s3["loop"]["rounds"] == 2 and s3["loop"]["source"] == "errors"
    assert s3["loop"]["max_records"] == 20 and s3["loop"]["examples_per_round"] == 3
    assert s3["seed"] == 1 and s3["llm"]["cache_path"] == str(cache.resolve())
    assert make("goldgen")["loop"]["source"] == "all"
    zerogen = make("zerogen")
    assert zerogen["synthesis"][0] == {"zero_shot": {"count_per_label": 10}}
    assert zerogen["loop"]["rounds"] == 0
    # ablations: S3 from a zero-shot seed set, and S3's seed set without rounds
    no_rationale = make("s3_no_rationale")
    assert no_rationale["synthesis"][0] == {"zero_shot": {"count_per_label": 5}}
    assert no_rationale["loop"] == {**s3["loop"]}
    seed_only = make("seed_only")
    assert seed_only["synthesis"] == s3["synthesis"] and seed_only["loop"]["rounds"] == 0


def test_methods_of_a_pair_spec(tmp_path: Path) -> None:
    dataset = spec_dataset(pairs_spec(tmp_path), None, **options(k=3))
    assert dataset.given == ["context"] and dataset.written == ["claim"]
    cache = tmp_path / "cache.sqlite"
    zerogen = spec_of(method_spec(dataset, "zerogen", seed=0, budget=BUDGET, cache=cache))
    # ZeroGen for pairs: the conditioned seed step, at the whole budget, without rationales
    assert zerogen["synthesis"][0]["conditioned"]["count_per_label"] == 10
    s3 = method_spec(dataset, "s3", seed=0, budget=BUDGET, cache=cache)
    assert spec_of(s3)["loop"]["extrapolate"] == {"k": 3, "given": ["context"]}
    # relative paths (the pool, the data) are read against the spec's folder
    assert isinstance(s3, LoadedS3Spec) and s3.path("pairs.jsonl") == tmp_path / "pairs.jsonl"
    assert method_spec(dataset, "s3_no_rationale", seed=0, budget=BUDGET, cache=cache) == (
        NOT_FOR_PAIRS
    )


def test_preset_methods(tmp_path: Path) -> None:
    folder = tmp_path / "rte"
    folder.mkdir()
    for split in ("validation", "test"):
        (folder / f"{split}.jsonl").write_text(
            '{"premise": "a b c", "hypothesis": "a b", "label_text": "entailment"}\n'
        )
    dataset = preset_dataset(folder, {"max_tokens": 32}, **options())
    assert dataset.given == ["premise"] and dataset.rounds == 2
    result = method_spec(dataset, "s3_no_rationale", seed=0, budget=BUDGET, cache=tmp_path / "c")
    assert result == NOT_FOR_PAIRS and "does not apply" in result


def test_the_seed_step_must_take_a_count(tmp_path: Path) -> None:
    path = single_spec(tmp_path, synthesis=[{"self_instruct": {"rounds": 1}}])
    with pytest.raises(ConfigError, match=r"single.yaml, field synthesis\[0\].*count_per_label"):
        spec_dataset(path, None, **options())


def test_a_spec_without_a_test_split_is_refused(tmp_path: Path) -> None:
    path = single_spec(tmp_path, data={"validation": "v.jsonl"})
    with pytest.raises(ConfigError, match=r"field data\.test"):
        spec_dataset(path, None, **options())
