"""``consistency``: reject records whose label or answer does not hold up when checked again.

- ``method: llm`` re-labels each record with the model, ``k`` samples and a majority vote
  (``steps.voting.vote``, the same self-consistency the ``label`` step uses) and rejects
  it when the majority disagrees with its label (``label_disagrees``) or no answer was valid
  (``no_vote``).
- ``method: classifier`` asks a small model (TF-IDF or embedding + logistic regression): trained on
  ``train`` (labeled real data) when given, else cross-fitted on the step's input so no record is
  judged by a model that saw it. A disagreement counts when the classifier's confidence in its own
  label is at least ``min_confidence``.
- ``method: execute`` runs the record's Python (``code_field``) in the sandbox
  (:mod:`datarefinery.sandbox`) and compares what it computes (variable ``answer`` or the last
  printed line) with the stated answer (``answer_field``, optionally extracted by
  ``answer_pattern``); without ``answer_field`` the code must simply run cleanly (e.g. code with
  its own asserts). What the code computes is untrusted: ``scores`` and rejection details carry at
  most ``SHOWN_CHARS`` of it.

``route`` (see ``steps.routing``) keeps a disagreeing record for people to review instead of
rejecting it; its threshold form reads the re-labeling agreement (llm) or the classifier's
confidence (classifier); the execute method has no score, so it takes ``route: true`` only.
"""

from __future__ import annotations

import asyncio
import math
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from datarefinery.config import TaskSpec
from datarefinery.io.read import read_records
from datarefinery.llm.base import SamplingParams
from datarefinery.models.crossfit import out_of_fold_proba
from datarefinery.models.smallmodel import ModelKind, make_small_model
from datarefinery.prompts.render import load_template
from datarefinery.records import Record, Rejected
from datarefinery.sandbox import clip, ensure_sandbox, run_python
from datarefinery.steps.base import Output, Step, StepConfig, StepContext, gather_or_cancel
from datarefinery.steps.curate.fields import chosen_fields, label_field_of
from datarefinery.steps.routing import ROUTE_HELP, Route, route_kept, route_or_reject
from datarefinery.steps.voting import vote


class ConsistencyConfig(StepConfig):
    method: Literal["llm", "classifier", "execute"] = "llm"
    fields: list[str] | None = Field(
        default=None, description="fields the labeler reads; default: the task's content fields"
    )
    # llm
    k: int = Field(default=3, ge=1, le=20, description="llm: samples per record")
    template: str = "label"
    temperature: float | None = Field(default=None, ge=0, le=2)
    # classifier
    model: ModelKind = "tfidf-lr"
    train: str | None = Field(default=None, description="classifier: labeled training data")
    folds: int = Field(default=5, ge=2, le=20)
    min_confidence: float = Field(default=0.5, ge=0, le=1)
    # execute
    code_field: str | None = None
    answer_field: str | None = None
    answer_pattern: str | None = Field(
        default=None, description="regex whose group 1 is the stated answer, e.g. '####\\s*(.+)'"
    )
    result_var: str = "answer"
    tolerance: float = Field(default=1e-6, ge=0)
    timeout_s: float = Field(default=10.0, gt=0)
    cpu_s: int = Field(default=5, ge=1)
    memory_mb: int = Field(default=512, ge=32)
    concurrency: int = Field(default=2, ge=1, le=64)
    route: Route = Field(default=False, description=ROUTE_HELP)

    @model_validator(mode="after")
    def _execute_needs_code(self) -> ConsistencyConfig:
        if self.method == "execute" and not self.code_field:
            raise ValueError("method execute needs code_field: the field holding the Python code")
        if self.answer_pattern is not None:
            try:
                re.compile(self.answer_pattern)
            except re.error as exc:
                raise ValueError(f"answer_pattern is not a valid regex: {exc}") from None
        if self.method == "execute" and self.route not in (True, False):
            raise ValueError("method execute has no score to route on: use route: true")
        return self


SHOWN_CHARS = 200
_NUMBER_NOISE = re.compile(r"[,$€£%\s]")


