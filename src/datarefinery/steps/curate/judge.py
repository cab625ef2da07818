"""``judge``: LLM-as-judge with a rubric from the spec.

Pointwise (default): one call per record; the reply holds a short reason and, per criterion, a
score that the schema restricts to the enum 1..5. The record keeps ``scores[<step>]`` (mean over
criteria), ``scores[<step>_<criterion>]`` and ``scores[<step>_reason]``; with ``threshold`` a
record whose mean is below it is rejected (``low_score``), or kept for people to review with
``route`` (see ``steps.routing``; the score is the mean).

Pairwise (``mode: pairwise``): records sharing the value of ``group_by`` (e.g. the same prompt)
are paired in input order; each pair is judged twice with the candidates swapped, and only a
preference that survives the swap becomes a ``{group_by, chosen, rejected, margin}`` record (a
DPO-style preference pair, parents = both records; a verdict is binary, so ``margin`` is 1.0:
graded margins come from pointwise scores and the ``preferences`` step). A preference that flips
with the order is position bias, not a judgement: both records are rejected
(``inconsistent_preference``); a ``tie`` verdict in either order rejects both as ``tie``.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, create_model, field_validator, model_validator

from datarefinery.config import TaskSpec
from datarefinery.errors import RequestRejectedError
from datarefinery.llm.base import Request, Response
from datarefinery.llm.structured import schema_of
from datarefinery.prompts.render import load_template
from datarefinery.records import Provenance, Record, Rejected, stable_id
from datarefinery.steps.base import (
    LLMCall,
    LLMStep,
    Output,
    StepConfig,
    StepContext,
    gather_or_cancel,
)
from datarefinery.steps.routing import ROUTE_HELP, Route, route_kept, route_or_reject

Score = Literal[1, 2, 3, 4, 5]
Better = Literal["A", "B", "tie"]
DEFAULT_CRITERIA = {
    "quality": "realistic, fluent, correct, and a good example of its label for the task",
}


class JudgeConfig(StepConfig):
    criteria: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_CRITERIA))
    rubric: str | None = Field(default=None, description="extra instructions for the judge")
    fields: list[str] | None = Field(
        default=None, description="fields shown to the judge; default: the task's fields"
    )
    threshold: float | None = Field(
        default=None, ge=1, le=5, description="reject records whose mean score is below this"
    )
    mode: Literal["pointwise", "pairwise"] = "pointwise"
    group_by: str | None = Field(default=None, description="pairwise: field shared by a pair")
    compare: str | None = Field(
        default=None, description="pairwise: the field compared; default: the first text field"
    )
    template: str | None = None
    temperature: float | None = Field(default=0.0, ge=0, le=2)
    reason_chars: int = Field(default=200, ge=10, le=2000)
    route: Route = Field(default=False, description=ROUTE_HELP)

    @field_validator("criteria")
    @classmethod
    def _names(cls, criteria: dict[str, str]) -> dict[str, str]:
        if not criteria:
            raise ValueError("give at least one criterion")
        for name in criteria:
            if not name.isidentifier() or name in {"reason", "better"}:
                raise ValueError(f"criterion {name!r}: use a plain identifier such as 'fluency'")
        return criteria

    @model_validator(mode="after")
    def _pairwise(self) -> JudgeConfig:
        if self.mode == "pairwise" and not self.group_by:
            raise ValueError("pairwise mode needs group_by: the field two candidates share")
        if self.mode == "pairwise" and self.route is not False:
            raise ValueError("route is for pointwise judging: a pairwise verdict has no score")
        return self


class Judge(LLMStep[JudgeConfig]):
    name = "judge"
    Config = JudgeConfig

    def needs_whole_input(self) -> bool:
        return self.config.mode == "pairwise"

    def _shown(self, task: TaskSpec | None) -> list[str]:
        if self.config.fields is not None:
            return list(self.config.fields)
        return list(task.fields) if task else ["text"]

    def _compared(self, task: TaskSpec | None) -> str:
        if self.config.compare:
            return self.config.compare
        if task is not None:
            texts = [n for n, f in task.fields.items() if f.type == "text"]
            if texts:
                return texts[0]
        return "text"

    def reads(self, task: TaskSpec | None) -> set[str]:
        if self.config.mode == "pairwise":
            return {self._compared(task), str(self.config.group_by)}
        return set(self._shown(task))

    def writes(self, task: TaskSpec | None) -> set[str]:
        if self.config.mode == "pairwise":
            return {str(self.config.group_by), "chosen", "rejected", "margin"}
        return set()

    def setup(self, ctx: StepContext) -> None:
        super().setup(ctx)
        cfg = self.config
        pairwise = cfg.mode == "pairwise"
        self.template = load_template(cfg.template or ("judge_pair" if pairwise else "judge"))
        reason = (str, Field(..., min_length=1, max_length=cfg.reason_chars))
        if pairwise:
            self.reply_model: type[BaseModel] = create_model(
                "PairVerdict", reason=reason, better=(Better, ...)
            )
        else:
            scores: dict[str, Any] = {name: (Score, ...) for name in cfg.criteria}
            self.reply_model = create_model("Verdict", reason=reason, **scores)
        self.reply_model.model_config["extra"] = "forbid"
        self.shown = self._shown(ctx.task)
        self.compared = self._compared(ctx.task)

    def _variables(self) -> dict[str, Any]:
        task = self.ctx.task
        return {
            "task_description": task.description if task else "",
            "rubric": self.config.rubric or "",
            "criteria": self.config.criteria,
        }

    def _request(self, messages: Any, *seed_parts: object) -> Request:
        return Request(
            messages=messages,
            params=self.sampling(temperature=self.config.temperature),
            json_schema=schema_of(self.reply_model),
            seed=self.ctx.call_seed(*seed_parts),
        )

    # pointwise ---------------------------------------------------------------------------------

    def build_call(self, record: Record) -> LLMCall[Any]:
        shown = {name: record.fields.get(name, "") for name in self.shown}
        messages = self.template.render(record=shown, **self._variables())
        return LLMCall(self._request(messages, record.id), self.reply_model)

    def parse(self, reply: Any, record: Record, response: Response) -> list[Output]:
        prefix = self.ctx.name
        values = {name: int(getattr(reply, name)) for name in self.config.criteria}
        mean = sum(values.values()) / len(values)
        scores = dict(record.scores)
        scores[prefix] = round(mean, 4)
        if len(values) > 1:
            scores.update({f"{prefix}_{name}": v for name, v in values.items()})
        scores[f"{prefix}_reason"] = str(reply.reason)
        judged = Record(record.id, record.fields, record.provenance, scores)
        threshold = self.config.threshold
        if threshold is not None and mean < threshold:
            detail = f"mean score {mean:.2f} < threshold {threshold:g}: {reply.reason}"
            rejection = Rejected(judged, prefix, "low_score", detail)
            return [route_or_reject(self.config.route, rejection, prefix, mean)]
        return [route_kept(self.config.route, judged, prefix, prefix, mean)]

    # pairwise ----------------------------------------------------------------------------------

    async def process(self, batch: list[Record]) -> list[Output]:
        if self.config.mode == "pointwise":
            return await super().process(batch)
        group_field = str(self.config.group_by)
        groups: dict[str, list[Record]] = {}
        for record in batch:
            groups.setdefault(str(record.fields.get(group_field, "")), []).append(record)
        outputs: list[Output] = []
        pairs: list[tuple[str, Record, Record]] = []
        for value, members in groups.items():
            for i in range(0, len(members) - 1, 2):
                pairs.append((value, members[i], members[i + 1]))
            if len(members) % 2:
                detail = f"no second record with {group_field} = {value[:60]!r} to compare with"
                outputs.append(Rejected(members[-1], self.ctx.name, "unpaired", detail))
        results = await gather_or_cancel(*(self._judge_pair(*pair) for pair in pairs))
        for result in results:
            outputs.extend(result)
        return outputs

    async def _verdict(self, value: str, first: Record, second: Record) -> str | Rejected:
        messages = self.template.render(
            group_field=self.config.group_by,
            group_value=value,
            first=first.fields.get(self.compared, ""),
            second=second.fields.get(self.compared, ""),
            **self._variables(),
        )
        request = self._request(messages, first.id, second.id)
        try:
            result = await self.ctx.require_engine().complete_structured(request, self.reply_model)
        except RequestRejectedError as exc:
            return Rejected(first, self.ctx.name, "backend_refused", str(exc))
        if result.value is None:
            assert result.failure is not None
            detail = f"{result.failure.message}; last reply: {result.raw_text[:300]!r}"
            return Rejected(first, self.ctx.name, result.failure.reason, detail)
        reply: Any = result.value
        return f"{reply.better}\x1f{reply.reason}"

    async def _judge_pair(self, value: str, a: Record, b: Record) -> list[Output]:
        forward, backward = await gather_or_cancel(
            self._verdict(value, a, b), self._verdict(value, b, a)
        )
        outputs: list[Output] = []
        for verdict in (forward, backward):
            if isinstance(verdict, Rejected):
                detail = f"pair with {b.id if verdict.record is a else a.id}: {verdict.detail}"
                outputs = [
                    Rejected(a, self.ctx.name, verdict.reason, detail),
                    Rejected(b, self.ctx.name, verdict.reason, detail),
                ]
                break
        else:
            assert isinstance(forward, str) and isinstance(backward, str)
            first_choice, reason = forward.split("\x1f", 1)
            second_choice = backward.split("\x1f", 1)[0]
            a_wins = first_choice == "A"
            if "tie" in (first_choice, second_choice):
                detail = f"the judge called {a.id} and {b.id} a tie: {reason}"
                outputs = [Rejected(r, self.ctx.name, "tie", detail) for r in (a, b)]
            elif a_wins != (second_choice == "B"):
                shown = "first" if first_choice == "A" else "second"
                detail = (
                    f"the judge preferred the {shown}-shown answer both times ({a.id} vs "
                    f"{b.id}): position bias, no preference kept"
                )
                outputs = [
                    Rejected(a, self.ctx.name, "inconsistent_preference", detail),
                    Rejected(b, self.ctx.name, "inconsistent_preference", detail),
                ]
            else:
                outputs = [self._preference(value, a if a_wins else b, b if a_wins else a, reason)]
        if self.ctx.on_record is not None:
            kept = sum(1 for o in outputs if isinstance(o, Record))
            self.ctx.on_record(kept, len(outputs) - kept)
        return outputs

    def _preference(self, value: str, chosen: Record, rejected: Record, reason: str) -> Record:
        group_field = str(self.config.group_by)
        return Record(
            id=stable_id(self.ctx.name, chosen.id, rejected.id),
            fields={
                group_field: chosen.fields.get(group_field, value),
                "chosen": chosen.fields.get(self.compared, ""),
                "rejected": rejected.fields.get(self.compared, ""),
                "margin": 1.0,
            },
            provenance=Provenance(
                step=self.ctx.name,
                technique="pairwise_judge",
                model=self.ctx.require_engine().model_identity,
                template_hash=self.template.hash,
                parent_ids=[chosen.id, rejected.id],
                source=chosen.provenance.source,
            ),
            scores={f"{self.ctx.name}_reason": reason},
        )
