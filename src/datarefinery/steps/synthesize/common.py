"""What every generation step shares: reply models built from the task's fields, and the rejection
of exact duplicates across the whole step (stateful across shards and resumes)."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, create_model

from datarefinery.config import FieldSpec, TaskSpec
from datarefinery.records import Record, Rejected
from datarefinery.steps.base import C, LLMStep, Output, StepContext

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
        else:
            definitions[field_name] = (
                str,
                Field(..., min_length=spec.min_chars, max_length=spec.max_chars),
            )
    model: type[BaseModel] = create_model(
        name, __config__=ConfigDict(extra="forbid"), **definitions
    )
    return model


def batch_model(item: type[BaseModel], n: int) -> type[BaseModel]:
    """``{"records": [item × n]}`` for several records per call."""
    model: type[BaseModel] = create_model(
        f"{item.__name__}Batch",
        records=(list[item], Field(..., min_length=n, max_length=n)),  # type: ignore[valid-type]
    )
    return model


_SPACE = re.compile(r"\s+")


def normalized_key(fields: dict[str, Any], names: Iterable[str]) -> str:
    """Case-, whitespace- and Unicode-normalized fingerprint of the given fields."""
    parts = []
    for name in names:
        value = unicodedata.normalize("NFKC", str(fields.get(name, ""))).casefold()
        parts.append(_SPACE.sub(" ", value).strip())
    return hashlib.sha1("\x1f".join(parts).encode("utf-8")).hexdigest()


class GenerationStep(LLMStep[C]):
    """An LLM step that creates new records; rejects exact duplicates of earlier outputs."""

    is_source = True
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
                if original != output.id:
                    output = Rejected(
                        output,
                        self.ctx.name,
                        "duplicate",
                        f"exact duplicate (ignoring case and spacing) of record {original}",
                    )
            result.append(output)
        return result
