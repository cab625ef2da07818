"""``refinery experiment s3``: the S3 paper's Table 2 on one dataset, at one record budget.

Four rows, each a small model measured on the real test split:

- gold: trained on the real validation set;
- ZeroGen: trained on ``budget`` records of zero-shot synthesis (for sentence pairs, hypotheses
  written for premises of the validation set, without rationales);
- GoldGen: the S3 seed set, then extrapolation from random samples of the whole validation set;
- S3: the same seed set, then extrapolation from the validation errors.

GoldGen and S3 spend the same record budget: a ``seed_share`` of it on the seed set (shared: the
second run answers it from the common response cache) and the rest in ``rounds`` rounds of the
same number of examples × ``k``. Each method is an ordinary S3 run directory under OUT, so the
experiment resumes; the table is written to OUT/table.md and OUT/table.json, with the extra-data
analysis of the S3 run.
"""

from __future__ import annotations

import copy
import math
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from datarefinery.errors import UsageError
from datarefinery.io.write import write_json_atomic
from datarefinery.llm.base import Backend
from datarefinery.loop.analysis import extra_data_analysis
from datarefinery.loop.s3 import run_s3
from datarefinery.loop.spec import load_real, load_s3_spec
from datarefinery.models.smallmodel import ModelKind, accuracy, make_small_model

Log = Callable[[str], None]


@dataclass(frozen=True)
class Preset:
    """How to run a dataset: its task, how to read its files, how to synthesize it."""

    task: dict[str, Any]
    given: list[str]  # fields copied from the pool / the example (sentence pairs)

    @property
    def written(self) -> list[str]:
        return [f for f in self.task["fields"] if f != "label" and f not in self.given]


_NLI_LABELS = {
    "entailment": "the first sentence proves the second true",
    "not_entailment": "the first sentence does not prove the second (it is false or unknown)",
}

PRESETS: dict[str, Preset] = {
    "imdb": Preset(
        task={
            "description": "Sentiment classification of English movie reviews, like IMDb.",
            "fields": {
                "text": {
                    "description": "a movie review of two to four sentences written by a viewer",
                    "min_chars": 40,
                    "max_chars": 300,
                },
                "label": {"type": "label"},
            },
            "labels": {
                "positive": "the reviewer liked the movie",
                "negative": "the reviewer disliked the movie",
            },
        },
        given=[],
    ),
    "rte": Preset(
        task={
            "description": "Textual entailment: is the hypothesis true whenever the premise is?",
            "fields": {
                "premise": {"description": "a news sentence", "max_chars": 600},
                "hypothesis": {
                    "description": "one short sentence about the premise",
                    "min_chars": 10,
                    "max_chars": 160,
                },
                "label": {"type": "label"},
            },
            "labels": _NLI_LABELS,
        },
        given=["premise"],
    ),
    "qnli": Preset(
        task={
            "description": "Question answering NLI: does the sentence answer the question?",
            "fields": {
                "question": {
                    "description": "one question a reader could ask",
                    "min_chars": 10,
                    "max_chars": 160,
                },
                "sentence": {"description": "a sentence from Wikipedia", "max_chars": 600},
                "label": {"type": "label"},
            },
            "labels": {
                "entailment": "the sentence answers the question",
                "not_entailment": "the sentence does not answer the question",
            },
        },
        given=["sentence"],
    ),
}


@dataclass(frozen=True)
class ExperimentConfig:
    data: Path
    budget: int
    out: Path
    llm: dict[str, Any]
    small_model: ModelKind = "tfidf-lr"
    rounds: int = 2
    k: int = 2
    seed_share: float = 0.5
    seed: int = 0
    test_limit: int | None = None


def preset_for(data: Path) -> Preset:
    preset = PRESETS.get(data.resolve().name.lower())
    if preset is None:
        raise UsageError(
            f"no preset for {data}: the experiment knows {', '.join(sorted(PRESETS))} "
            "(a folder of that name with validation.jsonl and test.jsonl)"
        )
    for split in ("validation.jsonl", "test.jsonl"):
        if not (data / split).is_file():
            raise UsageError(f"{data} has no {split}")
    return preset


def _spec(config: ExperimentConfig, preset: Preset, name: str) -> dict[str, Any]:
    return {
        "name": name,
        "seed": config.seed,
        "task": copy.deepcopy(preset.task),
        "llm": {**config.llm, "cache_path": str((config.out / "cache.sqlite").resolve())},
        "synthesis": [],
        "data": {
            "validation": str((config.data / "validation.jsonl").resolve()),
            "test": str((config.data / "test.jsonl").resolve()),
            "label_field": "label_text",
            "test_limit": config.test_limit,
        },
        "loop": {
            "small_model": config.small_model,
            "extrapolate": {"k": config.k, "given": preset.given},
        },
    }


def _generation(preset: Preset, config: ExperimentConfig, per_label: int, rationale: bool) -> Any:
    if preset.given:
        pool = str((config.data / "validation.jsonl").resolve())
        return {"conditioned": {"pool": pool, "given": preset.given, "count_per_label": per_label}}
    if rationale:
        # two reason lists per label: a weak model's single list can be unusable
        return {"rationale": {"count_per_label": per_label, "rationale_calls": 2}}
    return {"zero_shot": {"count_per_label": per_label}}


