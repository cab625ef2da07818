"""A batched llama.cpp decoder: several sequences advance together in one ``llama_decode`` call.

One worker thread owns a llama.cpp context with ``parallel`` sequence slots, each with its own KV
cells (``kv_unified=False``). Requests wait in a queue; each step the worker admits waiting requests
into free slots, builds one batch holding the next token of every generating sequence plus as much
prompt of newly admitted ones as fits, decodes it, and samples one token per sequence with that
sequence's own sampler chain and seed (``llamacpp_sampling``, which also explains how grammars
are applied). Two things save work without changing any reply: a prompt prefix shared with a
sequence already in the decoder is copied, not evaluated again (``llamacpp_prefix``), and a
generating sequence may feed a draft of its next tokens, looked up in its own prompt, to be checked
in the same batch (``llamacpp_draft``). A reply depends only on its request and seed.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass, field
from typing import Any

import llama_cpp

from datarefinery.errors import FatalBackendError, RequestRejectedError
from datarefinery.llm.base import FinishReason, Request, Usage
from datarefinery.llm.llamacpp_draft import DraftLength, PromptLookup, verify
from datarefinery.llm.llamacpp_jobs import Generation, Job
from datarefinery.llm.llamacpp_load import load_llama
from datarefinery.llm.llamacpp_prefix import SharedPrefixes
from datarefinery.llm.llamacpp_prompt import chat_formatter, prompt_tokens
from datarefinery.llm.llamacpp_rows import MAX_ROWS_PER_SEQUENCE, prompt_chunk, wants_filler
from datarefinery.llm.llamacpp_sampling import GrammarSamplers, TokenSampler, sampler_chain


@dataclass
class _Slot:
    seq_id: int
    job: Job
    prompt: list[int]
    max_new: int
    chain: Any
    grammar: Any | None
    stop: tuple[str, ...]
    lookup: PromptLookup | None
    draft_length: DraftLength
    share: tuple[_Slot, int] | None = None  # (source, length) of a prefix to copy, not yet done
    prefilled: int = 0
    generated: list[int] = field(default_factory=list)
    rows: list[int] = field(default_factory=list)  # batch rows whose logits are this sequence's
    draft: list[int] = field(default_factory=list)  # drafted tokens fed after the pending one
    fed: int = 0  # tokens fed this step after the prompt: pending, draft, filler
    pending: int | None = None  # sampled token still to be fed to the model
    closed: bool = False


class BatchedDecoder:
    """Owns the llama.cpp context and the worker thread. Thread-safe ``submit``."""

    def __init__(
        self,
        model_path: str,
        *,
        n_ctx: int,
        parallel: int,
        n_threads: int,
        n_batch: int = 512,
        draft_max: int = 0,
        prefix_reuse: bool = False,
        batch_invariant: bool = True,
    ) -> None:
        self.parallel, self.n_threads = parallel, n_threads
        self.draft_max, self.prefix_reuse = draft_max, prefix_reuse
        self.stats = {"drafted": 0, "accepted": 0}  # tokens, for benchmarks
        self.n_ctx_seq = n_ctx
        self.n_batch = max(n_batch, parallel)
        # The Llama object gives us the loaded model, the tokenizer and the GGUF chat template;
        # batch-invariant, it keeps llama.cpp off kernels whose rounding depends on the batch.
        self.llama = load_llama(model_path, n_threads, batch_invariant=batch_invariant)
        self.vocab = llama_cpp.llama_model_get_vocab(self.llama._model.model)
        self.n_vocab = int(llama_cpp.llama_vocab_n_tokens(self.vocab))
        self.formatter, self.chat_template = chat_formatter(self.llama)
        params = llama_cpp.llama_context_default_params()
        params.n_ctx = n_ctx * parallel
        params.n_batch = self.n_batch
        params.n_ubatch = self.n_batch
        params.n_seq_max = parallel
        params.n_threads = n_threads
        params.n_threads_batch = n_threads
        params.kv_unified = False
        # Flash attention computes each row of a micro-batch on its own. Without it, llama.cpp
        # takes another matrix path when a sequence has several tokens in one micro-batch, and the
        # logits of a drafted token checked in a batch differed (up to 0.9) from the same token
        # decoded alone: greedy replies with and without drafts parted ways (measured on SmolLM2).
        params.flash_attn_type = llama_cpp.LLAMA_FLASH_ATTN_TYPE_ENABLED
        params.no_perf = True
        self.ctx = llama_cpp.llama_init_from_model(self.llama._model.model, params)
        if not self.ctx:
            raise FatalBackendError(
                f"llama.cpp could not create a context of {n_ctx} tokens × {parallel} sequences; "
                "lower llm.n_ctx or llm.parallel"
            )
        self.memory = llama_cpp.llama_get_memory(self.ctx)
        self._prefixes = SharedPrefixes(self.memory)
        self.batch = llama_cpp.llama_batch_init(self.n_batch, 0, 1)
        self._filled = 0  # tokens put in the batch this step
        self._sampler = TokenSampler(self.ctx, self.n_vocab)
        self._grammars = GrammarSamplers(self.vocab)
        self._queue: queue.Queue[Job | None] = queue.Queue()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="llamacpp-decoder", daemon=True)
        self._thread.start()

    # ---------------------------------------------------------------------------------- public

    def submit(self, request: Request) -> Job:
        job = Job(request, Future())
        if not self.alive:
            job.started.set_result(None)
            job.future.set_exception(FatalBackendError("the llama.cpp decoder is closed"))
            return job
        self._queue.put(job)
        return job

    @property
    def alive(self) -> bool:
        return not self._closed and self._thread.is_alive()

    def count_prompt_tokens(self, request: Request) -> int:
        """How many tokens ``request``'s prompt is, rendered as the decoder will evaluate it.

        Runs on the caller's thread: rendering and tokenizing only read the template and the
        vocabulary (llama.cpp's own server tokenizes on its HTTP threads while another decodes).
        """
        return len(prompt_tokens(self.llama, self.formatter, request)[0])

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._queue.put(None)
        self._thread.join()
        self._grammars.close()
        llama_cpp.llama_batch_free(self.batch)
        llama_cpp.llama_free(self.ctx)
        self.llama.close()

    # ---------------------------------------------------------------------------- preparation

    def _start(self, job: Job, seq_id: int, active: dict[int, _Slot]) -> _Slot | None:
        request = job.request
        try:
            prompt, stop = prompt_tokens(self.llama, self.formatter, request)
            room = self.n_ctx_seq - len(prompt)
            if room < 1:
                raise RequestRejectedError(
                    f"llama.cpp refused the request: the prompt is {len(prompt)} tokens, the "
                    f"context holds {self.n_ctx_seq} (raise llm.n_ctx or shorten the prompt)",
                    usage=Usage(),  # nothing was evaluated
                )
            grammar = self._grammars.clone_for(request.json_schema) if request.json_schema else None
            chain = sampler_chain(self.n_vocab, request.params, request.seed)
        except Exception as exc:
            with contextlib.suppress(InvalidStateError):
                job.future.set_exception(exc)
            return None
        share: tuple[Any, int] | None = None
        kept = 0
        if self.prefix_reuse:
            running = [slot for slot in active.values() if not slot.closed]
            found = self._prefixes.source_for(prompt, seq_id, running)
            if found is not None and found[0] is None:  # this slot still holds the prefix
                kept = found[1]
            else:
                share = found
        else:
            llama_cpp.llama_memory_seq_rm(self.memory, seq_id, -1, -1)
        return _Slot(
            seq_id=seq_id,
            job=job,
            prompt=prompt,
            max_new=min(request.params.max_tokens, room),
            chain=chain,
            grammar=grammar,
            stop=stop,
            lookup=PromptLookup(prompt) if self.draft_max > 0 else None,
            draft_length=DraftLength(self.draft_max),
            share=share,
            prefilled=kept,
        )

    # ------------------------------------------------------------------------------- the loop

    def _run(self) -> None:
        slots: dict[int, _Slot] = {}
        free = list(range(self.parallel - 1, -1, -1))
        closing = False
        while True:
            # Admit waiting requests into free slots; block only when there is nothing to do.
            while free and not closing:
                try:
                    job = self._queue.get(block=not slots)
                except queue.Empty:
                    break
                if job is None:
                    closing = True
                    break
                if job.future.cancelled():  # the caller gave up before we started
                    continue
                with contextlib.suppress(InvalidStateError):  # never let a caller stop the worker
                    job.started.set_result(None)
                seq_id = free.pop()
                slot = self._start(job, seq_id, slots)
                if slot is None:
                    free.append(seq_id)
                else:
                    slots[seq_id] = slot
            if not slots:
                if closing:
                    return
                continue
            try:
                self._step(slots)
            except Exception as exc:
                for slot in slots.values():
                    self._finish(slot, error=exc)
                    free.append(slot.seq_id)
                slots.clear()
                continue
            for slot in slots.values():
                if slot.job.future.cancelled():  # no one waits for it any more: free the slot
                    self._finish(slot, error=TimeoutError("cancelled"))
            for seq_id in [s for s, slot in slots.items() if slot.closed]:
                del slots[seq_id]
                free.append(seq_id)
            # Lowest ids first: llama.cpp puts only consecutive sequence ids in one micro-batch.
            free.sort(reverse=True)

    def _step(self, slots: dict[int, _Slot]) -> None:
        if self.prefix_reuse:
            self._prefixes.copy_ready(slots.values())
            self.stats["prefix_copied"] = self._prefixes.copied
        self._filled = 0
        # By sequence id: llama.cpp splits a batch into micro-batches of consecutive ids.
        ordered = sorted(slots.values(), key=lambda slot: slot.seq_id)
        for slot in ordered:
            slot.rows, slot.draft, slot.fed = [], [], 0
        # Generating sequences first (token and draft), then prompt chunks in the room left.
        self._feed_generating([slot for slot in ordered if slot.pending is not None])
        self._feed_prompts(ordered)
        self.batch.n_tokens = self._filled
        status = llama_cpp.llama_decode(self.ctx, self.batch)
        if status != 0:
            raise FatalBackendError(f"llama_decode failed with status {status}")
        for slot in ordered:
            if slot.rows:
                self._advance(slot)

    def _add(self, token: int, pos: int, seq_id: int, logits: bool) -> None:
        batch, n = self.batch, self._filled
        batch.token[n], batch.pos[n], batch.n_seq_id[n], batch.logits[n] = token, pos, 1, logits
        batch.seq_id[n][0] = seq_id
        self._filled += 1

    def _feed_generating(self, generating: list[_Slot]) -> None:
        # Drafts take at most half the batch, so prompts of newcomers still advance.
        spare = self.n_batch // 2 - len(generating)
        for slot in generating:
            room = min(slot.max_new - len(slot.generated), MAX_ROWS_PER_SEQUENCE) - 1
            limit = min(slot.draft_length.next(), max(spare, 0), room)
            slot.draft = slot.lookup.propose(slot.generated, limit) if slot.lookup else []
            spare -= len(slot.draft)
        # llama.cpp puts the same number of tokens of each sequence in a micro-batch: drafts of
        # unequal length would split the batch into several passes over the weights (measured:
        # drafts then cost more than they saved), so shorter ones are padded with throwaway
        # tokens (no logits) to the longest.
        width = max((len(slot.draft) for slot in generating), default=0)
        if len(generating) * (width + 1) > self.n_batch // 2:
            width = 0  # no room to pad: several passes it is
        for slot in generating:
            assert slot.pending is not None
            token, pos = slot.pending, len(slot.prompt) + len(slot.generated) - 1
            for offset, fed in enumerate([token, *slot.draft]):
                slot.rows.append(self._filled)
                self._add(fed, pos + offset, slot.seq_id, True)
            pad = max(width - len(slot.draft), wants_filler(len(slot.rows), pos, self.n_threads))
            pad = min(pad, self.n_ctx_seq - pos - len(slot.rows))  # within the sequence's cells
            for offset in range(len(slot.rows), len(slot.rows) + pad):
                self._add(token, pos + offset, slot.seq_id, False)
            slot.fed = len(slot.rows) + pad
            slot.pending = None

    def _feed_prompts(self, ordered: list[_Slot]) -> None:
        for slot in ordered:
            room = self.n_batch - self._filled - 1  # one place kept for a filler token
            if slot.share is not None or slot.prefilled >= len(slot.prompt) or room < 1:
                continue
            start, last = slot.prefilled, len(slot.prompt) - 1
            take = prompt_chunk(len(slot.prompt) - start, room, start, self.n_threads)
            for pos in range(start, start + take):
                if pos == last:
                    slot.rows, slot.fed = [self._filled], 1
                self._add(slot.prompt[pos], pos, slot.seq_id, pos == last)
            slot.prefilled += take
            if slot.rows and wants_filler(take, start, self.n_threads):
                self._add(slot.prompt[-1], len(slot.prompt), slot.seq_id, False)
                slot.fed += 1

    def _advance(self, slot: _Slot) -> None:
        def draw(i: int) -> int | None:
            token = self._sampler.sample(slot.rows[i], slot.chain, slot.grammar)
            return None if self._emit(slot, token) else token

        accepted = verify(slot.draft, draw)
        if slot.closed:
            return
        slot.draft_length.update(len(slot.draft), accepted)
        self.stats["drafted"] += len(slot.draft)
        self.stats["accepted"] += accepted
        # The pending token's position is the first whose KV entry is not the sequence's own:
        # rejected drafted tokens (or the filler) sit there and after.
        if slot.fed > accepted + 1:
            pending_pos = len(slot.prompt) + len(slot.generated) - 1
            llama_cpp.llama_memory_seq_rm(self.memory, slot.seq_id, pending_pos, -1)
        slot.pending = slot.generated[-1]

    def _emit(self, slot: _Slot, token: int) -> bool:
        """Record one sampled token; ``True`` when it ended the sequence."""
        if llama_cpp.llama_vocab_is_eog(self.vocab, token):
            self._finish(slot, reason="stop")
            return True
        slot.generated.append(token)
        if slot.stop:
            text = self._text(slot.generated)
            if any(s in text for s in slot.stop):
                self._finish(slot, reason="stop")
                return True
        if len(slot.generated) >= slot.max_new:
            self._finish(slot, reason="length")
            return True
        return False

    def _text(self, tokens: list[int]) -> str:
        return self.llama.detokenize(tokens).decode("utf-8", errors="replace")

    def _finish(
        self, slot: _Slot, *, reason: FinishReason = "stop", error: BaseException | None = None
    ) -> None:
        if slot.closed:
            return
        slot.closed = True
        llama_cpp.llama_sampler_free(slot.chain)
        if slot.grammar is not None:
            llama_cpp.llama_sampler_free(slot.grammar)
        if self.prefix_reuse:  # a finished prompt stays, a source for the next requests
            self._prefixes.retain(slot, complete=error is None)
        else:
            llama_cpp.llama_memory_seq_rm(self.memory, slot.seq_id, -1, -1)
        future = slot.job.future
        if future.done():
            return
        if error is not None:
            with contextlib.suppress(InvalidStateError):  # cancelled meanwhile
                future.set_exception(error)
            return
        text = self._text(slot.generated)
        for stop in slot.stop:
            cut = text.find(stop)
            if cut >= 0:
                text = text[:cut]
        generation = Generation(
            text=text,
            finish_reason=reason,
            usage=Usage(len(slot.prompt), len(slot.generated)),
            latency_s=time.perf_counter() - slot.job.queued,
        )
        with contextlib.suppress(InvalidStateError):
            future.set_result(generation)
