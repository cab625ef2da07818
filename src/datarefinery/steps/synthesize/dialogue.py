"""``dialogue``: multi-turn chats between a simulated user and an assistant.

Each dialogue gets a persona (the ``personas`` list, taken in turn) and/or a draw of the task's
attributes, then ``turns`` exchanges: the model plays the user (given the persona and the chat so
far), then answers as the assistant (given the chat as chat messages). Every message is its own
call. A broken message (empty, over-long, written as the other side, or a repeat of an earlier
one) is asked again with another seed, keeping the earlier messages; when ``retries`` re-asks all
fail the dialogue is rejected with the reason and the turn. Seeds derive from the dialogue's id,
the turn, the role and the attempt, so a resumed run repeats (and the cache answers) every call.

Dialogues run concurrently; the messages of one dialogue are necessarily sequential.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, Field, create_model

from datarefinery.config import TaskSpec
from datarefinery.errors import ConfigError
from datarefinery.llm.base import Request
from datarefinery.llm.structured import schema_of
from datarefinery.records import Provenance, Record, Rejected, stable_id
from datarefinery.steps.base import (
    Failure,
    LLMCall,
    Output,
    StepConfig,
    StepContext,
    gather_or_cancel,
)
from datarefinery.steps.synthesize.generation import GenerationStep
from datarefinery.steps.writing import combined_hash, text_budget
from datarefinery.text import normalize, rouge_l

# A line that opens with a speaker's name: the model is writing a transcript, not one message.
_SPEAKER = re.compile(
    r"^\s*(?:###\s*)?(user|assistant|customer|client|agent|support|system|ai|bot)\s*(?::|$)",
    re.IGNORECASE | re.MULTILINE,
)
# What an assistant says and a user does not: the user simulator has slipped into the other role.
_ASSISTANT_PHRASES = (
    "how can i help",
    "how may i help",
    "how can i assist",
    "how may i assist",
    "as an ai",
    "i am an ai",
    "i'm an ai",
    "happy to help",
    "glad to help",
    "welcome to",
    "thank you for contacting",
    "thanks for contacting",
    "thank you for reaching out",
    "unable to assist",
    "as a chatbot",
    "as an assistant",
)
# The prompt's ``"<the user's message>"`` copied as the message (whole or cut off).
_PLACEHOLDER = re.compile(r"<[^<>]{0,40}message", re.IGNORECASE)
REPEAT_ROUGE = 0.8


class DialogueConfig(StepConfig):
    count: int = Field(default=10, ge=1, le=1_000_000, description="dialogues to write")
    turns: int = Field(
        default=3, ge=1, le=20, description="exchanges: a user message and the assistant's reply"
    )
    personas: list[str] | None = Field(
        default=None, min_length=1, description="who the user is; dialogue i gets persona i mod n"
    )
    attributes: list[str] | None = Field(
        default=None,
        description="task attributes drawn per dialogue (weighted); default: all of them when "
        "no personas are given",
    )
    system: str | None = Field(default=None, description="a system prompt put first in each chat")
    field: str | None = Field(
        default=None, description="the messages field; default: the task's only messages field"
    )
    retries: int = Field(default=2, ge=0, le=10, description="re-asks of a broken message")
    user_template: str | None = None
    assistant_template: str | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    max_tokens: int | None = Field(default=None, ge=1)


def turn_problem(
    text: str,
    role: str,
    earlier: list[dict[str, str]],
    max_chars: int,
    instructions: tuple[str, ...] = (),
) -> tuple[str, str] | None:
    """(reason, detail) when a simulated message is unusable, else ``None``. ``instructions``
    are the prompt's own lines (not the chat's): small models answer by copying them.
    """
    if not text.strip():
        return "empty_turn", "the message is empty"
    if len(text) > max_chars:
        return "too_long", f"{len(text)} characters, more than {max_chars}"
    speaker = _SPEAKER.search(text)
    if speaker:
        return "role_confusion", f"the {role} message holds a speaker line {speaker.group(0)!r}"
    lowered = normalize(text)
    if role == "user":
        phrase = next((p for p in _ASSISTANT_PHRASES if p in lowered), None)
        if phrase:
            return "role_confusion", f"the user message speaks as the assistant ({phrase!r})"
    if _PLACEHOLDER.search(text):
        return "copies_instructions", f"the {role} message is the prompt's placeholder"
    copied = next((i for i in instructions if rouge_l(text, i) >= REPEAT_ROUGE), None)
    if copied is not None:
        return "copies_instructions", f"the {role} message copies the prompt's {copied!r}"
    for number, message in enumerate(earlier, start=1):
        if normalize(message["content"]) == lowered:
            return "repeated_turn", f"repeats message {number}"
    if earlier:
        previous = normalize(earlier[-1]["content"])
        if len(previous) >= 20 and previous in lowered:
            return "repeated_turn", "holds the whole previous message"
        if rouge_l(text, earlier[-1]["content"]) >= REPEAT_ROUGE:
            return "repeated_turn", "nearly repeats the previous message"
    return None


class Dialogue(GenerationStep[DialogueConfig]):
    name = "dialogue"
    Config = DialogueConfig

    def writes(self, task: TaskSpec | None) -> set[str]:
        return {self._field(task)} if task else set()

    def dedup_fields(self) -> list[str]:
        return [self.field]

    def _field(self, task: TaskSpec) -> str:
        chats = task.messages_fields
        if self.config.field is not None:
            if self.config.field not in chats:
                raise ConfigError(
                    f"step dialogue: field {self.config.field!r} is not a messages field of the "
                    f"task (its messages fields: {chats or 'none'}); give it 'type: messages'"
                )
            return self.config.field
        if len(chats) != 1:
            raise ConfigError(
                "step dialogue writes a chat: the task needs exactly one field with "
                f"'type: messages' (it has {chats or 'none'}), or set the step's 'field'"
            )
        return chats[0]

    def setup(self, ctx: StepContext) -> None:
        super().setup(ctx)
        task = ctx.require_task()
        self.field = self._field(task)
        self.max_chars = task.fields[self.field].max_chars
        self.weights = self._attribute_weights(task)
        self.user_template = self.prompt("dialogue_user", self.config.user_template)
        self.assistant_template = self.prompt("dialogue_assistant", self.config.assistant_template)
        self.reply_model: type[BaseModel] = create_model(
            "TurnReply", message=(str, Field(..., min_length=1, max_length=self.max_chars))
        )

    def _attribute_weights(self, task: TaskSpec) -> dict[str, dict[str, float]]:
        weights = task.attribute_weights()
        if self.config.attributes is None:
            return {} if self.config.personas else weights
        unknown = [a for a in self.config.attributes if a not in weights]
        if unknown:
            raise ConfigError(
                f"step {self.ctx.name}: attributes {unknown} are not in the task's attributes "
                f"{list(weights)}"
            )
        return {name: weights[name] for name in self.config.attributes}

    def plan(self) -> list[Record]:
        if not self.config.personas and not self.weights:
            raise ConfigError(
                f"step {self.ctx.name} needs someone to simulate: set 'personas: [...]' on the "
                "step or add 'attributes:' to the task"
            )
        jobs = []
        for index in range(self.config.count):
            conditioning: dict[str, Any] = {"dialogue": index}
            if self.config.personas:
                conditioning["persona"] = self.config.personas[index % len(self.config.personas)]
            if self.weights:
                rng = self.rng("attributes", index)
                conditioning["attributes"] = {
                    name: rng.choices(list(values), weights=list(values.values()))[0]
                    for name, values in self.weights.items()
                }
            jobs.append(
                Record(
                    id=stable_id(self.ctx.name, index),
                    fields={},
                    provenance=Provenance(
                        step=self.ctx.name, technique="plan", conditioning=conditioning
                    ),
                )
            )
        return jobs

    async def process(self, batch: list[Record]) -> list[Output]:
        async def one(job: Record) -> Output:
            output = await self._dialogue(job)
            self.report([output])
            return output

        return list(await gather_or_cancel(*(one(job) for job in batch)))

    async def _dialogue(self, job: Record) -> Output:
        messages: list[dict[str, str]] = []
        if self.config.system:
            messages.append({"role": "system", "content": self.config.system})
        seeds: list[dict[str, Any]] = []
        for turn in range(1, self.config.turns + 1):
            for role in ("user", "assistant"):
                outcome = await self._turn(job, messages, turn, role)
                if isinstance(outcome, Failure):
                    partial = self._record(job, messages, seeds)
                    return Rejected(partial, self.ctx.name, outcome.reason, outcome.detail)
                text, seed, tries = outcome
                messages.append({"role": role, "content": text})
                seeds.append({"turn": turn, "role": role, "seed": seed, "tries": tries})
        return self._record(job, messages, seeds)

    async def _turn(
        self, job: Record, messages: list[dict[str, str]], turn: int, role: str
    ) -> tuple[str, int, int] | Failure:
        """One message, re-asked with a new seed while it is broken: (text, seed, tries)."""
        chat = [m for m in messages if m["role"] != "system"]
        failure = Failure("empty_turn", "")
        for attempt in range(self.config.retries + 1):
            seed = self.ctx.call_seed(job.id, turn, role, attempt)
            call = self._call(job, chat, turn, role, seed)
            answer = await self.ask(call)
            if isinstance(answer, Failure):
                failure = answer
                continue
            text = str(answer.value.message).strip()
            problem = turn_problem(
                text, role, chat, self.max_chars, _instructions(call.request, chat)
            )
            if problem is None:
                return text, seed, attempt + 1
            failure = Failure(*problem)
        tries = self.config.retries + 1
        return Failure(failure.reason, f"turn {turn} ({role}), {tries} tries: {failure.detail}")

    def _call(
        self, job: Record, chat: list[dict[str, str]], turn: int, role: str, seed: int
    ) -> LLMCall[Any]:
        task = self.ctx.require_task()
        if role == "user":
            conditioning = job.provenance.conditioning
            prompt = self.user_template.render(
                task=task,
                persona=conditioning.get("persona"),
                attributes=conditioning.get("attributes", {}),
                conversation=chat,
                turn=turn,
                turns=self.config.turns,
            )
        else:
            prompt = self.assistant_template.render(
                task=task, system=self.config.system, conversation=chat
            )
        floor = self.config.max_tokens or self.ctx.llm.max_tokens
        budget = self.config.max_tokens or text_budget(task, [self.field], 1, floor)
        request = Request(
            messages=prompt,
            params=self.sampling(temperature=self.config.temperature, max_tokens=budget),
            json_schema=schema_of(self.reply_model),
            seed=seed,
        )
        return LLMCall(request, self.reply_model)

    def _record(
        self, job: Record, messages: list[dict[str, str]], seeds: list[dict[str, Any]]
    ) -> Record:
        conditioning = {k: v for k, v in job.provenance.conditioning.items() if k != "dialogue"}
        conditioning["turn_seeds"] = seeds
        template_hash = combined_hash(self.user_template, self.assistant_template)
        return Record(
            id=stable_id(job.id, 0),
            fields={self.field: list(messages)},
            provenance=self.provenance("dialogue", conditioning, template_hash),
        )


def _instructions(request: Request, chat: list[dict[str, str]]) -> tuple[str, ...]:
    """The prompt's lines of four words or more that are not the chat's own messages (which come
    as chat messages to the assistant and as ``User: ...`` lines to the user simulator).
    """
    said = {normalize(m["content"]) for m in chat}
    lines = []
    for message in request.messages:
        if normalize(message.content) in said:
            continue
        for line in message.content.splitlines():
            if len(line.split()) >= 4 and normalize(line.split(": ", 1)[-1]) not in said:
                lines.append(line)
    return tuple(lines)
