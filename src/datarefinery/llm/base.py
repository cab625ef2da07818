"""The backend contract: typed requests and responses, and one async method.

A backend turns one ``Request`` into one ``Response`` or raises a ``BackendError``. Everything
else a run needs around model calls (cache, rate limits, retries, budget, structured output) lives
in the ``Engine``, so a new backend is only the code that talks to its model.
"""

from __future__ import annotations

import abc
import asyncio
from collections.abc import Awaitable
from dataclasses import dataclass, field, fields, replace
from typing import Any, Literal, TypeVar

from datarefinery.errors import RetryableBackendError
from datarefinery.usage import Usage as Usage  # re-exported: Usage belongs to the backend contract

Role = Literal["system", "user", "assistant"]


@dataclass(frozen=True, slots=True)
class Message:
    role: Role
    content: str


@dataclass(frozen=True, slots=True)
class SamplingParams:
    temperature: float = 0.8
    top_p: float = 0.95
    max_tokens: int = 256
    stop: tuple[str, ...] = ()
    frequency_penalty: float = 0.0
    presence_penalty: float = 0.0


@dataclass(frozen=True, slots=True)
class Request:
    """One chat completion. ``json_schema`` asks the backend for output constrained to that schema
    (as far as the backend can); ``seed`` makes sampling repeatable and is part of the cache key, so
    two calls that should differ must carry different seeds.

    A *raw* request (``Request.raw``) has a ``prompt`` instead of messages: text the model
    continues as it is, chat-template markup included (special tokens are parsed, nothing is
    added). Steps that render turns themselves use it (Magpie's pre-query); the model's template
    is ``Backend.chat_template()``.
    """

    messages: tuple[Message, ...]
    params: SamplingParams = field(default_factory=SamplingParams)
    json_schema: dict[str, Any] | None = None
    seed: int | None = None
    prompt: str | None = None

    def __post_init__(self) -> None:
        if self.prompt is not None and self.messages:
            raise ValueError("a request has messages or a raw prompt, not both")

    @classmethod
    def raw(cls, prompt: str, params: SamplingParams, *, seed: int | None = None) -> Request:
        return cls(messages=(), params=params, seed=seed, prompt=prompt)

    def key_material(self) -> dict[str, Any]:
        """What identifies this request in the response cache (besides the backend's identity)."""
        material: dict[str, Any] = {
            "messages": [[m.role, m.content] for m in self.messages],
            # As ``asdict`` gives it (the same JSON), without its deep copy: per call, it was a
            # third of the key's cost.
            "params": {f.name: getattr(self.params, f.name) for f in fields(self.params)},
            "schema": self.json_schema,
            "seed": self.seed,
        }
        # Only when set, so the keys of chat requests cached before raw prompts existed still hold.
        if self.prompt is not None:
            material["prompt"] = self.prompt
        return material

    def with_messages(self, messages: tuple[Message, ...]) -> Request:
        return replace(self, messages=messages)

    def prompt_chars(self) -> int:
        return sum(len(m.content) for m in self.messages) + len(self.prompt or "")

    def prompt_bytes(self) -> int:
        texts = [m.content for m in self.messages] + [self.prompt or ""]
        return sum(len(text.encode("utf-8")) for text in texts)


@dataclass(frozen=True, slots=True)
class ChatTemplate:
    """A model's chat template (Jinja, as in a GGUF's ``tokenizer.chat_template`` or a Hugging Face
    ``tokenizer_config.json``) and the texts of the special tokens it refers to.
    """

    template: str
    bos_token: str = ""
    eos_token: str = ""


FinishReason = Literal["stop", "length", "other"]

# A bound on the prompt tokens of a chat request for a model whose tokenizer is not here.
#
# Why bytes: a byte-level BPE tokenizer (GPT-2 / tiktoken / Llama 3 / Qwen / SmolLM2 style) starts
# from one token per UTF-8 byte and every merge only joins tokens, so a text never becomes more
# tokens than it has bytes; a special token (``<|im_start|>``) is one token. SentencePiece with
# byte fallback (Llama 2, Mistral, Gemma) is the same per character plus at most one ``▁`` prefix
# per text segment, which the per-message allowance covers. So the content costs at most its bytes,
# whatever the language or script, and the template adds a fixed amount per message and per request.
#
# The allowances come from ``scripts/template_overhead.py`` (llama-cpp-python 0.3.36). Rendering
# empty conversations of 1 to 6 messages with its chat formats, a special token counted as one token
# and any other template byte as one, each message adds at most 13 (Llama 3; ChatML 11, Mistral
# [INST] 9, Gemma 7) and a one-message request costs at most 55 in all (Qwen's default system
# prompt included); Llama 3.1's template adds a 63-byte dated preamble to Llama 3's 31, so 94 in all
# where the bound allows 112. SmolLM2's own template tokenized, and llama-cpp-python's server's
# reported prompt_tokens, agree: 30 tokens for one empty message (its default system prompt
# included), 5 to 6 more a message.
MESSAGE_OVERHEAD_TOKENS = 16
REQUEST_OVERHEAD_TOKENS = 96


