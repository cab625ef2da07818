"""The methods ``refinery experiment s3`` compares, each an S3 spec built from one dataset.

A ``Dataset`` is what the methods share: the task, the real data, the model, the small model, the
extrapolate options and the seed synthesis (the S3 seed round), read from a preset folder or from
an S3 spec file. ``method_spec`` turns it into one method's S3 spec at a record budget:

- ZeroGen: ``budget`` records of zero-shot synthesis, no rounds (sentence pairs: the seed
  synthesis, which for pairs is ``conditioned`` on real contexts without rationales);
- GoldGen: the seed set, then extrapolation from random validation examples;
- S3: the seed set, then extrapolation from the validation errors;
- ``s3_no_rationale`` (ablation): a zero-shot seed set, then extrapolation from the errors;
- ``seed_only`` (ablation): the seed set alone, no rounds.

The seed set takes ``seed_share`` of the budget and the rounds the rest. The seed synthesis's
first step generates (its ``count_per_label`` is set from the budget); the steps after it
(filters, judges) are kept for every method, so all are curated alike. The gold rows train on real
data and need no spec.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from datarefinery.config import TaskSpec
from datarefinery.errors import ConfigError, UsageError
from datarefinery.loop.presets import preset_for
from datarefinery.loop.spec import LoadedS3Spec, RealDataSpec, load_s3_spec
from datarefinery.models.smallmodel import ModelKind

# name on the command line -> name in the table
METHODS = {
    "gold": "gold",
    "zerogen": "ZeroGen",
    "goldgen": "GoldGen",
    "s3": "S3",
    "s3_no_rationale": "S3 without rationales",
    "seed_only": "seed set only",
}
DEFAULT_METHODS = ("gold", "zerogen", "goldgen", "s3")
NOT_FOR_PAIRS = (
    "does not apply: this task seeds with given fields (sentence pairs), whose seed synthesis is "
    "already without rationales, so its S3 row is this ablation"
)


@dataclass(frozen=True)
class Budget:
    """The records each method may make, and how GoldGen and S3 spend them."""

    records: int
    rounds: int
    k: int
    seed_share: float

    def seed_per_label(self, labels: int) -> int:
        return max(labels, int(self.records * self.seed_share)) // labels

    def per_round(self, labels: int) -> int:
        """Examples extrapolated per round, so that the rounds spend what the seed set left."""
        rest = self.records - self.seed_per_label(labels) * labels
        return max(1, math.ceil(rest / (self.k * max(1, self.rounds))))

    def checkpoints(self, labels: int) -> list[int]:
        """The set sizes S3 plans to train on after each round (the last is the budget)."""
        seed = self.seed_per_label(labels) * labels
        step = self.per_round(labels) * self.k
        return sorted(
            {*(min(seed + i * step, self.records) for i in range(self.rounds)), self.records}
        )


@dataclass(frozen=True)
class Dataset:
    """What every method shares. ``base`` is an S3 spec mapping without ``synthesis``, ``steps``
    the seed synthesis, ``given`` the fields copied from real records (sentence pairs), ``source``
    the spec file relative paths are read against (``<spec>`` for a preset: absolute paths);
    ``seed`` and ``rounds`` are the defaults of the command's ``--seed`` and ``--rounds``.
    """

    name: str
    base: dict[str, Any]
    steps: list[dict[str, Any]]
    given: list[str]
    source: str
    seed: int
    rounds: int
    loaded: LoadedS3Spec

    @property
    def task(self) -> TaskSpec:
        return self.loaded.spec.task

    @property
    def data(self) -> RealDataSpec:
        return self.loaded.spec.data

    @property
    def labels(self) -> int:
        return len(self.task.labels)

    @property
    def written(self) -> list[str]:
        """The fields the model writes (compared by the extra-data analysis)."""
        return [f for f in self.task.content_fields if f not in self.given]

    def synthesis(self, per_label: int, *, zero_shot: bool = False) -> list[dict[str, Any]]:
        """The seed synthesis making ``per_label`` records per label; with ``zero_shot`` (a
        single-text task) its generating step is ``zero_shot`` instead.
        """
        steps = copy.deepcopy(self.steps)
        if zero_shot and not self.given:
            steps[0] = {"zero_shot": {"count_per_label": per_label}}
        else:
            name, options = next(iter(steps[0].items()))
            steps[0] = {name: {**(options or {}), "count_per_label": per_label}}
        return steps


def preset_dataset(
    folder: Path,
    llm: dict[str, Any],
    *,
    small_model: ModelKind | None,
    k: int | None,
    seed: int | None,
    test_limit: int | None,
) -> Dataset:
    """One of the shared data folders (imdb, rte, qnli) with its preset task."""
    preset = preset_for(folder)
    validation = str((folder / "validation.jsonl").resolve())
    base = {
        "name": folder.resolve().name.lower(),
        "task": copy.deepcopy(preset.task),
        "llm": llm,
        "data": {
            "validation": validation,
            "test": str((folder / "test.jsonl").resolve()),
            "label_field": "label_text",
            "test_limit": test_limit,
        },
        "loop": {
            "small_model": small_model or "tfidf-lr",
            "extrapolate": {"k": k or 2, "given": preset.given},
        },
    }
    first: dict[str, Any]
    if preset.given:
        first = {"conditioned": {"pool": validation, "given": preset.given}}
    else:
        # two reason lists per label: a weak model's single list can be unusable
        first = {"rationale": {"rationale_calls": 2}}
    return _dataset(base, [first], preset.given, "<spec>", seed or 0, 2)


def spec_dataset(
    path: Path,
    llm: dict[str, Any] | None,
    *,
    small_model: ModelKind | None,
    k: int | None,
    seed: int | None,
    test_limit: int | None,
) -> Dataset:
    """An S3 spec file: its task, data, llm (``llm`` replaces it), small model, extrapolate
    options and seed synthesis; the options given here override the spec's.
    """
    loaded = load_s3_spec(path)
    dump = loaded.spec.model_dump(mode="json")
    if not dump["data"].get("test"):
        raise ConfigError(
            f"{path}, field data.test: the experiment measures every method on a real test "
            "split; add data.test (a .jsonl, .csv or .parquet file)"
        )
    loop = dump["loop"]
    if small_model is not None:
        loop["small_model"] = small_model
    if k is not None:
        loop["extrapolate"]["k"] = k
    if test_limit is not None:
        dump["data"]["test_limit"] = test_limit
    steps = dump["synthesis"]
    _check_first_step(steps[0], str(path))
    options = next(iter(steps[0].values()))
    given = list(loop["extrapolate"].get("given") or (options or {}).get("given") or [])
    # a pair task seeded with `conditioned` keeps the same context when it extrapolates
    loop["extrapolate"].setdefault("given", given)
    base = {
        "name": dump["name"],
        "task": dump["task"],
        "llm": llm if llm is not None else dump["llm"],
        "data": dump["data"],
        "loop": {"small_model": loop["small_model"], "extrapolate": loop["extrapolate"]},
        "shard_size": dump["shard_size"],
    }
    seed = dump["seed"] if seed is None else seed
    return _dataset(base, steps, given, str(path), seed, loop["rounds"])


def _check_first_step(step: dict[str, Any], source: str) -> None:
    from datarefinery.steps.registry import step_class
    from datarefinery.steps.synthesize.planned import LabelledConfig

    name = next(iter(step))
    config = getattr(step_class(name), "Config", None)
    if not (isinstance(config, type) and issubclass(config, LabelledConfig)):
        raise ConfigError(
            f"{source}, field synthesis[0]: the experiment sizes the seed round from --budget "
            f"through count_per_label, which {name!r} does not take; start synthesis with a step "
            "that does (rationale, zero_shot, few_shot, attributes, conditioned)"
        )


def _dataset(
    base: dict[str, Any],
    steps: list[dict[str, Any]],
    given: list[str],
    source: str,
    seed: int,
    rounds: int,
) -> Dataset:
    loaded = load_s3_spec({**base, "synthesis": steps}, source=source)
    return Dataset(base["name"], base, steps, given, source, seed, rounds, loaded)


def method_spec(
    dataset: Dataset, method: str, *, seed: int, budget: Budget, cache: Path
) -> LoadedS3Spec | str:
    """The S3 spec of ``method`` for run seed ``seed``, or why the method does not apply."""
    labels = dataset.labels
    spec = copy.deepcopy(dataset.base)
    spec.update(name=f"{dataset.name}-{method}", seed=seed)
    spec["llm"] = {**spec["llm"], "cache_path": str(cache.resolve())}
    loop = spec["loop"]
    seed_count = budget.seed_per_label(labels)
    if method == "zerogen":
        spec["synthesis"] = dataset.synthesis(budget.records // labels, zero_shot=True)
        loop["rounds"] = 0
    elif method == "seed_only":
        spec["synthesis"] = dataset.synthesis(seed_count)
        loop["rounds"] = 0
    elif method in ("goldgen", "s3", "s3_no_rationale"):
        if method == "s3_no_rationale" and dataset.given:
            return NOT_FOR_PAIRS
        zero_shot = method == "s3_no_rationale"
        spec["synthesis"] = dataset.synthesis(seed_count, zero_shot=zero_shot)
        loop.update(
            rounds=budget.rounds,
            patience=budget.rounds + 1,  # the same budget for every method: no early stop
            source="all" if method == "goldgen" else "errors",
            examples_per_round=budget.per_round(labels),
            max_records=budget.records,
        )
    else:
        raise UsageError(f"unknown method {method!r}: use {', '.join(METHODS)}")
    return load_s3_spec(spec, source=dataset.source)
