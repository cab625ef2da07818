"""The ``task:`` section: what the data is for (its fields, labels, attributes, seed examples and
the sampling its generation steps share).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from datarefinery.config.loading import Lines, StrictModel, line_of
from datarefinery.errors import ConfigError, InputFileError
from datarefinery.io.messages import parse_messages
from datarefinery.io.read import read_numbered
from datarefinery.records import Provenance, Record


class FieldSpec(StrictModel):
    """One column of the task's records. ``text`` fields are generated under a ``max_chars`` cap
    (enforced by the decoding grammar on backends that support it); a ``messages`` field is a chat
    (a list of ``{role, content}``, roles system / user / assistant) and ``max_chars`` caps each
    message's content.
    """

    type: Literal["text", "label", "int", "float", "bool", "messages"] = "text"
    description: str = ""
    min_chars: int = Field(default=1, ge=0)
    max_chars: int = Field(default=600, ge=1, le=20_000)


class SamplingSpec(StrictModel):
    """Sampling for the generation steps of a task; each unset value falls back to ``llm:``.

    Labeling and judging steps keep ``llm:``'s values, so a run can generate hot and label cold.
    """

    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, gt=0, le=1)
    max_tokens: int | None = Field(default=None, ge=1)
    frequency_penalty: float | None = None
    presence_penalty: float | None = None


class TaskSpec(StrictModel):
    """What the data is for: description, record fields, labels (with what each means), optional
    attributes to control, optional seed examples, and defaults the generation steps share.

    ``attributes`` maps a name to its values, either a list (drawn uniformly) or a mapping of
    value to weight. ``seeds`` is a list of records or the path of a .jsonl / .csv / .parquet file
    (relative to the spec); ``templates`` maps a prompt template's name to a .jinja file that
    replaces it.
    """

    description: str
    fields: dict[str, FieldSpec] = Field(
        default_factory=lambda: {"text": FieldSpec(), "label": FieldSpec(type="label")}
    )
    labels: dict[str, str] = Field(default_factory=dict)
    attributes: dict[str, list[str] | dict[str, float]] = Field(default_factory=dict)
    seeds: list[dict[str, Any]] | str | None = None
    count_per_label: int | None = Field(
        default=None, ge=1, le=1_000_000, description="records per label (in all, without labels)"
    )
    sampling: SamplingSpec = Field(default_factory=SamplingSpec)
    templates: dict[str, str] = Field(default_factory=dict)

    @field_validator("labels", mode="before")
    @classmethod
    def _labels_from_list(cls, value: Any) -> Any:
        if isinstance(value, list):
            return {str(v): "" for v in value}
        return value

    @field_validator("attributes")
    @classmethod
    def _check_attributes(
        cls, value: dict[str, list[str] | dict[str, float]]
    ) -> dict[str, list[str] | dict[str, float]]:
        for name, values in value.items():
            if not values:
                raise ValueError(f"attribute {name!r} has no values")
            if isinstance(values, list) and len(set(values)) != len(values):
                raise ValueError(f"attribute {name!r} lists a value twice")
            if isinstance(values, dict) and any(w <= 0 for w in values.values()):
                raise ValueError(f"attribute {name!r}: weights must be positive")
        return value

    @model_validator(mode="after")
    def _check_label_field(self) -> TaskSpec:
        label_fields = [n for n, f in self.fields.items() if f.type == "label"]
        if len(label_fields) > 1:
            raise ValueError(f"only one field may have type 'label', found {label_fields}")
        if label_fields and not self.labels:
            raise ValueError(
                f"field {label_fields[0]!r} is a label: list the labels under 'labels'"
            )
        return self

    @property
    def label_field(self) -> str | None:
        for name, spec in self.fields.items():
            if spec.type == "label":
                return name
        return None

    @property
    def content_fields(self) -> list[str]:
        """The fields a generator writes (everything but the label)."""
        return [n for n, f in self.fields.items() if f.type != "label"]

    def attribute_weights(self) -> dict[str, dict[str, float]]:
        """Every attribute as value → weight (1.0 each for a plain list)."""
        return {
            name: dict(values) if isinstance(values, dict) else dict.fromkeys(values, 1.0)
            for name, values in self.attributes.items()
        }

    def seed_problems(self, seed: dict[str, Any]) -> list[tuple[str | None, str]]:
        """What is wrong with one seed example, as (field or None, message) pairs."""
        problems: list[tuple[str | None, str]] = []
        for name, spec in self.fields.items():
            if name not in seed:
                problems.append((name, "missing (every seed has the task's fields)"))
                continue
            value = seed[name]
            if spec.type == "label" and str(value) not in self.labels:
                problems.append((name, f"{value!r} is not one of the labels {list(self.labels)}"))
            elif spec.type == "text" and not isinstance(value, str):
                problems.append((name, f"expected text, got {type(value).__name__}"))
            elif spec.type == "messages":
                try:
                    parse_messages(value, max_chars=spec.max_chars)
                except ValueError as exc:
                    problems.append((name, str(exc)))
        return problems

    @property
    def messages_fields(self) -> list[str]:
        """The fields of type ``messages`` (read from CSV as JSON text, parsed on reading)."""
        return [n for n, f in self.fields.items() if f.type == "messages"]


def load_seeds(task: TaskSpec, base_dir: Path) -> list[Record]:
    """The task's seed examples as records (ids ``seed-N`` for inline seeds; a file's ``id``
    column or line-based ids). A bad seed in a file is an ``InputFileError`` naming its line.
    """
    if task.seeds is None:
        return []
    if isinstance(task.seeds, list):
        return [
            Record(
                id=f"seed-{index}",
                fields=dict(seed),
                provenance=Provenance(step="seeds", technique="seed", source="spec"),
            )
            for index, seed in enumerate(task.seeds)
        ]
    path = Path(task.seeds)
    if not path.is_absolute():
        path = base_dir / path
    records = []
    for line, record in read_numbered(path, messages=task.messages_fields):
        for field, message in task.seed_problems(record.fields):
            raise InputFileError(str(path), message, line=line, field=field)
        records.append(record)
    if not records:
        raise InputFileError(str(path), "holds no seed examples")
    return records


def check_seeds(task: TaskSpec | None, source: str, lines: Lines, base: Path) -> None:
    """Check the task's seeds when the spec is loaded, so a bad seed stops the run before any
    work: inline seeds are named by the spec's line and field, a seed file by its own.
    """
    if task is None or task.seeds is None:
        return
    if isinstance(task.seeds, str):
        load_seeds(task, base)
        return
    if not task.seeds:
        raise ConfigError(f"{source}, field task.seeds: is empty (list seeds or leave it out)")
    for index, seed in enumerate(task.seeds):
        problems = task.seed_problems(seed)
        problems += [
            (name, f"unknown field (the task's fields are {', '.join(task.fields)})")
            for name in seed
            if name not in task.fields
        ]
        if problems:
            name, message = problems[0]
            loc = ("task", "seeds", index) + ((name,) if name else ())
            line = line_of(lines, loc)
            where = f"{source}, line {line}" if line else source
            raise ConfigError(f"{where}, field task.seeds[{index}].{name}: {message}")
