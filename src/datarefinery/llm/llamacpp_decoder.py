"""A batched llama.cpp decoder: several sequences advance together in one ``llama_decode`` call.

One worker thread owns a llama.cpp context with ``parallel`` sequence slots, each with its own KV
cells (``kv_unified=False``). Requests wait in a queue; each step the worker admits waiting requests
into free slots, builds one batch holding the next token of every generating sequence plus as much
prompt of newly admitted ones as fits, decodes it, and samples one token per sequence with that
sequence's own sampler chain and seed (``llamacpp_sampling``, which also explains how grammars
are applied).
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
from llama_cpp import Llama
from llama_cpp.llama_chat_format import Jinja2ChatFormatter

from datarefinery.errors import FatalBackendError, RequestRejectedError
from datarefinery.llm.base import ChatTemplate, FinishReason, Request, Usage
from datarefinery.llm.llamacpp_sampling import GrammarSamplers, TokenSampler, sampler_chain


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
        self.formatter, self.chat_template = self._chat_formatter()
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
        self._sampler = TokenSampler(self.ctx, self.n_vocab)
        self._grammars = GrammarSamplers(self.vocab)
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
        self._grammars.close()
        llama_cpp.llama_batch_free(self.batch)
        llama_cpp.llama_free(self.ctx)
        self.llama.close()

    # ---------------------------------------------------------------------------- preparation

    def _chat_formatter(self) -> tuple[Jinja2ChatFormatter, ChatTemplate]:
        template = self.llama.metadata.get("tokenizer.chat_template")
        if not template:
            raise FatalBackendError(
                "the GGUF file has no chat template (tokenizer.chat_template); "
                "use an instruct model"
            )
        eos = self.llama.token_eos()
        bos = self.llama.token_bos()
        chat = ChatTemplate(
            template=template,
            eos_token=self.llama._model.token_get_text(eos) if eos != -1 else "",
            bos_token=self.llama._model.token_get_text(bos) if bos != -1 else "",
        )
        formatter = Jinja2ChatFormatter(
            template=template,
            eos_token=chat.eos_token,
            bos_token=chat.bos_token,
            stop_token_ids=[eos],
        )
        return formatter, chat

    def _prompt_tokens(self, request: Request) -> tuple[list[int], tuple[str, ...]]:
        if request.prompt is not None:
            # Raw text, evaluated as given: like a rendered template (which writes its own BOS
            # where the model wants one), nothing is added; generation ends at an end-of-generation
            # token (``_advance``) or a stop string.
            raw = self.llama.tokenize(request.prompt.encode("utf-8"), add_bos=False, special=True)
            return raw, tuple(s for s in request.params.stop if s)
        messages: Any = [{"role": m.role, "content": m.content} for m in request.messages]
        formatted = self.formatter(messages=messages)
        tokens = self.llama.tokenize(
            formatted.prompt.encode("utf-8"), add_bos=not formatted.added_special, special=True
        )
        stop = list(request.params.stop)
        if formatted.stop:
            stop += [formatted.stop] if isinstance(formatted.stop, str) else list(formatted.stop)
        return tokens, tuple(s for s in stop if s)

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
            grammar = self._grammars.clone_for(request.json_schema) if request.json_schema else None
            chain = sampler_chain(self.n_vocab, request.params, request.seed)
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

    def _advance(self, slot: _Slot) -> None:
        token = self._sampler.sample(slot.batch_index, slot.chain, slot.grammar)
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
