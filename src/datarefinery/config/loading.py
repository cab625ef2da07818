"""Reading spec files, for run specs and S3 specs alike: YAML with the line of every key, and
pydantic validation errors that name the file, line and field.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from datarefinery.errors import ConfigError

Lines = dict[tuple[Any, ...], int]


class StrictModel(BaseModel):
    """Base of every spec section: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid")


S = TypeVar("S", bound=BaseModel)


class _LineLoader(yaml.SafeLoader):
    """A safe loader that remembers the line of every mapping key and sequence item."""


def load_yaml(text: str, source: str) -> tuple[Any, Lines]:
    """The YAML document in ``text`` and the line of every key path in it (``("llm", "model")``,
    ``("steps", 0)``); invalid or empty YAML is a ``ConfigError`` at ``source``.
    """
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
    lines: Lines = {}

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


def read_spec_file(path: Path, shape: str) -> tuple[dict[str, Any], Lines]:
    """A spec file's mapping and its line map. ``shape`` completes the error for a file that is not
    a mapping, e.g. ``"a spec is a mapping (name:, task:, llm:, steps: ...)"``.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"spec file not found: {path}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"the spec is not UTF-8 text (byte {exc.start})", where=str(path)
        ) from None
    data, lines = load_yaml(text, str(path))
    if not isinstance(data, dict):
        raise ConfigError(shape, where=str(path))
    return data, lines


def line_of(lines: Lines, loc: tuple[Any, ...]) -> int | None:
    """The line of the deepest part of ``loc`` that appears in the file."""
    for end in range(len(loc), -1, -1):
        line = lines.get(tuple(loc[:end]))
        if line is not None:
            return line
    return None


def format_validation_error(
    exc: ValidationError,
    source: str,
    lines: Lines,
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


def validate_spec(model: type[S], data: dict[str, Any], source: str, lines: Lines) -> S:
    """``data`` validated as ``model``; a failure is one ``ConfigError`` naming lines and fields."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise format_validation_error(exc, source, lines) from None
