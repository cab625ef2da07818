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

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from datarefinery.config import LLMOverride
from datarefinery.llm.base import Backend
from datarefinery.loop.rounds import Log, RoundLoop, Rounds, S3Result, Steps, summary_markdown
from datarefinery.loop.spec import LoadedS3Spec, S3Spec, load_real, load_s3_spec
from datarefinery.models.smallmodel import SmallModel, accuracy, make_small_model
from datarefinery.records import Record


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


class _Loop(RoundLoop[S3Spec]):
    def __init__(self, loaded: LoadedS3Spec, out: Path, backend: Backend | None, log: Log) -> None:
        spec, loop = loaded.spec, loaded.spec.loop
        plan = Rounds(
            loop.rounds,
            loop.source,
            loop.examples_per_round,
            loop.max_records,
            loaded.k,
            loop.patience,
        )
        super().__init__(
            spec,
            plan,
            out,
            backend,
            log,
            fields=spec.task.content_fields,
            spec_path=loaded.source,
            run_source=loaded.source,
        )
        self.loaded = loaded
        self.label_field = str(spec.task.label_field)

    def _load_real(self) -> tuple[list[Record], list[Record]]:
        spec, data = self.spec, self.spec.data
        val = load_real(
            self.loaded.path(data.validation), spec.task, data, limit=data.validation_limit
        )
        test = self.loaded.path(data.test) if data.test else None
        return val, load_real(test, spec.task, data, limit=data.test_limit) if test else []

    def _extrapolation(self) -> Steps:
        return [{"extrapolate": dict(self.spec.loop.extrapolate)}]

    def _stop_reason(self, records: int) -> str:
        loop = self.spec.loop
        if loop.max_records is not None and records + self.loaded.k > loop.max_records:
            return f"record budget reached ({records} of {loop.max_records})"
        return "no validation errors left to extrapolate from"

    def _train(
        self, number: int, merged: list[Record], folder: Path
    ) -> tuple[dict[str, Any], list[Record]] | str:
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
        scores = {
            "val_accuracy": round(accuracy(model, self.val, self.label_field), 4),
            "test_accuracy": round(accuracy(model, self.test, self.label_field), 4)
            if self.test
            else None,
            "train_accuracy": round(accuracy(model, merged, self.label_field), 4),
        }
        return scores, collect_errors(model, self.val, self.label_field)

    def _summary_model(self) -> dict[str, Any]:
        return {"small_model": self.spec.loop.small_model.kind}

    def _markdown(self, summary: dict[str, Any]) -> str:
        about = (
            f"small model: {summary['small_model']}; extrapolating from: {summary['source']}; "
            f"validation {summary['validation']}, test {summary['test']} real records"
        )
        scores = [
            ("train acc", "train_accuracy"),
            ("val acc", "val_accuracy"),
            ("test acc", "test_accuracy"),
        ]
        return summary_markdown(summary, "S3", about, scores)
