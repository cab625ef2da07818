"""The ggml types of a GGUF file's tensors, read from its header (no weights are loaded).

The batched decoder needs to know whether a model has weights that llama.cpp's tiled K-quant matmul
takes (``llamacpp_rows``); llama.cpp's API does not say which type each tensor has.
Format: https://github.com/ggml-org/ggml/blob/master/docs/gguf.md (versions 2 and 3).
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import BinaryIO

from datarefinery.errors import ConfigError

# Sizes of the fixed-width metadata value types, by GGUF type id (8 = string, 9 = array).
_FIXED = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
_STRING, _ARRAY = 8, 9


def _read(f: BinaryIO, fmt: str) -> int:
    size = struct.calcsize(fmt)
    data = f.read(size)
    if len(data) != size:
        raise EOFError("the file ends inside its GGUF header")
    return int(struct.unpack(fmt, data)[0])


def _skip_string(f: BinaryIO) -> None:
    f.seek(_read(f, "<Q"), 1)


def _skip_value(f: BinaryIO, kind: int) -> None:
    if kind in _FIXED:
        f.seek(_FIXED[kind], 1)
    elif kind == _STRING:
        _skip_string(f)
    elif kind == _ARRAY:
        item, count = _read(f, "<I"), _read(f, "<Q")
        if item in _FIXED:
            f.seek(_FIXED[item] * count, 1)
        else:
            for _ in range(count):
                _skip_value(f, item)
    else:
        raise ValueError(f"unknown GGUF metadata type {kind}")


def tensor_types(path: str | Path) -> set[int]:
    """The ggml type ids (``GGML_TYPE_*``) of the tensors in the GGUF file at ``path``."""
    try:
        with open(path, "rb") as f:
            if f.read(4) != b"GGUF":
                raise ValueError("it does not start with the GGUF magic")
            version = _read(f, "<I")
            if version not in (2, 3):
                raise ValueError(f"GGUF version {version} is not supported (2 and 3 are)")
            n_tensors, n_kv = _read(f, "<Q"), _read(f, "<Q")
            for _ in range(n_kv):
                _skip_string(f)
                _skip_value(f, _read(f, "<I"))
            types = set()
            for _ in range(n_tensors):
                _skip_string(f)
                f.seek(8 * _read(f, "<I"), 1)  # the dimensions
                types.add(_read(f, "<I"))
                f.seek(8, 1)  # the data offset
            return types
    except (OSError, ValueError, EOFError) as exc:
        raise ConfigError(
            f"{path}: cannot read the GGUF header ({exc}); is it a GGUF model?"
        ) from exc
