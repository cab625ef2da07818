"""``evol_instruct``: evolve seed instructions over rounds (WizardLM, Xu et al. 2023), with the
elimination step the reference code leaves out.

Each job is one chain from one seed: every round picks an operation (seeded): in depth (add a
constraint, deepen, concretize, require more reasoning, complicate the input) or in breadth (a new
task in the same domain), asks for the evolved instruction, then for its answer. An evolution is
eliminated, with its reason, when it

- copies the evolving prompt (``copies_prompt``: "rewritten prompt" and the like, or mostly the
  operation's own wording),
- adds no information (``no_new_information``: the same text, no word that was not in the task it
  came from, ROUGE-L above ``max_similarity`` with it, or, with ``judge_equal``, the model says the
  two ask for the same thing),
- cannot be answered (``cannot_answer``: an empty answer, one of stop words and punctuation only,
  or a short refusal).

A surviving evolution becomes a record (instruction + answer) and the next round evolves it; after
an elimination the chain goes on from the last survivor. ``parent_ids`` link each record to the
instruction it evolved from (the seed's id for the first).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, create_model

from datarefinery.llm.base import Request
from datarefinery.llm.structured import schema_of
from datarefinery.records import Provenance, Record, Rejected, stable_id
from datarefinery.steps.base import Failure, LLMCall, Output, StepContext, gather_or_cancel
from datarefinery.steps.synthesize.generation import GenerationStep
from datarefinery.steps.synthesize.planned import SynthesisConfig
from datarefinery.steps.writing import combined_hash, item_model, text_budget
from datarefinery.text import STOPWORDS, normalize, rouge_l, rouge_tokens

Operation = Literal[
    "constraints", "deepen", "concretize", "reasoning", "complicate_input", "breadth"
]
OPERATIONS: dict[str, str] = {
    "constraints": "Rewrite the task to add one more constraint or requirement.",
    "deepen": "Rewrite the task so that it asks about its topic in more depth.",
    "concretize": "Rewrite the task to replace general ideas with more specific ones.",
    "reasoning": "Rewrite the task so that solving it clearly needs several steps of reasoning.",
    "complicate_input": (
        "Rewrite the task to include a small piece of input data (a table, code, numbers or a "
        "short text) that the answer must use."
    ),
    "breadth": "Write a brand-new task in the same domain as this task, but on a rarer topic.",
}
PROMPT_MARKERS = (
    "given prompt",
    "rewritten prompt",
    "given task",
    "rewritten task",
    "rewrite the task",
    "the new task must",
    "json object",
)
REFUSALS = (
    "sorry",
    "i cannot",
    "i can't",
    "i can not",
    "i am unable",
    "i'm unable",
    "as an ai",
    "i don't know",
)


class EvolInstructConfig(SynthesisConfig):
    rounds: int = Field(default=3, ge=1, le=20)
    chains_per_seed: int = Field(default=1, ge=1, le=1000)
    operations: list[Operation] = Field(
        default_factory=lambda: list(get_args(Operation)), min_length=1
    )
    max_similarity: float = Field(
        default=0.9,
        ge=0,
        le=1,
        description="ROUGE-L with the task it came from above this: no new information",
    )
    judge_equal: bool = Field(
        default=False, description="also ask the model whether the evolution asks the same thing"
    )
    instruction_field: str = "instruction"
    output_field: str = "output"
    answer_template: str | None = None
    equal_template: str | None = None


class Same(StrEnum):
    yes = "yes"
    no = "no"


class EvolInstruct(GenerationStep[EvolInstructConfig]):
    name = "evol_instruct"
    Config = EvolInstructConfig
    technique = "evol_instruct"

    def setup(self, ctx: StepContext) -> None:
        super().setup(ctx)
        task = ctx.require_task()
        config = self.config
        fields = [config.instruction_field, config.output_field]
        self.require_fields(fields, "instruction_field and output_field")
        self.seeds = self.require_seeds("seed instructions")
        self.template = self.prompt("evol", config.template)
        self.answer_template = self.prompt("evol_answer", config.answer_template)
        self.equal_template = self.prompt("evol_equal", config.equal_template)
        self.instruction_model = item_model(task, [config.instruction_field])
        self.answer_model = item_model(task, [config.output_field])
        self.equal_model: type[BaseModel] = create_model(
            "SameReply", __config__=ConfigDict(extra="forbid"), same=(Same, ...)
        )

    def plan(self) -> list[Record]:
        jobs = []
        for seed in self.seeds:
            for chain in range(self.config.chains_per_seed):
                jobs.append(
                    Record(
                        id=stable_id(self.ctx.name, seed.id, chain),
                        fields={
                            self.config.instruction_field: seed.fields[
                                self.config.instruction_field
                            ]
                        },
                        provenance=Provenance(
                            step=self.ctx.name,
                            technique="plan",
                            conditioning={"seed_id": seed.id, "chain": chain},
                        ),
                    )
                )
        return jobs

    async def process(self, batch: list[Record]) -> list[Output]:
        results = await gather_or_cancel(*(self._chain(job) for job in batch))
        return [output for outputs in results for output in outputs]

    async def _chain(self, job: Record) -> list[Output]:
        seed_id = str(job.provenance.conditioning["seed_id"])
        current_id, current = seed_id, str(job.fields[self.config.instruction_field])
        outputs: list[Output] = []
        for round_ in range(self.config.rounds):
            operation = self.rng("operation", job.id, round_).choice(self.config.operations)
            record_id = stable_id(job.id, round_)
            conditioning = {
                "seed_id": seed_id,
                "round": round_,
                "operation": operation,
                "evolved_from": current,
            }
            output = await self._evolve(record_id, current, current_id, operation, conditioning)
            outputs.append(output)
            if isinstance(output, Record):
                current_id = output.id
                current = str(output.fields[self.config.instruction_field])
        self.report(outputs)
        return outputs

    async def _evolve(
        self,
        record_id: str,
        current: str,
        current_id: str,
        operation: str,
        conditioning: dict[str, Any],
    ) -> Output:
        config = self.config
        task = self.ctx.require_task()
        provenance = self.provenance(
            self.technique,
            conditioning,
            combined_hash(self.template, self.answer_template),
            parents=[current_id],
        )
        stub = Record(record_id, {}, provenance)
        messages = self.template.render(
            task=task,
            instruction=current,
            operation=OPERATIONS[operation],
            instruction_field=config.instruction_field,
        )
        evolved = await self.ask(self._call(messages, self.instruction_model, record_id, "evolve"))
        if isinstance(evolved, Failure):
            return evolved.reject(stub, self.ctx.name)
        instruction = str(getattr(evolved.value, config.instruction_field))
        stub.fields[config.instruction_field] = instruction
        problem = copies_prompt(instruction, operation) or no_new_information(
            instruction, current, config.max_similarity
        )
        if problem is None and config.judge_equal:
            problem = await self._judged_equal(record_id, current, instruction)
        if problem is not None:
            return Rejected(stub, self.ctx.name, *problem)
        messages = self.answer_template.render(
            task=task, instruction=instruction, output_field=config.output_field
        )
        answer = await self.ask(self._call(messages, self.answer_model, record_id, "answer"))
        if isinstance(answer, Failure):
            return answer.reject(stub, self.ctx.name)
        output = str(getattr(answer.value, config.output_field))
        stub.fields[config.output_field] = output
        record = Record(record_id, {f: stub.fields[f] for f in task.fields}, provenance)
        problem = cannot_answer(output)
        return Rejected(record, self.ctx.name, *problem) if problem else record

    async def _judged_equal(
        self, record_id: str, original: str, evolved: str
    ) -> tuple[str, str] | None:
        messages = self.equal_template.render(original=original, evolved=evolved)
        call = self._call(messages, self.equal_model, record_id, "equal", max_tokens=16)
        verdict = await self.ask(call)
        if isinstance(verdict, Failure) or verdict.value.same is not Same.yes:
            return None
        return "no_new_information", "the model judged it to ask the same as the task it came from"

    def _call(
        self,
        messages: Any,
        model: type[BaseModel],
        record_id: str,
        purpose: str,
        max_tokens: int | None = None,
    ) -> LLMCall[Any]:
        task = self.ctx.require_task()
        fields = list(model.model_fields)
        floor = self.config.max_tokens or self.ctx.llm.max_tokens
        budget = max_tokens or self.config.max_tokens or text_budget(task, fields, 1, floor)
        request = Request(
            messages=messages,
            params=self.sampling(temperature=self.config.temperature, max_tokens=budget),
            json_schema=schema_of(model),
            seed=self.ctx.call_seed(purpose, record_id),
        )
        return LLMCall(request, model)


def copies_prompt(instruction: str, operation: str) -> tuple[str, str] | None:
    text = normalize(instruction)
    for marker in PROMPT_MARKERS:
        if marker in text:
            return "copies_prompt", f"it contains {marker!r} from the evolving prompt"
    score = rouge_l(instruction, OPERATIONS[operation])
    if score >= 0.6:
        return "copies_prompt", f"ROUGE-L {score:.2f} with the operation's own wording"
    return None


def no_new_information(
    instruction: str, original: str, max_similarity: float
) -> tuple[str, str] | None:
    if normalize(instruction) == normalize(original):
        return "no_new_information", "the same text as the task it came from"
    new_words = set(rouge_tokens(instruction)) - set(rouge_tokens(original)) - STOPWORDS
    if not new_words:
        return "no_new_information", "no word that the task it came from lacks"
    score = rouge_l(instruction, original)
    if score > max_similarity:
        return "no_new_information", f"ROUGE-L {score:.2f} with the task it came from"
    return None


def cannot_answer(output: str) -> tuple[str, str] | None:
    words = rouge_tokens(output)
    if not [w for w in words if w not in STOPWORDS]:
        return "cannot_answer", "the answer holds only stop words and punctuation"
    text = normalize(output).replace("’", "'")
    refusal = next((r for r in REFUSALS if r in text), None)
    # WizardLM's rule: a refusal in a short answer means the model could not answer; a long
    # answer that says "sorry" once is usually a real answer.
    if refusal is not None and len(words) < 80:
        return "cannot_answer", f"a short answer that says {refusal!r}"
    return None
