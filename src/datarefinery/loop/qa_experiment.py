"""``refinery experiment s3`` on extractive QA (``--data .../adversarial_qa``, or ``--spec`` with
a ``task_type: qa`` spec, ``loop.qa_spec``): the S3 paper's AdversarialQA row, measured in SQuAD
exact match and F1.

The methods are the classifier experiment's, with QA's pieces (``loop.qa``):

- gold: the span model trained on the real validation questions (the sanity row);
- ZeroGen: ``budget`` questions ``conditioned`` on real contexts, no error feedback;
- GoldGen: the seed set, then questions written like random validation questions (the few-shot
  use of the real validation set, without the errors);
- S3: the same seed set, then questions written like the validation errors (exact match 0);
- ``seed_only``: the seed set alone. ``s3_no_rationale`` does not apply: QA seeds from given
  contexts without rationales already.

The contexts are the validation set's (each once, in ``OUT/contexts.jsonl``); the test questions
are only measured. Runs live in ``OUT/<method>/seed-<S>/`` and share ``OUT/cache.sqlite``, so the
experiment resumes, and S3's seed round is the first part of ZeroGen's set (same contexts, same
calls): its round-0 point is ZeroGen's curve at that size. Each row's ``accuracy`` is test F1
(``em``: exact match); the table goes to ``OUT/table.md`` and ``OUT/table.json``.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from datarefinery.errors import UsageError
from datarefinery.io.write import write_jsonl_atomic
from datarefinery.llm.base import Backend
from datarefinery.loop.methods import METHODS, Budget
from datarefinery.loop.qa import (
    QA_SMALL_MODEL,
    QALoopSpec,
    QARoundResult,
    load_qa,
    make_qa_model,
    measure,
    run_qa_s3,
)
from datarefinery.loop.table import efficiency, loop_run, summarize, write_table
from datarefinery.models.smallmodel import TransformerOptions
from datarefinery.records import Record
from datarefinery.redact import public_spec

Log = Callable[[str], None]
QA_FOLDERS = ("adversarial_qa",)
NO_RATIONALES = (
    "does not apply: QA seeds with questions conditioned on given contexts, already without "
    "rationales, so its S3 row is this ablation"
)
COLUMNS = [
    ["records", "records", False],
    ["accuracy", "F1 (test, n={test})", True],
    ["em", "EM (test)", True],
    ["val_accuracy", "val F1", True],
    ["train_accuracy", "train F1", True],
    ["tokens", "tokens", False],
]
_MEASURES = ("records", "accuracy", "em", "val_accuracy", "val_em", "train_accuracy", "tokens")


def is_qa_folder(folder: Path) -> bool:
    return folder.resolve().name.lower() in QA_FOLDERS


@dataclass(frozen=True)
class QAExperiment:
    """One QA experiment: the real files (``columns`` as in ``loop.qa.load_qa``), the model
    block, the record budget and how it is spent, the span model's options.
    """

    validation: Path
    test: Path
    out: Path
    budget: int
    llm: dict[str, Any]
    seeds: Sequence[int]
    methods: Sequence[str]
    rounds: int = 2
    k: int = 2
    seed_share: float = 0.5
    small_model: TransformerOptions = field(default_factory=lambda: QA_SMALL_MODEL)
    targets: Sequence[float] = ()
    test_limit: int | None = None
    validation_limit: int | None = None
    columns: dict[str, str] = field(default_factory=dict)
    name: str = "adversarial_qa"


def preset_experiment(folder: Path, out: Path, **options: Any) -> QAExperiment:
    """The ``adversarial_qa`` folder's experiment (``validation.jsonl``, ``test.jsonl``)."""
    for split in ("validation.jsonl", "test.jsonl"):
        if not (folder / split).is_file():
            raise UsageError(f"{folder} has no {split} (SQuAD-style rows)")
    return QAExperiment(
        validation=(folder / "validation.jsonl").resolve(),
        test=(folder / "test.jsonl").resolve(),
        out=out,
        **options,
    )


