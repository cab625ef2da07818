"""The batched decoder on the real default model."""

import json
import time
from concurrent.futures import CancelledError

import llama_cpp
import pytest

from datarefinery.llm.base import Message, Request, SamplingParams
from datarefinery.llm.llamacpp_decoder import BatchedDecoder
from datarefinery.llm.llamacpp_rows import consecutive_runs
from datarefinery.llm.models import default_model_path

pytestmark = pytest.mark.slow

SCHEMA = {
    "type": "object",
    "properties": {"text": {"type": "string", "minLength": 10, "maxLength": 60}},
    "required": ["text"],
    "additionalProperties": False,
}


def review(i: int, schema: dict | None = SCHEMA, max_tokens: int = 40) -> Request:  # type: ignore[type-arg]
    label = ("positive", "negative")[i % 2]
    return Request(
        messages=(
            Message("system", "You answer with JSON only."),
            Message("user", f'Write a short {label} movie review as {{"text": ...}}.'),
        ),
        params=SamplingParams(temperature=0.9, max_tokens=max_tokens),
        json_schema=schema,
        seed=40 + i,
    )


def generate(parallel: int, requests: list[Request]) -> list[str]:
    decoder = BatchedDecoder(str(default_model_path()), n_ctx=512, parallel=parallel, n_threads=2)
    try:
        return [f.result(timeout=300).text for f in [decoder.submit(r).future for r in requests]]
    finally:
        decoder.close()


def test_batched_answers_equal_one_at_a_time_answers() -> None:
    # Each sequence has its own KV cells and sampler; batching must not change what it says.
    requests = [review(i) for i in range(4)]
    solo = generate(1, requests)
    batched = generate(4, requests)
    assert batched == solo
    for text in batched:
        value = json.loads(text)
        assert set(value) == {"text"} and 10 <= len(value["text"]) <= 60


def test_stop_strings_and_length_limit() -> None:
    decoder = BatchedDecoder(str(default_model_path()), n_ctx=512, parallel=2, n_threads=2)
    try:
        request = Request(
            messages=(Message("user", "Count from 1 to 20, separated by commas."),),
            params=SamplingParams(temperature=0.0, max_tokens=40, stop=("7",)),
            seed=1,
        )
        stopped = decoder.submit(request).future.result(timeout=300)
        assert stopped.finish_reason == "stop" and "7" not in stopped.text
        capped = decoder.submit(review(0, schema=None, max_tokens=5)).future.result(timeout=300)
        assert capped.finish_reason == "length" and capped.usage.completion_tokens == 5
    finally:
        decoder.close()


def test_a_cancelled_request_frees_its_slot() -> None:
    decoder = BatchedDecoder(str(default_model_path()), n_ctx=512, parallel=1, n_threads=2)
    try:
        first = decoder.submit(review(0, schema=None, max_tokens=400)).future
        time.sleep(0.5)
        first.cancel()
        with pytest.raises(CancelledError):
            first.result()
        second = decoder.submit(review(1, max_tokens=40)).future.result(timeout=300)
        assert json.loads(second.text)["text"]
    finally:
        decoder.close()


# A rewriting step's calls: one long shared instruction, a different record each, a reply that
# copies most of the record (what prompt-lookup drafts and prefix copies are for).
REWRITE = (
    "You rewrite text to remove personal information. Replace every name, email address, phone "
    "number and street address with a neutral placeholder and keep every other word as it is."
)
RECORDS = [
    "My name is John Smith and my email is john.smith@example.com, call me at 555-0102.",
    "Please send the parcel to Maria Garcia, 12 Oak Street, Springfield.",
    "Contact Dr. Alan Turing on alan@turing.org about the meeting on Monday.",
    "Our customer Lisa Wong lives at 88 Pine Road and her number is 555-7788.",
]
REWRITTEN = {
    "type": "object",
    "properties": {"text": {"type": "string", "maxLength": 200}},
    "required": ["text"],
    "additionalProperties": False,
}


def rewrite(i: int, temperature: float, schema: dict | None = None) -> Request:  # type: ignore[type-arg]
    return Request(
        messages=(Message("system", REWRITE), Message("user", "Rewrite: " + RECORDS[i % 4])),
        params=SamplingParams(temperature=temperature, max_tokens=32),
        json_schema=schema,
        seed=7 + i,
    )


def decode(
    requests: list[Request],
    parallel: int,
    draft_max: int,
    prefix_reuse: bool = True,
    tiled: bool = False,
) -> tuple[list[str], dict[str, int]]:
    decoder = BatchedDecoder(
        str(default_model_path()),
        n_ctx=512,
        parallel=parallel,
        n_threads=1,
        draft_max=draft_max,
        prefix_reuse=prefix_reuse,
    )
    decoder.tiled = tiled  # the default model has no K-quant weights: forced, to test the scheme
    try:
        texts = [f.result(timeout=300).text for f in [decoder.submit(r).future for r in requests]]
        return texts, dict(decoder.stats)
    finally:
        decoder.close()


