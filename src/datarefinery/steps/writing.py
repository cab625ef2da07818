"""The base of every step that writes new text (synthesis, extrapolation and the rewriting
augmentations), and what such steps share: reply models built from the task's fields, the token
budget for them, prompt templates resolved from the step's options and the task, provenance, and
the rejection of exact duplicates across the whole step (stateful across shards and resumes).
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterable
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, create_model

from datarefinery.config import FieldSpec, TaskSpec
from datarefinery.io.messages import ChatMessage
from datarefinery.llm.base import SamplingParams
from datarefinery.prompts.render import PromptTemplate, resolve_template
from datarefinery.records import Provenance, Record, Rejected
from datarefinery.steps.base import C, ModelStep, Output, StepContext
from datarefinery.text import normalized_key

_PY_TYPES: dict[str, type] = {"int": int, "float": float, "bool": bool}


def item_model(task: TaskSpec, fields: list[str], name: str = "Item") -> type[BaseModel]:
    """A pydantic model for one generated record with the given task fields.

    Text fields carry ``min_length``/``max_length`` so constrained decoding cannot run away or stop
    mid-string; the schema forbids extra keys.
    """
    definitions: dict[str, Any] = {}
    for field_name in fields:
        spec: FieldSpec = task.fields[field_name]
        if spec.type in _PY_TYPES:
            definitions[field_name] = (_PY_TYPES[spec.type], Field(...))
        elif spec.type == "label":
            definitions[field_name] = (str, Field(..., max_length=64))
        elif spec.type == "messages":
            message = _capped_message(spec.max_chars)
            chat = (list[message], Field(..., min_length=1))  # type: ignore[valid-type]
            definitions[field_name] = chat
        else:
            definitions[field_name] = (
                str,
                Field(..., min_length=spec.min_chars, max_length=spec.max_chars),
            )
    model: type[BaseModel] = create_model(
        name, __config__=ConfigDict(extra="forbid"), **definitions
    )
    return model


def reply_fields(item: BaseModel, names: Iterable[str]) -> dict[str, Any]:
    """The values of ``names`` in a validated reply, as plain data (a ``messages`` field's items
    are pydantic models in the reply and must become mappings in a record).
    """
    dumped = item.model_dump()
    return {name: dumped[name] for name in names}


def _capped_message(max_chars: int) -> type[BaseModel]:
    model: type[BaseModel] = create_model(
        "ChatMessage",
        __base__=ChatMessage,
        content=(str, Field(..., min_length=1, max_length=max_chars)),
    )
    return model


def batch_model(item: type[BaseModel], n: int) -> type[BaseModel]:
    """``{"records": [item × n]}`` for several records per call."""
    model: type[BaseModel] = create_model(
        f"{item.__name__}Batch",
        records=(list[item], Field(..., min_length=n, max_length=n)),  # type: ignore[valid-type]
    )
    return model


def strings_model(key: str, n: int, *, min_chars: int = 3, max_chars: int = 200) -> type[BaseModel]:
    """``{key: [n short strings]}``: lists of reasons, instructions and the like."""
    item = Annotated[str, Field(min_length=min_chars, max_length=max_chars)]
    definitions: dict[str, Any] = {key: (list[item], Field(..., min_length=n, max_length=n))}
    model: type[BaseModel] = create_model(
        f"{key.title()}List", __config__=ConfigDict(extra="forbid"), **definitions
    )
    return model


def text_budget(task: TaskSpec, fields: Iterable[str], n: int, floor: int) -> int:
    """``max_tokens`` for ``n`` records of ``fields``: one token per character at every field's cap
    plus JSON syntax, so the grammar's ``maxLength``, not ``max_tokens``, ends a field. Only text
    full of multi-token characters, such as emoji, can still hit it; the engine then re-asks.
    """
    per_record = sum(task.fields[f].max_chars + len(f) + 8 for f in fields)
    return max(floor, n * per_record + 16)


def combined_hash(*templates: PromptTemplate) -> str:
    """One provenance hash for a record made with several prompts (e.g. rationale + generation)."""
    if len(templates) == 1:
        return templates[0].hash
    return hashlib.sha256("+".join(t.hash for t in templates).encode()).hexdigest()[:12]


class TextWritingStep(ModelStep[C]):
    """A model step that writes new text: rejects exact duplicates of earlier outputs (in commit
    order, so a resumed run rejects the same ones), and knows how to find its prompts and how to
    stamp provenance.
    """

    stateful = True

    def dedup_fields(self) -> list[str]:
        return self.ctx.require_task().content_fields

    def setup(self, ctx: StepContext) -> None:
        super().setup(ctx)
        # normalized fingerprint -> id of the first record that had it
        self._first_with: dict[str, str] = {}

    def restore(self, committed: Iterable[Record]) -> None:
        names = self.dedup_fields()
        for record in committed:
            self._first_with.setdefault(normalized_key(record.fields, names), record.id)

    def postprocess(self, outputs: list[Output]) -> list[Output]:
        names = self.dedup_fields()
        result: list[Output] = []
        for output in outputs:
            if isinstance(output, Record):
                key = normalized_key(output.fields, names)
                original = self._first_with.setdefault(key, output.id)
                if original != output.id and self.deduplicates(output):
                    output = Rejected(
                        output,
                        self.ctx.name,
                        "duplicate",
                        f"exact duplicate (ignoring case and spacing) of record {original}",
                    )
            result.append(output)
        return result

    def deduplicates(self, record: Record) -> bool:
        """Whether ``record`` is checked (every record is remembered for later checks)."""
        return True

    def prompt(self, name: str, override: str | None = None) -> PromptTemplate:
        """The template for prompt ``name`` (step option, then the task's ``templates:``)."""
        task = self.ctx.require_task()
        return resolve_template(name, override, task.templates, self.ctx.base_dir)

    def sampling(self, **overrides: Any) -> SamplingParams:
        """Sampling for generation: the step's options, then the task's ``sampling:``, then llm."""
        task_values = self.ctx.require_task().sampling.model_dump()
        merged = {k: v for k, v in task_values.items() if v is not None}
        merged.update({k: v for k, v in overrides.items() if v is not None})
        return super().sampling(**merged)

    def provenance(
        self,
        technique: str,
        conditioning: dict[str, Any],
        template_hash: str,
        *,
        parents: list[str] | None = None,
        source: str = "synthetic",
    ) -> Provenance:
        return Provenance(
            step=self.ctx.name,
            technique=technique,
            model=self.ctx.require_engine().model_identity,
            template_hash=template_hash,
            parent_ids=list(parents or []),
            conditioning=conditioning,
            source=source,
        )

    def rng(self, *parts: object) -> random.Random:
        """A generator seeded from the run seed and ``parts``, for deterministic draws (which
        demonstrations, attributes, contexts) that a resumed run repeats exactly.
        """
        return random.Random(self.ctx.call_seed(*parts))

    def empty_fields(self, fields: dict[str, Any]) -> list[str]:
        return [n for n, v in fields.items() if isinstance(v, str) and not v.strip()]
