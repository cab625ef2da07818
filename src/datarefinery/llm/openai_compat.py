"""Any OpenAI-compatible chat server: vLLM, llama.cpp's servers, Ollama, hosted APIs.

The wire format of structured output differs between servers (the *dialect*, ``openai_wire``),
while the endpoint (base URL, model, key) is separate configuration. Calls go through the lean
HTTP/1.1 client (``http11``); httpx serves an injected transport or a proxy in the environment.

Credentials never leave the process that sends the requests:

- The API key is read from the environment variable named in the config, in the process that
  sends the requests (each Ray worker reads its own node's environment). The backend keeps only the
  variable's name, so pickling it (to a Ray worker) carries no key.
- ``base_url`` may carry a user and password (sent as HTTP basic auth when there is no API key)
  and a query string (sent with every request). Every stored or printed copy (``identity``,
  ``repr``, errors) is ``redact_url(base_url)``, and the HTTP client's log lines are scrubbed.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import time
import urllib.request
from typing import TYPE_CHECKING, Any
from urllib.parse import SplitResult, unquote, urlsplit, urlunsplit

from datarefinery.errors import (
    FatalBackendError,
    RequestRejectedError,
    RetryableBackendError,
    UsageError,
)
from datarefinery.llm.base import (
    Backend,
    ChatTemplate,
    Request,
    Response,
    Usage,
    normalize_finish_reason,
    utf8_prompt_bound,
)
from datarefinery.llm.http11 import Http11Client, ProtocolError, Reply
from datarefinery.llm.openai_wire import (
    Dialect,
    json_bytes,
    parse_retry_after,
    reported_count,
    request_body,
)
from datarefinery.redact import install_log_redaction, redact_text, redact_url, url_secrets

if TYPE_CHECKING:
    # Imported where the httpx path is taken: the lean client's runs need none of it (its import
    # was a tenth of a 2,000-record run's CPU against a fast server).
    import httpx

log = logging.getLogger(__name__)

_RETRYABLE_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}
# Requests in flight per httpx client. httpcore's pool scans every connection for every queued
# request, so one client with many connections costs O(n^2) per burst (measured: a third of the
# client's CPU at 50 in flight); several small clients keep each scan short.
_IN_FLIGHT_PER_CLIENT = 8
# Statuses that say "this request" rather than "this server / this account".
_REQUEST_STATUS = {400, 413, 422}
# What the lean client raises when the connection fails (TimeoutError: it could not connect).
_LEAN_ERRORS = (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ProtocolError)


class _HttpxError(Exception):
    """An ``httpx.HTTPError`` carried out of ``_send``, so that catching it needs no httpx."""

    def __init__(self, error: Exception, *, timeout: bool, transport: bool) -> None:
        super().__init__(type(error).__name__)
        self.name = type(error).__name__
        self.error, self.timeout, self.transport = error, timeout, transport


_SEND_ERRORS = (_HttpxError, *_LEAN_ERRORS)


class OpenAICompatBackend(Backend):
    kind = "openai"

    def __init__(
        self,
        *,
        base_url: str,
        model: str,
        api_key_env: str | None = None,
        dialect: Dialect = "auto",
        connect_timeout_s: float = 10.0,
        extra_body: dict[str, Any] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.display_url = redact_url(self.base_url)
        self.model = model
        self.dialect: Dialect = dialect
        self.extra_body = dict(extra_body or {})
        # The variable's name only: the value is read where requests are sent (``_api_key``).
        self.api_key_env = api_key_env
        self._api_key()  # fail early, in the process that builds the backend
        self._connect_timeout_s = connect_timeout_s
        self._transport = transport
        # The lean client serves every call unless httpx is needed (``_lean_client``).
        self._lean: Http11Client | None = None
        self._lean_decided = False
        self._clients: list[httpx.AsyncClient] = []
        self._in_flight: list[int] = []
        self._dialect_lock = asyncio.Lock()
        # Raised when the server reports more prompt tokens than the bound (a template with a
        # longer default system prompt than the allowance), so later reservations hold again.
        self._extra_prompt_tokens = 0
        self._template: ChatTemplate | None = None
        self._template_asked = False

    def __getstate__(self) -> dict[str, Any]:
        # Open clients hold the credentials in their headers and cannot travel anyway.
        state = self.__dict__.copy()
        state.update(_clients=[], _in_flight=[], _dialect_lock=None, _lean=None)
        state.update(_lean_decided=False)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._dialect_lock = asyncio.Lock()

    def __repr__(self) -> str:
        return (
            f"OpenAICompatBackend(base_url={self.display_url!r}, model={self.model!r}, "
            f"dialect={self.dialect!r}, api_key_env={self.api_key_env!r})"
        )

    def _api_key(self) -> str | None:
        if not self.api_key_env:
            return None
        key = os.environ.get(self.api_key_env)
        if not key:
            raise UsageError(
                f"llm.api_key_env names the environment variable {self.api_key_env!r}, which is "
                f"not set in this process. Export it (export {self.api_key_env}=...) or remove "
                "api_key_env for a server without authentication. On a Ray cluster every node "
                "needs it in the environment its workers start with."
            )
        return key

    @property
    def identity(self) -> str:
        return f"{self.display_url}|{self.model}"

    def _lean_client(self) -> Http11Client | None:
        """The lean client, unless a transport was given or the environment names a proxy for
        the server's scheme (httpx honours it, with ``NO_PROXY``): then ``None``, and httpx.
        """
        if not self._lean_decided:
            self._lean_decided = True
            proxies = urllib.request.getproxies()
            scheme = urlsplit(self.base_url).scheme
            if self._transport is None and not (proxies.get(scheme) or proxies.get("all")):
                headers, base, parts = self._client_settings()
                context = None
                if parts.scheme == "https":
                    import httpx  # for the same certificate store as the httpx path

                    context = httpx.create_ssl_context()
                self._lean = Http11Client(
                    base,
                    headers=headers,
                    query=parts.query,
                    connect_timeout_s=self._connect_timeout_s,
                    ssl_context=context,
                    shown_url=self.display_url,
                )
        return self._lean

    def _client_settings(self) -> tuple[dict[str, str], str, SplitResult]:
        """Every request's headers, the base URL without credentials or query, its parts."""
        key = self._api_key()
        parts = urlsplit(self.base_url)
        install_log_redaction([*url_secrets(self.base_url), *([key] if key else [])])
        headers = {"Content-Type": "application/json"}
        if key:
            headers["Authorization"] = f"Bearer {key}"
        elif parts.username is not None or parts.password is not None:
            # HTTP basic auth, encoded as httpx.BasicAuth encodes it.
            pair = f"{unquote(parts.username or '')}:{unquote(parts.password or '')}"
            headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
        # Credentials travel as headers and the query as parameters of each request: httpx would
        # otherwise append the request's path after the query string of the base URL.
        netloc = parts.netloc.rpartition("@")[2]
        return headers, urlunsplit((parts.scheme, netloc, parts.path, "", "")), parts

    def _new_client(self) -> httpx.AsyncClient:
        import httpx

        headers, base, parts = self._client_settings()
        # The engine enforces the per-request timeout; httpx only bounds the connect.
        return httpx.AsyncClient(
            base_url=base,
            params=httpx.QueryParams(parts.query),
            headers=headers,
            timeout=httpx.Timeout(None, connect=self._connect_timeout_s),
            limits=httpx.Limits(max_connections=None, max_keepalive_connections=64),
            transport=self._transport,
        )

    def _pick_client(self) -> int:
        """The least busy client, or a new one when every client has its share in flight."""
        if self._clients:
            index = min(range(len(self._clients)), key=self._in_flight.__getitem__)
            if self._in_flight[index] < _IN_FLIGHT_PER_CLIENT:
                return index
        self._clients.append(self._new_client())
        self._in_flight.append(0)
        return len(self._clients) - 1

    async def _send(self, method: str, path: str, content: bytes = b"") -> httpx.Response | Reply:
        lean = self._lean_client()
        if lean is not None:
            return await lean.request(method, path, content)
        import httpx

        index = self._pick_client()
        self._in_flight[index] += 1
        try:
            return await self._clients[index].request(method, path, content=content or None)
        except httpx.HTTPError as exc:
            timeout = isinstance(exc, httpx.TimeoutException)
            transport = isinstance(exc, httpx.TransportError)
            raise _HttpxError(exc, timeout=timeout, transport=transport) from None
        finally:
            self._in_flight[index] -= 1

    async def _resolve_dialect(self) -> Dialect:
        if self.dialect != "auto":
            return self.dialect
        async with self._dialect_lock:
            if self.dialect != "auto":
                return self.dialect
            owners: set[str] = set()
            try:
                reply = await self._send("GET", "/models")
                if reply.status_code == 200:
                    owners = {str(m.get("owned_by", "")) for m in reply.json().get("data", [])}
            except (*_SEND_ERRORS, ValueError):
                pass
            if owners & {"llamacpp", "me"}:
                self.dialect = "llamacpp"
            elif "vllm" in owners:
                self.dialect = "vllm"
            else:
                self.dialect = "openai"
            return self.dialect

    async def prompt_token_bound(self, request: Request) -> int:
        """The content's UTF-8 bytes plus the chat-template allowance (``utf8_prompt_bound``).
        In the ``openai`` dialect the schema's bytes are added: hosted APIs may put the schema of
        ``response_format`` into the prompt, where grammar-based servers do not.
        """
        return self._bound(request, await self._resolve_dialect())

    def _bound(self, request: Request, dialect: Dialect) -> int:
        bound = utf8_prompt_bound(request) + self._extra_prompt_tokens
        if dialect == "openai" and request.json_schema is not None:
            bound += len(json.dumps(request.json_schema).encode("utf-8"))
        return bound

    def _usage(self, request: Request, dialect: Dialect, reported: Any) -> Usage:
        """The usage the server reported; the call's worst case where it reported none (a
        prompt of zero tokens is no report: some servers send zeros as placeholders).
        """
        bound = self._bound(request, dialect)
        prompt = reported_count(reported, "prompt_tokens")
        if not prompt:
            return Usage(bound, request.params.max_tokens)
        completion = reported_count(reported, "completion_tokens")
        if completion is None:
            completion = request.params.max_tokens
        if prompt > bound:
            self._extra_prompt_tokens += prompt - bound
            log.warning(
                "%s counted %d prompt tokens where at most %d were reserved; later calls reserve "
                "%d more (its chat template adds more than the usual allowance)",
                self.base_url,
                prompt,
                bound,
                self._extra_prompt_tokens,
            )
        return Usage(prompt, completion)

    def build_body(self, request: Request, dialect: Dialect) -> dict[str, Any]:
        return request_body(self.model, request, dialect, self.extra_body)

    async def chat_template(self) -> ChatTemplate | None:
        """The template the server reports: llama.cpp's server has it under ``GET /props``
        (``chat_template``, ``bos_token``, ``eos_token``), at the root beside ``/v1``. ``None``
        where the server does not say (vLLM, hosted APIs, llama-cpp-python's server).
        """
        if self._template_asked:
            return self._template
        # The root's address without credentials or query: the client adds those to every call.
        parts = urlsplit(self.base_url)
        root = parts.path.rstrip("/").removesuffix("/v1")
        netloc = parts.netloc.rpartition("@")[2]
        at_root = urlunsplit((parts.scheme, netloc, f"{root}/props", "", ""))
        for url in (at_root, "/props"):
            try:
                reply = await self._send("GET", url)
                data = reply.json() if reply.status_code == 200 else None
            except (*_SEND_ERRORS, ValueError):
                data = None
            if isinstance(data, dict) and isinstance(data.get("chat_template"), str):
                self._template = ChatTemplate(
                    data["chat_template"],
                    bos_token=str(data.get("bos_token") or ""),
                    eos_token=str(data.get("eos_token") or ""),
                )
                break
        self._template_asked = True
        return self._template

    async def _post(self, path: str, content: bytes) -> httpx.Response | Reply:
        """``_send`` for a model call: failing to reach the server is retryable."""
        try:
            return await self._send("POST", path, content)
        except TimeoutError:  # the lean client's connect (the engine's own timeout cancels)
            raise RetryableBackendError(f"ConnectTimeout talking to {self.display_url}") from None
        except _LEAN_ERRORS as exc:
            raise RetryableBackendError(
                f"connection error talking to {self.display_url}: {type(exc).__name__}"
            ) from None
        except _HttpxError as exc:
            if exc.timeout:
                raise RetryableBackendError(f"{exc.name} talking to {self.display_url}") from None
            if not exc.transport:
                raise exc.error from None
            raise RetryableBackendError(
                f"connection error talking to {self.display_url}: {exc.name}"
            ) from None

    async def complete(self, request: Request) -> Response:
        dialect = await self._resolve_dialect()
        content = json_bytes(self.build_body(request, dialect))
        # A raw prompt is continued by the plain completions endpoint, a chat by the chat one.
        path = "/completions" if request.prompt is not None else "/chat/completions"
        started = time.perf_counter()
        reply = await self._post(path, content)
        latency = time.perf_counter() - started
        if reply.status_code != 200:
            # A server may echo what it was sent (a rejected key, the URL) in its error body.
            detail = self._scrub(reply.text[:300].replace("\n", " "))
            message = f"HTTP {reply.status_code} from {self.display_url}{path}: {detail}"
            if reply.status_code in _RETRYABLE_STATUS:
                raise RetryableBackendError(
                    message,
                    status=reply.status_code,
                    retry_after=parse_retry_after(reply.headers.get("retry-after")),
                )
            if reply.status_code in _REQUEST_STATUS:
                raise RequestRejectedError(message, status=reply.status_code)
            raise FatalBackendError(message, status=reply.status_code)
        data: Any = None
        try:
            data = reply.json()
            choice = data["choices"][0]
            if request.prompt is not None:
                text = choice.get("text") or ""
            else:
                text = choice["message"].get("content") or ""
            usage = self._usage(request, dialect, data.get("usage"))
        except (ValueError, KeyError, IndexError, TypeError, AttributeError):
            # A garbled body is treated as a transient fault (proxies and overloaded servers do it).
            # The budget books its usage if it reported one, else the worst case.
            reported = data.get("usage") if isinstance(data, dict) else None
            raise RetryableBackendError(
                f"unreadable reply from {self.display_url}: {self._scrub(reply.text[:200])!r}",
                usage=self._usage(request, dialect, reported),
            ) from None
        return Response(
            text=text,
            finish_reason=normalize_finish_reason(choice.get("finish_reason")),
            usage=usage,
            latency_s=latency,
            model=str(data.get("model") or self.model),
        )

    def _scrub(self, text: str) -> str:
        key = os.environ.get(self.api_key_env) if self.api_key_env else None
        return redact_text(text, [*url_secrets(self.base_url), *([key] if key else [])])

    async def aclose(self) -> None:
        lean, self._lean, self._lean_decided = self._lean, None, False
        if lean is not None:
            await lean.aclose()
        clients, self._clients, self._in_flight = self._clients, [], []
        for client in clients:
            await client.aclose()
