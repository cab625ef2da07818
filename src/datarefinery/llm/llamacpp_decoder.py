"""A batched llama.cpp decoder: several sequences advance together in one ``llama_decode`` call.

One worker thread owns a llama.cpp context with ``parallel`` sequence slots, each with its own KV
cells (``kv_unified=False``). Requests wait in a queue; each step the worker admits waiting requests
into free slots, builds one batch holding the next token of every generating sequence plus as much
prompt of newly admitted ones as fits, decodes it, and samples one token per sequence with that
sequence's own sampler chain and seed (``llamacpp_sampling``, which also explains how grammars
are applied). For a model with K-quant weights the step is cut into several calls instead, prompt
chunks apart from generated tokens, so that each token goes through the same llama.cpp kernel in
every batch (the tiled scheme, ``llamacpp_rows``; ``llamacpp_feed`` fills the batches). Two
things save work without changing any reply: a prompt prefix shared with a sequence already in the
decoder is copied, not evaluated again (``llamacpp_prefix``), and a generating sequence may feed a
draft of its next tokens, looked up in its own prompt, to be checked in the same batch
(``llamacpp_draft``). A reply depends only on its request and seed.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from concurrent.futures import Future, InvalidStateError
from typing import Any

import llama_cpp

from datarefinery.errors import FatalBackendError, RequestRejectedError
from datarefinery.llm.base import FinishReason, Request, Usage
from datarefinery.llm.gguf_types import tensor_types
from datarefinery.llm.llamacpp_draft import DraftLength, PromptLookup, verify
from datarefinery.llm.llamacpp_feed import BatchFeeder, Slot
from datarefinery.llm.llamacpp_jobs import Generation, Job
from datarefinery.llm.llamacpp_load import load_llama, tiled_matmul_on
from datarefinery.llm.llamacpp_prefix import SharedPrefixes
from datarefinery.llm.llamacpp_prompt import chat_formatter, prompt_tokens
from datarefinery.llm.llamacpp_rows import (
    TILED_TYPES,
    tiled_draft_cap,
    tiled_generation_calls,
    tiled_prompt_calls,
)
from datarefinery.llm.llamacpp_sampling import GrammarSamplers, TokenSampler, sampler_chain


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
        # batch-invariant, its weights are not repacked (llamacpp_load).
        self.llama = load_llama(model_path, n_threads, batch_invariant=batch_invariant)
        # K-quant weights in a process whose llama.cpp takes its tiled matmul: the tiled scheme.
        self.tiled = (
            batch_invariant and tiled_matmul_on() and bool(tensor_types(model_path) & TILED_TYPES)
        )
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
        self._feed = BatchFeeder(self.n_batch, self.n_ctx_seq, n_threads)
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
        self._feed.close()
        llama_cpp.llama_free(self.ctx)
        self.llama.close()

    # ---------------------------------------------------------------------------- preparation

    def _start(self, job: Job, seq_id: int, active: dict[int, Slot]) -> Slot | None:
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
        return Slot(
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
        slots: dict[int, Slot] = {}
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

    def _step(self, slots: dict[int, Slot]) -> None:
        if self.prefix_reuse:
            self._prefixes.copy_ready(slots.values())
            self.stats["prefix_copied"] = self._prefixes.copied
        # By sequence id: llama.cpp splits a batch into micro-batches of consecutive ids.
        ordered = sorted(slots.values(), key=lambda slot: slot.seq_id)
        for slot in ordered:
            slot.rows, slot.draft, slot.fed = [], [], 0
        if self.tiled:
            self._step_tiled(ordered)
            return
        generating = [slot for slot in ordered if slot.pending is not None]
        # Generating sequences first (token and draft), then prompt chunks in the room left.
        feed = self._feed
        feed.start()
        spare = self.n_batch // 2 - len(generating)  # drafts take at most half the batch
        width = feed.propose_drafts(generating, spare, spare)
        if len(generating) * (width + 1) > self.n_batch // 2:
            width = 0  # no room to pad: several passes it is
        for slot in generating:
            feed.generated(slot, width, filler=True)
        feed.prompts(ordered)
        self._decode(ordered)

    def _step_tiled(self, ordered: list[Slot]) -> None:
        """The tiled scheme (``llamacpp_rows``): prompt chunks in calls of their own, all but the
        prompt's last token; that one is fed like a generated token, so that its logits come from
        the same kernel in every batch (and a request whose prompt is all copied but that token,
        the same prompt sampled again, costs no call of its own). Then the generated tokens, in
        calls whose micro-batches stay under ``TILED_MIN_ROWS`` rows.
        """
        feed = self._feed
        prompting = {
            slot.seq_id: slot
            for slot in ordered
            if slot.share is None and slot.pending is None and not slot.generated
        }
        # Every prompt token but the last is evaluated here.
        left = [
            (seq_id, len(slot.prompt) - 1 - slot.prefilled) for seq_id, slot in prompting.items()
        ]
        for chunks in tiled_prompt_calls([(seq_id, n) for seq_id, n in left if n > 0]):
            feed.start()
            padded = feed.tiled_prompts([(prompting[seq_id], take) for seq_id, take in chunks])
            self._decode([])
            if padded is not None:  # the fillers that made up its short chunk
                llama_cpp.llama_memory_seq_rm(self.memory, padded.seq_id, padded.prefilled, -1)
        for slot in prompting.values():
            if slot.prefilled >= len(slot.prompt) - 1:
                slot.pending, slot.prefilled = slot.prompt[-1], len(slot.prompt)
        generating = [slot for slot in ordered if slot.pending is not None]
        ids = [slot.seq_id for slot in generating]
        cap = tiled_draft_cap(ids)
        width = feed.propose_drafts(generating, cap, cap * len(generating))
        by_id = {slot.seq_id: slot for slot in generating}
        for call in tiled_generation_calls(ids, width):
            feed.start()
            for micro_batch in call:
                for seq_id in micro_batch:
                    feed.generated(by_id[seq_id], width, filler=len(micro_batch) == 1)
            self._decode([by_id[seq_id] for micro_batch in call for seq_id in micro_batch])

    def _decode(self, fed: list[Slot]) -> None:
        status = llama_cpp.llama_decode(self.ctx, self._feed.finish())
        if status != 0:
            raise FatalBackendError(f"llama_decode failed with status {status}")
        for slot in fed:
            if slot.rows:
                self._advance(slot)

    def _advance(self, slot: Slot) -> None:
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

    def _emit(self, slot: Slot, token: int) -> bool:
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
        self, slot: Slot, *, reason: FinishReason = "stop", error: BaseException | None = None
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
