"""The S3 loop ("Let's Synthesize Step by Step", arXiv 2310.13671).

Round 0 synthesizes the seed set (the spec's ``synthesis`` steps, e.g. ``rationale``). Every
round then trains the small model on the synthetic set so far, measures it on the real validation
and test sets, and collects the validation examples it gets wrong. The next round's ``extrapolate``
step writes ``k`` new records like each of (a seeded sample of) those errors, with the gold label;
they are merged (exact repeats of records already in the set are dropped) and the loop goes on
for ``rounds`` rounds, until ``patience`` rounds pass without a better validation accuracy, or
until ``max_records`` is reached.

Each round's generation is an ordinary run (``datarefinery.run``) in its own run directory, so it
resumes like any run; a finished round is committed by ``round.json``, written last::

    OUT/manifest.json                 the loop's spec, status, rounds, tokens
    OUT/rounds/NN/run/                the round's run directory (its manifest, shards, cache)
    OUT/rounds/NN/examples.jsonl      what round NN extrapolated from (NN >= 1)
    OUT/rounds/NN/train.jsonl         the synthetic set the round trained on
    OUT/rounds/NN/errors.jsonl        validation examples the round's model got wrong
    OUT/rounds/NN/round.json          sizes, accuracies, tokens: the round is done
    OUT/dataset.jsonl                 the training set of the best round (by validation accuracy)
    OUT/summary.json, OUT/summary.md  every round, and the best
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from datarefinery.config import LLMOverride, LoadedSpec, RunSpec
from datarefinery.io.write import write_json_atomic, write_jsonl_atomic
from datarefinery.llm.base import Backend
from datarefinery.loop.spec import LoadedS3Spec, S3Spec, load_real, load_s3_spec
from datarefinery.manifest import LoopManifest, Manifest
from datarefinery.models.smallmodel import SmallModel, accuracy, make_small_model
from datarefinery.records import Record
from datarefinery.redact import public_spec
from datarefinery.rundir import RunDir
from datarefinery.runner import run, versions
from datarefinery.text import normalized_key

Log = Callable[[str], None]


@dataclass
class RoundResult:
    """One round: the set it trained on, how the model did on it and on the real sets, what it got
    wrong, what it cost. ``tokens`` counts the round's generation, by the backend or a shared cache.
    """

    round: int
    added: int
    dropped_duplicates: int
    records: int
    val_accuracy: float
    test_accuracy: float | None
    errors: int
    examples: int
    tokens: int
    rejected: int
    seconds: float
    train_accuracy: float | None = None  # None: read from a round.json older than it

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class S3Result:
    run_dir: Path
    status: str
    message: str = ""
    rounds: list[RoundResult] = field(default_factory=list)

    @property
    def best(self) -> RoundResult | None:
        """The round with the best validation accuracy (the earliest of equals: fewer records)."""
        return max(self.rounds, key=lambda r: (r.val_accuracy, -r.round), default=None)

    @property
    def tokens(self) -> int:
        return sum(r.tokens for r in self.rounds)

    @property
    def dataset_path(self) -> Path:
        return self.run_dir / "dataset.jsonl"


def collect_errors(
    model: SmallModel, records: Sequence[Record], label_field: str = "label"
) -> list[Record]:
    """The records ``model`` misclassifies, with the predicted label and its probability in
    ``scores`` (``predicted``, ``confidence``).
    """
    if not records:
        return []
    proba = model.predict_proba(records)
    errors = []
    for record, row in zip(records, proba, strict=True):
        best = int(row.argmax())
        predicted = model.classes_[best]
        if predicted != str(record.fields[label_field]):
            scores = {
                **record.scores,
                "predicted": predicted,
                "confidence": round(float(row[best]), 4),
            }
            errors.append(Record(record.id, dict(record.fields), record.provenance, scores))
    return errors


def merge(
    current: Sequence[Record], new: Sequence[Record], fields: Sequence[str]
) -> tuple[list[Record], int]:
    """``current`` followed by the records of ``new`` whose ``fields`` (normalized) are not already
    there; and how many were dropped as repeats.
    """
    seen = {normalized_key(r.fields, fields) for r in current}
    merged = list(current)
    dropped = 0
    for record in new:
        key = normalized_key(record.fields, fields)
        if key in seen:
            dropped += 1
            continue
        seen.add(key)
        merged.append(record)
    return merged, dropped


def choose_examples(pool: Sequence[Record], limit: int | None, seed: int) -> list[Record]:
    """A seeded sample of ``limit`` records of ``pool`` (all of it when ``limit`` is None), in
    the pool's order so a rerun writes the same file.
    """
    if limit is None or limit >= len(pool):
        return list(pool)
    picked = set(random.Random(seed).sample(range(len(pool)), limit))
    return [r for i, r in enumerate(pool) if i in picked]


def run_s3(
    spec: str | Path | dict[str, Any] | LoadedS3Spec,
    out: str | Path,
    *,
    llm: LLMOverride | None = None,
    fresh: bool = False,
    backend: Backend | None = None,
    log: Log | None = None,
) -> S3Result:
    """Run the S3 loop of ``spec`` into ``out`` (resumes what ``out`` already holds). ``llm``
    overrides the spec's block as in ``datarefinery.run`` (and so is part of the loop's identity).
    """
    loaded = spec if isinstance(spec, LoadedS3Spec) else load_s3_spec(spec)
    loaded = loaded.with_llm(llm)
    return _Loop(loaded, Path(out), backend, log or (lambda _: None)).run(fresh)


class _Loop:
    def __init__(self, loaded: LoadedS3Spec, out: Path, backend: Backend | None, log: Log) -> None:
        self.loaded = loaded
        self.spec: S3Spec = loaded.spec
        self.out = out
        self.backend = backend
        self.log = log
        self.label_field = str(self.spec.task.label_field)

    def run(self, fresh: bool) -> S3Result:
        spec = self.spec
        run_dir = RunDir.open(self.out, spec.spec_hash(), fresh=fresh)
        manifest = LoopManifest(
            name=spec.name,
            spec_hash=spec.spec_hash(),
            spec_path=self.loaded.source,
            spec=public_spec(spec.model_dump(mode="json")),
            versions=versions(),
        )
        manifest.begin_session(run_dir.previous)
        run_dir.write_manifest(manifest)
        data = spec.data
        self.val = load_real(
            self.loaded.path(data.validation), spec.task, data, limit=data.validation_limit
        )
        test = self.loaded.path(data.test) if data.test else None
        self.test = load_real(test, spec.task, data, limit=data.test_limit) if test else []
        result = S3Result(self.out, "complete")
        train: list[Record] = []
        best, since_best = -1.0, 0
        for number in range(spec.loop.rounds + 1):
            examples: list[Record] = []
            if number > 0:
                examples = self._examples(result.rounds[-1], len(train), number)
                if not examples:
                    result.message = self._stop_reason(len(train))
                    break
            outcome = self._round(number, train, examples)
            if isinstance(outcome, str):
                result.status, result.message = "stopped", outcome
                break
            round_result, train = outcome
            result.rounds.append(round_result)
            manifest.rounds = [r.to_dict() for r in result.rounds]
            run_dir.write_manifest(manifest)
            self.log(
                f"round {number}: {round_result.records} records (+{round_result.added}), "
                f"val {round_result.val_accuracy:.4f}, errors {round_result.errors}"
            )
            if round_result.val_accuracy > best:
                best, since_best = round_result.val_accuracy, 0
            else:
                since_best += 1
                if since_best >= spec.loop.patience:
                    result.message = f"no better validation accuracy for {since_best} round(s)"
                    break
        self._finish(run_dir, manifest, result)
        return result

    def _round_dir(self, number: int) -> Path:
        return self.out / "rounds" / f"{number:02d}"

    def _examples(self, last: RoundResult, records: int, number: int) -> list[Record]:
        loop = self.spec.loop
        errors = self._round_dir(last.round) / "errors.jsonl"
        pool = _read(errors) if loop.source == "errors" else self.val
        limit = loop.examples_per_round
        if loop.max_records is not None:
            room = max(0, (loop.max_records - records) // self.loaded.k)
            limit = room if limit is None else min(limit, room)
        return choose_examples(pool, limit, self.spec.seed * 1000 + number)

    def _stop_reason(self, records: int) -> str:
        loop = self.spec.loop
        if loop.max_records is not None and records + self.loaded.k > loop.max_records:
            return f"record budget reached ({records} of {loop.max_records})"
        return "no validation errors left to extrapolate from"

    def _round(
        self, number: int, train: list[Record], examples: list[Record]
    ) -> tuple[RoundResult, list[Record]] | str:
        folder = self._round_dir(number)
        done = folder / "round.json"
        if done.exists():
            data = json.loads(done.read_text(encoding="utf-8"))
            return RoundResult(**data), _read(folder / "train.jsonl")
        folder.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        if number == 0:
            steps = self.spec.synthesis
            input_path = None
        else:
            input_path = folder / "examples.jsonl"
            write_jsonl_atomic(input_path, (r.to_json() for r in examples))
            steps = [{"extrapolate": dict(self.spec.loop.extrapolate)}]
        generated = run(
            self._sub_spec(number, steps, input_path),
            folder / "run",
            backend=self.backend,
            diversity=False,
        )
        if generated.status != "complete":
            return f"round {number} stopped: {generated.message}"
        new = _read(generated.dataset_path)
        merged, dropped = merge(train, new, self.spec.task.content_fields)
        labels = sorted({str(r.fields[self.label_field]) for r in merged})
        if len(labels) < 2:
            return (
                f"round {number}: the synthetic set has {len(merged)} records of labels {labels}; "
                f"a classifier needs two (see why in {folder / 'run' / 'rejected.jsonl'})"
            )
        model = make_small_model(
            self.loaded.small_model(),
            self.spec.task.content_fields,
            self.label_field,
            seed=self.spec.seed,
        ).fit(merged)
        errors = collect_errors(model, self.val, self.label_field)
        result = RoundResult(
            round=number,
            added=len(merged) - len(train),
            dropped_duplicates=dropped,
            records=len(merged),
            val_accuracy=round(accuracy(model, self.val, self.label_field), 4),
            test_accuracy=round(accuracy(model, self.test, self.label_field), 4)
            if self.test
            else None,
            errors=len(errors),
            examples=len(examples),
            tokens=_tokens(generated.manifest),
            rejected=generated.rejected_size,
            seconds=round(time.perf_counter() - started, 2),
            train_accuracy=round(accuracy(model, merged, self.label_field), 4),
        )
        write_jsonl_atomic(folder / "train.jsonl", (r.to_json() for r in merged))
        write_jsonl_atomic(folder / "errors.jsonl", (r.to_json() for r in errors))
        write_json_atomic(done, result.to_dict())
        return result, merged

    def _sub_spec(
        self, number: int, steps: list[dict[str, dict[str, Any] | None]], input_path: Path | None
    ) -> LoadedSpec:
        spec = self.spec
        llm = spec.llm.model_copy()
        budget = spec.llm.budget.max_tokens
        if budget is not None:
            # The loop's token budget spans every round: each round gets what is left.
            spent = sum(_round_tokens(self._round_dir(n)) for n in range(number))
            llm = llm.model_copy(
                update={
                    "budget": llm.budget.model_copy(update={"max_tokens": max(1, budget - spent)})
                }
            )
        data: dict[str, Any] = {
            "name": f"{spec.name}-round-{number:02d}",
            "seed": spec.seed,
            "task": spec.task.model_dump(mode="json"),
            "llm": llm.model_dump(mode="json"),
            "steps": steps,
            "shard_size": spec.shard_size,
        }
        if input_path is not None:
            data["input"] = {"path": str(input_path.resolve()), "format": "jsonl"}
        return LoadedSpec(RunSpec.model_validate(data), self.loaded.source, {})

    def _finish(self, run_dir: RunDir, manifest: LoopManifest, result: S3Result) -> None:
        best = result.best
        if best is not None:
            records = _read(self._round_dir(best.round) / "train.jsonl")
            write_jsonl_atomic(result.dataset_path, (r.to_json() for r in records))
        summary = {
            "name": self.spec.name,
            "status": result.status,
            "message": result.message,
            "small_model": self.spec.loop.small_model.kind,
            "source": self.spec.loop.source,
            "validation": len(self.val),
            "test": len(self.test),
            "tokens": result.tokens,
            "best_round": best.round if best else None,
            "rounds": [r.to_dict() for r in result.rounds],
        }
        write_json_atomic(self.out / "summary.json", summary)
        (self.out / "summary.md").write_text(summary_markdown(summary), encoding="utf-8")
        manifest.status, manifest.message = result.status, result.message
        manifest.rounds = [r.to_dict() for r in result.rounds]
        manifest.best_round = best.round if best else None
        manifest.tokens = result.tokens
        manifest.finish_session()
        run_dir.write_manifest(manifest)


def summary_markdown(summary: dict[str, Any]) -> str:
    lines = [
        f"# S3: {summary['name']}",
        "",
        f"status: {summary['status']}" + (f" ({summary['message']})" if summary["message"] else ""),
        f"small model: {summary['small_model']}; extrapolating from: {summary['source']}; "
        f"validation {summary['validation']}, test {summary['test']} real records",
        "",
        "| round | examples | added | records | train acc | val acc | test acc | errors | tokens "
        "| rejected |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in summary["rounds"]:
        mark = " (best)" if r["round"] == summary["best_round"] else ""
        lines.append(
            f"| {r['round']}{mark} | {r['examples']} | {r['added']} | {r['records']} | "
            f"{_percent(r.get('train_accuracy'))} | {_percent(r['val_accuracy'])} | "
            f"{_percent(r['test_accuracy'])} | {r['errors']} | {r['tokens']} | {r['rejected']} |"
        )
    return "\n".join(lines) + "\n"


def _percent(value: float | None) -> str:
    return "" if value is None else f"{100 * value:.2f}"


def _read(path: Path) -> list[Record]:
    with path.open(encoding="utf-8") as handle:
        return [Record.from_dict(json.loads(line)) for line in handle if line.strip()]


def _tokens(manifest: Manifest | None) -> int:
    """Tokens of a round's run: paid to the backend (all sessions) plus answered by the cache."""
    if manifest is None:
        return 0
    engine = manifest.engine
    cached = engine.cached_prompt_tokens + engine.cached_completion_tokens if engine else 0
    return sum(manifest.usage_spent) + cached


def _round_tokens(folder: Path) -> int:
    done = folder / "round.json"
    if not done.exists():
        return 0
    return int(json.loads(done.read_text(encoding="utf-8"))["tokens"])
