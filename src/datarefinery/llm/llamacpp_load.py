"""Loading a GGUF for the batched decoder so that its arithmetic does not depend on the batch.

llama.cpp's CPU backend has matrix kernels whose rounding depends on how many tokens share a
micro-batch, so a sequence's logits depended on what else was in its ``llama_decode`` call. Resume
and the response cache rely on a reply depending only on its request and seed, so with
``batch_invariant`` (the default) the first is avoided and the second kept to what it does alike
in every batch:

- Repacked weights. On AVX2 llama.cpp repacks Q4_0, Q4_K, IQ4_NL, ... into interleaved "extra
  buffer types" whose kernel sends a micro-batch's tokens through a gemm four at a time and the
  rest one by one through a gemv (``forward_mul_mat`` in ggml-cpu's ``repack.cpp``). Measured with
  Qwen2.5-Coder-1.5B Q4_K_M, greedy, 96 tokens: 0 of 4 replies decoded four together equalled the
  same requests decoded alone (``bench/batch_invariance.py``). llama-cpp-python's ``Llama`` takes
  no option for llama.cpp's ``use_extra_bufts``, so the default parameters it starts from are
  swapped while it is built, under a lock (the swap is module-global).
- The tiled K-quant matmul (ggml-cpu ``tiled/``: Q2_K-Q6_K and IQ types), taken for micro-batches
  of 8 rows or more; fewer go through the row-by-row dot products. With repacking off, a prompt
  evaluated in chunks of 1 + 45 tokens gave last-token logits up to 0.46 from one chunk of 46
  (any split with a chunk under 8 rows differed, 8 + 38 through 38 + 8 did not), which is how a
  request admitted while others generate got another reply than alone. This kernel is not avoided
  (it evaluates prompts much faster): the decoder arranges its micro-batches so that every prompt
  token but the last goes through it, and every generated token and each prompt's last through
  the dot products (``llamacpp_rows``).
  llama.cpp reads its switch, the environment variable ``GGML_CPU_TILED_MM``, once per process;
  ``tiled_matmul_on`` tells the decoder what it reads.

SmolLM2's Q4_1 weights go through neither kernel, which is why the default model's tests did not
show this.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import llama_cpp.llama_cpp as capi
from llama_cpp import Llama

TILED_ENV = "GGML_CPU_TILED_MM"
_LOCK = threading.Lock()
# Whether this process's llama.cpp takes the tiled K-quant matmul; None until first asked.
_tiled_on: bool | None = None


@contextmanager
def _without_repacking() -> Iterator[None]:
    original = capi.llama_model_default_params

    def params() -> Any:
        made = original()
        made.use_extra_bufts = False
        return made

    with _LOCK:
        capi.llama_model_default_params = params
        try:
            yield
        finally:
            capi.llama_model_default_params = original


def _enabled(value: str | None) -> bool:
    """llama.cpp's reading of the switch: on when unset or when ``atoi`` of it is not 0."""
    if value is None:
        return True
    match = re.match(r"\s*([+-]?\d+)", value)
    return match is not None and int(match.group(1)) != 0


def tiled_matmul_on() -> bool:
    """Whether this process's llama.cpp takes the tiled K-quant matmul (as the environment said
    when first asked: llama.cpp reads its switch once, at the process's first matrix product).
    """
    global _tiled_on
    with _LOCK:
        if _tiled_on is None:
            _tiled_on = _enabled(os.environ.get(TILED_ENV))
        return _tiled_on


def load_llama(model_path: str, n_threads: int, *, batch_invariant: bool = True) -> Llama:
    """The model with a tiny context of its own (the decoder decodes in its own context);
    ``batch_invariant=False`` keeps llama.cpp's repacked weights (faster kernels,
    batch-dependent rounding).
    """
    options: dict[str, Any] = {
        "model_path": model_path,
        "n_ctx": 64,
        "n_batch": 64,
        "n_threads": n_threads,
        "n_threads_batch": n_threads,
        "verbose": False,
    }
    if not batch_invariant:
        return Llama(**options)
    with _without_repacking():
        return Llama(**options)
