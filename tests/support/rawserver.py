"""A loopback HTTP/1.1 server for client tests that answers with raw bytes chosen per request:
keep-alive, chunked bodies, ``Connection: close``, garbage, a cut-off reply, a hang. It counts
connections, so a test can tell whether a client reused one.
"""

from __future__ import annotations

import json
import socket
import socketserver
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from tests.support.loopback import Loopback


@dataclass(frozen=True)
class Seen:
    """One request as it arrived: the request line, the header fields (lower-case), the body."""

    line: str
    headers: dict[str, str]
    body: bytes


# What a test answers: bytes to send (then read the next request on the same connection),
# ``("close", bytes)`` to send and close, or ``("hang", seconds)`` to say nothing for a while.
Answer = bytes | tuple[str, bytes] | tuple[str, float]


def http_reply(
    status: int = 200, body: bytes = b"", headers: dict[str, str] | None = None, reason: str = ""
) -> bytes:
    fields = {"Content-Type": "application/json", "Content-Length": str(len(body))}
    fields.update(headers or {})
    reason = reason or ("OK" if status == 200 else "Status")
    head = f"HTTP/1.1 {status} {reason}\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in fields.items() if v is not None)
    return head.encode("latin-1") + b"\r\n" + body


def completion(content: str, usage: dict[str, int] | None = None) -> bytes:
    return json.dumps(
        {
            "model": "raw",
            "choices": [{"message": {"content": content}, "finish_reason": "stop"}],
            "usage": usage or {"prompt_tokens": 7, "completion_tokens": 3},
        }
    ).encode()


class RawServer(Loopback):
    def __init__(self, answer: Callable[[Seen], Answer]) -> None:
        self.seen: list[Seen] = []
        self.connections = 0
        self._lock = threading.Lock()
        server = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                with server._lock:
                    server.connections += 1
                try:
                    while server._serve_one(self):
                        pass
                except OSError:
                    pass

        self._answer = answer
        self._listen(socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler), poll_interval=0.05)

    def _serve_one(self, handler: socketserver.StreamRequestHandler) -> bool:
        line = handler.rfile.readline().decode("latin-1").strip()
        if not line:
            return False
        headers: dict[str, str] = {}
        while (field := handler.rfile.readline().decode("latin-1").strip()) != "":
            name, _, value = field.partition(":")
            headers[name.strip().lower()] = value.strip()
        body = handler.rfile.read(int(headers.get("content-length", "0")))
        seen = Seen(line, headers, body)
        with self._lock:
            self.seen.append(seen)
        answer = self._answer(seen)
        if isinstance(answer, bytes):
            handler.wfile.write(answer)
            handler.wfile.flush()
            return True
        what, value = answer
        if what == "hang":
            assert isinstance(value, float)
            time.sleep(value)
            return False
        assert isinstance(value, bytes)
        handler.wfile.write(value)
        handler.wfile.flush()
        handler.connection.shutdown(socket.SHUT_RDWR)
        return False
