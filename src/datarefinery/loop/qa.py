"""The S3 loop for extractive QA: a question and its answer span over a real context, a span
model (``models.qa_model.SpanQA``) as the small model, SQuAD exact match and F1 as the measure.

It is ``loop.s3``'s loop (``loop.rounds``) with QA's pieces: round 0 runs the seed synthesis
(``conditioned`` on real contexts, then ``qa_span``); each round trains the span model on the set
so far and measures it on the real validation and test questions; the validation questions it gets
wrong are its errors, and the next round's ``qa_extrapolate`` (then ``qa_span``) writes ``k`` new
questions on the same context like each of them. **A question is an error when the model's answer
does not match the gold one exactly (SQuAD exact match 0)**; its F1 is kept in ``scores.f1``. The
rounds' ``val_accuracy`` / ``test_accuracy`` / ``train_accuracy`` hold F1 (``val_em``, ``test_em``:
exact match), and the best round is the one of highest validation F1. The run directory has
``loop.s3``'s layout (``rounds/NN/...``, ``dataset.jsonl``, ``summary.json``, ``summary.md``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from datarefinery.config import LlamaCppConfig, LLMConfig, StrictModel, TaskSpec, spec_hash
from datarefinery.errors import InputFileError
from datarefinery.evaluate.squad import exact_match, f1, squad_scores
from datarefinery.io.read import read_numbered
from datarefinery.llm.base import Backend
from datarefinery.loop.rounds import (
    Log,
    RoundLoop,
    RoundResult,
    Rounds,
    S3Result,
    Steps,
    summary_markdown,
)
from datarefinery.models.qa_model import SpanQA
from datarefinery.models.smallmodel import TransformerOptions
from datarefinery.records import Provenance, Record

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


class _QALoop(RoundLoop[QALoopSpec]):
    result_type = QARoundResult
    score_name = "val F1"

    def __init__(self, spec: QALoopSpec, out: Path, backend: Backend | None, log: Log) -> None:
        plan = Rounds(spec.rounds, spec.source, spec.examples_per_round, spec.max_records, spec.k)
        super().__init__(
            spec, plan, out, backend, log, fields=QA_FIELDS, spec_path="<qa>", run_source="<spec>"
        )

    def _load_real(self) -> tuple[list[Record], list[Record]]:
        spec = self.spec
        return (
            load_qa(Path(spec.validation), spec.validation_limit, spec.columns),
            load_qa(Path(spec.test), spec.test_limit, spec.columns),
        )

    def _extrapolation(self) -> Steps:
        return [{"qa_extrapolate": {"k": self.spec.k}}, {"qa_span": {}}]

    def _stop_reason(self, records: int) -> str:
        return "no examples left to extrapolate from (errors or budget)"

    def _train(
        self, number: int, merged: list[Record], folder: Path
    ) -> tuple[dict[str, Any], list[Record]] | str:
        # A weak generator may leave no question standing (the reasons are in the round's
        # rejected.jsonl): with nothing to train on the model answers nothing and scores 0, and
        # every validation question is an error to extrapolate from.
        model = make_qa_model(self.spec.small_model, self.spec.seed).fit(merged) if merged else None
        val, errors = measure(model, self.val)
        test, _ = measure(model, self.test)
        trained, _ = measure(model, merged)
        scores = {
            "val_accuracy": round(val["f1"], 4),
            "test_accuracy": round(test["f1"], 4),
            "train_accuracy": round(trained["f1"], 4),
            "val_em": round(val["em"], 4),
            "test_em": round(test["em"], 4),
        }
        return scores, errors

    def _markdown(self, summary: dict[str, Any]) -> str:
        about = (
            f"small model: span QA; extrapolating from: {summary['source']}; "
            f"errors: exact match 0; "
            f"validation {summary['validation']}, test {summary['test']} real questions"
        )
        scores = [
            ("train F1", "train_accuracy"),
            ("val F1", "val_accuracy"),
            ("val EM", "val_em"),
            ("test F1", "test_accuracy"),
            ("test EM", "test_em"),
        ]
        return summary_markdown(summary, "S3 (extractive QA)", about, scores)
