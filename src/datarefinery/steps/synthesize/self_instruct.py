"""``self_instruct``: bootstrap instructions from the seed task pool (Wang et al. 2023).

Each round asks for ``instructions_per_round`` new instructions, ``per_call`` per call, showing
``demos`` seed instructions and ``machine_demos`` instructions made in earlier rounds. A candidate
is rejected when it is too short or too close to the pool (ROUGE-L above ``max_similarity`` with a
seed, an earlier round's instruction, or one accepted earlier in the round; ``too_similar``). The
model then writes an input (when the task has one) and an output for each accepted instruction.

Rounds run in order: round ``r`` waits for round ``r − 1`` and draws its machine demonstrations
from the instructions kept so far. One job is one round; a resumed run rebuilds the pool from the
committed rounds, so it asks the same questions as an uninterrupted one.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

from pydantic import Field

from datarefinery.llm.base import Request
from datarefinery.llm.structured import schema_of
from datarefinery.records import Provenance, Record, Rejected, stable_id
from datarefinery.steps.base import Failure, LLMCall, Output, StepContext, gather_or_cancel
from datarefinery.steps.synthesize.generation import GenerationStep
from datarefinery.steps.synthesize.planned import SynthesisConfig
from datarefinery.steps.writing import combined_hash, item_model, strings_model, text_budget
from datarefinery.text import SimilarityPool, rouge_tokens


class SelfInstructConfig(SynthesisConfig):
    per_call: int = Field(default=4, ge=1, le=20, description="instructions asked for per call")
    rounds: int = Field(default=2, ge=1, le=100)
    instructions_per_round: int = Field(default=8, ge=1, le=10_000)
    demos: int = Field(default=4, ge=1, le=20, description="seed instructions shown per call")
    machine_demos: int = Field(
        default=2, ge=0, le=20, description="earlier rounds' instructions shown per call"
    )
    max_similarity: float = Field(default=0.7, ge=0, le=1)
    min_words: int = Field(default=3, ge=1)
    instruction_field: str = "instruction"
    input_field: str | None = Field(
        default="input", description="the task's input field; left out if the task has none"
    )
    output_field: str = "output"
    instance_template: str | None = None


class SelfInstruct(GenerationStep[SelfInstructConfig]):
    name = "self_instruct"
    Config = SelfInstructConfig
    technique = "self_instruct"

    def setup(self, ctx: StepContext) -> None:
        super().setup(ctx)
        task = ctx.require_task()
        config = self.config
        self.input_field = config.input_field
        if self.input_field not in task.fields and "input_field" not in config.model_fields_set:
            self.input_field = None
        wanted = [config.instruction_field, self.input_field, config.output_field]
        self.fields = [f for f in wanted if f is not None]
        self.require_fields(self.fields, "instruction_field, input_field and output_field")
        seeds = self.require_seeds("seed tasks")
        self.seeds = [(s.id, str(s.fields[config.instruction_field])) for s in seeds]
        self.template = self.prompt("self_instruct", config.template)
        self.instance_template = self.prompt("self_instruct_instance", config.instance_template)
        self.instance_model = item_model(task, [f for f in self.fields if f != wanted[0]])
        # round -> (record id, instruction) of the records it kept; filled as rounds finish
        self._made: dict[int, list[tuple[str, str]]] = {}
        self._running: dict[int, asyncio.Event] = {}

    def plan(self) -> list[Record]:
        return [
            Record(
                id=stable_id(self.ctx.name, "round", r),
                fields={},
                provenance=Provenance(
                    step=self.ctx.name, technique="plan", conditioning={"round": r}
                ),
            )
            for r in range(self.config.rounds)
        ]

    def restore(self, committed: Any) -> None:
        records = list(committed)
        super().restore(records)
        for record in records:
            round_ = int(record.provenance.conditioning["round"])
            instruction = str(record.fields[self.config.instruction_field])
            self._made.setdefault(round_, []).append((record.id, instruction))

    async def process(self, batch: list[Record]) -> list[Output]:
        # Register this batch's rounds before the first await: a later round waits only for
        # rounds that are running in this session (earlier ones were committed and restored).
        for job in batch:
            self._running[self._round(job)] = asyncio.Event()
        results = await gather_or_cancel(*(self._one_round(job) for job in batch))
        return [output for outputs in results for output in outputs]

    def _round(self, job: Record) -> int:
        return int(job.provenance.conditioning["round"])

    async def _one_round(self, job: Record) -> list[Output]:
        round_ = self._round(job)
        for earlier in range(round_):
            event = self._running.get(earlier)
            if event is not None:
                await event.wait()
        outputs = await self._generate(job, round_)
        self._made[round_] = [
            (o.id, str(o.fields[self.config.instruction_field]))
            for o in outputs
            if isinstance(o, Record)
        ]
        self._running[round_].set()
        self.report(outputs)
        return outputs

    async def _generate(self, job: Record, round_: int) -> list[Output]:
        machine = [made for r in range(round_) for made in self._made.get(r, [])]
        pool = SimilarityPool([text for _, text in self.seeds] + [text for _, text in machine])
        total = self.config.instructions_per_round
        per_call = self.config.per_call
        calls = []
        for call in range(math.ceil(total / per_call)):
            n = min(per_call, total - call * per_call)
            calls.append(self._instruction_call(job, round_, call, n, machine))
        answers = await gather_or_cancel(*(self.ask(call) for call, _ in calls))
        outputs: list[Output] = []
        accepted: list[Record] = []
        for call, ((_, demo_ids), answer) in enumerate(zip(calls, answers, strict=True)):
            conditioning = {"round": round_, "demo_ids": demo_ids}
            if isinstance(answer, Failure):
                stub = Record(stable_id(job.id, call), {}, self._provenance(conditioning))
                outputs.append(answer.reject(stub, self.ctx.name))
                continue
            for i, text in enumerate(answer.value.instructions):
                candidate = Record(
                    id=stable_id(job.id, call, i),
                    fields={self.config.instruction_field: text},
                    provenance=self._provenance(dict(conditioning)),
                )
                problem = self._filter(text, pool)
                if problem is not None:
                    outputs.append(Rejected(candidate, self.ctx.name, *problem))
                    continue
                score, _ = pool.closest(text)
                candidate.provenance.conditioning["rouge_l_max"] = round(score, 3)
                pool.add(text)
                accepted.append(candidate)
        instances = await gather_or_cancel(*(self._instance(c) for c in accepted))
        return outputs + list(instances)

    def _filter(self, text: str, pool: SimilarityPool) -> tuple[str, str] | None:
        words = len(rouge_tokens(text))
        if words < self.config.min_words:
            return "too_short", f"{words} words (min_words {self.config.min_words})"
        score, closest = pool.closest(text)
        if score > self.config.max_similarity:
            return "too_similar", f"ROUGE-L {score:.2f} with {closest!r}"
        return None

    def _instruction_call(
        self, job: Record, round_: int, call: int, n: int, machine: list[tuple[str, str]]
    ) -> tuple[LLMCall[Any], list[str]]:
        rng = self.rng("demos", round_, call)
        demos = rng.sample(self.seeds, min(self.config.demos, len(self.seeds)))
        demos += rng.sample(machine, min(self.config.machine_demos, len(machine)))
        rng.shuffle(demos)
        chars = self.ctx.require_task().fields[self.config.instruction_field].max_chars
        model = strings_model("instructions", n, min_chars=1, max_chars=chars)
        request = Request(
            messages=self.template.render(
                task=self.ctx.require_task(), demos=[text for _, text in demos], n=n
            ),
            params=self.sampling(
                temperature=self.config.temperature,
                max_tokens=self.config.max_tokens or n * (chars + 8) + 32,
            ),
            json_schema=schema_of(model),
            seed=self.ctx.call_seed(job.id, call),
        )
        return LLMCall(request, model), [demo_id for demo_id, _ in demos]

    async def _instance(self, candidate: Record) -> Output:
        task = self.ctx.require_task()
        instruction = str(candidate.fields[self.config.instruction_field])
        written = [f for f in self.fields if f != self.config.instruction_field]
        floor = self.config.max_tokens or self.ctx.llm.max_tokens
        request = Request(
            messages=self.instance_template.render(
                task=task,
                instruction=instruction,
                input_field=self.input_field,
                output_field=self.config.output_field,
            ),
            params=self.sampling(
                temperature=self.config.temperature,
                max_tokens=self.config.max_tokens or text_budget(task, written, 1, floor),
            ),
            json_schema=schema_of(self.instance_model),
            seed=self.ctx.call_seed("instance", candidate.id),
        )
        answer = await self.ask(LLMCall(request, self.instance_model))
        if isinstance(answer, Failure):
            return answer.reject(candidate, self.ctx.name)
        fields = {self.config.instruction_field: instruction}
        fields.update({f: getattr(answer.value, f) for f in written})
        record = Record(candidate.id, {f: fields[f] for f in task.fields}, candidate.provenance, {})
        if not str(fields[self.config.output_field]).strip():
            return Rejected(record, self.ctx.name, "empty", "empty output")
        return record

    def _provenance(self, conditioning: dict[str, Any]) -> Provenance:
        template_hash = combined_hash(self.template, self.instance_template)
        return self.provenance(self.technique, conditioning, template_hash)
