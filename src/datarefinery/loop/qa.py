"""The S3 loop for extractive QA: a question and its answer span over a real context, a span
model (``models.qa_model.SpanQA``) as the small model, SQuAD exact match and F1 as the measure.

It is ``loop.s3``'s loop with QA's pieces: round 0 runs the seed synthesis (``conditioned`` on
real contexts, then ``qa_span``); each round trains the span model on the set so far and measures
it on the real validation and test questions; the validation questions it gets wrong are its
errors, and the next round's ``qa_extrapolate`` (then ``qa_span``) writes ``k`` new questions on
the same context like each of them. **A question is an error when the model's answer does not
match the gold one exactly (SQuAD exact match 0)**; its F1 is kept in ``scores.f1``. The rounds'
``val_accuracy`` / ``test_accuracy`` / ``train_accuracy`` hold F1 (``val_em``, ``test_em``: exact
match), and the best round is the one of highest validation F1. The run directory has
``loop.s3``'s layout (``rounds/NN/...``, ``dataset.jsonl``, ``summary.json``, ``summary.md``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from datarefinery.config import (
    LlamaCppConfig,
    LLMConfig,
    LoadedSpec,
    RunSpec,
    StrictModel,
    TaskSpec,
    spec_hash,
)
from datarefinery.errors import InputFileError
from datarefinery.evaluate.squad import exact_match, f1, squad_scores
from datarefinery.io.read import read_numbered
from datarefinery.io.write import write_json_atomic, write_jsonl_atomic
from datarefinery.llm.base import Backend
from datarefinery.loop.s3 import RoundResult, S3Result, choose_examples, merge
from datarefinery.manifest import LoopManifest, Manifest
from datarefinery.models.qa_model import SpanQA
from datarefinery.models.smallmodel import TransformerOptions
from datarefinery.records import Provenance, Record
from datarefinery.redact import public_spec
from datarefinery.rundir import RunDir
from datarefinery.runner import run, versions

Log = Callable[[str], None]
QA_FIELDS = ["context", "question", "answer"]

QA_TASK: dict[str, Any] = {
    "description": "Extractive question answering: a question about a Wikipedia paragraph, "
    "answered by a short span copied from the paragraph.",
    "fields": {
        "context": {"description": "a paragraph from Wikipedia", "max_chars": 4000},
        "question": {
            "description": "one question about the paragraph that a careful reader can answer",
            "min_chars": 10,
            "max_chars": 200,
        },
        "answer": {
            "description": "the shortest span of the paragraph, copied word for word, that "
            "answers the question",
            "max_chars": 100,
        },
    },
}

# the span model at the loop's scale: contexts run to ~450 tokens, most under 256
QA_SMALL_MODEL = TransformerOptions(kind="transformer", epochs=2, max_length=256)


class QALoopSpec(StrictModel):
    """One QA loop: the task and model, the seed synthesis, the real files (SQuAD-style rows:
    ``context``, ``question``, ``answers: {text, answer_start}``), the span model, the rounds.
    ``source: all`` extrapolates from random validation questions instead of the errors.
    """

    name: str = "qa"
    seed: int = 0
    task: TaskSpec = Field(default_factory=lambda: TaskSpec.model_validate(QA_TASK))
    llm: LLMConfig = Field(default_factory=LlamaCppConfig)
    synthesis: list[dict[str, dict[str, Any] | None]] = Field(min_length=1)
    validation: str
    test: str
    columns: dict[str, str] = Field(default_factory=dict)
    validation_limit: int | None = Field(default=None, ge=2)
    test_limit: int | None = Field(default=None, ge=1)
    small_model: TransformerOptions = QA_SMALL_MODEL
    rounds: int = Field(default=2, ge=0, le=100)
    source: Literal["errors", "all"] = "errors"
    examples_per_round: int | None = Field(default=None, ge=1)
    max_records: int | None = Field(default=None, ge=1)
    k: int = Field(default=2, ge=1, le=20)
    shard_size: int = Field(default=16, ge=1)

    def spec_hash(self) -> str:
        return spec_hash(self)


@dataclass
class QARoundResult(RoundResult):
    """A round with exact match next to F1 (the inherited accuracies hold F1)."""

    val_em: float | None = None
    test_em: float | None = None


def load_qa(
    path: Path, limit: int | None = None, columns: dict[str, str] | None = None
) -> list[Record]:
    """QA rows as records: context, question, answer, answer_start. ``columns`` maps those task
    fields to the file's columns; the answer column (default ``answers``, else ``answer``) holds
    the answer text or SQuAD's ``{text: [...], answer_start: [...]}`` (its first answer is used).
    """
    columns = columns or {}
    records = []
    for line, row in read_numbered(path, limit=limit):
        fields = row.fields
        values: dict[str, Any] = {}
        for name in ("context", "question"):
            column = columns.get(name, name)
            if not isinstance(fields.get(column), str):
                raise InputFileError(str(path), "missing (or not text)", line=line, field=column)
            values[name] = fields[column]
        column = columns.get("answer") or ("answers" if "answers" in fields else "answer")
        answers = fields.get(column)
        if isinstance(answers, str) and answers.strip():
            answers = {"text": [answers]}
        if not isinstance(answers, dict) or not answers.get("text"):
            raise InputFileError(
                str(path),
                "needs the answer text, or answers: {text: [...], answer_start: [...]}",
                line=line,
                field=column,
            )
        values["answer"] = str(answers["text"][0])
        values["answer_start"] = (answers.get("answer_start") or [None])[0]
        records.append(Record(id=row.id, fields=values, provenance=Provenance(source=str(path))))
    if not records:
        raise InputFileError(str(path), "holds no records")
    return records


def make_qa_model(options: TransformerOptions, seed: int) -> SpanQA:
    return SpanQA(
        seed=seed,
        weights=options.weights_folder(),
        epochs=options.epochs,
        batch_size=options.batch_size,
        learning_rate=options.learning_rate,
        max_length=options.max_length,
    )


def measure(
    model: SpanQA | None, records: Sequence[Record]
) -> tuple[dict[str, float], list[Record]]:
    """Mean EM and F1 of ``model`` on ``records``, and the records it gets wrong (EM 0), with its
    answer and F1 in ``scores`` (``predicted``, ``f1``). No model (nothing to train on) answers
    nothing.
    """
    predicted = model.predict(records) if model is not None else [""] * len(records)
    golds = [str(r.fields["answer"]) for r in records]
    errors = [
        Record(
            r.id,
            dict(r.fields),
            r.provenance,
            {**r.scores, "predicted": p, "f1": round(f1(p, g), 4)},
        )
        for r, p, g in zip(records, predicted, golds, strict=True)
        if not exact_match(p, g)
    ]
    return squad_scores(predicted, golds), errors


def run_qa_s3(
    spec: QALoopSpec, out: Path, *, backend: Backend | None = None, log: Log | None = None
) -> S3Result:
    """Run (or resume) the QA loop of ``spec`` into ``out``."""
    return _QALoop(spec, out, backend, log or (lambda _: None)).run()


class _QALoop:
    def __init__(self, spec: QALoopSpec, out: Path, backend: Backend | None, log: Log) -> None:
        self.spec = spec
        self.out = out
        self.backend = backend
        self.log = log

    def run(self) -> S3Result:
        spec = self.spec
        run_dir = RunDir.open(self.out, spec.spec_hash())
        manifest = LoopManifest(
            name=spec.name,
            spec_hash=spec.spec_hash(),
            spec_path="<qa>",
            spec=public_spec(spec.model_dump(mode="json")),
            versions=versions(),
        )
        manifest.begin_session(run_dir.previous)
        run_dir.write_manifest(manifest)
        self.val = load_qa(Path(spec.validation), spec.validation_limit, spec.columns)
        self.test = load_qa(Path(spec.test), spec.test_limit, spec.columns)
        result = S3Result(self.out, "complete")
        train: list[Record] = []
        for number in range(spec.rounds + 1):
            examples: list[Record] = []
            if number > 0:
                examples = self._examples(len(train), number)
                if not examples:
                    result.message = "no examples left to extrapolate from (errors or budget)"
                    break
            outcome = self._round(number, train, examples)
            if isinstance(outcome, str):
                result.status, result.message = "stopped", outcome
                break
            round_result, train = outcome
            result.rounds.append(round_result)
            self.log(
                f"round {number}: {round_result.records} records (+{round_result.added}), "
                f"val F1 {round_result.val_accuracy:.4f}, errors {round_result.errors}"
            )
        self._finish(run_dir, manifest, result)
        return result

    def _dir(self, number: int) -> Path:
        return self.out / "rounds" / f"{number:02d}"

    def _examples(self, records: int, number: int) -> list[Record]:
        spec = self.spec
        pool = (
            _read(self._dir(number - 1) / "errors.jsonl") if spec.source == "errors" else self.val
        )
        limit = spec.examples_per_round
        if spec.max_records is not None:
            room = max(0, (spec.max_records - records) // spec.k)
            limit = room if limit is None else min(limit, room)
        return choose_examples(pool, limit, spec.seed * 1000 + number)

    def _round(
        self, number: int, train: list[Record], examples: list[Record]
    ) -> tuple[RoundResult, list[Record]] | str:
        folder = self._dir(number)
        done = folder / "round.json"
        if done.exists():
            saved = json.loads(done.read_text(encoding="utf-8"))
            return QARoundResult(**saved), _read(folder / "train.jsonl")
        folder.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        steps = self.spec.synthesis
        input_path = None
        if number > 0:
            input_path = folder / "examples.jsonl"
            write_jsonl_atomic(input_path, (r.to_json() for r in examples))
            steps = [{"qa_extrapolate": {"k": self.spec.k}}, {"qa_span": {}}]
        generated = run(
            self._sub_spec(number, steps, input_path),
            folder / "run",
            backend=self.backend,
            diversity=False,
        )
        if generated.status != "complete":
            return f"round {number} stopped: {generated.message}"
        merged, dropped = merge(train, _read(generated.dataset_path), QA_FIELDS)
        # A weak generator may leave no question standing (the reasons are in the round's
        # rejected.jsonl): with nothing to train on the model answers nothing and scores 0, and
        # every validation question is an error to extrapolate from.
        model = make_qa_model(self.spec.small_model, self.spec.seed).fit(merged) if merged else None
        val, errors = measure(model, self.val)
        test, _ = measure(model, self.test)
        trained, _ = measure(model, merged)
        result = QARoundResult(
            round=number,
            added=len(merged) - len(train),
            dropped_duplicates=dropped,
            records=len(merged),
            val_accuracy=round(val["f1"], 4),
            test_accuracy=round(test["f1"], 4),
            errors=len(errors),
            examples=len(examples),
            tokens=_tokens(generated.manifest),
            rejected=generated.rejected_size,
            seconds=round(time.perf_counter() - started, 2),
            train_accuracy=round(trained["f1"], 4),
            val_em=round(val["em"], 4),
            test_em=round(test["em"], 4),
        )
        write_jsonl_atomic(folder / "train.jsonl", (r.to_json() for r in merged))
        write_jsonl_atomic(folder / "errors.jsonl", (r.to_json() for r in errors))
        write_json_atomic(done, result.to_dict())
        return result, merged

    def _sub_spec(
        self, number: int, steps: list[dict[str, dict[str, Any] | None]], input_path: Path | None
    ) -> LoadedSpec:
        spec = self.spec
        llm = spec.llm.model_dump(mode="json")
        if spec.llm.budget.max_tokens is not None:
            # As in loop.s3: the token budget spans every round; each gets what is left.
            spent = sum(_round_tokens(self._dir(n)) for n in range(number))
            llm["budget"]["max_tokens"] = max(1, spec.llm.budget.max_tokens - spent)
        data: dict[str, Any] = {
            "name": f"{spec.name}-round-{number:02d}",
            "seed": spec.seed,
            "task": spec.task.model_dump(mode="json"),
            "llm": llm,
            "steps": steps,
            "shard_size": spec.shard_size,
        }
        if input_path is not None:
            data["input"] = {"path": str(input_path.resolve()), "format": "jsonl"}
        return LoadedSpec(RunSpec.model_validate(data), "<spec>", {})

    def _finish(self, run_dir: RunDir, manifest: LoopManifest, result: S3Result) -> None:
        best = result.best
        if best is not None:
            records = _read(self._dir(best.round) / "train.jsonl")
            write_jsonl_atomic(result.dataset_path, (r.to_json() for r in records))
        rounds = [r.to_dict() for r in result.rounds]
        summary = {
            "name": self.spec.name,
            "status": result.status,
            "message": result.message,
            "source": self.spec.source,
            "validation": len(self.val),
            "test": len(self.test),
            "tokens": result.tokens,
            "best_round": best.round if best else None,
            "rounds": rounds,
        }
        write_json_atomic(self.out / "summary.json", summary)
        (self.out / "summary.md").write_text(_summary_markdown(summary), encoding="utf-8")
        manifest.status, manifest.message = result.status, result.message
        manifest.rounds, manifest.tokens = rounds, result.tokens
        manifest.best_round = best.round if best else None
        manifest.finish_session()
        run_dir.write_manifest(manifest)


def _summary_markdown(summary: dict[str, Any]) -> str:
    lines = [
        f"# S3 (extractive QA): {summary['name']}",
        "",
        f"status: {summary['status']}" + (f" ({summary['message']})" if summary["message"] else ""),
        f"small model: span QA; extrapolating from: {summary['source']}; errors: exact match 0; "
        f"validation {summary['validation']}, test {summary['test']} real questions",
        "",
        "| round | examples | added | records | train F1 | val F1 | val EM | test F1 | test EM "
        "| errors | tokens | rejected |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in summary["rounds"]:
        mark = " (best)" if r["round"] == summary["best_round"] else ""
        cells = [
            r["train_accuracy"],
            r["val_accuracy"],
            r["val_em"],
            r["test_accuracy"],
            r["test_em"],
        ]
        scores = " | ".join("" if v is None else f"{100 * v:.2f}" for v in cells)
        lines.append(
            f"| {r['round']}{mark} | {r['examples']} | {r['added']} | {r['records']} | {scores} "
            f"| {r['errors']} | {r['tokens']} | {r['rejected']} |"
        )
    return "\n".join(lines) + "\n"


def _read(path: Path) -> list[Record]:
    with path.open(encoding="utf-8") as handle:
        return [Record.from_dict(json.loads(line)) for line in handle if line.strip()]


def _tokens(manifest: Manifest | None) -> int:
    """Tokens of a round's run: paid to the backend plus answered by the cache (as ``loop.s3``)."""
    if manifest is None:
        return 0
    engine = manifest.engine
    cached = engine.cached_prompt_tokens + engine.cached_completion_tokens if engine else 0
    return sum(manifest.usage_spent) + cached


def _round_tokens(folder: Path) -> int:
    done = folder / "round.json"
    return int(json.loads(done.read_text(encoding="utf-8"))["tokens"]) if done.exists() else 0
