"""The model options every command that calls a model takes, defined once.

``--llm FILE`` is an ``llm:`` block as in a spec; the shortcuts ``--model``, ``--base-url``,
``--api-key-env``, ``--threads``, ``--parallel`` and ``--n-ctx`` override its fields. How the
layers merge is ``config.llm_override``'s; this module adds the typer options, the help panel and
the check that the key's variable is set (in the process that was given the options). A command
passes what it was given on as one ``ModelOptions``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from datarefinery.config import (
    LoadedSpec,
    load_llm_file,
    load_spec,
    merge_llm,
    shortcut_layer,
    validate_llm,
)
from datarefinery.errors import UsageError

PANEL = "Model (any command that calls one)"

LLMFile = Annotated[
    Path | None,
    typer.Option(
        "--llm",
        help="YAML file holding an llm: block, as in a spec (any backend and setting); the "
        "options below override its fields.",
        rich_help_panel=PANEL,
        show_default=False,
    ),
]
Model = Annotated[
    str | None,
    typer.Option(
        "--model",
        help="'default' (embedded SmolLM2-135M), a GGUF file path, or with --base-url the name "
        "the server serves.",
        rich_help_panel=PANEL,
        show_default=False,
    ),
]
BaseUrl = Annotated[
    str | None,
    typer.Option(
        "--base-url",
        help="An OpenAI-compatible server (vLLM, llama.cpp, Ollama, hosted), e.g. "
        "http://127.0.0.1:8000/v1; needs --model NAME.",
        rich_help_panel=PANEL,
        show_default=False,
    ),
]
ApiKeyEnv = Annotated[
    str | None,
    typer.Option(
        "--api-key-env",
        help="Name of the environment variable holding the server's API key (the key is never "
        "written anywhere).",
        rich_help_panel=PANEL,
        show_default=False,
    ),
]
Threads = Annotated[
    int | None,
    typer.Option(
        "--threads",
        min=1,
        help="llama.cpp threads (default: all cores); on a busy machine 1 can be much faster.",
        rich_help_panel=PANEL,
        show_default=False,
    ),
]
Parallel = Annotated[
    int | None,
    typer.Option(
        "--parallel",
        min=1,
        help="Sequences llama.cpp decodes together, or requests in flight to a server.",
        rich_help_panel=PANEL,
        show_default=False,
    ),
]
NCtx = Annotated[
    int | None,
    typer.Option(
        "--n-ctx",
        min=256,
        help="llama.cpp context per sequence, in tokens.",
        rich_help_panel=PANEL,
        show_default=False,
    ),
]

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def llm_block_from_options(
    llm_file: Path | None = None,
    *,
    model: str | None = None,
    base_url: str | None = None,
    api_key_env: str | None = None,
    threads: int | None = None,
    parallel: int | None = None,
    n_ctx: int | None = None,
    base: Mapping[str, Any] | None = None,
) -> dict[str, Any] | None:
    """The ``llm`` block the options choose over ``base`` (the command's defaults, or the spec's
    block), validated; ``None`` when no option was given, so the base stands as it is.

    Raises ``ConfigError`` for a bad ``--llm`` file (file, line, field) and ``UsageError`` for
    options that do not fit together or a key variable that is not set.
    """
    shortcuts: dict[str, Any] = {
        "model": model,
        "base_url": base_url,
        "api_key_env": api_key_env,
        "threads": threads,
        "parallel": parallel,
        "n_ctx": n_ctx,
    }
    if llm_file is None and all(value is None for value in shortcuts.values()):
        return None
    file_block, lines = load_llm_file(llm_file) if llm_file is not None else ({}, {})
    current = merge_llm(base, file_block)
    merged = merge_llm(current, shortcut_layer(current, **shortcuts))
    validate_llm(merged, str(llm_file) if llm_file is not None else "the model options", lines)
    key_env = merged.get("api_key_env")
    if key_env is not None:
        named_by = "--api-key-env" if api_key_env is not None else f"{llm_file} (llm.api_key_env)"
        _check_key_env(str(key_env), named_by)
    return merged


@dataclass(frozen=True)
class ModelOptions:
    """The model options of one command line, in the order the commands declare them (None: not
    given).
    """

    llm_file: Path | None = None
    model: str | None = None
    base_url: str | None = None
    api_key_env: str | None = None
    threads: int | None = None
    parallel: int | None = None
    n_ctx: int | None = None

    def block(self, base: Mapping[str, Any] | None = None) -> dict[str, Any] | None:
        """``llm_block_from_options`` of these options over ``base``."""
        return llm_block_from_options(base=base, **asdict(self))


def spec_and_llm(spec: Path, options: ModelOptions) -> tuple[LoadedSpec, dict[str, Any] | None]:
    """SPEC, read once, and the model block the options choose over its ``llm:`` block."""
    loaded = load_spec(spec)
    return loaded, options.block(loaded.spec.llm.model_dump(mode="json"))


def _check_key_env(name: str, named_by: str) -> None:
    """Fail now, not at the first call after the run has started, when the key is missing."""
    if not _ENV_NAME.fullmatch(name):
        # Not echoed: what was given in its place may well be the key itself.
        raise UsageError(
            f"{named_by} takes the name of an environment variable (letters, digits, _; e.g. "
            "OPENAI_API_KEY) that holds the key, never the key itself"
        )
    if not os.environ.get(name):
        raise UsageError(
            f"{named_by} names the environment variable {name}, which is not set: "
            f"export {name}=... first (or leave out --api-key-env for a server without a key)"
        )
