"""``solve``: verified reasoning traces by rejection sampling.

Each input record is a problem with a reference answer. The model solves it ``n`` times, each
sample a separate request with its own seed and a temperature taken in turn from
``temperatures`` (so each is cached on its own and a rerun repeats it), and only the samples whose
final answer matches the reference are kept (matching: :mod:`.answers`).

- ``mode: cot`` (default): the reply is ``{"reasoning", "result"}`` under a JSON schema. With the
  embedded model the schema becomes a decoding grammar, so even a 135M model's reply parses and
  the answer comes apart from the reasoning; a reply that does not validate is re-asked once by
  the engine, then rejected with the engine's reason (``invalid_json`` / ``schema``).
- ``mode: program``: the reply is ``{"program"}``, Python that sets ``answer`` or prints it; it
  runs in the sandbox (:mod:`datarefinery.sandbox`) and what it computes is the sample's answer.

A sample that is wrong is rejected (``wrong_answer``, with what it got and what was expected), one
that states no answer of the reference's kind ``no_answer``, a program that fails
``execution_failed``. A problem no sample solved is rejected (``unsolved``, with the samples
tried). ``keep``: ``all`` correct samples; ``one_per_problem``, the correct sample with the
shortest reasoning (the others: ``extra_solution``); ``first``, sampling one at a time and
stopping at the first correct one (cheapest; the pass rate is then over the samples tried).
Kept records carry the pass rate of their problem in ``scores[<step>_pass_rate]`` (with
``<step>_correct`` and ``<step>_samples``); the manifest's counts give the run's totals.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, Field, create_model, field_validator

from datarefinery.config import TaskSpec
from datarefinery.llm.base import Request
from datarefinery.llm.structured import schema_of
from datarefinery.prompts.render import load_template
from datarefinery.records import Provenance, Record, Rejected, stable_id
from datarefinery.sandbox import clip, ensure_sandbox, run_python
from datarefinery.steps.base import (
    Failure,
    LLMCall,
    ModelStep,
    Output,
    StepConfig,
    StepContext,
    gather_or_cancel,
)
from datarefinery.steps.synthesize.answers import check_answer

log = logging.getLogger(__name__)
SHOWN_CHARS = 120  # of a model's (or a program's) answer, in rejection details


class SolveConfig(StepConfig):
    question_field: str = "question"
    reference_field: str = Field(
        default="answer", description="the reference answer (GSM8K's '... #### 18' is read too)"
    )
    mode: Literal["cot", "program"] = "cot"
    n: int = Field(default=4, ge=1, le=64, description="samples per problem")
    temperatures: list[float] = Field(
        default_factory=lambda: [0.7, 1.0], description="taken in turn by the samples"
    )
    keep: Literal["all", "first", "one_per_problem"] = "all"
    reasoning_field: str = "reasoning"
    answer_field: str = "answer"
    program_field: str = "program"
    instructions: str | None = Field(default=None, description="added to the prompt")
    template: str | None = None
    answer_chars: int = Field(default=60, ge=1, le=1000)
    max_tokens: int | None = Field(default=None, ge=16, description="default: llm.max_tokens")
    tolerance: float = Field(default=1e-6, ge=0, description="relative, for decimal answers")
    # program mode
    timeout_s: float = Field(default=10.0, gt=0)
    cpu_s: int = Field(default=5, ge=1)
    memory_mb: int = Field(default=256, ge=32)
    concurrency: int = Field(default=2, ge=1, le=64, description="programs run at once")

    @field_validator("temperatures")
    @classmethod
    def _temperatures(cls, values: list[float]) -> list[float]:
        if not values:
            raise ValueError("give at least one temperature, e.g. [0.7]")
        for value in values:
            if not 0 <= value <= 2:
                raise ValueError(f"temperature {value} is outside 0..2")
        return values


@dataclass(frozen=True, slots=True)
class Sample:
    """One judged sample: the record (kept or rejected) and whether its answer was right."""

    output: Record | Rejected
    correct: bool


class Solve(ModelStep[SolveConfig]):
    name = "solve"
    Config = SolveConfig

    def reads(self, task: TaskSpec | None) -> set[str]:
        return {self.config.question_field, self.config.reference_field}

    def writes(self, task: TaskSpec | None) -> set[str]:
        cfg = self.config
        made = cfg.reasoning_field if cfg.mode == "cot" else cfg.program_field
        return {made, cfg.answer_field}

    def setup(self, ctx: StepContext) -> None:
        super().setup(ctx)
        cfg = self.config
        # No maxLength on the reasoning or program: llama.cpp refuses a grammar that repeats a
        # character rule over a thousand times; max_tokens bounds them instead.
        solution = (str, Field(..., min_length=1))
        self.reply_model: type[BaseModel]
        if cfg.mode == "program":
            ensure_sandbox()  # refuse at set-up, before any call, where the sandbox cannot run
            self.slots = asyncio.Semaphore(cfg.concurrency)
            self.reply_model = create_model("Program", program=solution)
        else:
            answer = (str, Field(..., max_length=cfg.answer_chars))
            # Declared order is decoding order on the embedded backend: the reasoning first, so
            # the answer is written after the working that leads to it.
            self.reply_model = create_model("Solution", reasoning=solution, result=answer)
        self.reply_model.model_config["extra"] = "forbid"
        default = "solve_program" if cfg.mode == "program" else "solve"
        self.template = load_template(cfg.template or default)

    async def process(self, batch: list[Record]) -> list[Output]:
        results = await gather_or_cancel(*(self._solve(problem) for problem in batch))
        outputs = [output for result in results for output in result]
        solved = sum(1 for result in results if any(isinstance(o, Record) for o in result))
        log.info("%s: %d of %d problems solved", self.ctx.name, solved, len(batch))
        return outputs

    async def _solve(self, problem: Record) -> list[Output]:
        cfg, name = self.config, self.ctx.name
        reference = str(problem.fields.get(cfg.reference_field) or "").strip()
        if not reference:
            detail = f"no reference answer in field {cfg.reference_field!r}"
            outputs: list[Output] = [Rejected(problem, name, "no_reference", detail)]
        else:
            samples = await self._samples(problem, reference)
            outputs = self._verdict(problem, reference, samples)
        self.report(outputs)
        return outputs

    async def _samples(self, problem: Record, reference: str) -> list[Sample]:
        if self.config.keep != "first":
            calls = (self._sample(problem, reference, i) for i in range(self.config.n))
            return list(await gather_or_cancel(*calls))
        samples: list[Sample] = []
        for index in range(self.config.n):
            samples.append(await self._sample(problem, reference, index))
            if samples[-1].correct:
                break
        return samples

    def _verdict(self, problem: Record, reference: str, samples: list[Sample]) -> list[Output]:
        name = self.ctx.name
        correct = [s.output for s in samples if s.correct and isinstance(s.output, Record)]
        outputs: list[Output] = [s.output for s in samples if not s.correct]
        scores = {
            f"{name}_pass_rate": round(len(correct) / len(samples), 4),
            f"{name}_correct": len(correct),
            f"{name}_samples": len(samples),
        }
        if not correct:
            reasons: dict[str, int] = {}
            for sample in outputs:
                assert isinstance(sample, Rejected)
                reasons[sample.reason] = reasons.get(sample.reason, 0) + 1
            tally = ", ".join(f"{count} {reason}" for reason, count in sorted(reasons.items()))
            detail = (
                f"none of the {len(samples)} samples matched the reference "
                f"{clip(reference, SHOWN_CHARS)!r} ({tally})"
            )
            unsolved = Record(problem.id, problem.fields, problem.provenance)
            unsolved.scores.update({**problem.scores, **scores})
            return [*outputs, Rejected(unsolved, name, "unsolved", detail)]
        chosen = correct
        if self.config.keep == "one_per_problem":
            best = min(correct, key=lambda r: len(str(r.fields.get(self._solution_field, ""))))
            chosen = [best]
            for other in correct:
                if other is not best:
                    detail = f"{best.id} was kept for problem {problem.id} (shorter solution)"
                    outputs.append(Rejected(other, name, "extra_solution", detail))
        for record in chosen:
            record.scores.update(scores)
        return [*chosen, *outputs]

    @property
    def _solution_field(self) -> str:
        cfg = self.config
        return cfg.program_field if cfg.mode == "program" else cfg.reasoning_field

    async def _sample(self, problem: Record, reference: str, index: int) -> Sample:
        cfg, ctx = self.config, self.ctx
        temperature = cfg.temperatures[index % len(cfg.temperatures)]
        seed = ctx.call_seed(problem.id, index)
        messages = self.template.render(
            question=problem.fields.get(cfg.question_field, ""),
            instructions=cfg.instructions or "",
        )
        request = Request(
            messages=messages,
            params=self.sampling(temperature=temperature, max_tokens=cfg.max_tokens),
            json_schema=schema_of(self.reply_model),
            seed=seed,
        )
        conditioning = {
            "sample": index,
            "seed": seed,
            "temperature": temperature,
            "reference": reference,
        }
        record = Record(
            id=stable_id(ctx.name, problem.id, index),
            # Empty until the reply fills them: the reference (often also called "answer") is
            # in the conditioning, so it is never mistaken for what the model said.
            fields={**problem.fields, self._solution_field: None, cfg.answer_field: None},
            provenance=Provenance(
                step=ctx.name,
                technique="program_of_thought" if cfg.mode == "program" else "rejection_sampling",
                model=ctx.require_engine().model_identity,
                template_hash=self.template.hash,
                parent_ids=[problem.id],
                conditioning=conditioning,
                source=problem.provenance.source,
            ),
        )
        answer = await self.ask(LLMCall(request, self.reply_model))
        if isinstance(answer, Failure):
            return Sample(answer.reject(record, ctx.name), False)
        if cfg.mode == "program":
            return await self._run_program(record, str(answer.value.program), reference)
        record.fields[cfg.reasoning_field] = str(answer.value.reasoning)
        record.fields[cfg.answer_field] = str(answer.value.result).strip()
        return self._judge(record, record.fields[cfg.answer_field], reference)

    async def _run_program(self, record: Record, program: str, reference: str) -> Sample:
        cfg = self.config
        record.fields[cfg.program_field] = program
        async with self.slots:
            result = await run_python(
                program, timeout_s=cfg.timeout_s, cpu_s=cfg.cpu_s, memory_mb=cfg.memory_mb
            )
        if not result.ok:
            detail = f"the program ended with {result.status}: {clip(result.error, 300)}"
            return Sample(Rejected(record, self.ctx.name, "execution_failed", detail), False)
        computed = result.output()
        if computed is None:
            detail = "the program set no 'answer' and printed nothing"
            return Sample(Rejected(record, self.ctx.name, "no_answer", detail), False)
        # What a program computes is untrusted: only a short copy goes into the record.
        record.fields[cfg.answer_field] = clip(computed.strip(), SHOWN_CHARS)
        return self._judge(record, computed, reference)

    def _judge(self, record: Record, stated: str, reference: str) -> Sample:
        verdict = check_answer(stated, reference, self.config.tolerance)
        shown = clip(stated, SHOWN_CHARS)
        expected = verdict.expected.shown
        if verdict.got is None:
            detail = (
                f"the answer {shown!r} states no {verdict.expected.kind}; expected {expected!r}"
            )
            return Sample(Rejected(record, self.ctx.name, "no_answer", detail), False)
        if not verdict.matched:
            detail = f"got {verdict.got.shown!r} (from {shown!r}), expected {expected!r}"
            return Sample(Rejected(record, self.ctx.name, "wrong_answer", detail), False)
        return Sample(record, True)
