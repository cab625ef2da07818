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
"""

from __future__ import annotations

MAX_ROWS_PER_SEQUENCE = 48
# Cells are padded to 256: below this position (with room for a draft) a sequence stays under 512.
FILLER_FROM = 200


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
