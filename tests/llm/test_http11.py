"""The lean HTTP/1.1 client against a real server on loopback: keep-alive, the body framings,
a server closing idle connections, and replies that are cut off or not HTTP."""

import asyncio
import gzip
import json
from typing import Any

import pytest

from datarefinery.llm.http11 import Http11Client, ProtocolError, Reply
from tests.support.rawserver import RawServer, Seen, http_reply


def client_for(server: RawServer, **kwargs: Any) -> Http11Client:
    return Http11Client(server.base_url, headers={"Content-Type": "application/json"}, **kwargs)


def post_all(client: Http11Client, bodies: list[bytes]) -> list[Reply]:
    async def go() -> list[Reply]:
        try:
            return [await client.request("POST", "/chat/completions", body) for body in bodies]
        finally:
            await client.aclose()

    return asyncio.run(go())


def test_requests_reuse_one_connection_and_carry_what_was_given() -> None:
    with RawServer(lambda seen: http_reply(200, seen.body)) as server:
        client = client_for(server, query="key=abc")
        replies = post_all(client, [b'{"n": 1}', b'{"n": 2}', "é".encode()])
    assert [r.content for r in replies] == [b'{"n": 1}', b'{"n": 2}', "é".encode()]
    assert replies[0].json() == {"n": 1} and replies[2].text == "é"
    assert server.connections == 1
    first = server.seen[0]
    assert first.line == "POST /v1/chat/completions?key=abc HTTP/1.1"
    assert first.headers["host"] == server.base_url.split("/")[2]
    assert first.headers["content-type"] == "application/json"
    assert first.headers["content-length"] == "8"


def test_many_requests_at_once_each_get_their_own_reply() -> None:
    with RawServer(lambda seen: http_reply(200, seen.body)) as server:
        client = client_for(server)

        async def go() -> list[bytes]:
            replies = await asyncio.gather(
                *(client.request("POST", "/x", str(i).encode()) for i in range(30))
            )
            await client.aclose()
            return [r.content for r in replies]

        assert asyncio.run(go()) == [str(i).encode() for i in range(30)]
    assert server.connections <= 30


def chunked(parts: list[bytes]) -> bytes:
    head = (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    body = b"".join(b"%x;ext=1\r\n%s\r\n" % (len(p), p) for p in parts)
    return head + body + b"0\r\nX-Trailer: t\r\n\r\n"


def test_chunked_compressed_and_closing_replies_are_read_whole() -> None:
    answers = iter(
        [
            chunked([b'{"a": ', b'"chunked"}']),
            http_reply(200, gzip.compress(b'{"a": "gzip"}'), {"Content-Encoding": "gzip"}),
            ("close", http_reply(200, b'{"a": "to the end"}', {"Content-Length": None})),
            http_reply(200, b'{"a": "new connection"}'),
        ]
    )
    with RawServer(lambda seen: next(answers)) as server:
        replies = post_all(client_for(server), [b"{}"] * 4)
    assert [r.json()["a"] for r in replies] == ["chunked", "gzip", "to the end", "new connection"]
    # The reply without a length ended its connection; the next one opened another.
    assert server.connections == 2


def test_a_connection_the_server_closed_while_idle_is_replaced_without_an_error() -> None:
    def answer(seen: Seen) -> Any:
        # Each answer says keep-alive, then the server hangs up after the first one.
        if len(server.seen) == 1:
            return ("close", http_reply(200, b'{"n": 1}'))
        return http_reply(200, b'{"n": 2}')

    with RawServer(answer) as server:
        client = client_for(server)

        async def go() -> list[Any]:
            first = await client.request("POST", "/x", b"{}")
            await asyncio.sleep(0.2)  # the FIN arrives while the connection is idle
            second = await client.request("POST", "/x", b"{}")
            await client.aclose()
            return [first.json(), second.json()]

        assert asyncio.run(go()) == [{"n": 1}, {"n": 2}]
    assert server.connections == 2 and len(server.seen) == 2


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (("close", b""), asyncio.IncompleteReadError),
        (("close", b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n{"), asyncio.IncompleteReadError),
        (("close", b"SSH-2.0-OpenSSH\r\n\r\n"), ProtocolError),
        (("close", b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n"), ProtocolError),
        (("close", b"HTTP/1.1 200 OK\r\nContent-Encoding: br\r\n\r\n"), ProtocolError),
    ],
)
def test_a_reply_cut_off_or_not_http_is_an_error_and_its_connection_dropped(
    answer: Any, error: type[Exception]
) -> None:
    with RawServer(lambda seen: answer) as server:
        client = client_for(server)
        with pytest.raises(error):
            post_all(client, [b"{}"])
        assert client._idle == []
        # Not sent again: the request may have reached the server (the engine decides).
        assert len(server.seen) == 1


def test_a_cancelled_request_does_not_leave_its_connection_for_the_next() -> None:
    answers = iter([("hang", 1.0), http_reply(200, b'{"ok": true}')])
    with RawServer(lambda seen: next(answers)) as server:
        client = client_for(server)

        async def go() -> Any:
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(client.request("POST", "/x", b"{}"), 0.2)
            reply = await client.request("POST", "/x", b"{}")
            await client.aclose()
            return reply.json()

        assert asyncio.run(go()) == {"ok": True}
    assert server.connections == 2


def test_no_server_listening_is_a_connection_error() -> None:
    with RawServer(lambda seen: b"") as server:
        url = server.base_url
    client = Http11Client(url, headers={})
    with pytest.raises(ConnectionError):
        post_all(client, [b"{}"])


def test_a_connect_that_takes_too_long_is_a_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    async def never(*args: Any, **kwargs: Any) -> Any:
        await asyncio.sleep(60)

    monkeypatch.setattr(asyncio, "open_connection", never)
    client = Http11Client("http://127.0.0.1:9/v1", headers={}, connect_timeout_s=0.05)
    with pytest.raises(TimeoutError):
        post_all(client, [b"{}"])


def test_absolute_urls_must_stay_on_the_origin() -> None:
    with RawServer(lambda seen: http_reply(200, json.dumps(seen.line).encode())) as server:
        client = client_for(server, query="k=v")
        origin = server.base_url.removesuffix("/v1")

        async def go() -> Any:
            reply = await client.request("GET", f"{origin}/props")
            with pytest.raises(ValueError, match="origin"):
                await client.request("GET", "http://elsewhere:1/props")
            await client.aclose()
            return reply.json()

        assert asyncio.run(go()) == "GET /props?k=v HTTP/1.1"
    assert "content-length" not in server.seen[0].headers