@pytest.mark.parametrize("schema", [None, REWRITTEN], ids=["free_text", "json_schema"])
def test_greedy_replies_with_and_without_drafts_are_identical(schema: dict | None) -> None:  # type: ignore[type-arg]
    requests = [rewrite(i, 0.0, schema) for i in range(2)]
    plain, _ = decode(requests, parallel=1, draft_max=0, prefix_reuse=False)
    drafted, stats = decode(requests, parallel=1, draft_max=8, prefix_reuse=False)
    assert drafted == plain
    assert stats["accepted"] > 0  # drafts were made and kept: the check is not vacuous


def test_a_reply_depends_only_on_its_request_not_on_the_batch() -> None:
    # Sampled, some under a schema, with drafts and prefix copies on: each request alone, all four
    # together, and three of them in another order beside a newcomer give the same replies.
    requests = [rewrite(i, 0.9, REWRITTEN if i % 2 else None) for i in range(4)]
    alone = [decode([r], parallel=1, draft_max=8)[0][0] for r in requests]
    together, stats = decode(requests, parallel=4, draft_max=8)
    assert together == alone
    assert stats["prefix_copied"] > 0 and stats["drafted"] > 0
    other = [rewrite(9, 0.9), requests[3], requests[0], requests[2]]
    mixed, _ = decode(other, parallel=3, draft_max=8)
    assert mixed[1:] == [alone[3], alone[0], alone[2]]
    # One after another: each request starts from the prefix its finished predecessor left.
    queued, stats = decode(requests, parallel=1, draft_max=8)
    assert queued == alone and stats["prefix_copied"] > 0


def variant(j: int) -> Request:
    """The same rewrite with a number at its end: after a copied prefix, fewer than 8 tokens."""
    return Request(
        messages=(Message("system", REWRITE), Message("user", f"Rewrite: {RECORDS[0]} {j}")),
        params=SamplingParams(temperature=0.0, max_tokens=32),
        seed=j,
    )


def test_the_tiled_scheme_keeps_prompt_rows_and_generated_rows_apart(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # What makes a K-quant model batch-invariant (llamacpp_rows): every prompt token but the last
    # in a micro-batch of prompt tokens with at least 8 rows, generated and drafted tokens (and
    # each prompt's last) in micro-batches (runs of consecutive sequence ids) under 8 rows.
    # Recorded from the real calls, with drafts and prefix copies on.
    calls: list[list[tuple[int, int, bool]]] = []
    real = llama_cpp.llama_decode

    def recording(ctx: object, batch: llama_cpp.llama_batch) -> int:
        rows = range(batch.n_tokens)
        calls.append([(batch.seq_id[i][0], batch.pos[i], bool(batch.logits[i])) for i in rows])
        return real(ctx, batch)

    # 1 and 2 copy the system prompt from 0 at once and evaluate the rest together; 3 waits for
    # 0's whole record, 4 for 3's, leaving it fewer than 8 tokens of its own
    requests = [
        rewrite(0, 0.0),
        rewrite(1, 0.0),
        rewrite(2, 0.0, REWRITTEN),
        variant(1),
        variant(2),
    ]
    alone = [decode([r], parallel=1, draft_max=8, prefix_reuse=False)[0][0] for r in requests]
    monkeypatch.setattr(llama_cpp, "llama_decode", recording)
    together, stats = decode(requests, parallel=5, draft_max=8, tiled=True)
    assert together == alone
    assert stats["prefix_copied"] > 0 and stats["accepted"] > 0
    decoder = BatchedDecoder(str(default_model_path()), n_ctx=64, parallel=1, n_threads=1)
    try:  # all were admitted at once, request i into sequence i
        prompt_length = [decoder.count_prompt_tokens(r) for r in requests]
    finally:
        decoder.close()
    padded = shared = 0
    for call in calls:
        seqs = sorted({seq for seq, _, _ in call})
        # a prompt row: before its prompt's last token (which is fed like a generated one)
        if any(pos < prompt_length[seq] - 1 for seq, pos, _ in call):  # prompt chunks
            assert len(consecutive_runs(seqs)) == 1 and len(call) >= 8  # one micro-batch
            assert not any(logits for _, _, logits in call)
            if len(seqs) > 1:  # the same number of prompt tokens of each, nothing else
                assert all(pos < prompt_length[seq] - 1 for seq, pos, _ in call)
                assert len({sum(s == seq for s, _, _ in call) for seq in seqs}) == 1
                shared += 1
            padded += any(pos >= prompt_length[seq] - 1 for seq, pos, _ in call)
        else:
            for run in consecutive_runs(seqs):
                assert sum(seq in run for seq, _, _ in call) < 8
    assert padded > 0  # a chunk shorter than 8 after a prefix copy was made up with fillers
    assert shared > 0  # prompt chunks of several sequences went in one call
