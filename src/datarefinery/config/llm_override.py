"""Choosing the model from outside a spec: an ``llm`` override merged over a base block.

Every command that calls a model, and the Python API, take the same override. It is built in
layers, each a partial ``llm:`` block whose fields replace the layer below: the base (the spec's
block, or a command's defaults), then an ``--llm`` file (or the ``llm=`` argument), then the
shortcut options (``--model``, ``--base-url``, ...). When a layer changes the backend, the fields
only the old backend has are dropped with its ``model`` (a GGUF path is no served name), so the
shared settings (temperature, max_tokens, budget, ...) carry over and nothing of the other backend
is left to be refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from datarefinery.config.llm import LlamaCppConfig, LLMConfig, LLMSettings, OpenAIConfig
from datarefinery.config.loading import (
    Lines,
    StrictModel,
    format_validation_error,
    line_of,
    read_spec_file,
)
from datarefinery.errors import ConfigError, UsageError

LLMOverride = Mapping[str, Any] | LlamaCppConfig | OpenAIConfig
"""A partial ``llm:`` block (a mapping) or a whole one (a config object)."""

_SHARED = frozenset(LLMSettings.model_fields) - {"model"}


class _LLMSection(StrictModel):
    """The one key an ``--llm`` file holds; validating through it locates errors at ``llm.<field>``
    (the way a spec's are).
    """

    llm: LLMConfig


def as_block(value: LLMOverride | None) -> dict[str, Any]:
    """A mapping of the fields ``value`` sets: a config object gives the fields it was given and
    its backend, so that it overrides only those.
    """
    if value is None:
        return {}
    if isinstance(value, LlamaCppConfig | OpenAIConfig):
        return {**value.model_dump(mode="json", exclude_unset=True), "backend": value.backend}
    return dict(value)


def merge_llm(base: LLMOverride | None, *layers: LLMOverride | None) -> dict[str, Any]:
    """``layers`` over ``base``, in order (see the module docstring): a plain mapping, unchecked."""
    merged = as_block(base)
    for value in layers:
        layer = as_block(value)
        if not layer:
            continue
        before = merged.get("backend", "llamacpp")
        if layer.get("backend", before) != before:
            merged = {key: item for key, item in merged.items() if key in _SHARED}
        merged.update(layer)
    return merged


def validate_llm(
    block: Mapping[str, Any], source: str = "<llm>", lines: Lines | None = None
) -> LlamaCppConfig | OpenAIConfig:
    """``block`` validated as an ``llm:`` section; a failure is a ``ConfigError`` naming the source,
    the line (when ``lines`` maps it) and the field, as for a spec.
    """
    try:
        return _LLMSection.model_validate({"llm": dict(block)}).llm
    except ValidationError as exc:
        raise format_validation_error(exc, source, lines or {}) from None


def override_llm(
    base: LlamaCppConfig | OpenAIConfig, override: LLMOverride | None
) -> LlamaCppConfig | OpenAIConfig:
    """``base`` with ``override`` merged over it and validated (``base`` itself without one)."""
    if override is None:
        return base
    return validate_llm(merge_llm(base.model_dump(mode="json"), override), "the llm override")


def load_llm_file(path: Path) -> tuple[dict[str, Any], Lines]:
    """The ``llm:`` block of an ``--llm`` file and the file's line map; a file that is not one
    mapping with the single key ``llm`` is a ``ConfigError`` naming file, line and key.
    """
    data, lines = read_spec_file(
        path, "an --llm file is a mapping with one key, llm: (backend:, model:, ...)"
    )
    for key in data:
        if key != "llm":
            raise ConfigError(
                f"{path}, line {line_of(lines, (key,))}, field {key}: an --llm file holds only "
                f"the llm: block (remove {key}:)"
            )
    block = data.get("llm")
    if block is None:
        raise ConfigError("no llm: block (write llm: with backend:, model:, ...)", where=str(path))
    if not isinstance(block, dict):
        raise ConfigError(
            f"{path}, line {line_of(lines, ('llm',))}, field llm: the llm section is a mapping "
            "of options (backend:, model:, ...)"
        )
    return block, lines


def is_local_model(model: str) -> bool:
    """Whether ``--model`` names the embedded model or a GGUF file rather than a served model."""
    return model == "default" or model.lower().endswith(".gguf") or Path(model).is_file()


def shortcut_layer(
    current: Mapping[str, Any],
    *,
    model: str | None = None,
    base_url: str | None = None,
    api_key_env: str | None = None,
    threads: int | None = None,
    parallel: int | None = None,
    n_ctx: int | None = None,
) -> dict[str, Any]:
    """The layer the shortcut options make over the block ``current`` (base and file merged).

    ``--base-url`` means backend openai, ``--model`` is then the served name; without it,
    ``default`` or a GGUF path mean the embedded model, and any other name needs a server.
    ``--parallel`` is how many sequences llama.cpp decodes together, or for a server how many
    requests are in flight.
    """
    # Why long: one small rule per option, each with the message that says how to fix it
    backend = str(current.get("backend", "llamacpp"))
    layer: dict[str, Any] = {}
    if base_url is not None:
        layer.update(backend="openai", base_url=base_url)
        if model is None and (backend != "openai" or "model" not in current):
            raise UsageError(
                "--base-url needs --model NAME: the name the server serves the model under "
                "(e.g. --model qwen2.5-1.5b-instruct; GET BASE_URL/models lists them)"
            )
    elif model is not None and is_local_model(model):
        layer["backend"] = "llamacpp"
    elif model is not None and backend != "openai":
        raise UsageError(
            f"--model {model!r} is neither 'default' nor a .gguf file: a model served by name "
            f"needs --base-url URL (e.g. --base-url http://127.0.0.1:8000/v1 --model {model})"
        )
    if model is not None:
        layer["model"] = model
    target = layer.get("backend", backend)
    for option, key, value in (("--threads", "n_threads", threads), ("--n-ctx", "n_ctx", n_ctx)):
        if value is None:
            continue
        if target != "llamacpp":
            raise UsageError(
                f"{option} sets the embedded model (llama.cpp); a server chooses its own: "
                f"remove {option}, or drop --base-url to run the model here"
            )
        layer[key] = value
    if parallel is not None:
        if target == "llamacpp":
            # Twice as many requests in flight as sequences decoded together keep the batch full
            # while records wait on detection and checks.
            concurrency = int(current.get("concurrency", 4))
            layer.update(parallel=parallel, concurrency=max(concurrency, 2 * parallel))
        else:
            layer["concurrency"] = parallel
    if api_key_env is not None:
        if target != "openai":
            raise UsageError(
                "--api-key-env names the key of a server: add --base-url URL (the embedded "
                "model needs no key)"
            )
        layer["api_key_env"] = api_key_env
    return layer
