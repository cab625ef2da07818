"""A batched llama.cpp decoder: several sequences advance together in one ``llama_decode`` call.

One worker thread owns a llama.cpp context with ``parallel`` sequence slots, each with its own KV
cells (``kv_unified=False``). Requests wait in a queue; each step the worker admits waiting requests
into free slots, builds one batch holding the next token of every generating sequence plus as much
prompt of newly admitted ones as fits, decodes it, and samples one token per sequence with that
sequence's own sampler chain and seed.

Grammar-constrained sampling is done the way llama.cpp's own ``common_sampler`` does it, not the
way llama-cpp-python does: sample from the ordinary chain first, then ask the grammar whether that
one token is allowed, and only when it is not, resample with the grammar applied to the whole
vocabulary. Applying the grammar to every vocabulary entry at every step (llama-cpp-python's order)
is what made JSON output run at half the speed of free text.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import math
import os
import queue
import threading
import time
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass, field
from typing import Any

import llama_cpp
import numpy as np
from llama_cpp import Llama
from llama_cpp.llama_chat_format import Jinja2ChatFormatter
from llama_cpp.llama_grammar import LlamaGrammar

from datarefinery.errors import FatalBackendError, RequestRejectedError
from datarefinery.llm.base import FinishReason, Request, SamplingParams, Usage

_TOKEN_DATA = np.dtype([("id", np.int32), ("logit", np.float32), ("p", np.float32)])
_NEG_INF = float("-inf")


@dataclass
class Generation:
    """What the decoder returns for one request."""

    text: str
    finish_reason: FinishReason
    usage: Usage
    latency_s: float


@dataclass
class _Job:
    request: Request
    future: Future[Generation]
    queued: float = field(default_factory=time.perf_counter)


@dataclass
class _Slot:
    seq_id: int
    job: _Job
    prompt: list[int]
    max_new: int
    chain: Any
    grammar: Any | None
    stop: tuple[str, ...]
    prefilled: int = 0
    generated: list[int] = field(default_factory=list)
    batch_index: int = -1
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
    ) -> None:
        self.parallel = parallel
        self.n_ctx_seq = n_ctx
        self.n_batch = max(n_batch, parallel)
        # The Llama object gives us the loaded model, the tokenizer and the GGUF chat template;
        # its own context is kept tiny because all decoding happens in ours.
        self.llama = Llama(
            model_path=model_path,
            n_ctx=64,
            n_batch=64,
            n_threads=n_threads,
            n_threads_batch=n_threads,
            verbose=False,
        )
        self.vocab = llama_cpp.llama_model_get_vocab(self.llama._model.model)
        self.n_vocab = int(llama_cpp.llama_vocab_n_tokens(self.vocab))
        self.formatter = self._chat_formatter()
        params = llama_cpp.llama_context_default_params()
        params.n_ctx = n_ctx * parallel
        params.n_batch = self.n_batch
        params.n_ubatch = self.n_batch
        params.n_seq_max = parallel
        params.n_threads = n_threads
        params.n_threads_batch = n_threads
        params.kv_unified = False
        params.flash_attn_type = llama_cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED
        params.no_perf = True
        self.ctx = llama_cpp.llama_init_from_model(self.llama._model.model, params)
        if not self.ctx:
            raise FatalBackendError(
                f"llama.cpp could not create a context of {n_ctx} tokens × {parallel} sequences; "
                "lower llm.n_ctx or llm.parallel"
            )
        self.memory = llama_cpp.llama_get_memory(self.ctx)
        self.batch = llama_cpp.llama_batch_init(self.n_batch, 0, 1)
        self._candidates = np.zeros(self.n_vocab, dtype=_TOKEN_DATA)
        self._ids = np.arange(self.n_vocab, dtype=np.int32)
        self._grammar_cache: dict[str, Any] = {}
        self._queue: queue.Queue[_Job | None] = queue.Queue()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="llamacpp-decoder", daemon=True)
        self._thread.start()

    # ---------------------------------------------------------------------------------- public

    def submit(self, request: Request) -> Future[Generation]:
        future: Future[Generation] = Future()
        if self._closed:
            future.set_exception(FatalBackendError("the llama.cpp decoder is closed"))
            return future
        self._queue.put(_Job(request, future))
        return future

    def count_prompt_tokens(self, request: Request) -> int:
        """How many tokens ``request``'s prompt is, rendered as the decoder will evaluate it.

        Runs on the caller's thread: rendering and tokenizing only read the template and the
        vocabulary (llama.cpp's own server tokenizes on its HTTP threads while another decodes).
        """
        return len(self._prompt_tokens(request)[0])

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._queue.put(None)
        self._thread.join()
        for sampler in self._grammar_cache.values():
            llama_cpp.llama_sampler_free(sampler)
        self._grammar_cache.clear()
        llama_cpp.llama_batch_free(self.batch)
        llama_cpp.llama_free(self.ctx)
        self.llama.close()

    # ---------------------------------------------------------------------------- preparation

    def _chat_formatter(self) -> Jinja2ChatFormatter:
        template = self.llama.metadata.get("tokenizer.chat_template")
        if not template:
            raise FatalBackendError(
                "the GGUF file has no chat template (tokenizer.chat_template); "
                "use an instruct model"
            )
        eos = self.llama.token_eos()
        bos = self.llama.token_bos()
        return Jinja2ChatFormatter(
            template=template,
            eos_token=self.llama._model.token_get_text(eos) if eos != -1 else "",
            bos_token=self.llama._model.token_get_text(bos) if bos != -1 else "",
            stop_token_ids=[eos],
        )

    def _prompt_tokens(self, request: Request) -> tuple[list[int], tuple[str, ...]]:
        messages: Any = [{"role": m.role, "content": m.content} for m in request.messages]
        formatted = self.formatter(messages=messages)
        tokens = self.llama.tokenize(
            formatted.prompt.encode("utf-8"), add_bos=not formatted.added_special, special=True
        )
        stop = list(request.params.stop)
        if formatted.stop:
            stop += [formatted.stop] if isinstance(formatted.stop, str) else list(formatted.stop)
        return tokens, tuple(s for s in stop if s)

    def _grammar_sampler(self, schema: dict[str, Any]) -> Any:
        key = json.dumps(schema, sort_keys=True)
        pristine = self._grammar_cache.get(key)
        if pristine is None:
            grammar = LlamaGrammar.from_json_schema(key, verbose=False)
            pristine = llama_cpp.llama_sampler_init_grammar(
                self.vocab, grammar._grammar.encode("utf-8"), grammar._root.encode("utf-8")
            )
            if not pristine:
                raise RequestRejectedError("llama.cpp could not build a grammar from the schema")
            self._grammar_cache[key] = pristine
        return llama_cpp.llama_sampler_clone(pristine)

    def _sampler_chain(self, params: SamplingParams, seed: int | None) -> Any:
        """The same chain llama-cpp-python builds for a completion, without the grammar."""
        chain = llama_cpp.llama_sampler_chain_init(llama_cpp.llama_sampler_chain_default_params())

        def add(sampler: Any) -> None:
            llama_cpp.llama_sampler_chain_add(chain, sampler)

        add(
            llama_cpp.llama_sampler_init_penalties(
                self.n_vocab, 64, 1.0, params.frequency_penalty, params.presence_penalty
            )
        )
        if params.temperature <= 0:
            add(llama_cpp.llama_sampler_init_greedy())
            return chain
        add(llama_cpp.llama_sampler_init_top_k(40))
        add(llama_cpp.llama_sampler_init_top_p(params.top_p, 1))
        add(llama_cpp.llama_sampler_init_min_p(0.05, 1))
        add(llama_cpp.llama_sampler_init_temp(params.temperature))
        rng_seed = seed if seed is not None else int.from_bytes(os.urandom(4), "little")
        add(llama_cpp.llama_sampler_init_dist(rng_seed & 0xFFFFFFFF))
        return chain

    def _start(self, job: _Job, seq_id: int) -> _Slot | None:
        request = job.request
        try:
            prompt, stop = self._prompt_tokens(request)
            room = self.n_ctx_seq - len(prompt)
            if room < 1:
                raise RequestRejectedError(
                    f"llama.cpp refused the request: the prompt is {len(prompt)} tokens, the "
                    f"context holds {self.n_ctx_seq} (raise llm.n_ctx or shorten the prompt)",
                    usage=Usage(),  # nothing was evaluated
                )
            grammar = self._grammar_sampler(request.json_schema) if request.json_schema else None
            chain = self._sampler_chain(request.params, request.seed)
        except Exception as exc:
            with contextlib.suppress(InvalidStateError):
                job.future.set_exception(exc)
            return None
        llama_cpp.llama_memory_seq_rm(self.memory, seq_id, -1, -1)
        return _Slot(
            seq_id=seq_id,
            job=job,
            prompt=prompt,
            max_new=min(request.params.max_tokens, room),
            chain=chain,
            grammar=grammar,
            stop=stop,
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
                if job.future.cancelled():  # the caller gave up (timeout) before we started
                    continue
                seq_id = free.pop()
                slot = self._start(job, seq_id)
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

    def _step(self, slots: dict[int, _Slot]) -> None:
        batch = self.batch
        n = 0

        def add(token: int, pos: int, seq_id: int, logits: bool) -> None:
            nonlocal n
            batch.token[n] = token
            batch.pos[n] = pos
            batch.n_seq_id[n] = 1
            batch.seq_id[n][0] = seq_id
            batch.logits[n] = logits
            n += 1

        # Generating sequences first (one token each), then prompt chunks in the room left.
        for slot in slots.values():
            slot.batch_index = -1
            if slot.pending is not None:
                slot.batch_index = n
                add(slot.pending, len(slot.prompt) + len(slot.generated) - 1, slot.seq_id, True)
                slot.pending = None
        for slot in slots.values():
            if slot.prefilled < len(slot.prompt) and n < self.n_batch:
                take = min(len(slot.prompt) - slot.prefilled, self.n_batch - n)
                for offset in range(take):
                    pos = slot.prefilled + offset
                    last = pos == len(slot.prompt) - 1
                    if last:
                        slot.batch_index = n
                    add(slot.prompt[pos], pos, slot.seq_id, last)
                slot.prefilled += take
        batch.n_tokens = n
        status = llama_cpp.llama_decode(self.ctx, batch)
        if status != 0:
            raise FatalBackendError(f"llama_decode failed with status {status}")
        for slot in slots.values():
            if slot.batch_index >= 0:
                self._advance(slot)

    def _sample(self, slot: _Slot) -> int:
        logits = np.ctypeslib.as_array(
            llama_cpp.llama_get_logits_ith(self.ctx, slot.batch_index), shape=(self.n_vocab,)
        )
        candidates = self._candidates
        token = self._apply(slot.chain, candidates, logits, slot.grammar, grammar_first=False)
        if slot.grammar is not None and not self._allowed(slot.grammar, token):
            token = self._apply(slot.chain, candidates, logits, slot.grammar, grammar_first=True)
        llama_cpp.llama_sampler_accept(slot.chain, token)
        if slot.grammar is not None:
            llama_cpp.llama_sampler_accept(slot.grammar, token)
        return token

    def _apply(
        self, chain: Any, candidates: Any, logits: Any, grammar: Any, *, grammar_first: bool
    ) -> int:
        candidates["id"] = self._ids
        candidates["logit"] = logits
        candidates["p"] = 0.0
        array = llama_cpp.llama_token_data_array(
            data=candidates.ctypes.data_as(llama_cpp.llama_token_data_p),
            size=self.n_vocab,
            selected=-1,
            sorted=False,
        )
        if grammar_first:
            llama_cpp.llama_sampler_apply(grammar, ctypes.byref(array))
        llama_cpp.llama_sampler_apply(chain, ctypes.byref(array))
        if not 0 <= array.selected < array.size:
            raise FatalBackendError("the sampler selected no token (every candidate was excluded)")
        return int(candidates["id"][array.selected])

    @staticmethod
    def _allowed(grammar: Any, token: int) -> bool:
        single = (llama_cpp.llama_token_data * 1)(llama_cpp.llama_token_data(token, 1.0, 0.0))
        array = llama_cpp.llama_token_data_array(data=single, size=1, selected=-1, sorted=False)
        llama_cpp.llama_sampler_apply(grammar, ctypes.byref(array))
        return not math.isinf(single[0].logit)

    def _advance(self, slot: _Slot) -> None:
        token = self._sample(slot)
        if llama_cpp.llama_vocab_is_eog(self.vocab, token):
            self._finish(slot, reason="stop")
            return
        slot.generated.append(token)
        if slot.stop:
            text = self._text(slot.generated)
            if any(s in text for s in slot.stop):
                self._finish(slot, reason="stop")
                return
        if len(slot.generated) >= slot.max_new:
            self._finish(slot, reason="length")
            return
        slot.pending = token

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
