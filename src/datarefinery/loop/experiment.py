"""``refinery experiment s3``: the S3 paper's Table 2 on one dataset, at one record budget, with
error bars.

The dataset is a preset folder (``--data``: imdb, rte, qnli; adversarial_qa runs the extractive
QA experiment of ``loop.qa_experiment``) or any labelled dataset described by an S3 spec
(``--spec``: task, real files, small model, seed synthesis). Every method
(``loop.methods``) runs once per run seed (``repeats`` seeds from ``seed``), each a small model
measured on the real test split:

- gold: trained on the real training split when the spec names one (then also a
  ``gold (validation)`` row), else on the real validation set;
- ZeroGen, GoldGen, S3 and the ablations ``s3_no_rationale`` and ``seed_only``: S3 runs.

Each generating run is an ordinary S3 run directory, OUT/<method>/seed-<S>/, so the experiment
resumes; all share OUT/cache.sqlite, so GoldGen, S3 and ``seed_only`` of one seed share their seed
set. The table (mean ± sd per method, the data-efficiency view, the extra-data analysis of the S3
runs) is written to OUT/table.md and OUT/table.json.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import zip_longest
from pathlib import Path
from typing import Any

from datarefinery.errors import UsageError
from datarefinery.llm.base import Backend
from datarefinery.loop.analysis import extra_data_analysis
from datarefinery.loop.methods import (
    DEFAULT_METHODS,
    METHODS,
    Budget,
    Dataset,
    method_spec,
    preset_dataset,
    spec_dataset,
)
from datarefinery.loop.qa_experiment import (
    QAExperiment,
    is_qa_folder,
    preset_experiment,
    run_qa_experiment,
)
from datarefinery.loop.qa_spec import is_qa_spec, load_qa_spec
from datarefinery.loop.s3 import run_s3
from datarefinery.loop.spec import load_real
from datarefinery.loop.table import efficiency, loop_run, summarize, write_table
from datarefinery.models.smallmodel import ModelKind, SmallModel, accuracy, make_small_model
from datarefinery.records import Record
from datarefinery.redact import public_spec

Log = Callable[[str], None]


@dataclass(frozen=True)
class ExperimentConfig:
    """One experiment. ``data`` (a preset folder) or ``spec`` (an S3 spec file) names the
    dataset. ``llm`` is the whole model block (None: the spec's); ``small_model``, ``rounds``,
    ``k``, ``seed`` and ``test_limit`` left None take the spec's values (presets: tfidf-lr, 2, 2,
    0, all). ``targets`` are test accuracies for the data-efficiency view (default: every
    generating method's final accuracy).
    """

    budget: int
    out: Path
    data: Path | None = None
    spec: Path | None = None
    llm: dict[str, Any] | None = None
    small_model: ModelKind | None = None
    rounds: int | None = None
    k: int | None = None
    seed_share: float = 0.5
    seed: int | None = None
    repeats: int = 1
    methods: Sequence[str] = DEFAULT_METHODS
    targets: Sequence[float] = field(default_factory=tuple)
    test_limit: int | None = None


def _check(config: ExperimentConfig) -> None:
    if (config.data is None) == (config.spec is None):
        raise UsageError(
            "name the dataset with --data DIR (imdb, rte, qnli, adversarial_qa) or --spec FILE"
        )
    if config.budget < 8:
        raise UsageError("--budget is the records each method may make: at least 8")
    if not 1 <= config.repeats <= 100:
        raise UsageError("--repeats is the run seeds per method: 1 to 100")
    if not 0 < config.seed_share < 1:
        raise UsageError("--seed-share is a share of the budget, between 0 and 1")
    unknown = [m for m in config.methods if m not in METHODS]
    if unknown or not config.methods:
        raise UsageError(
            f"--methods {','.join(config.methods)}: choose among {', '.join(METHODS)} "
            "(comma-separated), or all"
        )
    if any(not 0 <= t <= 1 for t in config.targets):
        raise UsageError("--target is a test accuracy between 0 and 1 (e.g. 0.8)")


def load_dataset(config: ExperimentConfig) -> Dataset:
    options: dict[str, Any] = {
        "small_model": config.small_model,
        "k": config.k,
        "seed": config.seed,
        "test_limit": config.test_limit,
    }
    if config.spec is not None:
        return spec_dataset(config.spec, config.llm, **options)
    assert config.data is not None
    return preset_dataset(config.data, config.llm or {}, **options)


def run_experiment(
    config: ExperimentConfig, log: Log | None = None, *, backend: Backend | None = None
) -> dict[str, Any]:
    """Run every method of ``config`` into ``config.out``; returns the table as a mapping.
    ``backend`` replaces the model (tests).
    """
    say = log or (lambda _: None)
    _check(config)
    qa = _qa_experiment(config)
    if qa is not None:
        return run_qa_experiment(qa, say, backend=backend)
    dataset = load_dataset(config)
    config.out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    data, task = dataset.data, dataset.task
    val = load_real(dataset.loaded.path(data.validation), task, data, limit=data.validation_limit)
    test = load_real(dataset.loaded.path(str(data.test)), task, data, limit=data.test_limit)
    rounds = dataset.rounds if config.rounds is None else config.rounds
    budget = Budget(config.budget, rounds, dataset.loaded.k, config.seed_share)
    seeds = [dataset.seed + i for i in range(config.repeats)]
    make = _model_maker(dataset)
    runs: list[dict[str, Any]] = []
    for method in dict.fromkeys(config.methods):
        for seed in seeds:
            if method == "gold":
                runs += _gold(dataset, make, val, test, seed, say)
                continue
            run = _generated(dataset, method, seed, budget, config.out, backend, say)
            if method == "zerogen":
                prefixes = _prefix_points(dataset, make, config.out, seed, budget, test)
                run["points"] = prefixes + run["points"]
            runs.append(run)
            if "note" in run:
                break  # does not apply: the same for every seed
    table = {
        "data": str(config.spec or config.data),
        "budget": config.budget,
        "small_model": dataset.loaded.small_model().model_dump(mode="json"),
        "llm": public_spec({"llm": dataset.base["llm"]})["llm"],
        "rounds": rounds,
        "k": budget.k,
        "seed_share": config.seed_share,
        "seeds": seeds,
        "validation": len(val),
        "test": len(test),
        "rows": summarize(runs),
        "efficiency": efficiency(runs, config.targets),
        "runs": runs,
        "extra_data_analysis": _pooled_analysis(dataset, config.out, seeds, runs),
    }
    return write_table(config.out, table, started)


def _qa_experiment(config: ExperimentConfig) -> QAExperiment | None:
    """The extractive QA experiment (``loop.qa_experiment``) of an ``adversarial_qa`` folder or a
    ``task_type: qa`` spec; None for a classification dataset.
    """
    if config.spec is not None and is_qa_spec(config.spec):
        spec = load_qa_spec(config.spec)
        data, loop = spec.data, spec.loop
        name, seed, llm = spec.name, spec.seed, spec.llm.model_dump(mode="json")
        options: dict[str, Any] = {
            "small_model": loop.small_model,
            "columns": dict(data.columns),
            "validation_limit": data.validation_limit,
            "test_limit": data.test_limit,
        }
        rounds, k = loop.rounds, loop.k
    elif config.data is not None and is_qa_folder(config.data):
        name, seed, llm, options, rounds, k = "adversarial_qa", 0, {}, {}, 2, 2
    else:
        return None
    if config.small_model not in (None, "transformer"):
        raise UsageError(
            f"--small-model {config.small_model}: extractive QA trains a span model (the "
            "fine-tuned MiniLM): leave --small-model out or give transformer"
        )
    seed = seed if config.seed is None else config.seed
    if config.test_limit is not None:
        options["test_limit"] = config.test_limit
    common: dict[str, Any] = {
        "budget": config.budget,
        "llm": config.llm if config.llm is not None else llm,
        "seeds": [seed + i for i in range(config.repeats)],
        "methods": config.methods,
        "rounds": rounds if config.rounds is None else config.rounds,
        "k": config.k or k,
        "seed_share": config.seed_share,
        "targets": config.targets,
        "name": name,
        **options,
    }
    if config.spec is not None:
        return QAExperiment(
            validation=Path(spec.data.validation),
            test=Path(spec.data.test),
            out=config.out,
            **common,
        )
    assert config.data is not None
    return preset_experiment(config.data, config.out, **common)


def _gold(
    dataset: Dataset,
    make: Callable[[int], SmallModel],
    val: list[Record],
    test: list[Record],
    seed: int,
    say: Log,
) -> list[dict[str, Any]]:
    """The small model on real data: the training split when there is one (and then on the
    validation set as well, the real data S3 sees), else the validation set.
    """
    data = dataset.data
    sets = [("gold", val)]
    if data.train is not None:
        train = load_real(
            dataset.loaded.path(data.train), dataset.task, data, limit=data.train_limit
        )
        sets = [("gold", train), ("gold (validation)", val)]
    label = str(dataset.task.label_field)
    runs = []
    for method, records in sets:
        model = make(seed).fit(records)
        run = {
            "method": method,
            "seed": seed,
            "records": len(records),
            "accuracy": round(accuracy(model, test, label), 4),
            "val_accuracy": None if records is val else round(accuracy(model, val, label), 4),
            "train_accuracy": round(accuracy(model, records, label), 4),
            "tokens": None,
        }
        run["points"] = [{"round": 0, "records": len(records), "accuracy": run["accuracy"]}]
        say(f"{method} (seed {seed}): {len(records)} real records, test {run['accuracy']:.4f}")
        runs.append(run)
    return runs


def _generated(
    dataset: Dataset,
    method: str,
    seed: int,
    budget: Budget,
    out: Path,
    backend: Backend | None,
    say: Log,
) -> dict[str, Any]:
    title = METHODS[method]
    spec = method_spec(dataset, method, seed=seed, budget=budget, cache=out / "cache.sqlite")
    if isinstance(spec, str):
        say(f"{title}: {spec}")
        return {"method": title, "note": spec}
    folder = out / method / f"seed-{seed}"
    say(f"{title} (seed {seed}): running into {folder}")
    result = run_s3(spec, folder, log=lambda line: say(f"  {title} {line}"), backend=backend)
    if result.status != "complete":
        raise UsageError(f"{title} stopped: {result.message} (rerun the command to resume)")
    return loop_run(title, seed, result)


def _prefix_points(
    dataset: Dataset,
    make: Callable[[int], SmallModel],
    out: Path,
    seed: int,
    budget: Budget,
    test: list[Record],
) -> list[dict[str, Any]]:
    """ZeroGen's curve: the small model on label-balanced prefixes of its set, at the sizes S3
    trains on after each round. ZeroGen has no rounds; without these points its single point at
    the full budget could not show whether it reaches an accuracy with fewer records.
    """
    folder = out / "zerogen" / f"seed-{seed}"
    records = [Record.from_dict(json.loads(line)) for line in _lines(folder / "dataset.jsonl")]
    label = str(dataset.task.label_field)
    by_label: dict[str, list[Record]] = {}
    for record in records:
        by_label.setdefault(str(record.fields[label]), []).append(record)
    # round-robin over the labels, so that every prefix is balanced as far as the set allows
    ordered = [r for group in zip_longest(*by_label.values()) for r in group if r is not None]
    points = []
    for size in [n for n in budget.checkpoints(dataset.labels) if n < len(ordered)]:
        prefix = ordered[:size]
        if len({str(r.fields[label]) for r in prefix}) < 2:
            continue
        model = make(seed).fit(prefix)
        points.append({"records": size, "accuracy": round(accuracy(model, test, label), 4)})
    return points


def _model_maker(dataset: Dataset) -> Callable[[int], SmallModel]:
    """Makes the spec's small model for a seed. For ``embedding-lr`` the models share one memo of
    encodings: the gold and ZeroGen-prefix models all measure the same real test texts.
    """
    options = dataset.loaded.small_model()
    embedder = None
    if options.kind == "embedding-lr":
        from datarefinery.evaluate.suite import MemoEmbedder

        embedder = MemoEmbedder()
    label = str(dataset.task.label_field)
    fields = dataset.task.content_fields

    def make(seed: int) -> SmallModel:
        return make_small_model(options, fields, label, seed=seed, embedder=embedder)

    return make


def _lines(path: Path) -> list[str]:
    return [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _pooled_analysis(
    dataset: Dataset, out: Path, seeds: list[int], runs: list[dict[str, Any]]
) -> dict[str, Any]:
    """The extra-data analysis of every S3 run, averaged with each run weighted by its pairs."""
    if not any(r["method"] == "S3" and "note" not in r for r in runs):
        return {"pairs": 0}
    label = str(dataset.task.label_field)
    parts = [
        extra_data_analysis(out / "s3" / f"seed-{s}", dataset.written, label, seed=s) for s in seeds
    ]
    pairs = sum(p["pairs"] for p in parts)
    pooled: dict[str, Any] = {"pairs": pairs}
    for key in ("edit_distance", "edit_distance_random", "cosine", "cosine_random"):
        measured = [p for p in parts if key in p]
        weight = sum(p["pairs"] for p in measured)
        if weight:
            pooled[key] = round(sum(p[key] * p["pairs"] for p in measured) / weight, 4)
    notes = [p["cosine_note"] for p in parts if "cosine_note" in p]
    if notes and "cosine" not in pooled:
        pooled["cosine_note"] = notes[0]
    return pooled
