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
from typing import Any, Protocol, TypeVar

import llama_cpp

# A copy moves a whole KV stream (n_ctx cells of every layer); below this many shared tokens it is
# not tried. The threshold is a guess, not measured.
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
    shared: its logits are what the new sequence starts from. Nor is the candidate's last prompt
    token: the tiled scheme (``llamacpp_rows``) evaluates it through another kernel than the
    tokens before it, so its entry is not the one a prompt continuing past it would have.
    """
    best: tuple[S, int] | None = None
    for candidate, other in candidates:
        length = min(common_length(prompt, other), len(prompt) - 1, len(other) - 1)
        if length >= MIN_SHARED_TOKENS and (best is None or length > best[1]):
            best = (candidate, length)
    return best


class PromptSequence(Protocol):
    """What ``SharedPrefixes`` reads and sets on the decoder's sequences."""

    seq_id: int
    prompt: list[int]
    prefilled: int
    closed: bool
    share: tuple[Any, int] | None


class SharedPrefixes:
    """Finds and copies shared prompt prefixes for one decoder (its worker thread only).

    Sources are the sequences decoding now and, until their slot is taken again, finished ones:
    a finished sequence keeps its prompt's KV entries, so requests that arrive one after another
    (``parallel: 1``, or a slow trickle) share their instructions as well.
    """

    def __init__(self, memory: Any) -> None:
        self.memory = memory
        self.retained: dict[
            int, PromptSequence
        ] = {}  # seq_id -> finished sequence whose prompt stays
        self.copied = 0  # tokens not evaluated thanks to a copy

    def source_for(
        self, prompt: list[int], seq_id: int, active: Iterable[PromptSequence]
    ) -> tuple[PromptSequence | None, int] | None:
        """Take slot ``seq_id`` for a new sequence and find where its prompt's prefix can come
        from: ``(source, length)`` to copy once the source has it, ``(None, length)`` when the
        finished sequence that held this very slot had it (the slot keeps it, nothing to copy).
        """
        own = self.retained.pop(seq_id, None)
        candidates = [(s, s.prompt) for s in (*active, *self.retained.values()) if s is not own]
        if own is not None:
            candidates.append((own, own.prompt))
        found = best_source(prompt, candidates)
        if found is not None and found[0] is own:
            llama_cpp.llama_memory_seq_rm(self.memory, seq_id, found[1], -1)
            self.copied += found[1]
            return None, found[1]
        llama_cpp.llama_memory_seq_rm(self.memory, seq_id, -1, -1)
        return found

    def retain(self, sequence: PromptSequence, complete: bool) -> None:
        """Keep a finished sequence's prompt entries as a source (only a fully evaluated prompt
        whose entries are all its own); otherwise free its cells.
        """
        if complete and sequence.share is None and sequence.prefilled >= len(sequence.prompt):
            llama_cpp.llama_memory_seq_rm(self.memory, sequence.seq_id, len(sequence.prompt), -1)
            self.retained[sequence.seq_id] = sequence
        else:
            llama_cpp.llama_memory_seq_rm(self.memory, sequence.seq_id, -1, -1)

    def copy_ready(self, sequences: Iterable[PromptSequence]) -> None:
        """Give each waiting sequence its prefix once the source has evaluated it (the copy
        itself happens at the start of the next ``llama_decode``); a source gone meanwhile means
        evaluating the prompt after all.
        """
        for seq in sequences:
            if seq.share is None:
                continue
            source, length = seq.share
            gone = source.closed and self.retained.get(source.seq_id) is not source
            if gone:
                seq.share = None
            elif source.share is None and source.prefilled >= length:
                llama_cpp.llama_memory_seq_cp(self.memory, source.seq_id, seq.seq_id, -1, -1)
                llama_cpp.llama_memory_seq_rm(self.memory, seq.seq_id, length, -1)
                seq.prefilled, seq.share = length, None
                self.copied += length
