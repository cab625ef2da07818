"""How many rows of a sequence go into one llama.cpp call (the tiled scheme's rules)."""

import itertools
import random

import pytest

from datarefinery.llm.llamacpp_rows import (
    MAX_ROWS_PER_SEQUENCE,
    TILED_MIN_ROWS,
    consecutive_runs,
    tiled_draft_cap,
    tiled_generation_calls,
    tiled_prompt_calls,
    tiled_prompt_chunk,
)


@pytest.mark.parametrize("length", range(1, 200))
def test_prompt_chunks_are_never_short_unless_the_prompt_is(length: int) -> None:
    chunks, remaining = [], length
    while remaining:
        chunks.append(tiled_prompt_chunk(remaining))
        remaining -= chunks[-1]
    assert sum(chunks) == length
    assert all(chunk <= MAX_ROWS_PER_SEQUENCE for chunk in chunks)
    if length >= TILED_MIN_ROWS:
        assert all(chunk >= TILED_MIN_ROWS for chunk in chunks)
    else:
        assert chunks == [length]  # the decoder pads it with fillers


def test_runs_of_consecutive_ids() -> None:
    assert consecutive_runs([0, 1, 3, 4, 5, 7]) == [[0, 1], [3, 4, 5], [7]]
    assert consecutive_runs([]) == []


@pytest.mark.parametrize(
    ("ids", "cap"), [([0, 1, 2, 3], 0), ([0, 1, 2], 1), ([0, 1], 2), ([0, 2], 6), ([5], 6)]
)
def test_drafts_fit_in_micro_batches_under_the_tiled_floor(ids: list[int], cap: int) -> None:
    assert tiled_draft_cap(ids) == cap
    longest = max(len(run) for run in consecutive_runs(ids))
    assert longest * (cap + 1) < TILED_MIN_ROWS


def test_generation_calls_keep_every_micro_batch_under_the_floor() -> None:
    assert tiled_generation_calls([0, 1, 2, 3], 0) == [[[0, 1, 2, 3]]]
    assert tiled_generation_calls([0, 1, 2, 3], 1) == [[[0, 1, 2]], [[3]]]
    rng = random.Random(0)
    for _ in range(300):
        ids = sorted(rng.sample(range(24), rng.randint(1, 16)))
        width = rng.randint(0, 8)
        calls = tiled_generation_calls(ids, width)
        assert sorted(seq for call in calls for batch in call for seq in batch) == ids
        for call in calls:
            for batch in call:
                assert batch == list(range(batch[0], batch[0] + len(batch)))
                assert len(batch) == 1 or len(batch) * (width + 1) < TILED_MIN_ROWS
            # llama.cpp would join micro-batches of consecutive ids in one call
            for a, b in itertools.pairwise(call):
                assert b[0] != a[-1] + 1


def test_prompt_calls_join_consecutive_sequences_in_one_micro_batch_of_eight_rows_or_more() -> None:
    # 0-2 together, 20 tokens each (the shortest's chunk); 4 alone (not consecutive with 2)
    assert tiled_prompt_calls([(0, 90), (1, 20), (2, 30), (4, 60)]) == [
        [(0, 20), (1, 20), (2, 20)],
        [(4, 48)],
    ]
    # 2 x 3 rows are too few together: each alone, the short ones padded by the decoder
    assert tiled_prompt_calls([(0, 3), (1, 3)]) == [[(0, 3)], [(1, 3)]]
    rng = random.Random(1)
    for _ in range(300):
        ids = sorted(rng.sample(range(20), rng.randint(1, 12)))
        left = [(seq_id, rng.randint(1, 150)) for seq_id in ids]
        calls = tiled_prompt_calls(left)
        assert sorted(seq_id for call in calls for seq_id, _ in call) == ids
        for call in calls:
            members = [seq_id for seq_id, _ in call]
            assert len(consecutive_runs(members)) == 1 and len(call) < TILED_MIN_ROWS
            if len(call) > 1:
                assert len({take for _, take in call}) == 1
                assert sum(take for _, take in call) >= TILED_MIN_ROWS
            assert all(1 <= take <= min(dict(left)[s], MAX_ROWS_PER_SEQUENCE) for s, take in call)
