"""A fault-injecting HTTP proxy for tests: in front of a real server, it answers a share of the
requests with 429 (with Retry-After), 500, a hang past the client's timeout, or a reset
connection, and forwards the rest unchanged."""

from __future__ import annotations

import contextlib
import random
import socket
import struct
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx

from tests.support.loopback import Loopback

FAULTS = ("429", "500", "hang", "reset")


class FaultProxy(Loopback):
    def __init__(
        self,
        upstream: str,
        *,
        fault_rate: float = 0.3,
        hang_s: float = 6.0,
        seed: int = 0,
        faults: tuple[str, ...] = FAULTS,
        schedule: tuple[str | None, ...] = (),
    ) -> None:
        """``schedule`` fixes the fate of the first POSTs (``None`` = forward); after it, each
        POST is a fault with probability ``fault_rate``."""
        self.upstream = upstream.rstrip("/")
        self.fault_rate = fault_rate
        self.hang_s = hang_s
        self.faults = faults
        self._schedule = list(schedule)
        self.counts: Counter[str] = Counter()
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._client = httpx.Client(timeout=300)
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def _forward(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                fault = proxy._draw() if method == "POST" else None
                if fault == "429":
                    self._reply(429, b'{"error": "rate limited"}', {"Retry-After": "0"})
                elif fault == "500":
                    self._reply(500, b'{"error": "internal error"}')
                elif fault == "hang":
                    time.sleep(proxy.hang_s)
                    self.close_connection = True
                elif fault == "reset":
                    # SO_LINGER 0 makes close() send a TCP RST instead of a FIN.
                    self.connection.setsockopt(
                        socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                    )
                    self.close_connection = True
                    self.connection.close()
                else:
                    headers = {
                        k: v
                        for k, v in self.headers.items()
                        if k.lower() in {"content-type", "authorization"}
                    }
                    upstream = proxy._client.request(
                        method, proxy.upstream + self.path, content=body, headers=headers
                    )
                    self._reply(upstream.status_code, upstream.content)

            def _reply(self, status: int, body: bytes, extra: dict[str, str] | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for key, value in (extra or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                with contextlib.suppress(OSError):
                    self._forward("POST")

            def do_GET(self) -> None:
                with contextlib.suppress(OSError):
                    self._forward("GET")

        self._listen(ThreadingHTTPServer(("127.0.0.1", 0), Handler))

    def _draw(self) -> str | None:
        with self._lock:
            if self._schedule:
                fault = self._schedule.pop(0)
            elif self._rng.random() < self.fault_rate:
                fault = self._rng.choice(self.faults)
            else:
                fault = None
            self.counts[fault or "forwarded"] += 1
            return fault

    def __exit__(self, *exc: object) -> None:
        super().__exit__(*exc)
        self._client.close()
