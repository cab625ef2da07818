"""The embedded backend: llama.cpp in this process, through llama-cpp-python.

The chat template comes from the GGUF file. A request with a JSON schema is decoded under a grammar
built from that schema (llama.cpp enforces ``enum`` and ``maxLength``, not numeric bounds), and the
compiled grammar is kept per schema. Calls run one at a time in a worker thread so the event loop
stays free; the context is reset before every call so an answer depends only on its request and
seed, never on what the previous call left in the KV cache.

All calls run on one dedicated thread. llama.cpp's CPU backend keeps an OpenMP thread team per
calling thread; calls hopping between the threads of asyncio's default pool leave idle teams
spinning and halved throughput on 2 cores (measured: 63 vs 126 tokens/s).
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from datarefinery.errors import MissingDependencyError, RequestRejectedError
from datarefinery.llm.base import Backend, Request, Response, Usage, normalize_finish_reason
from datarefinery.llm.models import file_identity, resolve_model_path

if TYPE_CHECKING:
    from llama_cpp import Llama
    from llama_cpp.llama_grammar import LlamaGrammar


def default_threads() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1)


class LlamaCppBackend(Backend):
    kind = "llamacpp"

    def __init__(
        self,
        model: str = "default",
        *,
        n_ctx: int = 2048,
        n_threads: int | None = None,
        n_batch: int = 512,
    ) -> None:
        self.model_path: Path = resolve_model_path(model)
        self.n_ctx = n_ctx
        self.n_threads = n_threads or default_threads()
        self.n_batch = n_batch
        self._identity = file_identity(self.model_path)
        self._llama: Llama | None = None
        self._grammars: dict[str, LlamaGrammar] = {}
        self._lock = threading.Lock()
        self._thread: ThreadPoolExecutor | None = None

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_llama"] = None
        state["_grammars"] = {}
        state["_lock"] = None
        state["_thread"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    @property
    def identity(self) -> str:
        return self._identity

    @property
    def model_name(self) -> str:
        return self.model_path.name

    def load(self) -> Llama:
        """Load the model (once); called lazily by the first request."""
        if self._llama is None:
            try:
                from llama_cpp import Llama
            except ImportError as exc:  # pragma: no cover - a core dependency
                raise MissingDependencyError("the llamacpp backend", "llamacpp") from exc
            self._llama = Llama(
                model_path=str(self.model_path),
                n_ctx=self.n_ctx,
                n_threads=self.n_threads,
                n_threads_batch=self.n_threads,
                n_batch=self.n_batch,
                verbose=False,
            )
        return self._llama

    def _grammar(self, schema: dict[str, Any]) -> LlamaGrammar:
        key = json.dumps(schema, sort_keys=True)
        grammar = self._grammars.get(key)
        if grammar is None:
            from llama_cpp.llama_grammar import LlamaGrammar

            grammar = LlamaGrammar.from_json_schema(key, verbose=False)
            self._grammars[key] = grammar
        return grammar

    def _complete_sync(self, request: Request) -> Response:
        with self._lock:
            llama = self.load()
            started = time.perf_counter()
            params = request.params
            messages: list[Any] = [{"role": m.role, "content": m.content} for m in request.messages]
            llama.reset()  # type: ignore[no-untyped-call]
            try:
                out: Any = llama.create_chat_completion(
                    messages=messages,
                    temperature=params.temperature,
                    top_p=params.top_p,
                    max_tokens=params.max_tokens,
                    stop=list(params.stop) or None,
                    frequency_penalty=params.frequency_penalty,
                    presence_penalty=params.presence_penalty,
                    seed=request.seed,
                    grammar=self._grammar(request.json_schema) if request.json_schema else None,
                )
            except ValueError as exc:
                # llama-cpp-python raises ValueError for prompts longer than the context.
                raise RequestRejectedError(f"llama.cpp refused the request: {exc}") from None
            latency = time.perf_counter() - started
        choice = out["choices"][0]
        usage = out.get("usage") or {}
        return Response(
            text=choice["message"].get("content") or "",
            finish_reason=normalize_finish_reason(choice.get("finish_reason")),
            usage=Usage(int(usage.get("prompt_tokens", 0)), int(usage.get("completion_tokens", 0))),
            latency_s=latency,
            model=self.model_name,
        )

    async def complete(self, request: Request) -> Response:
        if self._thread is None:
            self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="llamacpp")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._thread, self._complete_sync, request)

    async def aclose(self) -> None:
        if self._thread is not None:
            self._thread.shutdown(wait=True)
            self._thread = None
        with self._lock:
            if self._llama is not None:
                self._llama.close()
                self._llama = None
