"""A lean HTTP/1.1 client for one origin: the OpenAI-compatible backend's default path.

Why not httpx here: against a fast server (a batching vLLM, or the instant endpoint of
``bench/orchestration_overhead.py``) httpx was most of a record's cost in our own process:
request and URL objects, auth and redirect layers, and httpcore's pool, which checks every idle
connection's socket for every request it assigns. A model call needs none of that: one origin,
a JSON body built once, keep-alive connections. This client writes the request in one buffer and
reads the reply with asyncio streams (``Content-Length``, chunked or read-to-close bodies).

The backend keeps httpx where this client does not apply: an injected transport (tests, custom
transports) and a proxy set in the environment (httpx honours ``HTTP(S)_PROXY``/``NO_PROXY``).

Errors are the standard library's: ``ConnectionError``/``OSError`` for the socket,
``asyncio.IncompleteReadError`` for a reply cut short, ``ProtocolError`` for a reply that is not
HTTP, ``TimeoutError`` when the connection cannot be opened within the connect timeout. The caller
turns them into backend errors. Nothing is logged but the method, the URL it is given to show and
the status, the way httpx logs its requests.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import ssl
import zlib
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

log = logging.getLogger(__name__)

# Idle keep-alive connections kept per client (httpx's default keeps 20; the backend asked it for
# 64): enough for the engine's concurrency, beyond it a burst's extra connections are closed.
MAX_IDLE = 64


class ProtocolError(Exception):
    """The server's answer was not HTTP/1.x as this client reads it."""


@dataclass(frozen=True, slots=True)
class Reply:
    """A whole HTTP reply; its names are those of ``httpx.Response`` the backend reads."""

    status_code: int
    reason_phrase: str
    headers: dict[str, str]  # lower-case names; repeated fields joined with ", "
    content: bytes

    @property
    def text(self) -> str:
        return self.content.decode(self._charset(), errors="replace")

    def json(self) -> Any:
        return json.loads(self.content)

    def _charset(self) -> str:
        for param in self.headers.get("content-type", "").split(";")[1:]:
            name, _, value = param.partition("=")
            if name.strip().lower() == "charset" and value.strip():
                charset = value.strip().strip('"')
                try:
                    "".encode(charset)
                except LookupError:
                    break
                return charset
        return "utf-8"


class _Connection:
    __slots__ = ("reader", "writer")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    def close(self) -> None:
        self.writer.close()


