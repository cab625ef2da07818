"""Wire-level tests of the OpenAI-compatible backend against an httpx mock transport; the real
server tests are in test_server.py."""

import asyncio
import json
import logging
import pickle
from typing import Any

import httpx
import pytest
from ray import cloudpickle

from datarefinery.config import LlamaCppConfig
from datarefinery.errors import (
    FatalBackendError,
    RequestRejectedError,
    RetryableBackendError,
    UsageError,
)
from datarefinery.llm.base import (
    MESSAGE_OVERHEAD_TOKENS,
    REQUEST_OVERHEAD_TOKENS,
    Message,
    Request,
    SamplingParams,
    Usage,
)
from datarefinery.llm.openai_compat import OpenAICompatBackend, parse_retry_after

SCHEMA = {"type": "object", "properties": {"a": {"type": "string"}}}


def request() -> Request:
    return Request(
        messages=(Message("user", "hi"),),
        params=SamplingParams(temperature=0.2, max_tokens=8, stop=("\n",)),
        json_schema=SCHEMA,
        seed=5,
    )


def ok_reply(body: dict[str, Any]) -> httpx.Response:
    return httpx.Response(
        200,
        json={
            "model": body["model"],
            "choices": [{"message": {"content": '{"a": "x"}'}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 7, "completion_tokens": 3},
        },
    )


def backend_with(handler: Any, **kwargs: Any) -> OpenAICompatBackend:
    return OpenAICompatBackend(
        base_url="http://server/v1",
        model="m",
        transport=httpx.MockTransport(handler),
        **kwargs,
    )


@pytest.mark.parametrize(
    ("dialect", "key", "expected"),
    [
        ("llamacpp", "response_format", {"type": "json_object", "schema": SCHEMA}),
        (
            "openai",
            "response_format",
            {
                "type": "json_schema",
                "json_schema": {"name": "output", "schema": SCHEMA, "strict": False},
            },
        ),
        ("vllm", "guided_json", SCHEMA),
    ],
)
def test_structured_output_dialects(dialect: str, key: str, expected: Any) -> None:
    seen: list[dict[str, Any]] = []

    def handler(http_request: httpx.Request) -> httpx.Response:
        body = json.loads(http_request.content)
        seen.append(body)
        return ok_reply(body)

    backend = backend_with(handler, dialect=dialect)
    response = asyncio.run(backend.complete(request()))
    assert response.text == '{"a": "x"}'
    assert response.usage.prompt_tokens == 7
    body = seen[0]
    assert body[key] == expected
    assert body["seed"] == 5 and body["stop"] == ["\n"] and body["max_tokens"] == 8


def test_auto_dialect_reads_owned_by() -> None:
    def handler(http_request: httpx.Request) -> httpx.Response:
        if http_request.url.path.endswith("/models"):
            return httpx.Response(200, json={"data": [{"id": "m", "owned_by": "vllm"}]})
        return ok_reply(json.loads(http_request.content))

    backend = backend_with(handler)
    asyncio.run(backend.complete(request()))
    assert backend.dialect == "vllm"


def test_error_statuses_map_to_error_kinds() -> None:
    statuses = iter([429, 503, 400, 401])

    def handler(http_request: httpx.Request) -> httpx.Response:
        status = next(statuses)
        headers = {"Retry-After": "7"} if status == 429 else {}
        return httpx.Response(status, text="nope", headers=headers)

    backend = backend_with(handler, dialect="openai")
    with pytest.raises(RetryableBackendError) as rate_limited:
        asyncio.run(backend.complete(request()))
    assert rate_limited.value.status == 429 and rate_limited.value.retry_after == 7.0
    with pytest.raises(RetryableBackendError):
        asyncio.run(backend.complete(request()))
    with pytest.raises(RequestRejectedError):
        asyncio.run(backend.complete(request()))
    with pytest.raises(FatalBackendError) as auth:
        asyncio.run(backend.complete(request()))
    assert not isinstance(auth.value, RequestRejectedError)


def test_connection_errors_and_garbled_bodies_are_retryable() -> None:
    def refuse(http_request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused")

    with pytest.raises(RetryableBackendError, match="connection error"):
        asyncio.run(backend_with(refuse, dialect="openai").complete(request()))

    def garble(http_request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text="<html>proxy error</html>")

    with pytest.raises(RetryableBackendError, match="unreadable reply"):
        asyncio.run(backend_with(garble, dialect="openai").complete(request()))


def test_api_key_is_sent_but_never_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "sk-unit-test-9c1f"
    monkeypatch.setenv("TEST_API_KEY", secret)
    headers: list[str] = []

    def handler(http_request: httpx.Request) -> httpx.Response:
        headers.append(http_request.headers["authorization"])
        return httpx.Response(401, text="bad key")

    backend = backend_with(handler, dialect="openai", api_key_env="TEST_API_KEY")
    assert headers == [] and secret not in repr(backend)
    with pytest.raises(FatalBackendError) as info:
        asyncio.run(backend.complete(request()))
    assert headers == [f"Bearer {secret}"]
    assert secret not in str(info.value)
    assert secret not in backend.identity


def test_missing_key_variable_is_a_usage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOT_SET_KEY", raising=False)
    with pytest.raises(UsageError, match="NOT_SET_KEY"):
        OpenAICompatBackend(base_url="http://x/v1", model="m", api_key_env="NOT_SET_KEY")


SECRET = "sk-XYZ4b1d0c7e9a2f6358"


def answer_ok(http_request: httpx.Request) -> httpx.Response:
    return ok_reply(json.loads(http_request.content))


SECRET_URL = f"http://user:{SECRET}@server:8000/v1?key={SECRET}"


def test_a_pickled_backend_carries_the_variable_name_never_the_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What the Ray executor sends to its workers: the backend (and the spec) as actor creation
    arguments, pickled; and the same once the backend has sent a request (its clients hold the
    key in their headers)."""
    monkeypatch.setenv("TEST_API_KEY", SECRET)
    backend = backend_with(answer_ok, api_key_env="TEST_API_KEY")
    for sent_before in (False, True):
        if sent_before:
            asyncio.run(backend.complete(request()))
        for blob in (pickle.dumps(backend), cloudpickle.dumps((backend, LlamaCppConfig()))):
            assert SECRET.encode() not in blob
            assert b"TEST_API_KEY" in blob
    # The copy reads the key where it runs (a worker), from that process's environment.
    copy = pickle.loads(pickle.dumps(backend))
    seen: list[str] = []

    def handler(http_request: httpx.Request) -> httpx.Response:
        seen.append(http_request.headers["authorization"])
        return ok_reply(json.loads(http_request.content))

    copy._transport = httpx.MockTransport(handler)
    asyncio.run(copy.complete(request()))
    assert seen == [f"Bearer {SECRET}"]
    monkeypatch.delenv("TEST_API_KEY")
    with pytest.raises(UsageError, match="every node"):
        asyncio.run(pickle.loads(pickle.dumps(backend)).complete(request()))


def test_url_credentials_reach_the_request_and_nothing_else(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("TEST_API_KEY", "sk-env-key-7a1b2c3d4e5f")
    sent: list[httpx.Request] = []

    def handler(http_request: httpx.Request) -> httpx.Response:
        sent.append(http_request)
        if len(sent) == 1:
            return httpx.Response(500, text=f"bad query key {SECRET} in {http_request.url}")
        return ok_reply(json.loads(http_request.content))

    backend = OpenAICompatBackend(
        base_url=SECRET_URL,
        model="m",
        dialect="openai",
        api_key_env="TEST_API_KEY",
        transport=httpx.MockTransport(handler),
    )
    with pytest.raises(RetryableBackendError) as info:
        asyncio.run(backend.complete(request()))
    asyncio.run(backend.complete(request()))
    # The request keeps what it needs: the path, the query and the key (as a bearer token; the
    # URL's user and password would be basic auth, which the key replaces).
    assert str(sent[1].url) == f"http://server:8000/v1/chat/completions?key={SECRET}"
    assert sent[1].headers["authorization"] == "Bearer sk-env-key-7a1b2c3d4e5f"
    # Every stored or printed copy does not.
    assert backend.identity == "http://server:8000/v1|m"
    for shown in (repr(backend), str(info.value), caplog.text):
        assert SECRET not in shown and "sk-env-key-7a1b2c3d4e5f" not in shown
    assert "HTTP Request: POST http://server:8000/v1/chat/completions?***" in caplog.text


def test_url_user_and_password_are_basic_auth_without_an_api_key() -> None:
    sent: list[httpx.Request] = []

    def handler(http_request: httpx.Request) -> httpx.Response:
        sent.append(http_request)
        return ok_reply(json.loads(http_request.content))

    backend = OpenAICompatBackend(
        base_url="http://ann:p%40ss@server/v1",
        model="m",
        dialect="none",
        transport=httpx.MockTransport(handler),
    )
    asyncio.run(backend.complete(request()))
    assert sent[0].headers["authorization"] == httpx.BasicAuth("ann", "p@ss")._auth_header
    assert str(sent[0].url) == "http://server/v1/chat/completions"


def test_retry_after_forms() -> None:
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0


def test_many_requests_in_flight_are_spread_over_small_clients() -> None:
    """20 requests at once: no client carries more than 8, so httpcore's per-request scan of
    its connections stays short; every answer still arrives."""
    seen_in_flight: list[int] = []

    async def go() -> list[str]:
        release = asyncio.Event()

        async def handler(req: httpx.Request) -> httpx.Response:
            seen_in_flight.append(max(backend._in_flight))
            if len(seen_in_flight) == 20:
                release.set()
            await release.wait()
            return ok_reply(json.loads(req.content))

        backend = backend_with(handler, dialect="none")
        replies = await asyncio.gather(*(backend.complete(request()) for _ in range(20)))
        assert len(backend._clients) == 3
        await backend.aclose()
        assert backend._clients == []
        return [r.text for r in replies]

    assert asyncio.run(go()) == ['{"a": "x"}'] * 20
    assert max(seen_in_flight) <= 8


def reply_with_usage(usage: Any) -> Any:
    def handler(http_request: httpx.Request) -> httpx.Response:
        body = {"choices": [{"message": {"content": "x"}, "finish_reason": "stop"}]}
        if usage is not ...:
            body["usage"] = usage
        return httpx.Response(200, json=body)

    return handler


def test_the_prompt_bound_is_bytes_plus_the_template_allowance() -> None:
    text = "Ünïcödé 東京 🙂"  # 12 characters, 23 bytes (+ 1 of the system message)
    plain = Request(messages=(Message("system", "s"), Message("user", text)))
    backend = backend_with(ok_reply, dialect="llamacpp")
    allowance = 2 * MESSAGE_OVERHEAD_TOKENS + REQUEST_OVERHEAD_TOKENS
    assert asyncio.run(backend.prompt_token_bound(plain)) == 24 + allowance
    # A hosted API may put the response_format schema into the prompt; a grammar does not.
    structured = Request(messages=plain.messages, json_schema=SCHEMA)
    assert asyncio.run(backend.prompt_token_bound(structured)) == 24 + allowance
    hosted = backend_with(ok_reply, dialect="openai")
    schema_bytes = len(json.dumps(SCHEMA).encode())
    assert asyncio.run(hosted.prompt_token_bound(structured)) == 24 + allowance + schema_bytes


@pytest.mark.parametrize(
    "usage", [..., None, {}, {"prompt_tokens": 0, "completion_tokens": 0}, {"prompt_tokens": "?"}]
)
def test_a_reply_without_usage_costs_its_worst_case(usage: Any) -> None:
    backend = backend_with(reply_with_usage(usage), dialect="none")
    bound = asyncio.run(backend.prompt_token_bound(request()))
    assert asyncio.run(backend.complete(request())).usage == Usage(bound, 8)


def test_a_reply_with_only_prompt_tokens_books_max_tokens_for_the_completion() -> None:
    backend = backend_with(reply_with_usage({"prompt_tokens": 5}), dialect="none")
    assert asyncio.run(backend.complete(request())).usage == Usage(5, 8)


def test_a_server_counting_more_than_the_bound_raises_it(caplog: pytest.LogCaptureFixture) -> None:
    backend = backend_with(reply_with_usage({"prompt_tokens": 500, "completion_tokens": 1}))
    backend.dialect = "none"
    before = asyncio.run(backend.prompt_token_bound(request()))
    assert before < 500
    with caplog.at_level("WARNING"):
        assert asyncio.run(backend.complete(request())).usage == Usage(500, 1)
    assert "counted 500 prompt tokens" in caplog.text
    assert asyncio.run(backend.prompt_token_bound(request())) == 500


def test_a_garbled_reply_carries_the_usage_it_reported() -> None:
    def handler(http_request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"choices": [], "usage": {"prompt_tokens": 9}})

    with pytest.raises(RetryableBackendError, match="unreadable reply") as garbled:
        asyncio.run(backend_with(handler, dialect="none").complete(request()))
    assert garbled.value.usage == Usage(9, 8)


def test_a_raw_prompt_goes_to_the_completions_endpoint() -> None:
    seen: list[tuple[str, dict[str, Any]]] = []

    def handler(req: httpx.Request) -> httpx.Response:
        body = json.loads(req.content)
        seen.append((req.url.path, body))
        return httpx.Response(
            200,
            json={
                "choices": [{"text": "What is a noun?", "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 4, "completion_tokens": 5},
            },
        )

    backend = backend_with(handler, dialect="llamacpp")
    params = SamplingParams(temperature=1.0, max_tokens=16, stop=("<|im_end|>",))
    response = asyncio.run(backend.complete(Request.raw("<|im_start|>user\n", params, seed=9)))
    assert response.text == "What is a noun?"
    assert response.usage == Usage(4, 5)
    path, body = seen[0]
    assert path == "/v1/completions"
    assert body["prompt"] == "<|im_start|>user\n" and "messages" not in body
    assert body["stop"] == ["<|im_end|>"] and body["seed"] == 9


def test_the_chat_template_comes_from_props_at_the_server_root() -> None:
    asked: list[str] = []

    def handler(req: httpx.Request) -> httpx.Response:
        asked.append(req.url.path)
        if req.url.path == "/props":
            return httpx.Response(
                200, json={"chat_template": "{{ x }}", "bos_token": "<s>", "eos_token": "</s>"}
            )
        return httpx.Response(404)

    backend = backend_with(handler)
    chat = asyncio.run(backend.chat_template())
    assert chat is not None
    assert (chat.template, chat.bos_token, chat.eos_token) == ("{{ x }}", "<s>", "</s>")
    assert asyncio.run(backend.chat_template()) == chat and asked == ["/props"]
    silent = backend_with(lambda req: httpx.Response(404))
    assert asyncio.run(silent.chat_template()) is None


def test_httpx_timeouts_are_retryable_and_its_other_errors_pass_through() -> None:
    def time_out(http_request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow")

    with pytest.raises(RetryableBackendError, match="ReadTimeout talking to http://server/v1"):
        asyncio.run(backend_with(time_out, dialect="none").complete(request()))

    def undecodable(http_request: httpx.Request) -> httpx.Response:
        raise httpx.DecodingError("bad gzip")

    with pytest.raises(httpx.DecodingError):
        asyncio.run(backend_with(undecodable, dialect="none").complete(request()))
    # Asking for the dialect or the template swallows any httpx error, as it always has.
    backend = backend_with(undecodable)
    assert asyncio.run(backend.chat_template()) is None
    assert asyncio.run(backend.prompt_token_bound(request())) > 0 and backend.dialect == "openai"
