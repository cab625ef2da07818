"""The OpenAI-compatible backend on its default path, the lean HTTP/1.1 client, against real
servers on loopback: one that insists on credentials (and echoes the key in an error), a proxy
that injects faults, and a raw server for garbled replies. The httpx path (an injected transport,
or a proxy in the environment) is tested in test_openai_compat.py."""

import asyncio
import json
import logging
import pickle
from typing import Any

import pytest

from datarefinery.errors import FatalBackendError, RetryableBackendError
from datarefinery.llm.base import Message, Request, SamplingParams, Usage
from datarefinery.llm.engine import Engine
from datarefinery.llm.http11 import Http11Client
from datarefinery.llm.openai_compat import OpenAICompatBackend
from tests.support.authserver import AuthServer
from tests.support.faultproxy import FaultProxy
from tests.support.rawserver import RawServer, Seen, completion, http_reply

SECRET = "sk-XYZ7c1e0b9a8d2f4657"
KEY_ENV = "LEAN_TEST_API_KEY"


def request(label: str = "positive") -> Request:
    return Request(
        messages=(Message("user", f'a "{label}" review'),),
        params=SamplingParams(temperature=0.0, max_tokens=16),
        json_schema={"type": "object", "properties": {"text": {"type": "string"}}},
        seed=1,
    )


def run(coroutine: Any) -> Any:
    return asyncio.run(coroutine)


async def calls(backend: OpenAICompatBackend, count: int) -> list[Any]:
    """``count`` calls one after another, each the reply's text or the retryable error it raised
    (another error ends them); the backend is closed after.
    """
    results: list[Any] = []
    try:
        for _ in range(count):
            try:
                results.append((await backend.complete(request())).text)
            except RetryableBackendError as exc:
                results.append(exc)
    finally:
        await backend.aclose()
    return results


