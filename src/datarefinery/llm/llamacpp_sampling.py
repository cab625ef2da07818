"""Token sampling for the batched llama.cpp decoder (``llamacpp_decoder``): each sequence's sampler
chain, grammar samplers built once per schema, and the choice of one token from a row of logits.

Grammar-constrained sampling is done the way llama.cpp's own ``common_sampler`` does it, not the
way llama-cpp-python does: sample from the ordinary chain first, then ask the grammar whether that
one token is allowed, and only when it is not, resample with the grammar applied to the whole
vocabulary. Applying the grammar to every vocabulary entry at every step (llama-cpp-python's order)
is what made JSON output run at half the speed of free text.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import math
import os
import tempfile
from collections.abc import Iterator
from typing import Any

import llama_cpp
import numpy as np
from llama_cpp.llama_grammar import LlamaGrammar

from datarefinery.errors import FatalBackendError, RequestRejectedError
from datarefinery.llm.base import SamplingParams
from datarefinery.llm.structured import decodable_schema

_TOKEN_DATA = np.dtype([("id", np.int32), ("logit", np.float32), ("p", np.float32)])


def sampler_chain(n_vocab: int, params: SamplingParams, seed: int | None) -> Any:
    """The same chain llama-cpp-python builds for a completion, without the grammar. The caller
    frees it (``llama_sampler_free``).
    """
    chain = llama_cpp.llama_sampler_chain_init(llama_cpp.llama_sampler_chain_default_params())

    def add(sampler: Any) -> None:
        llama_cpp.llama_sampler_chain_add(chain, sampler)

    add(
        llama_cpp.llama_sampler_init_penalties(
            n_vocab, 64, 1.0, params.frequency_penalty, params.presence_penalty
        )
    )
    if params.temperature <= 0:
        add(llama_cpp.llama_sampler_init_greedy())
        return chain
    add(llama_cpp.llama_sampler_init_top_k(40))
    add(llama_cpp.llama_sampler_init_top_p(params.top_p, 1))
    add(llama_cpp.llama_sampler_init_min_p(0.05, 1))
    add(llama_cpp.llama_sampler_init_temp(params.temperature))
    rng_seed = seed if seed is not None else int.from_bytes(os.urandom(4), "little")
    add(llama_cpp.llama_sampler_init_dist(rng_seed & 0xFFFFFFFF))
    return chain


class GrammarSamplers:
    """Grammar samplers by JSON schema: each schema is compiled once, and every sequence gets a
    fresh clone of it (a grammar sampler holds the sequence's parse state).
    """

    def __init__(self, vocab: Any) -> None:
        self.vocab = vocab
        self._pristine: dict[str, Any] = {}

    def clone_for(self, schema: dict[str, Any]) -> Any:
        """A new grammar sampler for ``schema``; the caller frees it (``llama_sampler_free``)."""
        # Not sort_keys: llama.cpp's converter emits an object's properties in the order given,
        # so a sorted dump would make the model write ``answer`` before ``reasoning``.
        key = json.dumps(schema)
        pristine = self._pristine.get(key)
        if pristine is None:
            pristine = self._build(key, decodable_schema(schema))
            self._pristine[key] = pristine
        return llama_cpp.llama_sampler_clone(pristine)

    def _build(self, key: str, schema: dict[str, Any]) -> Any:
        grammar = LlamaGrammar.from_json_schema(json.dumps(schema), verbose=False)
        # On a grammar it refuses, llama.cpp prints the whole grammar (thousands of lines) to
        # fd 2 from C, where verbose=False does not reach: the dump is caught and only the
        # reason goes into the error.
        with captured_stderr() as captured:
            pristine = llama_cpp.llama_sampler_init_grammar(
                self.vocab, grammar._grammar.encode("utf-8"), grammar._root.encode("utf-8")
            )
        if not pristine:
            reason = next(
                (line for line in captured.read().splitlines() if "error" in line.lower()),
                "no reason given",
            )
            raise RequestRejectedError(
                f"llama.cpp could not build a grammar from the schema: {reason[:300]}"
            )
        return pristine

    def close(self) -> None:
        for sampler in self._pristine.values():
            llama_cpp.llama_sampler_free(sampler)
        self._pristine.clear()


class _Captured:
    def __init__(self) -> None:
        self.text = ""

    def read(self) -> str:
        return self.text


@contextlib.contextmanager
def captured_stderr() -> Iterator[_Captured]:
    """Redirect file descriptor 2 (what C code writes to) into a buffer for the block.

    Process-wide for its few milliseconds: anything another thread writes to stderr meanwhile is
    caught too, so it wraps only the C calls that may print.
    """
    captured = _Captured()
    with tempfile.TemporaryFile() as sink:
        saved = os.dup(2)
        try:
            os.dup2(sink.fileno(), 2)
            yield captured
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            captured.text = sink.read().decode("utf-8", "replace")


class TokenSampler:
    """Picks the next token of a sequence from the logits of its row in the last decoded batch.
    Reuses one candidates array, so it serves one thread (the decoder's worker).
    """

    def __init__(self, ctx: Any, n_vocab: int) -> None:
        self.ctx = ctx
        self.n_vocab = n_vocab
        self._candidates = np.zeros(n_vocab, dtype=_TOKEN_DATA)
        self._ids = np.arange(n_vocab, dtype=np.int32)

    def sample(self, batch_index: int, chain: Any, grammar: Any | None) -> int:
        """Sample with ``chain``, check the token against ``grammar`` (if any) and resample under
        the grammar only when it is refused; both samplers then accept the token.
        """
        logits = np.ctypeslib.as_array(
            llama_cpp.llama_get_logits_ith(self.ctx, batch_index), shape=(self.n_vocab,)
        )
        candidates = self._candidates
        token = self._apply(chain, candidates, logits, grammar, grammar_first=False)
        if grammar is not None and not self._allowed(grammar, token):
            token = self._apply(chain, candidates, logits, grammar, grammar_first=True)
        llama_cpp.llama_sampler_accept(chain, token)
        if grammar is not None:
            llama_cpp.llama_sampler_accept(grammar, token)
        return token

    def _apply(
        self, chain: Any, candidates: Any, logits: Any, grammar: Any, *, grammar_first: bool
    ) -> int:
        candidates["id"] = self._ids
        candidates["logit"] = logits
        candidates["p"] = 0.0
        array = llama_cpp.llama_token_data_array(
            data=candidates.ctypes.data_as(llama_cpp.llama_token_data_p),
            size=self.n_vocab,
            selected=-1,
            sorted=False,
        )
        if grammar_first:
            llama_cpp.llama_sampler_apply(grammar, ctypes.byref(array))
        llama_cpp.llama_sampler_apply(chain, ctypes.byref(array))
        if not 0 <= array.selected < array.size:
            raise FatalBackendError("the sampler selected no token (every candidate was excluded)")
        return int(candidates["id"][array.selected])

    @staticmethod
    def _allowed(grammar: Any, token: int) -> bool:
        single = (llama_cpp.llama_token_data * 1)(llama_cpp.llama_token_data(token, 1.0, 0.0))
        array = llama_cpp.llama_token_data_array(data=single, size=1, selected=-1, sorted=False)
        llama_cpp.llama_sampler_apply(grammar, ctypes.byref(array))
        return not math.isinf(single[0].logit)
