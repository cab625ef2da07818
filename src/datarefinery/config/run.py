"""Run specs: a task, a model, an optional input file and the steps in order, loaded from YAML
with errors that name the file, line and field.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from pydantic import Field, field_validator, model_validator

from datarefinery.config.llm import LlamaCppConfig, LLMConfig, OpenAIConfig, llm_identity
from datarefinery.config.llm_override import LLMOverride, override_llm
from datarefinery.config.loading import Lines, StrictModel, read_spec_file, validate_spec
from datarefinery.config.task import TaskSpec, check_seeds
from datarefinery.io.formats import Format


class InputSpec(StrictModel):
    path: str
    format: Format = "auto"
    limit: int | None = Field(default=None, ge=1)


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


class ExecutorSpec(StrictModel):
    """How the run is executed on this machine; never part of what it produces (a run resumes
    with other settings and gives the same dataset).

    ``workers``: processes that run the shards of CPU-bound steps (``dirs``, ``decontaminate``)
    side by side; default one per core, 1 runs every step in the run's own process. Steps that
    call a model are not affected: their calls overlap within one process.
    """

    workers: int | None = Field(default=None, ge=1, le=1024)


class RunSpec(StrictModel):
    """A whole pipeline: the task, the model, an optional input file and the steps in order.

    Each entry of ``steps`` is a one-key mapping ``{step_name: {options}}``; the options are checked
    against the step's own config model when the pipeline is built.
    """

    name: str = "run"
    seed: int = 0
    task: TaskSpec | None = None
    llm: LLMConfig = Field(default_factory=LlamaCppConfig)
    input: InputSpec | None = None
    steps: list[dict[str, dict[str, Any] | None]]
    shard_size: int = Field(default=32, ge=1, le=1_000_000)
    surrogate_key: SurrogateKeyConfig = Field(default_factory=SurrogateKeyConfig)
    executor: ExecutorSpec = Field(default_factory=ExecutorSpec)

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
        return spec_hash(self)


class LoadedSpec:
    """A validated spec with the line map of its file, for errors found later (step options)."""

    def __init__(self, spec: RunSpec, source: str, lines: Lines) -> None:
        self.spec = spec
        self.source = source
        self.lines = lines
        self.base_dir = Path(source).parent if source != "<spec>" else Path.cwd()

    def with_llm(self, override: LLMOverride | None) -> LoadedSpec:
        """This spec with ``override`` merged over its ``llm:`` block (``config.llm_override``).
        The effective block is part of the spec hash, so a run directory made with another model
        is refused like a changed spec.
        """
        if override is None:
            return self
        llm = override_llm(self.spec.llm, override)
        return LoadedSpec(self.spec.model_copy(update={"llm": llm}), self.source, self.lines)


def load_spec(path: str | Path) -> LoadedSpec:
    """Read and validate a YAML run spec. Relative paths in it are relative to the file."""
    path = Path(path)
    source = str(path)
    data, lines = read_spec_file(path, "a spec is a mapping (name:, task:, llm:, steps: ...)")
    loaded = LoadedSpec(validate_spec(RunSpec, data, source, lines), source, lines)
    check_seeds(loaded.spec.task, source, lines, loaded.base_dir)
    return loaded


def spec_from_dict(data: dict[str, Any]) -> LoadedSpec:
    """Validate a spec given as a Python mapping (the Python API's equivalent of ``load_spec``)."""
    loaded = LoadedSpec(validate_spec(RunSpec, data, "<spec>", {}), "<spec>", {})
    check_seeds(loaded.spec.task, "<spec>", {}, loaded.base_dir)
    return loaded


class SpecWithLLM(Protocol):
    """A spec with an ``llm:`` section: run specs and S3 specs."""

    @property
    def llm(self) -> LlamaCppConfig | OpenAIConfig: ...

    def model_dump(self, *, mode: str) -> dict[str, Any]: ...


def spec_hash(
    spec: SpecWithLLM, earlier_form: Callable[[dict[str, Any]], None] | None = None
) -> str:
    """The identity of what a spec produces: its JSON dump with the llm's execution-only settings
    left out. A run directory only resumes the same hash. ``earlier_form`` rewrites the dump in
    place so that options added since keep the hash of a spec that does not use them.
    """
    data = spec.model_dump(mode="json")
    if earlier_form is not None:
        earlier_form(data)
    data["llm"] = llm_identity(spec.llm)
    # Where the surrogate key is read from may move; the key itself is checked when a run resumes.
    data.pop("surrogate_key", None)
    # How many processes run the shards changes nothing in the output (the pool commits the same
    # bytes in the same order), so a run may resume with another worker count.
    data.pop("executor", None)
    blob = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]
