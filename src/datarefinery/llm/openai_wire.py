"""The OpenAI-compatible wire format: a request's JSON body in each structured-output dialect,
and the fields read back from a reply (``OpenAICompatBackend`` sends and receives them).

The dialects:

- ``llamacpp``: ``response_format={"type": "json_object", "schema": ...}`` (llama.cpp and
  llama-cpp-python servers; the grammar is built from the schema)
- ``openai``: ``response_format={"type": "json_schema", "json_schema": {...}}`` (OpenAI, Ollama,
  recent vLLM)
- ``vllm``: ``guided_json`` guided decoding in the request body
- ``none``: no schema is sent; the engine still validates and re-asks
- ``auto``: the backend asks ``GET /models`` once and picks from ``owned_by``
  (``llamacpp``/``me`` → llamacpp, ``vllm`` → vllm), else ``openai``.
"""

from __future__ import annotations

import email.utils
import json
import time
from typing import Any, Literal

from datarefinery.llm.base import Request
from datarefinery.llm.structured import decodable_schema

Dialect = Literal["auto", "llamacpp", "openai", "vllm", "none"]


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def reported_count(usage: Any, name: str) -> int | None:
    """A token count from a reply's ``usage`` object, ``None`` when absent or not a number."""
    value = usage.get(name) if isinstance(usage, dict) else None
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        return None
    return int(value)


def request_body(
    model: str, request: Request, dialect: Dialect, extra_body: dict[str, Any]
) -> dict[str, Any]:
    params = request.params
    body: dict[str, Any] = {"model": model}
    if request.prompt is not None:
        body["prompt"] = request.prompt
    else:
        body["messages"] = [{"role": m.role, "content": m.content} for m in request.messages]
    body.update(temperature=params.temperature, top_p=params.top_p, max_tokens=params.max_tokens)
    if params.stop:
        body["stop"] = list(params.stop)
    if params.frequency_penalty:
        body["frequency_penalty"] = params.frequency_penalty
    if params.presence_penalty:
        body["presence_penalty"] = params.presence_penalty
    if request.seed is not None:
        body["seed"] = request.seed
    schema = request.json_schema
    if schema is not None:
        # llama.cpp's server refuses long maxLength grammars as the embedded backend does.
        schema = decodable_schema(schema)
        if dialect == "llamacpp":
            body["response_format"] = {"type": "json_object", "schema": schema}
        elif dialect == "openai":
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "output", "schema": schema, "strict": False},
            }
        elif dialect == "vllm":
            body["guided_json"] = schema
    body.update(extra_body)
    return body


def json_bytes(body: dict[str, Any]) -> bytes:
    """``body`` encoded as httpx encodes ``json=`` (compact, UTF-8), once for either client."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()
