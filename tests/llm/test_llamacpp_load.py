"""The batched decoder's model is loaded without llama.cpp's repacked weights (the library's own
defaults are left as they were), and a K-quant model replies the same alone and in any batch."""

import os
from pathlib import Path

import llama_cpp.llama_cpp as capi
import pytest

from datarefinery.llm import llamacpp_load
from datarefinery.llm.base import Message, Request, SamplingParams
from datarefinery.llm.llamacpp_decoder import BatchedDecoder
from datarefinery.llm.llamacpp_load import TILED_ENV, load_llama, tiled_matmul_on
from datarefinery.llm.models import default_model_path


@pytest.fixture
def fresh_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """As if llama.cpp had not been asked yet in this process, with the switch unset; both are
    restored afterwards."""
    monkeypatch.setattr(llamacpp_load, "_tiled_on", None)
    monkeypatch.delenv(TILED_ENV, raising=False)


@pytest.mark.usefixtures("fresh_process")
def test_the_tiled_matmul_is_on_unless_switched_off_and_read_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert tiled_matmul_on() is True
    # llama.cpp reads the switch once per process: so does tiled_matmul_on
    monkeypatch.setenv(TILED_ENV, "0")
    assert tiled_matmul_on() is True


@pytest.mark.usefixtures("fresh_process")
def test_the_switch_set_off_before_the_first_question_is_seen(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(TILED_ENV, "0")
    assert tiled_matmul_on() is False


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
        messages=(
            Message(
                "user", f"Write a {label} movie review of about 80 words about film number {i}."
            ),
        ),
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
        assert decoder.tiled  # prompts through the tiled matmul, generated tokens not
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
    # while the others generate (evaluated in the same micro-batches as their tokens, with the
    # tiled matmul on, its reply differed: 2 of these 3 equal at 1 thread)
    assert decode([requests[4], requests[3], requests[0], requests[2]], 3) == [
        alone[4],
        alone[3],
        alone[0],
        alone[2],
    ]
    # drafts verified several tokens at a time and prefix copies: micro-batches of 8 rows and more
    assert decode(requests, 4, speculative=True) == alone
