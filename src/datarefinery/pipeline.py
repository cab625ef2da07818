"""A pipeline: steps built from a spec and checked before anything runs.

Checks made when the pipeline is built, not an hour into a run: every step name exists, its options
validate (errors carry the spec's file and line), a source step comes first, there is input for a
pipeline that does not generate its own, and every field a step reads is written by an earlier step
or declared by the task / required of the input file.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from pydantic import ValidationError

from datarefinery.config import LoadedSpec, format_validation_error
from datarefinery.errors import ConfigError
from datarefinery.steps.base import Step
from datarefinery.steps.registry import step_class


class Pipeline:
    def __init__(self, steps: list[Step[Any]], names: list[str], input_required: set[str]) -> None:
        self.steps = steps
        self.names = names
        self.input_required = input_required

    @property
    def uses_llm(self) -> bool:
        return any(step.uses_llm for step in self.steps)

    @property
    def uses_surrogate_key(self) -> bool:
        return any(step.uses_surrogate_key for step in self.steps)

    def settings(self) -> dict[str, str]:
        """Per step instance, a digest of its validated options with every default filled in.
        The spec hash covers the options as written; this also changes when an upgrade changes a
        default the spec does not set, which a resumed run must not mix with its earlier shards.
        An option added since the step's first release is left out while it keeps the earlier
        behaviour (``StepConfig.added_options``), so an upgrade that only adds options resumes.
        """
        result = {}
        for name, step in zip(self.names, self.steps, strict=True):
            options = step.config.model_dump(mode="json")
            for key, earlier in type(step.config).added_options.items():
                if key in options and options[key] == earlier:
                    del options[key]
            blob = json.dumps([type(step).__qualname__, options], sort_keys=True, default=str)
            result[name] = hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]
        return result

    @classmethod
    def from_spec(cls, loaded: LoadedSpec) -> Pipeline:
        spec = loaded.spec
        steps: list[Step[Any]] = []
        names: list[str] = []
        for index, entry in enumerate(spec.steps):
            ((step_name, options),) = entry.items()
            where = ("steps", index, step_name)
            cls_ = step_class(step_name)
            try:
                config = cls_.Config.model_validate(options or {})
            except ValidationError as exc:
                raise format_validation_error(exc, loaded.source, loaded.lines, where) from None
            steps.append(cls_(config))
            # Instance names keep repeated steps apart in the run directory and in provenance.
            count = sum(1 for n in names if n == step_name or n.startswith(f"{step_name}_"))
            names.append(step_name if count == 0 else f"{step_name}_{count + 1}")

        for index, step in enumerate(steps):
            if step.is_source and index > 0:
                raise ConfigError(
                    f"step {names[index]} generates records and must be the first step "
                    "(run it in its own spec, or use 'mix' to combine datasets)"
                )
        if steps[0].is_source and spec.input is not None:
            raise ConfigError(
                f"step {names[0]} generates its own records, so the spec must not have 'input:'"
            )
        if not steps[0].is_source and spec.input is None:
            raise ConfigError(
                f"step {names[0]} processes existing records: add 'input: PATH' to the spec "
                "(a .jsonl, .csv or .parquet file, or a saved Hugging Face dataset)"
            )

        task = spec.task
        input_required = steps[0].reads(task) if not steps[0].is_source else set()
        available: set[str] = set()
        if not steps[0].is_source:
            available = set(task.fields) if task else set(input_required)
            available |= input_required
        for index, step in enumerate(steps):
            missing = step.reads(task) - available
            if missing:
                raise ConfigError(
                    f"step {names[index]} reads fields {sorted(missing)} that neither the task nor "
                    f"an earlier step provides (available: {sorted(available) or 'none'})"
                )
            available |= step.writes(task)
        return cls(steps, names, input_required)
