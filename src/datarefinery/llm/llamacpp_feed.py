"""What the batched llama.cpp decoder (``llamacpp_decoder``) puts into one ``llama_decode`` call:
a sequence's state between steps (``Slot``) and the batch it fills (``BatchFeeder``). How many
rows of a sequence go in one call, and why, is ``llamacpp_rows``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import llama_cpp

from datarefinery.llm.llamacpp_draft import DraftLength, PromptLookup
from datarefinery.llm.llamacpp_jobs import Job
from datarefinery.llm.llamacpp_rows import (
    MAX_ROWS_PER_SEQUENCE,
    TILED_MIN_ROWS,
    prompt_chunk,
    wants_filler,
)


@dataclass
class Slot:
    """One request decoding in one sequence slot."""

    seq_id: int
    job: Job
    prompt: list[int]
    max_new: int
    chain: Any
    grammar: Any | None
    stop: tuple[str, ...]
    lookup: PromptLookup | None
    draft_length: DraftLength
    share: tuple[Slot, int] | None = None  # (source, length) of a prefix to copy, not yet done
    prefilled: int = 0
    generated: list[int] = field(default_factory=list)
    rows: list[int] = field(default_factory=list)  # batch rows whose logits are this sequence's
    draft: list[int] = field(default_factory=list)  # drafted tokens fed after the pending one
    fed: int = 0  # tokens fed this step after the prompt: pending, draft, filler
    pending: int | None = None  # sampled token still to be fed to the model
    closed: bool = False


class BatchFeeder:
    """The decoder's ``llama_batch`` and how it is filled for one call (worker thread only)."""

    def __init__(self, n_batch: int, n_ctx_seq: int, n_threads: int) -> None:
        self.n_batch, self.n_ctx_seq, self.n_threads = n_batch, n_ctx_seq, n_threads
        self.batch = llama_cpp.llama_batch_init(n_batch, 0, 1)
        self.filled = 0  # tokens put in the batch for the coming call

    def start(self) -> None:
        self.filled = 0

    def finish(self) -> Any:
        """The batch, ready for ``llama_decode``."""
        self.batch.n_tokens = self.filled
        return self.batch

    def close(self) -> None:
        llama_cpp.llama_batch_free(self.batch)

    def add(self, token: int, pos: int, seq_id: int, logits: bool) -> None:
        batch, n = self.batch, self.filled
        batch.token[n], batch.pos[n], batch.n_seq_id[n], batch.logits[n] = token, pos, 1, logits
        batch.seq_id[n][0] = seq_id
        self.filled += 1

    @staticmethod
    def propose_drafts(generating: list[Slot], per_sequence: int, total: int) -> int:
        """Each generating sequence's draft, at most ``per_sequence`` tokens and ``total`` in all;
        returns the longest (shorter ones are padded to it: llama.cpp puts the same number of
        tokens of each sequence in a micro-batch, and drafts of unequal length would split the batch
        into several passes over the weights, which cost more than the drafts saved).
        """
        for slot in generating:
            room = min(slot.max_new - len(slot.generated), MAX_ROWS_PER_SEQUENCE) - 1
            limit = min(slot.draft_length.next(), max(per_sequence, 0), max(total, 0), room)
            slot.draft = slot.lookup.propose(slot.generated, limit) if slot.lookup else []
            total -= len(slot.draft)
        return max((len(slot.draft) for slot in generating), default=0)

    def generated(self, slot: Slot, width: int, *, filler: bool) -> None:
        """The sequence's pending token and draft, padded with throwaway tokens (no logits) to
        ``width`` drafted tokens, or to two rows when it would be a lone token past
        ``FILLER_FROM`` and ``filler`` allows it.
        """
        assert slot.pending is not None
        token, pos = slot.pending, len(slot.prompt) + len(slot.generated) - 1
        for offset, fed in enumerate([token, *slot.draft]):
            slot.rows.append(self.filled)
            self.add(fed, pos + offset, slot.seq_id, True)
        lone = filler and wants_filler(len(slot.rows), pos, self.n_threads)
        pad = max(width - len(slot.draft), lone)
        pad = min(pad, self.n_ctx_seq - pos - len(slot.rows))  # within the sequence's cells
        for offset in range(len(slot.rows), len(slot.rows) + pad):
            self.add(token, pos + offset, slot.seq_id, False)
        slot.fed = len(slot.rows) + pad
        slot.pending = None

    def prompts(self, ordered: list[Slot]) -> None:
        """Prompt chunks of every sequence still evaluating its prompt, in the room left."""
        for slot in ordered:
            room = self.n_batch - self.filled - 1  # one place kept for a filler token
            if slot.share is not None or slot.prefilled >= len(slot.prompt) or room < 1:
                continue
            start = slot.prefilled
            take = prompt_chunk(len(slot.prompt) - start, room, start, self.n_threads)
            self._prompt_chunk(slot, take)
            if slot.rows and wants_filler(take, start, self.n_threads):
                self.add(slot.prompt[-1], len(slot.prompt), slot.seq_id, False)
                slot.fed += 1

    def tiled_prompts(self, chunks: list[tuple[Slot, int]]) -> Slot | None:
        """The tiled scheme's prompt chunks for one call (``tiled_prompt_calls``), padded to
        ``TILED_MIN_ROWS`` rows with fillers after the chunk when short (only one sequence's last
        chunk can be). Returns the sequence given fillers, whose cells from its ``prefilled`` on
        the decoder empties after the call. Where the context has no room for them the chunk stays
        short and goes through the dot products.
        """
        for slot, take in chunks:
            self._prompt_chunk(slot, take)
        slot = chunks[-1][0]
        pad = min(TILED_MIN_ROWS - self.filled, self.n_ctx_seq - slot.prefilled)
        for offset in range(max(pad, 0)):
            self.add(slot.prompt[-1], slot.prefilled + offset, slot.seq_id, False)
        return slot if pad > 0 else None

    def _prompt_chunk(self, slot: Slot, take: int) -> None:
        start, last = slot.prefilled, len(slot.prompt) - 1
        for pos in range(start, start + take):
            if pos == last:
                slot.rows, slot.fed = [self.filled], 1
            self.add(slot.prompt[pos], pos, slot.seq_id, pos == last)
        slot.prefilled += take
