"""Running the specs in examples/ (made smaller) on the real embedded model."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

import datarefinery
from datarefinery.config import LoadedSpec, RunSpec
from datarefinery.runner import RunResult

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def example_spec(name: str) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((EXAMPLES / f"{name}.yaml").read_text())
    return data


def run_example(
    name: str,
    out: Path,
    step: dict[str, Any] | None = None,
    *,
    max_chars: dict[str, int] | None = None,
    limit: int | None = None,
    **llm: Any,
) -> RunResult:
    """Run ``examples/NAME.yaml`` made smaller: the first step's options updated by ``step``,
    text fields capped by ``max_chars``, the input cut to ``limit`` records, the llm section
    updated by ``llm``. Relative paths still resolve against examples/."""
    data = copy.deepcopy(example_spec(name))
    ((step_name, options),) = data["steps"][0].items()
    data["steps"][0] = {step_name: {**(options or {}), **(step or {})}}
    data["llm"] = {**data.get("llm", {}), **llm}
    for field, chars in (max_chars or {}).items():
        data["task"]["fields"][field]["max_chars"] = chars
    if limit is not None:
        data["input"] = {"path": data["input"], "limit": limit}
    loaded = LoadedSpec(RunSpec.model_validate(data), str(EXAMPLES / f"{name}.yaml"), {})
    return datarefinery.run(loaded, out, diversity=False)
