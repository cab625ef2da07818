"""An instant OpenAI-compatible server on loopback that insists on credentials: every request
must carry ``Authorization: Bearer KEY`` and the query parameter ``key=KEY``, or it gets a 401.
The first chat completion is answered 503 with a body that echoes the key (as careless servers
do), so that the client's retry path, its error message and its log lines are exercised too.
Every other completion is a distinct sentiment review, at once."""

from __future__ import annotations

import contextlib
import itertools
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from tests.support.loopback import Loopback


class AuthServer(Loopback):
    def __init__(self, key: str) -> None:
        self.key = key
        self.authorized = 0
        self.refused = 0
        self._lock = threading.Lock()
        self._count = itertools.count()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def _reply(self, status: int, body: dict[str, object]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _handle(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                url = urlsplit(self.path)
                query = parse_qs(url.query)
                if self.headers.get("Authorization") != f"Bearer {server.key}" or query.get(
                    "key"
                ) != [server.key]:
                    with server._lock:
                        server.refused += 1
                    self._reply(401, {"error": "missing or wrong credentials"})
                    return
                with server._lock:
                    server.authorized += 1
                if method == "GET" and url.path.endswith("/models"):
                    self._reply(200, {"data": [{"id": "auth-test", "owned_by": "test"}]})
                elif method == "POST" and url.path.endswith("/chat/completions"):
                    self._complete(json.loads(body))
                else:
                    self._reply(404, {"error": "not found"})

            def _complete(self, request: dict[str, object]) -> None:
                number = next(server._count)
                if number == 0:
                    self._reply(503, {"error": f"overloaded; your key {server.key} is fine"})
                    return
                label = "positive" if '"positive"' in json.dumps(request) else "negative"
                text = json.dumps({"text": f"A {label} review of film number {number}, sincerely."})
                self._reply(
                    200,
                    {
                        "model": "auth-test",
                        "choices": [
                            {
                                "message": {"role": "assistant", "content": text},
                                "finish_reason": "stop",
                            }
                        ],
                        "usage": {"prompt_tokens": 50, "completion_tokens": 15},
                    },
                )

            def do_GET(self) -> None:
                with contextlib.suppress(OSError):
                    self._handle("GET")

            def do_POST(self) -> None:
                with contextlib.suppress(OSError):
                    self._handle("POST")

        self._listen(ThreadingHTTPServer(("127.0.0.1", 0), Handler))