def answers_match(stated: str, computed: str, tolerance: float = 1e-6) -> bool:
    """Numbers compare within a relative ``tolerance`` (ignoring thousands separators, currency
    and percent signs); anything else compares case-insensitively after trimming.
    """
    a, b = stated.strip().rstrip("."), computed.strip().rstrip(".")
    try:
        x, y = float(_NUMBER_NOISE.sub("", a)), float(_NUMBER_NOISE.sub("", b))
    except ValueError:
        return a.casefold() == b.casefold()
    return math.isclose(x, y, rel_tol=tolerance, abs_tol=tolerance)


class Consistency(Step[ConsistencyConfig]):
    name = "consistency"
    Config = ConsistencyConfig

    def __init__(self, config: ConsistencyConfig) -> None:
        super().__init__(config)
        # Only the llm method calls the model; the others must not make the run load one.
        self.uses_llm = config.method == "llm"  # type: ignore[misc]

    def needs_whole_input(self) -> bool:
        return self.config.method == "classifier" and self.config.train is None

    def _inputs(self, task: TaskSpec | None) -> list[str]:
        return chosen_fields(self.config.fields, task)

    def _label_field(self, task: TaskSpec | None) -> str:
        return label_field_of(task)

    def reads(self, task: TaskSpec | None) -> set[str]:
        cfg = self.config
        if cfg.method == "execute":
            return {f for f in (cfg.code_field, cfg.answer_field) if f}
        return {*self._inputs(task), self._label_field(task)}

    def setup(self, ctx: StepContext) -> None:
        super().setup(ctx)
        cfg = self.config
        self.inputs = self._inputs(ctx.task)
        self.label_field = self._label_field(ctx.task)
        if cfg.method == "llm":
            ctx.require_task()
            self.template = load_template(cfg.template)
        elif cfg.method == "classifier" and cfg.train is not None:
            path = Path(cfg.train)
            path = path if path.is_absolute() else ctx.base_dir / path
            train = list(read_records(path, required=[*self.inputs, self.label_field]))
            self.classifier = make_small_model(cfg.model, self.inputs, self.label_field)
            self.classifier.fit(train)
        elif cfg.method == "execute":
            ensure_sandbox()  # refuse at set-up, before any record, where the sandbox cannot run
            self.pattern = re.compile(cfg.answer_pattern) if cfg.answer_pattern else None
            self.slots = asyncio.Semaphore(cfg.concurrency)

    async def process(self, batch: list[Record]) -> list[Output]:
        method = self.config.method
        if method == "llm":
            results = await gather_or_cancel(*(self._relabel(r) for r in batch))
            return list(results)
        if method == "execute":
            return list(await gather_or_cancel(*(self._execute(r) for r in batch)))
        return self._classify(batch)

    def _done(self, output: Output) -> Output:
        # Per-record progress is for LLM steps; the executor counts the others per shard.
        if self.uses_llm and self.ctx.on_record is not None:
            kept = isinstance(output, Record)
            self.ctx.on_record(int(kept), int(not kept))
        return output

    def _scored(self, record: Record, **scores: Any) -> Record:
        merged = dict(record.scores)
        merged.update({f"{self.ctx.name}_{k}": v for k, v in scores.items()})
        return Record(record.id, record.fields, record.provenance, merged)

    # llm ----------------------------------------------------------------------------------------

    async def _relabel(self, record: Record) -> Output:
        ctx, cfg = self.ctx, self.config
        result = await vote(
            ctx.require_engine(),
            self.template,
            ctx.require_task(),
            record,
            input_fields=self.inputs,
            k=cfg.k,
            params=_sampling(ctx, cfg.temperature),
            seeds=[ctx.call_seed(record.id, i) for i in range(cfg.k)],
        )
        stated = str(record.fields.get(self.label_field))
        scored = self._scored(record, label=result.label, agreement=round(result.agreement, 4))
        if result.label is None:
            detail = f"none of the {cfg.k} re-labeling answers was valid"
            return self._done(Rejected(scored, ctx.name, "no_vote", detail))
        if result.label != stated:
            detail = f"labeled {stated!r}, the model says {result.label!r} (votes {result.votes})"
            rejection = Rejected(scored, ctx.name, "label_disagrees", detail)
            return self._done(
                route_or_reject(cfg.route, rejection, f"{ctx.name}_agreement", result.agreement)
            )
        return self._done(
            route_kept(cfg.route, scored, ctx.name, f"{ctx.name}_agreement", result.agreement)
        )

    # classifier ---------------------------------------------------------------------------------

    def _classify(self, batch: list[Record]) -> list[Output]:
        cfg = self.config
        if cfg.train is not None:
            proba = self.classifier.predict_proba(batch)
            classes = list(self.classifier.classes_)
        else:
            proba, classes = out_of_fold_proba(
                batch,
                kind=cfg.model,
                text_fields=self.inputs,
                label_field=self.label_field,
                folds=cfg.folds,
                seed=self.ctx.seed,
            )
        outputs: list[Output] = []
        for record, row in zip(batch, proba, strict=True):
            best = int(row.argmax())
            predicted, confidence = classes[best], float(row[best])
            stated = str(record.fields.get(self.label_field))
            scored = self._scored(record, label=predicted, confidence=round(confidence, 4))
            if predicted != stated and confidence >= cfg.min_confidence:
                detail = (
                    f"labeled {stated!r}, the {cfg.model} classifier says {predicted!r} "
                    f"(p={confidence:.2f})"
                )
                rejection = Rejected(scored, self.ctx.name, "label_disagrees", detail)
                outputs.append(
                    route_or_reject(cfg.route, rejection, f"{self.ctx.name}_confidence", confidence)
                )
            else:
                name = self.ctx.name
                outputs.append(
                    route_kept(cfg.route, scored, name, f"{self.ctx.name}_confidence", confidence)
                )
        return outputs

    # execute ------------------------------------------------------------------------------------

    async def _execute(self, record: Record) -> Output:
        cfg, name = self.config, self.ctx.name
        code = str(record.fields.get(str(cfg.code_field), ""))
        async with self.slots:
            result = await run_python(
                code,
                timeout_s=cfg.timeout_s,
                cpu_s=cfg.cpu_s,
                memory_mb=cfg.memory_mb,
                result_var=cfg.result_var,
            )
        computed = result.output()
        shown = None if computed is None else clip(computed, SHOWN_CHARS)
        scored = self._scored(record, status=result.status, computed=shown)
        if not result.ok:
            detail = f"the code ended with {result.status}: {clip(result.error, 300)}"
            return self._done(Rejected(scored, name, "execution_failed", detail))
        if cfg.answer_field is None:
            return self._done(scored)
        stated = self._stated(record)
        if stated is None:
            detail = f"no stated answer in field {cfg.answer_field!r}"
            return self._done(Rejected(scored, name, "no_answer", detail))
        if computed is None:
            detail = f"the code set no {cfg.result_var!r} and printed nothing"
            return self._done(Rejected(scored, name, "no_answer", detail))
        if not answers_match(stated, computed, cfg.tolerance):
            detail = f"stated answer {clip(stated, SHOWN_CHARS)!r}, the code computes {shown!r}"
            rejection = Rejected(scored, name, "answer_mismatch", detail)
            return self._done(route_or_reject(cfg.route, rejection, "answer", None))
        return self._done(scored)

    def _stated(self, record: Record) -> str | None:
        value = record.fields.get(str(self.config.answer_field))
        if value is None:
            return None
        text = str(value)
        if self.pattern is None:
            return text if text.strip() else None
        match = self.pattern.search(text)
        if match is None:
            return None
        return match.group(1) if match.groups() else match.group(0)


def _sampling(ctx: StepContext, temperature: float | None) -> SamplingParams:
    llm = ctx.llm
    return SamplingParams(
        temperature=llm.temperature if temperature is None else temperature,
        top_p=llm.top_p,
        max_tokens=64,  # {"label": "..."} needs a few tokens
    )
