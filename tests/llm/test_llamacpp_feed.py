"""What the batched decoder puts into one llama.cpp call: rows, positions, logits and fillers."""

from collections.abc import Iterator
from concurrent.futures import Future

import pytest

from datarefinery.llm.base import Message, Request, SamplingParams
from datarefinery.llm.llamacpp_draft import DraftLength
from datarefinery.llm.llamacpp_feed import BatchFeeder, Slot
from datarefinery.llm.llamacpp_jobs import Job
from datarefinery.llm.llamacpp_rows import FILLER_FROM, TILED_MIN_ROWS


def slot(seq_id: int, prompt_length: int, **fields: object) -> Slot:
    request = Request(messages=(Message("user", "hi"),), params=SamplingParams())
    made = Slot(
        seq_id=seq_id,
        job=Job(request, Future()),
        prompt=list(range(100, 100 + prompt_length)),
        max_new=32,
        chain=None,
        grammar=None,
        stop=(),
        lookup=None,
        draft_length=DraftLength(0),
    )
    for name, value in fields.items():
        setattr(made, name, value)
    return made


@pytest.fixture
def feed() -> Iterator[BatchFeeder]:
    made = BatchFeeder(n_batch=512, n_ctx_seq=512, n_threads=2)
    yield made
    made.close()


def rows(feed: BatchFeeder) -> list[tuple[int, int, int, bool]]:
    batch = feed.finish()
    return [
        (batch.seq_id[i][0], batch.pos[i], batch.token[i], bool(batch.logits[i]))
        for i in range(batch.n_tokens)
    ]


def test_a_short_last_prompt_chunk_is_padded_to_the_tiled_floor(feed: BatchFeeder) -> None:
    # 4 tokens left after a copied prefix: 3 for the prompt call, the last fed like a generated one
    short = slot(2, 20, prefilled=16)
    feed.start()
    assert feed.tiled_prompts([(short, 3)]) is short
    fed = rows(feed)
    assert len(fed) == TILED_MIN_ROWS
    assert [pos for _, pos, _, _ in fed] == list(range(16, 16 + TILED_MIN_ROWS))
    assert not any(logits for *_, logits in fed)
    # the fillers sit from position 19 on (the decoder removes them after the call)
    assert short.rows == [] and short.prefilled == 19


def test_chunks_of_several_sequences_share_a_call_without_fillers(feed: BatchFeeder) -> None:
    a, b = slot(0, 30), slot(1, 50, prefilled=39)
    feed.start()
    assert feed.tiled_prompts([(a, 10), (b, 10)]) is None
    fed = rows(feed)
    assert [seq for seq, *_ in fed] == [0] * 10 + [1] * 10
    assert (a.prefilled, b.prefilled) == (10, 49)


def test_the_context_bounds_the_fillers(feed: BatchFeeder) -> None:
    tight = slot(0, 509, prefilled=506)  # 2 prompt tokens, then room for 4 fillers of 512
    feed.start()
    feed.tiled_prompts([(tight, 2)])
    assert [pos for _, pos, _, _ in rows(feed)] == [506, 507, 508, 509, 510, 511]


def test_a_generated_token_is_padded_to_the_draft_width_or_given_a_filler(
    feed: BatchFeeder,
) -> None:
    drafted = slot(0, 20, generated=[7, 8], pending=8, draft=[9])
    plain = slot(1, 20, generated=[5], pending=5)
    late = slot(2, FILLER_FROM + 10, generated=[3], pending=3)
    feed.start()
    feed.generated(drafted, 2, filler=False)
    feed.generated(plain, 2, filler=False)
    feed.generated(late, 0, filler=True)
    fed = rows(feed)
    # pending + draft + 1 pad; pending + 2 pads; a lone token past FILLER_FROM gets one filler
    assert [(seq, logits) for seq, _, _, logits in fed] == [
        (0, True),
        (0, True),
        (0, False),
        (1, True),
        (1, False),
        (1, False),
        (2, True),
        (2, False),
    ]
    assert (drafted.rows, drafted.fed, plain.fed, late.fed) == ([0, 1], 3, 3, 2)
    assert fed[0][1] == 21 and fed[3][1] == 20  # the pending token sits after the prompt
