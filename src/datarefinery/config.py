"""Specs: explicit, validated pydantic models (unknown keys are errors), loaded from YAML with
errors that name the file, line and field."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from datarefinery.errors import ConfigError, InputFileError
from datarefinery.io.read import read_numbered
from datarefinery.records import Provenance, Record


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
        return problems


def load_seeds(task: TaskSpec, base_dir: Path) -> list[Record]:
    """The task's seed examples as records (ids ``seed-N`` for inline seeds; a file's ``id``
    column or line-based ids). A bad seed in a file is an ``InputFileError`` naming its line."""
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
    for line, record in read_numbered(path):
        for field, message in task.seed_problems(record.fields):
            raise InputFileError(str(path), message, line=line, field=field)
        records.append(record)
    if not records:
        raise InputFileError(str(path), "holds no seed examples")
    return records


def check_seeds(spec: RunSpec, source: str, lines: dict[tuple[Any, ...], int], base: Path) -> None:
    """Check the task's seeds when the spec is loaded, so a bad seed stops the run before any
    work: inline seeds are named by the spec's line and field, a seed file by its own."""
    task = spec.task
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
# The surrogate key


class SurrogateKeyConfig(StrictModel):
    """Where the secret that keys the choice of surrogate values comes from.

    By default each run makes a random key, kept only in ``OUT/secrets/surrogate.key`` (readable by
    its owner alone), so a resumed run picks the same fakes and nobody without the file can map a
    fake back to its original. ``file`` (a path, relative to the spec) or ``env`` (a variable name)
    supply a key of your own, so that separate runs map the same value to the same fake. The key
    is at least 32 characters (``openssl rand -hex 32``) and is never copied into the run.
    """

    file: str | None = None
    env: str | None = None

    @field_validator("env")
    @classmethod
    def _check_env(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value):
            raise ValueError(f"{value!r} is not an environment variable name")
        return value

    @model_validator(mode="after")
    def _one_source(self) -> SurrogateKeyConfig:
        if self.file and self.env:
            raise ValueError("give the surrogate key as file or env, not both")
        return self


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
    surrogate_key: SurrogateKeyConfig = Field(default_factory=SurrogateKeyConfig)

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
        # Where the key is read from may move; the key itself is checked when a run resumes.
        del data["surrogate_key"]
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
    loaded = LoadedSpec(spec, str(path), lines)
    check_seeds(spec, str(path), lines, loaded.base_dir)
    return loaded


def spec_from_dict(data: dict[str, Any]) -> LoadedSpec:
    """Validate a spec given as a Python mapping (the Python API's equivalent of ``load_spec``)."""
    try:
        spec = RunSpec.model_validate(data)
    except ValidationError as exc:
        raise format_validation_error(exc, "<spec>", {}) from None
    loaded = LoadedSpec(spec, "<spec>", {})
    check_seeds(spec, "<spec>", {}, loaded.base_dir)
    return loaded
