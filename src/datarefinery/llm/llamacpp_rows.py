"""How many tokens of one sequence the batched decoder (``llamacpp_decoder``) puts in one batch, so
that a token's logits never depend on what else is in the batch.

llama.cpp's CPU flash attention has three kernels that round differently: a row-by-row one, a tiled
one for 64 or more queries of one sequence in a micro-batch (``GGML_FA_TILE_Q``), and, with more
than one thread, one that splits the KV cells of a micro-batch holding a single query of a single
sequence over 512 or more cells between the threads. Only the row-by-row kernel gives a row the
same numbers whatever else is in its micro-batch. Measured on SmolLM2: a prompt evaluated in one
chunk of 79 tokens and in chunks of 40 and 39 gave last-token logits up to 1.0 apart; a lone token
over 535 cells on 2 threads and the same token beside another sequence's, 0.77 apart. So: at most
``MAX_ROWS_PER_SEQUENCE`` tokens of a sequence per batch, and a sequence that would feed a single
token past ``FILLER_FROM`` feeds one more, thrown away, to stay off the split kernel.

The matrix products have the same trouble with K-quant weights (Q2_K-Q6_K, IQ types): llama.cpp
takes its tiled matmul for a micro-batch of ``TILED_MIN_ROWS`` rows or more and row-by-row dot
products below (``llamacpp_load``). Each kernel alone gives a row the same numbers whatever else is
in its micro-batch, so for such a model the decoder keeps every token on one kernel whatever the
batch (the "tiled scheme"). Prompt tokens but the last are decoded in calls of their own, one
micro-batch of at least ``TILED_MIN_ROWS`` rows each (fillers make up a shorter one). Generated and
drafted tokens go in calls whose micro-batches stay under it, and so does each prompt's last
token, whose logits start the reply (fed like a generated token, it also spares a request that
repeats another's prompt a call of its own). llama.cpp makes one micro-batch of each run of
consecutive sequence ids (one KV stream per sequence), so the limits are on each run.
"""

from __future__ import annotations

MAX_ROWS_PER_SEQUENCE = 48
# Cells are padded to 256: below this position (with room for a draft) a sequence stays under 512.
FILLER_FROM = 200
# llama.cpp's tiled K-quant matmul takes micro-batches of this many rows or more
# (``ggml_tiled_min_batch`` in ggml-cpu's tiled.cpp) ...
TILED_MIN_ROWS = 8
# ... of weights of these ggml types (``ggml_tiled_supported``): Q2_K-Q6_K and the IQ types.
TILED_TYPES = frozenset({10, 11, 12, 13, 14, 16, 17, 18, 19, 21, 22, 23, 29})


def prompt_chunk(remaining: int, room: int, start: int, threads: int) -> int:
    """How many of the ``remaining`` prompt tokens from position ``start`` to feed now, with
    ``room`` left in the batch. Past ``FILLER_FROM`` on several threads a chunk never leaves a
    single token behind nor is a single token (unless it is the last, which gets a filler).
    """
    take = min(remaining, room, MAX_ROWS_PER_SEQUENCE)
    if threads > 1 and start + take >= FILLER_FROM:
        if remaining - take == 1:
            take -= 1
        if take == 1 and remaining > 1:
            take = 0
    return take


def wants_filler(rows: int, position: int, threads: int) -> bool:
    """Whether a sequence feeding ``rows`` tokens, the last at ``position``, needs a filler."""
    return rows == 1 and threads > 1 and position >= FILLER_FROM


def tiled_prompt_chunk(remaining: int) -> int:
    """Tiled scheme: how many of a sequence's ``remaining`` prompt tokens its next call evaluates.
    Never more than ``MAX_ROWS_PER_SEQUENCE``, and never leaving fewer than ``TILED_MIN_ROWS``
    behind, so only a prompt (or the part after a copied prefix) that is short to begin with makes
    a short chunk, which the decoder pads with fillers.
    """
    if remaining <= MAX_ROWS_PER_SEQUENCE:
        return remaining
    return min(MAX_ROWS_PER_SEQUENCE, remaining - TILED_MIN_ROWS)


def consecutive_runs(seq_ids: list[int]) -> list[list[int]]:
    """Ascending ids cut where they are not consecutive: llama.cpp's micro-batches of one call."""
    runs: list[list[int]] = []
    for seq_id in seq_ids:
        if runs and seq_id == runs[-1][-1] + 1:
            runs[-1].append(seq_id)
        else:
            runs.append([seq_id])
    return runs


def tiled_draft_cap(seq_ids: list[int]) -> int:
    """Tiled scheme: the longest draft that keeps the micro-batches of generating sequences
    ``seq_ids`` (ascending) under ``TILED_MIN_ROWS`` rows, each sequence feeding its token and a
    draft padded to the longest.
    """
    longest = max((len(run) for run in consecutive_runs(seq_ids)), default=1)
    return max(0, (TILED_MIN_ROWS - 1) // longest - 1)


def tiled_generation_calls(seq_ids: list[int], width: int) -> list[list[list[int]]]:
    """Tiled scheme: the calls that feed generating sequences ``seq_ids`` (ascending), each feeding
    ``1 + width`` tokens, as lists of micro-batches, each under ``TILED_MIN_ROWS`` rows. A run of
    consecutive ids too long for one micro-batch is cut into pieces that go to different calls
    (in one call, llama.cpp would join them again).
    """
    per_piece = max(1, (TILED_MIN_ROWS - 1) // (width + 1))
    calls: list[list[list[int]]] = []
    for run in consecutive_runs(seq_ids):
        for k, start in enumerate(range(0, len(run), per_piece)):
            if k == len(calls):
                calls.append([])
            calls[k].append(run[start : start + per_piece])
    return calls


def tiled_prompt_calls(remaining: list[tuple[int, int]]) -> list[list[tuple[int, int]]]:
    """Tiled scheme: the calls that evaluate prompt chunks of the sequences ``remaining`` (their id
    and prompt tokens left, ids ascending), as ``(id, tokens)`` lists. Consecutive ids share a call,
    the same number of tokens each (one micro-batch, one pass over the weights), when that makes at
    least ``TILED_MIN_ROWS`` rows; up to ``TILED_MIN_ROWS - 1`` of them (7 x 48 rows fit the
    decoder's batch of 512). Every other sequence gets a call of its own, of ``tiled_prompt_chunk``
    tokens, which the decoder pads when short. ``remaining`` counts every prompt token but the last,
    which the decoder feeds with the generated tokens.
    """
    left = dict(remaining)
    calls: list[list[tuple[int, int]]] = []
    for run in consecutive_runs([seq_id for seq_id, _ in remaining]):
        for start in range(0, len(run), TILED_MIN_ROWS - 1):
            piece = run[start : start + TILED_MIN_ROWS - 1]
            take = min(tiled_prompt_chunk(left[seq_id]) for seq_id in piece)
            if len(piece) > 1 and len(piece) * take >= TILED_MIN_ROWS:
                calls.append([(seq_id, take) for seq_id in piece])
            else:
                calls.extend([(seq_id, tiled_prompt_chunk(left[seq_id]))] for seq_id in piece)
    return calls
