"""Shared-prefix reuse for the batched llama.cpp decoder (``llamacpp_decoder``).

The calls of one step share their system prompt and instructions; only the record differs. A newly
admitted sequence whose prompt starts like the prompt of a sequence already in the decoder gets
that common prefix's KV entries copied from it (``llama_memory_seq_cp``) instead of evaluating the
prefix again. With one KV stream per sequence (``kv_unified=False``) llama.cpp copies whole
streams, so the destination then drops what lies past the prefix (``llama_memory_seq_rm``).

The copied entries are the very numbers the sequence would have computed itself: an entry depends
only on the tokens before it and its position, which the prefix fixes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TypeVar

# Below this a copy of a whole KV stream (n_ctx cells of every layer) costs about what evaluating
# the prefix would.
MIN_SHARED_TOKENS = 16

S = TypeVar("S")


def common_length(a: Sequence[int], b: Sequence[int]) -> int:
    n = min(len(a), len(b))
    for i in range(n):
        if a[i] != b[i]:
            return i
    return n


def best_source(
    prompt: Sequence[int], candidates: Iterable[tuple[S, Sequence[int]]]
) -> tuple[S, int] | None:
    """The candidate (a sequence and its prompt) sharing the longest prefix with ``prompt``, and
    that length; ``None`` when none shares ``MIN_SHARED_TOKENS``. The last prompt token is never
    shared: its logits are what the new sequence starts from.
    """
    best: tuple[S, int] | None = None
    for candidate, other in candidates:
        length = min(common_length(prompt, other), len(prompt) - 1)
        if length >= MIN_SHARED_TOKENS and (best is None or length > best[1]):
            best = (candidate, length)
    return best