def test_credentials_reach_the_server_and_nothing_else(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv(KEY_ENV, SECRET)
    with AuthServer(SECRET) as server:
        backend = OpenAICompatBackend(
            base_url=f"http://user:{SECRET}@127.0.0.1:{server.port}/v1?key={SECRET}",
            model="auth-test",
            api_key_env=KEY_ENV,
        )
        first, second, third = run(calls(backend, 3))
    # The server refused nothing: bearer key and query key were on every request.
    assert server.refused == 0 and server.authorized == 4  # GET /models, then three POSTs
    assert isinstance(first, RetryableBackendError) and first.status == 503
    assert "review of film number 1" in json.loads(second)["text"]
    assert second != third
    public = f"http://127.0.0.1:{server.port}/v1"
    assert f"HTTP Request: POST {public}/chat/completions?*** " in caplog.text
    assert "HTTP Request: GET" in caplog.text
    for shown in (str(first), repr(backend), backend.identity, caplog.text):
        assert SECRET not in shown
    # A copy (a Ray worker's) opens its own connections.
    assert pickle.loads(pickle.dumps(backend))._lean is None


def test_statuses_resets_and_hangs_through_a_fault_proxy() -> None:
    with (
        RawServer(lambda seen: http_reply(200, completion('{"text": "fine"}'))) as upstream,
        FaultProxy(
            upstream.base_url.removesuffix("/v1"),
            fault_rate=0.0,
            hang_s=2.0,
            schedule=("429", "500", "reset", None, "hang", None),
        ) as proxy,
    ):
        backend = OpenAICompatBackend(base_url=proxy.base_url, model="m", dialect="none")
        rate_limited, failed, reset, ok = run(calls(backend, 4))
        engine = Engine(backend, concurrency=1, timeout_s=0.5, max_retries=0)

        async def hang_then_answer() -> str:
            with pytest.raises(RetryableBackendError, match="no answer within"):
                await engine.complete(request())
            text = (await engine.complete(request())).text
            await engine.aclose()
            return text

        after_hang = run(hang_then_answer())
    assert rate_limited.status == 429 and rate_limited.retry_after == 0.0
    assert failed.status == 500 and "HTTP 500" in str(failed)
    assert "connection error" in str(reset)
    assert ok == after_hang == '{"text": "fine"}'


def answer_with(*bodies: bytes) -> Any:
    replies = iter(bodies)
    return lambda seen: http_reply(200, next(replies))


@pytest.mark.parametrize(
    ("body", "usage"),
    [
        (b"<html>bad gateway</html>", None),
        (b'{"choices": [], "usage": {"prompt_tokens": 9}}', Usage(9, 16)),
        (b'{"choices": [{"message": "not an object"}]}', None),
    ],
)
def test_a_garbled_reply_is_retryable_with_its_usage(body: bytes, usage: Usage | None) -> None:
    with RawServer(answer_with(body)) as server:
        backend = OpenAICompatBackend(base_url=server.base_url, model="m", dialect="none")
        (error,) = run(calls(backend, 1))
    assert isinstance(error, RetryableBackendError) and "unreadable reply" in str(error)
    if usage is not None:
        assert error.usage == usage


def test_an_auth_failure_is_fatal_and_the_echoed_key_scrubbed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(KEY_ENV, SECRET)
    body = json.dumps({"error": f"key {SECRET} is not valid"}).encode()
    with RawServer(lambda seen: http_reply(401, body, reason="Unauthorized")) as server:
        backend = OpenAICompatBackend(
            base_url=server.base_url, model="m", dialect="openai", api_key_env=KEY_ENV
        )
        with pytest.raises(FatalBackendError) as info:
            run(calls(backend, 1))
    assert server.seen[0].headers["authorization"] == f"Bearer {SECRET}"
    assert SECRET not in str(info.value) and "HTTP 401" in str(info.value)


def test_many_calls_at_once_share_a_few_kept_alive_connections() -> None:
    def answer(seen: Seen) -> bytes:
        label = json.loads(seen.body)["messages"][0]["content"]
        return http_reply(200, completion(json.dumps({"text": label})))

    with RawServer(answer) as server:
        backend = OpenAICompatBackend(base_url=server.base_url, model="m", dialect="vllm")
        engine = Engine(backend, concurrency=4)

        async def go() -> list[str]:
            replies = await asyncio.gather(
                *(engine.complete(request(f"label {i}")) for i in range(40))
            )
            await engine.aclose()
            return [json.loads(r.text)["text"] for r in replies]

        assert run(go()) == [f'a "label {i}" review' for i in range(40)]
    assert server.connections <= 4
    sent = json.loads(server.seen[0].body)
    assert sent["guided_json"] == request().json_schema and sent["seed"] == 1


def test_the_dialect_and_the_chat_template_are_asked_through_it() -> None:
    def answer(seen: Seen) -> bytes:
        if seen.line.startswith("GET /v1/models"):
            return http_reply(200, b'{"data": [{"id": "m", "owned_by": "llamacpp"}]}')
        if seen.line.startswith("GET /props"):
            return http_reply(200, b'{"chat_template": "{{ x }}", "bos_token": "<s>"}')
        return http_reply(200, completion('{"text": "t"}'))

    with RawServer(answer) as server:
        backend = OpenAICompatBackend(base_url=server.base_url, model="m")

        async def go() -> Any:
            try:
                await backend.complete(request())
                return await backend.chat_template()
            finally:
                await backend.aclose()

        template = run(go())
    assert backend.dialect == "llamacpp"
    assert template is not None and template.template == "{{ x }}" and template.bos_token == "<s>"
    assert json.loads(server.seen[1].body)["response_format"]["type"] == "json_object"


def test_a_connect_that_takes_too_long_is_retryable(monkeypatch: pytest.MonkeyPatch) -> None:
    async def never(*args: Any, **kwargs: Any) -> Any:
        await asyncio.sleep(60)

    monkeypatch.setattr(asyncio, "open_connection", never)
    backend = OpenAICompatBackend(
        base_url="http://127.0.0.1:9/v1", model="m", dialect="none", connect_timeout_s=0.05
    )
    with pytest.raises(
        RetryableBackendError, match=r"ConnectTimeout talking to http://127\.0\.0\.1"
    ):
        run(backend.complete(request()))


def test_httpx_serves_injected_transports_and_proxies_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    plain = OpenAICompatBackend(base_url="http://server/v1", model="m")
    assert isinstance(plain._lean_client(), Http11Client)
    secure = OpenAICompatBackend(base_url="https://server/v1", model="m")
    lean = secure._lean_client()
    assert lean is not None and lean._ssl is not None and lean.port == 443
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.example:3128")
    assert OpenAICompatBackend(base_url="http://server/v1", model="m")._lean_client() is None