def run_experiment(
    config: ExperimentConfig, log: Log | None = None, *, backend: Backend | None = None
) -> dict[str, Any]:
    """Run gold, ZeroGen, GoldGen and S3 into ``config.out``; returns the table as a mapping.
    ``backend`` replaces the model (tests).
    """
    # Why long: one method after the other at the same budget, in the table's order; each is a short
    # call
    say = log or (lambda _: None)
    if config.budget < 8:
        raise UsageError("--budget is the records each method may make: at least 8")
    preset = preset_for(config.data)
    config.out.mkdir(parents=True, exist_ok=True)
    labels = len(preset.task["labels"])
    started = time.perf_counter()

    base = load_s3_spec({**_spec(config, preset, "gold"), "synthesis": [{"zero_shot": None}]})
    task, data = base.spec.task, base.spec.data
    val = load_real(Path(data.validation), task, data)
    test = load_real(Path(str(data.test)), task, data, limit=data.test_limit)
    fields = task.content_fields
    gold = make_small_model(config.small_model, fields, "label", seed=config.seed).fit(val)
    rows: list[dict[str, Any]] = [
        {"method": "gold", "records": len(val), "accuracy": round(accuracy(gold, test), 4)}
    ]
    say(f"gold: {len(val)} real records, test accuracy {rows[0]['accuracy']:.4f}")

    zerogen = _spec(config, preset, "zerogen")
    zerogen["synthesis"] = [_generation(preset, config, config.budget // labels, False)]
    zerogen["loop"]["rounds"] = 0
    runs = {"ZeroGen": zerogen}
    seed_records = max(labels, int(config.budget * config.seed_share))
    rest = config.budget - (seed_records // labels) * labels
    per_round = max(1, math.ceil(rest / (config.k * max(1, config.rounds))))
    for method, source in (("GoldGen", "all"), ("S3", "errors")):
        spec = _spec(config, preset, method.lower())
        spec["synthesis"] = [_generation(preset, config, seed_records // labels, True)]
        spec["loop"].update(
            rounds=config.rounds,
            patience=config.rounds + 1,  # same budget for both: no early stop
            source=source,
            examples_per_round=per_round,
            max_records=config.budget,
        )
        runs[method] = spec
    for method, spec in runs.items():
        say(f"{method}: running into {config.out / method.lower()}")
        result = run_s3(
            spec, config.out / method.lower(), log=_prefixed(say, method), backend=backend
        )
        if result.status != "complete":
            raise UsageError(f"{method} stopped: {result.message} (rerun the command to resume)")
        last = result.rounds[-1]
        rows.append(
            {
                "method": method,
                "records": last.records,
                "accuracy": last.test_accuracy,
                "val_accuracy": last.val_accuracy,
                "tokens": result.tokens,
                "rounds": len(result.rounds) - 1,
            }
        )
    analysis = extra_data_analysis(config.out / "s3", preset.written, "label", seed=config.seed)
    table = {
        "data": str(config.data),
        "budget": config.budget,
        "small_model": config.small_model,
        "llm": config.llm,
        "rounds": config.rounds,
        "k": config.k,
        "seed_share": config.seed_share,
        "validation": len(val),
        "test": len(test),
        "rows": rows,
        "extra_data_analysis": analysis,
        "machine": f"{platform.machine()} {platform.system()}, {_cores()} cores",
        "date": datetime.now(UTC).date().isoformat(),
        "seconds": round(time.perf_counter() - started, 1),
    }
    write_json_atomic(config.out / "table.json", table)
    (config.out / "table.md").write_text(table_markdown(table), encoding="utf-8")
    return table


def _prefixed(say: Log, method: str) -> Log:
    return lambda line: say(f"  {method} {line}")


def _cores() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def table_markdown(table: dict[str, Any]) -> str:
    """Table 2's shape: method, records, accuracy on the real test split (plus tokens)."""
    lines = [
        f"| method | records | accuracy (test, n={table['test']}) | val accuracy | tokens |",
        "|---|---:|---:|---:|---:|",
    ]
    for row in table["rows"]:
        val = "" if row.get("val_accuracy") is None else f"{100 * row['val_accuracy']:.2f}"
        acc = "" if row.get("accuracy") is None else f"{100 * row['accuracy']:.2f}"
        lines.append(
            f"| {row['method']} | {row['records']} | {acc} | {val} | {row.get('tokens', '')} |"
        )
    analysis = table["extra_data_analysis"]
    lines += ["", f"Extra-data analysis (S3 run, {analysis.get('pairs', 0)} example/record pairs):"]
    if "edit_distance" in analysis:
        lines.append(
            f"- word edit distance to its own example {analysis['edit_distance']:.3f}, "
            f"to a random same-label example {analysis['edit_distance_random']:.3f}"
        )
    if "cosine" in analysis:
        lines.append(
            f"- embedding cosine to its own example {analysis['cosine']:.3f}, "
            f"to a random same-label example {analysis['cosine_random']:.3f}"
        )
    elif "cosine_note" in analysis:
        lines.append(f"- cosine not measured: {analysis['cosine_note']}")
    return "\n".join(lines) + "\n"
