"""``validate``: check records against the task's fields and labels.

A record missing a task field, holding a value of the wrong type, an empty text, or a label outside
the task's label set is rejected with the field and the reason. Values read from CSV arrive as
strings; numeric and boolean fields are converted when the text is unambiguous, and a ``messages``
field's JSON text is parsed. A chat is checked message by message (role, empty or over-long
content, a system message after the first).
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from datarefinery.config import FieldSpec, TaskSpec
from datarefinery.io.messages import parse_messages
from datarefinery.records import Record, Rejected
from datarefinery.steps.base import Output, RecordStep, StepConfig, StepContext

_TRUE = {"true", "1", "yes"}
_FALSE = {"false", "0", "no"}


class ValidateConfig(StepConfig):
    fields: list[str] | None = Field(
        default=None, description="fields to check; default: every task field"
    )
    coerce: bool = Field(default=True, description="convert '3' to 3 for int fields and the like")


class Validate(RecordStep[ValidateConfig]):
    name = "validate"
    Config = ValidateConfig

    def reads(self, task: TaskSpec | None) -> set[str]:
        return set(self._checked(task))

    def _checked(self, task: TaskSpec | None) -> list[str]:
        if self.config.fields is not None:
            return list(self.config.fields)
        return list(task.fields) if task else []

    def setup(self, ctx: StepContext) -> None:
        super().setup(ctx)
        self.task = ctx.require_task()
        self.names = self._checked(self.task)

    def apply(self, record: Record) -> Output:
        fields = dict(record.fields)
        for name in self.names:
            spec = self.task.fields.get(name, FieldSpec())
            if name not in fields:
                return Rejected(record, self.ctx.name, "missing_field", f"no field {name!r}")
            value, problem = self._check(spec, fields[name])
            if problem:
                return Rejected(record, self.ctx.name, "invalid_field", f"{name}: {problem}")
            fields[name] = value
        if fields == record.fields:
            return record
        return Record(record.id, fields, record.provenance, dict(record.scores))

    def _check(self, spec: FieldSpec, value: Any) -> tuple[Any, str | None]:
        if spec.type == "label":
            label = str(value) if isinstance(value, (int, str)) else None
            if label not in self.task.labels:
                return value, f"{value!r} is not one of the labels {list(self.task.labels)}"
            return label, None
        if spec.type == "text":
            if not isinstance(value, str):
                return value, f"expected text, got {type(value).__name__}"
            if len(value.strip()) < max(1, spec.min_chars):
                return value, f"shorter than {max(1, spec.min_chars)} characters"
            return value, None
        if spec.type == "messages":
            if isinstance(value, str) and not self.config.coerce:
                return value, "expected a list of messages, got text (coerce: false)"
            try:
                return parse_messages(value, max_chars=spec.max_chars), None
            except ValueError as exc:
                return value, str(exc)
        return self._number(spec.type, value)

    def _number(self, kind: str, value: Any) -> tuple[Any, str | None]:
        if kind == "bool":
            if isinstance(value, bool):
                return value, None
            if self.config.coerce and isinstance(value, str) and value.lower() in _TRUE | _FALSE:
                return value.lower() in _TRUE, None
            return value, f"expected true/false, got {value!r}"
        target = int if kind == "int" else float
        if isinstance(value, bool):
            return value, f"expected {kind}, got a boolean"
        if isinstance(value, (int, float)) and (kind == "float" or isinstance(value, int)):
            return target(value), None
        if self.config.coerce and isinstance(value, str):
            try:
                return target(value.strip()), None
            except ValueError:
                pass
        return value, f"expected {kind}, got {value!r}"
