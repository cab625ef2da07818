"""The batched decoder's model is loaded without llama.cpp's repacked weights (batch-dependent
rounding); the library's own defaults are left as they were."""

import os
from pathlib import Path

import llama_cpp.llama_cpp as capi
import pytest

from datarefinery.llm.base import Message, Request, SamplingParams
from datarefinery.llm.llamacpp_decoder import BatchedDecoder
from datarefinery.llm.llamacpp_load import load_llama
from datarefinery.llm.models import default_model_path

pytestmark = pytest.mark.slow


def test_the_decoder_model_is_not_repacked_and_defaults_are_restored() -> None:
    original = capi.llama_model_default_params
    llama = load_llama(str(default_model_path()), 1)
    try:
        assert llama.model_params.use_extra_bufts is False
    finally:
        llama.close()
    assert capi.llama_model_default_params is original
    assert capi.llama_model_default_params().use_extra_bufts is True
    kept = load_llama(str(default_model_path()), 1, repack=True)
    try:
        assert kept.model_params.use_extra_bufts is True
    finally:
        kept.close()


# The default model's Q4_1 weights are never repacked, so only a repacked type (Q4_K here) shows
# the difference; this runs where the stronger model used by the benchmarks is present.
STRONG = Path(
    os.environ.get(
        "DATAREFINERY_STRONG_MODEL", "/work/models/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
    )
)


def review(i: int) -> Request:
    label = ("positive", "negative")[i % 2]
    return Request(
        messages=(Message("user", f"Write a {label} movie review of about 80 words, film {i}."),),
        params=SamplingParams(temperature=0.0, max_tokens=96),
        seed=i,
    )


def decode(requests: list[Request], parallel: int) -> list[str]:
    decoder = BatchedDecoder(str(STRONG), n_ctx=512, parallel=parallel, n_threads=1)
    try:
        return [f.result(timeout=1800).text for f in [decoder.submit(r).future for r in requests]]
    finally:
        decoder.close()


@pytest.mark.skipif(not STRONG.is_file(), reason="needs the Qwen 1.5B GGUF: fetch_stronger_model")
def test_a_q4_k_model_replies_the_same_alone_and_in_a_batch() -> None:
    requests = [review(i) for i in range(4)]
    alone = [decode([r], 1)[0] for r in requests]
    # with repacked weights 0 of 4 were equal (bench/batch_invariance.py)
    assert decode(requests, 4) == alone