def run_qa_experiment(
    exp: QAExperiment, log: Log | None = None, *, backend: Backend | None = None
) -> dict[str, Any]:
    """Run every method of ``exp`` into ``exp.out``; returns the table as a mapping."""
    say = log or (lambda _: None)
    exp.out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    val = load_qa(exp.validation, exp.validation_limit, exp.columns)
    test = load_qa(exp.test, exp.test_limit, exp.columns)
    contexts = _write_contexts(val, exp.out / "contexts.jsonl")
    budget = Budget(exp.budget, exp.rounds, exp.k, exp.seed_share)
    runs: list[dict[str, Any]] = []
    for method in dict.fromkeys(exp.methods):
        for seed in exp.seeds:
            if method == "gold":
                runs.append(_gold(exp, val, test, seed, say))
                continue
            spec = _method_spec(exp, method, seed, budget, contexts)
            if spec is None:
                runs.append({"method": METHODS[method], "note": NO_RATIONALES})
                break
            runs.append(_generated(exp, method, seed, spec, say, backend))
    table = {
        "data": {"validation": str(exp.validation), "test": str(exp.test)},
        "task": "extractive QA",
        "metric": "F1",
        "columns": COLUMNS,
        "budget": exp.budget,
        "small_model": {"span_qa": exp.small_model.model_dump(mode="json")},
        "llm": public_spec({"llm": exp.llm})["llm"],
        "rounds": exp.rounds,
        "k": exp.k,
        "seed_share": exp.seed_share,
        "seeds": list(exp.seeds),
        "errors": "validation questions with exact match 0",
        "validation": len(val),
        "test": len(test),
        "rows": summarize(runs, _MEASURES),
        "efficiency": efficiency(runs, exp.targets),
        "efficiency_note": "ZeroGen: its whole set; S3's round 0 is the first part of it",
        "runs": runs,
        "extra_data_analysis": {
            "pairs": 0,
            "note": "not measured for QA (its yardstick, a random example of the same label, "
            "has no QA counterpart here)",
        },
    }
    return write_table(exp.out, table, started)


def _write_contexts(val: list[Record], path: Path) -> Path:
    """The validation set's distinct contexts, in first-seen order: the synthesis pool."""
    seen: dict[str, str] = {}
    for record in val:
        context = str(record.fields["context"])
        seen.setdefault(context, hashlib.sha256(context.encode()).hexdigest()[:16])
    rows = ({"id": cid, "context": context} for context, cid in seen.items())
    write_jsonl_atomic(path, (json.dumps(row, ensure_ascii=False) for row in rows))
    return path


def _method_spec(
    exp: QAExperiment, method: str, seed: int, budget: Budget, contexts: Path
) -> QALoopSpec | None:
    """The QA loop of ``method`` (None: the method does not apply to QA)."""
    if method == "s3_no_rationale":
        return None
    if method not in METHODS or method == "gold":
        raise UsageError(f"unknown method {method!r}: use {', '.join(METHODS)}")
    seed_count = budget.seed_per_label(1)
    count = exp.budget if method == "zerogen" else seed_count
    synthesis: list[dict[str, dict[str, Any] | None]] = [
        {
            "conditioned": {
                "pool": str(contexts.resolve()),
                "given": ["context"],
                "must_occur_in": {"answer": "context"},
                "count_per_label": count,
            }
        },
        {"qa_span": {}},
    ]
    llm = {**exp.llm, "cache_path": str((exp.out / "cache.sqlite").resolve())}
    options: dict[str, Any] = {"rounds": 0}
    if method in ("goldgen", "s3"):
        options = {
            "rounds": budget.rounds,
            "source": "all" if method == "goldgen" else "errors",
            "examples_per_round": budget.per_round(1),
            "max_records": budget.records,
        }
    return QALoopSpec.model_validate(
        {
            "name": f"{exp.name}-{method}",
            "seed": seed,
            "llm": llm,
            "synthesis": synthesis,
            "validation": str(exp.validation),
            "test": str(exp.test),
            "columns": exp.columns,
            "validation_limit": exp.validation_limit,
            "test_limit": exp.test_limit,
            "small_model": exp.small_model,
            "k": exp.k,
            **options,
        }
    )


def _gold(
    exp: QAExperiment, val: list[Record], test: list[Record], seed: int, say: Log
) -> dict[str, Any]:
    """The sanity row: the span model on the real validation questions."""
    model = make_qa_model(exp.small_model, seed).fit(val)
    scores, _ = measure(model, test)
    trained, _ = measure(model, val)
    f1 = round(scores["f1"], 4)
    say(f"gold (seed {seed}): {len(val)} real questions, test F1 {f1:.4f}")
    return {
        "method": "gold",
        "seed": seed,
        "records": len(val),
        "accuracy": f1,
        "em": round(scores["em"], 4),
        "val_accuracy": None,
        "val_em": None,
        "train_accuracy": round(trained["f1"], 4),
        "tokens": None,
        "points": [{"round": 0, "records": len(val), "accuracy": f1}],
    }


def _generated(
    exp: QAExperiment,
    method: str,
    seed: int,
    spec: QALoopSpec,
    say: Log,
    backend: Backend | None,
) -> dict[str, Any]:
    title = METHODS[method]
    folder = exp.out / method / f"seed-{seed}"
    say(f"{title} (seed {seed}): running into {folder}")
    result = run_qa_s3(spec, folder, backend=backend, log=lambda line: say(f"  {title} {line}"))
    if result.status != "complete" or not result.rounds:
        raise UsageError(f"{title} stopped: {result.message} (rerun the command to resume)")
    last = result.rounds[-1]
    assert isinstance(last, QARoundResult)
    return loop_run(title, seed, result, em=(last.test_em, last.val_em))