def utf8_prompt_bound(request: Request) -> int:
    """At most how many prompt tokens ``request`` costs under a byte-level tokenizer and a common
    chat template: its content's UTF-8 bytes plus the template allowances above.
    """
    return (
        request.prompt_bytes()
        + MESSAGE_OVERHEAD_TOKENS * len(request.messages)
        + REQUEST_OVERHEAD_TOKENS
    )


@dataclass(frozen=True, slots=True)
class Response:
    """A backend's answer. ``parsed`` is set by the engine once the text validated against the
    request's schema; ``cached`` says it came from the response cache and cost nothing.
    """

    text: str
    finish_reason: FinishReason = "stop"
    usage: Usage = field(default_factory=Usage)
    latency_s: float = 0.0
    model: str = ""
    parsed: Any = None
    cached: bool = False

    def to_cache_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "finish_reason": self.finish_reason,
            "usage": [self.usage.prompt_tokens, self.usage.completion_tokens],
            "latency_s": self.latency_s,
            "model": self.model,
        }

    @classmethod
    def from_cache_dict(cls, data: dict[str, Any]) -> Response:
        prompt, completion = data["usage"]
        return cls(
            text=data["text"],
            finish_reason=data["finish_reason"],
            usage=Usage(int(prompt), int(completion)),
            latency_s=float(data["latency_s"]),
            model=str(data["model"]),
            cached=True,
        )


def normalize_finish_reason(value: object) -> FinishReason:
    if value == "stop":
        return "stop"
    if value == "length":
        return "length"
    return "other"


T = TypeVar("T")


async def answer_within(answer: Awaitable[T], timeout_s: float | None) -> T:
    """``answer``, or ``RetryableBackendError`` after ``timeout_s`` seconds (``None``: wait)."""
    if timeout_s is None:
        return await answer
    try:
        return await asyncio.wait_for(answer, timeout=timeout_s)
    except TimeoutError:
        raise RetryableBackendError(f"no answer within {timeout_s:g} s (llm.timeout_s)") from None


class Backend(abc.ABC):
    """A model behind one async method.

    ``kind`` and ``identity`` go into the cache key: two backends with the same identity must give
    the same answer distribution for the same request. Backends load their model lazily (on the
    first ``complete``) so that a configured backend stays cheap to build and to pickle.
    """

    kind: str = "abstract"

    @property
    @abc.abstractmethod
    def identity(self) -> str:
        """Model identity for cache keys and manifests (a GGUF digest, or base URL + model)."""

    @abc.abstractmethod
    async def complete(self, request: Request) -> Response:
        """Answer one request, or raise ``RetryableBackendError`` / ``FatalBackendError``."""

    async def complete_within(self, request: Request, timeout_s: float | None) -> Response:
        """``complete``, raising ``RetryableBackendError`` when no answer comes within
        ``timeout_s`` (``None``: no limit) of the backend starting on the request. Here the clock
        starts at the call; a backend that queues requests itself starts it when the request
        leaves its queue, so waiting behind other requests never counts as a model failing.
        """
        return await answer_within(self.complete(request), timeout_s)

    async def prompt_token_bound(self, request: Request) -> int:
        """At most how many prompt tokens ``request`` will cost: the budget reserves this plus
        ``max_tokens`` before the call. A backend with the model's tokenizer at hand counts the
        rendered prompt exactly; this default holds for any text without one.
        """
        return utf8_prompt_bound(request)

    @property
    def context_tokens(self) -> int | None:
        """The tokens one request may hold, prompt and reply together, where the backend knows
        (the embedded model's ``n_ctx``); ``None`` for a server, whose context is its own.
        """
        return None

    async def chat_template(self) -> ChatTemplate | None:
        """The model's chat template where this backend can know it (``None`` otherwise), for
        steps that render turns themselves and send raw requests.
        """
        return None

    async def aclose(self) -> None:  # noqa: B027 - optional hook, most backends hold nothing
        """Release connections or model memory."""
