"""Loading a GGUF for the batched decoder with weights that give batch-independent arithmetic.

llama.cpp's CPU backend repacks some weight types (Q4_0, Q4_K, IQ4_NL, ... on AVX2) into
interleaved "extra buffer types" with their own matrix kernels: the tokens of a micro-batch go
through a gemm kernel four at a time and the remainder one by one through a gemv kernel
(``forward_mul_mat`` in ggml-cpu's ``repack.cpp``). The two round differently, so a sequence's
logits depended on how many tokens shared its ``llama_decode`` call. Measured with
Qwen2.5-Coder-1.5B Q4_K_M, greedy, 96 tokens: 0 of 4 free-text replies decoded four together
equalled the same requests decoded alone; with repacking off, 4 of 4 (``bench/batch_invariance.py``;
a request admitted while others generate can still differ, 1 of 3 there). SmolLM2's Q4_1 weights
are not repacked, which is why the default model's tests did not show it. Resume and the response
cache rely on a reply depending only on its request and seed, so the decoder loads without
repacking.

llama-cpp-python's ``Llama`` takes no option for llama.cpp's ``use_extra_bufts`` model parameter,
so the default parameters it starts from are swapped for the duration of its construction, under a
lock (the swap is module-global).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import llama_cpp.llama_cpp as capi
from llama_cpp import Llama

_LOCK = threading.Lock()


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


def load_llama(model_path: str, n_threads: int, *, repack: bool = False) -> Llama:
    """The model with a tiny context of its own (the decoder decodes in its own context);
    ``repack`` keeps llama.cpp's repacked weights (faster kernels, batch-dependent rounding).
    """
    options: dict[str, Any] = {
        "model_path": model_path,
        "n_ctx": 64,
        "n_batch": 64,
        "n_threads": n_threads,
        "n_threads_batch": n_threads,
        "verbose": False,
    }
    if repack:
        return Llama(**options)
    with _without_repacking():
        return Llama(**options)
