"""The batched decoder's model is loaded without llama.cpp's batch-dependent kernels (repacked
weights, the tiled K-quant matmul); the library's own defaults are left as they were."""

import logging
import os
from pathlib import Path

import llama_cpp.llama_cpp as capi
import pytest

from datarefinery.llm import llamacpp_load
from datarefinery.llm.base import Message, Request, SamplingParams
from datarefinery.llm.llamacpp_decoder import BatchedDecoder
from datarefinery.llm.llamacpp_load import TILED_ENV, load_llama, settle_tiled_matmul
from datarefinery.llm.models import default_model_path


@pytest.fixture
def fresh_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """As if no model had been loaded in this process yet, with the switch unset; both are
    restored afterwards."""
    monkeypatch.setattr(llamacpp_load, "_tiled_on", None)
    monkeypatch.delenv(TILED_ENV, raising=False)


@pytest.mark.usefixtures("fresh_process")
def test_a_batch_invariant_first_load_turns_the_tiled_matmul_off() -> None:
    assert settle_tiled_matmul(batch_invariant=True) is True
    assert os.environ[TILED_ENV] == "0"
    # the process is settled: a later fast load cannot turn it back on
    assert settle_tiled_matmul(batch_invariant=False) is True


@pytest.mark.usefixtures("fresh_process")
def test_a_fast_first_load_leaves_the_switch_and_a_later_invariant_load_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert settle_tiled_matmul(batch_invariant=False) is False
    assert TILED_ENV not in os.environ
    with caplog.at_level(logging.WARNING, logger=llamacpp_load.__name__):
        assert settle_tiled_matmul(batch_invariant=True) is False
    assert "tiled K-quant matmul stays on" in caplog.text


@pytest.mark.parametrize(
    ("value", "on"), [(None, True), ("1", True), (" 2x", True), ("0", False), ("off", False)]
)
def test_the_switch_is_read_as_llama_cpp_reads_it(value: str | None, on: bool) -> None:
    assert llamacpp_load._enabled(value) is on


@pytest.mark.slow
def test_the_decoder_model_is_not_repacked_and_defaults_are_restored() -> None:
    original = capi.llama_model_default_params
    llama = load_llama(str(default_model_path()), 1)
    try:
        assert llama.model_params.use_extra_bufts is False
    finally:
        llama.close()
    assert capi.llama_model_default_params is original
    assert capi.llama_model_default_params().use_extra_bufts is True
    kept = load_llama(str(default_model_path()), 1, batch_invariant=False)
    try:
        assert kept.model_params.use_extra_bufts is True
    finally:
        kept.close()


# The default model's Q4_1 weights go through neither kernel, so only a K-quant model (Q4_K here)
# shows the difference; this runs where the stronger model used by the benchmarks is present.
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


def decode(requests: list[Request], parallel: int, *, speculative: bool = False) -> list[str]:
    decoder = BatchedDecoder(
        str(STRONG),
        n_ctx=512,
        parallel=parallel,
        n_threads=1,
        draft_max=8 if speculative else 0,
        prefix_reuse=speculative,
    )
    try:
        return [f.result(timeout=1800).text for f in [decoder.submit(r).future for r in requests]]
    finally:
        decoder.close()


@pytest.mark.slow
@pytest.mark.skipif(not STRONG.is_file(), reason="needs the Qwen 1.5B GGUF: fetch_stronger_model")
def test_a_q4_k_model_replies_the_same_alone_and_in_a_batch() -> None:
    requests = [review(i) for i in (0, 1, 2, 3, 9)]
    alone = [decode([r], 1)[0] for r in requests]
    # with repacked weights 0 of 4 were equal (bench/batch_invariance.py)
    assert decode(requests[:4], 4) == alone[:4]
    # 3 slots for 4 requests: the last is admitted when a slot frees, and its prompt is evaluated
    # beside the others' generated tokens (with the tiled matmul on, its reply differed)
    assert decode([requests[4], requests[3], requests[0], requests[2]], 3) == [
        alone[4],
        alone[3],
        alone[0],
        alone[2],
    ]
    # drafts verified several tokens at a time and prefix copies: micro-batches of 8 rows and more
    assert decode(requests, 4, speculative=True) == alone
