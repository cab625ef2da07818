"""Specs: explicit, validated pydantic models (unknown keys are errors), loaded from YAML with
errors that name the file, line and field."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from datarefinery.errors import ConfigError


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --------------------------------------------------------------------------------------------------
# The task


class FieldSpec(StrictModel):
    """One column of the task's records. ``text`` fields are generated under a ``max_chars`` cap
    (enforced by the decoding grammar on backends that support it)."""

    type: Literal["text", "label", "int", "float", "bool"] = "text"
    description: str = ""
    min_chars: int = Field(default=1, ge=0)
    max_chars: int = Field(default=600, ge=1, le=20_000)


class TaskSpec(StrictModel):
    """What the data is for: description, record fields, labels (with what each means), optional
    attributes to control, optional seed examples."""

    description: str
    fields: dict[str, FieldSpec] = Field(
        default_factory=lambda: {"text": FieldSpec(), "label": FieldSpec(type="label")}
    )
    labels: dict[str, str] = Field(default_factory=dict)
    attributes: dict[str, list[str]] = Field(default_factory=dict)
    seeds: list[dict[str, Any]] | str | None = None

    @field_validator("labels", mode="before")
    @classmethod
    def _labels_from_list(cls, value: Any) -> Any:
        if isinstance(value, list):
            return {str(v): "" for v in value}
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


# --------------------------------------------------------------------------------------------------
# The model


class BudgetConfig(StrictModel):
    max_tokens: int | None = Field(default=None, ge=1)
    max_cost_usd: float | None = Field(default=None, gt=0)


class PricingConfig(StrictModel):
    input_per_mtok: float = Field(default=0.0, ge=0)
    output_per_mtok: float = Field(default=0.0, ge=0)


class LLMConfig(StrictModel):
    """Which model answers, and how calls are made. Sampling values here are defaults that steps
    may override."""

    backend: Literal["llamacpp", "openai"] = "llamacpp"
    model: str = "default"
    base_url: str | None = None
    api_key_env: str | None = None
    dialect: Literal["auto", "llamacpp", "openai", "vllm", "none"] = "auto"
    n_ctx: int = Field(default=2048, ge=256, description="context per sequence (llamacpp)")
    n_threads: int | None = Field(default=None, ge=1)
    parallel: int = Field(
        default=4, ge=1, le=64, description="sequences decoded together in one batch (llamacpp)"
    )
    temperature: float = Field(default=0.8, ge=0, le=2)
    top_p: float = Field(default=0.95, gt=0, le=1)
    max_tokens: int = Field(default=256, ge=1)
    frequency_penalty: float = 0.0
    presence_penalty: float = 0.0
    concurrency: int = Field(default=4, ge=1, le=1024)
    requests_per_minute: float | None = Field(default=None, gt=0)
    tokens_per_minute: float | None = Field(default=None, gt=0)
    max_retries: int = Field(default=6, ge=0, le=50)
    timeout_s: float | None = Field(default=300.0, gt=0)
    budget: BudgetConfig = Field(default_factory=BudgetConfig)
    pricing: PricingConfig = Field(default_factory=PricingConfig)
    cache: bool = True
    cache_path: str | None = None

    @model_validator(mode="after")
    def _check_backend(self) -> LLMConfig:
        if self.backend == "openai":
            if not self.base_url:
                raise ValueError("backend 'openai' needs base_url (e.g. http://127.0.0.1:8000/v1)")
            if self.model == "default":
                raise ValueError("backend 'openai' needs model: the model name the server serves")
        return self


# Settings that change how a run is executed but not what it produces: they stay out of the spec
# hash, so a run can be resumed with more concurrency or a larger budget.
EXECUTION_ONLY_LLM_KEYS = frozenset(
    {
        "concurrency",
        "requests_per_minute",
        "tokens_per_minute",
        "max_retries",
        "timeout_s",
        "budget",
        "pricing",
        "cache",
        "cache_path",
        "n_threads",
        "parallel",
    }
)


# --------------------------------------------------------------------------------------------------
# The run


class InputSpec(StrictModel):
    path: str
    format: Literal["auto", "jsonl", "csv", "parquet", "hf"] = "auto"
    limit: int | None = Field(default=None, ge=1)


class RunSpec(StrictModel):
    """A whole pipeline: the task, the model, an optional input file and the steps in order.

    Each entry of ``steps`` is a one-key mapping ``{step_name: {options}}``; the options are checked
    against the step's own config model when the pipeline is built.
    """

    name: str = "run"
    seed: int = 0
    task: TaskSpec | None = None
    llm: LLMConfig = Field(default_factory=LLMConfig)
    input: InputSpec | None = None
    steps: list[dict[str, dict[str, Any] | None]]
    shard_size: int = Field(default=32, ge=1, le=1_000_000)

    @field_validator("input", mode="before")
    @classmethod
    def _input_from_path(cls, value: Any) -> Any:
        return {"path": value} if isinstance(value, str) else value

    @field_validator("steps")
    @classmethod
    def _one_key_each(
        cls, value: list[dict[str, dict[str, Any] | None]]
    ) -> list[dict[str, dict[str, Any] | None]]:
        if not value:
            raise ValueError("a run needs at least one step")
        for entry in value:
            if len(entry) != 1:
                raise ValueError(
                    f"each step is a mapping with one key, the step name; got keys {list(entry)}"
                )
        return value

    def spec_hash(self) -> str:
        """Identity of what the run produces; a run directory only resumes the same hash."""
        data = self.model_dump(mode="json")
        data["llm"] = {k: v for k, v in data["llm"].items() if k not in EXECUTION_ONLY_LLM_KEYS}
        blob = json.dumps(data, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


# --------------------------------------------------------------------------------------------------
# YAML with line numbers


class _LineLoader(yaml.SafeLoader):
    """A safe loader that remembers the line of every mapping key and sequence item."""


def _load_with_lines(text: str, source: str) -> tuple[Any, dict[tuple[Any, ...], int]]:
    loader = _LineLoader(text)
    try:
        node = loader.get_single_node()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}, line {mark.line + 1}" if mark is not None else source
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"not valid YAML: {problem}", where=where) from None
    finally:
        loader.dispose()
    if node is None:
        raise ConfigError("the file is empty", where=source)
    lines: dict[tuple[Any, ...], int] = {}

    def walk(current: yaml.Node, path: tuple[Any, ...]) -> None:
        lines[path] = current.start_mark.line + 1
        if isinstance(current, yaml.MappingNode):
            for key_node, value_node in current.value:
                child = (*path, key_node.value)
                walk(value_node, child)
                lines[child] = key_node.start_mark.line + 1
        elif isinstance(current, yaml.SequenceNode):
            for index, item in enumerate(current.value):
                walk(item, (*path, index))

    walk(node, ())
    data = yaml.safe_load(text)
    return data, lines


def line_of(lines: dict[tuple[Any, ...], int], loc: tuple[Any, ...]) -> int | None:
    """The line of the deepest part of ``loc`` that appears in the file."""
    for end in range(len(loc), -1, -1):
        line = lines.get(tuple(loc[:end]))
        if line is not None:
            return line
    return None


def format_validation_error(
    exc: ValidationError,
    source: str,
    lines: dict[tuple[Any, ...], int],
    prefix: tuple[Any, ...] = (),
) -> ConfigError:
    """One ConfigError listing every problem with its line and dotted field path."""
    problems = []
    first_where = None
    for error in exc.errors():
        loc = (*prefix, *error["loc"])
        line = line_of(lines, loc)
        field = ".".join(f"[{p}]" if isinstance(p, int) else str(p) for p in loc).replace(".[", "[")
        where = f"{source}, line {line}" if line else source
        first_where = first_where or where
        message = error["msg"]
        if error["type"] == "extra_forbidden":
            message = "unknown option (check the spelling; see the docs for the options it takes)"
        problems.append(f"{where}, field {field or '(root)'}: {message}")
    if len(problems) == 1:
        return ConfigError(problems[0])
    return ConfigError(f"{len(problems)} problems in {source}:\n  " + "\n  ".join(problems))


class LoadedSpec:
    """A validated spec with the line map of its file, for errors found later (step options)."""

    def __init__(self, spec: RunSpec, source: str, lines: dict[tuple[Any, ...], int]) -> None:
        self.spec = spec
        self.source = source
        self.lines = lines
        self.base_dir = Path(source).parent if source != "<spec>" else Path.cwd()


def load_spec(path: str | Path) -> LoadedSpec:
    """Read and validate a YAML run spec. Relative paths in it are relative to the file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"spec file not found: {path}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"the spec is not UTF-8 text (byte {exc.start})", where=str(path)
        ) from None
    data, lines = _load_with_lines(text, str(path))
    if not isinstance(data, dict):
        raise ConfigError("a spec is a mapping (name:, task:, llm:, steps: ...)", where=str(path))
    try:
        spec = RunSpec.model_validate(data)
    except ValidationError as exc:
        raise format_validation_error(exc, str(path), lines) from None
    return LoadedSpec(spec, str(path), lines)


def spec_from_dict(data: dict[str, Any]) -> LoadedSpec:
    """Validate a spec given as a Python mapping (the Python API's equivalent of ``load_spec``)."""
    try:
        spec = RunSpec.model_validate(data)
    except ValidationError as exc:
        raise format_validation_error(exc, "<spec>", {}) from None
    return LoadedSpec(spec, "<spec>", {})