class Http11Client:
    """Requests to the origin of ``base_url`` over reused connections.

    ``base_url`` has no user info and no query (the caller sends credentials in ``headers`` and
    the query as ``query``, added to every request's target, as httpx does with a client's
    ``params``). ``shown_url`` is what log lines name instead of ``base_url``.
    """

    def __init__(
        self,
        base_url: str,
        *,
        headers: dict[str, str],
        query: str = "",
        connect_timeout_s: float | None = 10.0,
        ssl_context: ssl.SSLContext | None = None,
        shown_url: str | None = None,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {shown_url or base_url!r}")
        self.scheme = parts.scheme
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.base_path = parts.path.rstrip("/")
        self.shown_url = (shown_url or base_url).rstrip("/")
        self.query = query
        self.connect_timeout_s = connect_timeout_s
        if self.scheme == "https" and ssl_context is None:
            ssl_context = ssl.create_default_context()
        self._ssl = ssl_context if self.scheme == "https" else None
        host = f"[{self.host}]" if ":" in self.host else self.host
        default_port = 443 if self.scheme == "https" else 80
        self._origin = f"{self.scheme}://{host}" + (
            f":{self.port}" if self.port != default_port else ""
        )
        fields = {"Host": host if self.port == default_port else f"{host}:{self.port}"}
        fields.update({"Accept": "*/*", "User-Agent": "datarefinery"})
        fields.update(headers)
        # Every request's header block but its first line and its length, encoded once.
        self._fixed = "".join(f"{name}: {value}\r\n" for name, value in fields.items()).encode(
            "latin-1"
        )
        self._idle: list[_Connection] = []

    def _target(self, path: str) -> tuple[str, str]:
        """The request target and the URL to log for ``path`` (relative to the base URL, or an
        absolute URL on the same origin).
        """
        if "://" in path:
            parts = urlsplit(path)
            if f"{parts.scheme}://{parts.netloc}" != self._origin:
                raise ValueError(f"{path!r} is not on the client's origin {self._origin}")
            target, shown = parts.path or "/", f"{self._origin}{parts.path}"
        else:
            target = f"{self.base_path}{path}"
            shown = f"{self.shown_url}{path}"
        if self.query:
            return f"{target}?{self.query}", f"{shown}?***"
        return target, shown

    async def request(self, method: str, path: str, body: bytes = b"") -> Reply:
        target, shown = self._target(path)
        head = f"{method} {target} HTTP/1.1\r\n".encode("latin-1") + self._fixed
        if body or method in ("POST", "PUT", "PATCH"):
            head += b"Content-Length: %d\r\n" % len(body)
        connection = await self._acquire()
        try:
            connection.writer.write(head + b"\r\n" + body)
            reply, keep = await _read_reply(connection.reader, method)
        except BaseException:
            # Cancelled (the engine's timeout) or broken mid-reply: the connection's state is
            # unknown, so it is not reused. Nor is the request sent again here, as httpx does not
            # once a request is on the wire: the server may have acted on it; the engine retries.
            connection.close()
            raise
        if keep and len(self._idle) < MAX_IDLE:
            self._idle.append(connection)
        else:
            connection.close()
        log.info(
            'HTTP Request: %s %s "HTTP/1.1 %d %s"',
            method,
            shown,
            reply.status_code,
            reply.reason_phrase,
        )
        return reply

    async def _acquire(self) -> _Connection:
        while self._idle:
            connection = self._idle.pop()
            # The server closed it while idle (its keep-alive timeout): the event loop has read
            # the EOF already (httpcore checks the socket for the same reason).
            if connection.reader.at_eof() or connection.writer.is_closing():
                connection.close()
                continue
            return connection
        opening = asyncio.open_connection(
            self.host,
            self.port,
            ssl=self._ssl,
            server_hostname=self.host if self._ssl is not None else None,
        )
        reader, writer = await asyncio.wait_for(opening, self.connect_timeout_s)
        return _Connection(reader, writer)

    async def aclose(self) -> None:
        idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()
        for connection in idle:
            # Until the transports are gone: a loop closed right after would leak their sockets.
            with contextlib.suppress(OSError):
                await connection.writer.wait_closed()


async def _read_reply(reader: asyncio.StreamReader, method: str) -> tuple[Reply, bool]:
    """The reply and whether its connection may carry another request."""
    version, status, reason, headers = _parse_head(await reader.readuntil(b"\r\n\r\n"))
    while 100 <= status < 200:  # interim answers (100 Continue) precede the real one
        version, status, reason, headers = _parse_head(await reader.readuntil(b"\r\n\r\n"))
    keep = version == "HTTP/1.1" and "close" not in headers.get("connection", "").lower()
    if method == "HEAD" or status in (204, 304):
        content = b""
    elif "chunked" in headers.get("transfer-encoding", "").lower():
        content = await _read_chunked(reader)
    elif "content-length" in headers:
        try:
            length = int(headers["content-length"])
        except ValueError:
            raise ProtocolError(f"bad Content-Length {headers['content-length']!r}") from None
        content = await reader.readexactly(length)
    else:
        content, keep = await reader.read(), False
    encoding = headers.get("content-encoding", "identity").lower()
    if encoding in ("gzip", "deflate"):
        # Never asked for (no Accept-Encoding is sent), but a server may compress anyway.
        try:
            content = zlib.decompress(content, zlib.MAX_WBITS | 32)
        except zlib.error as exc:
            raise ProtocolError(f"undecodable {encoding} body: {exc}") from None
    elif encoding != "identity":
        raise ProtocolError(f"unsupported Content-Encoding {encoding!r}")
    return Reply(status, reason, headers, content), keep


def _parse_head(head: bytes) -> tuple[str, int, str, dict[str, str]]:
    status_line, *lines = head[:-4].decode("latin-1").split("\r\n")
    version, _, rest = status_line.partition(" ")
    code, _, reason = rest.partition(" ")
    if not version.startswith("HTTP/1.") or not code.isdigit():
        raise ProtocolError(f"not an HTTP/1.x status line: {status_line[:80]!r}")
    headers: dict[str, str] = {}
    for line in lines:
        name, colon, value = line.partition(":")
        if not colon:
            raise ProtocolError(f"malformed header line: {line[:80]!r}")
        key = name.strip().lower()
        value = value.strip()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    return version, int(code), reason, headers


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    chunks: list[bytes] = []
    while True:
        size_line = await reader.readuntil(b"\r\n")
        try:
            size = int(size_line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise ProtocolError(f"bad chunk size line {size_line[:40]!r}") from None
        if size == 0:
            while await reader.readuntil(b"\r\n") != b"\r\n":  # trailer fields, unused
                pass
            return b"".join(chunks)
        chunks.append(await reader.readexactly(size))
        if await reader.readexactly(2) != b"\r\n":
            raise ProtocolError("a chunk is not followed by CRLF")
