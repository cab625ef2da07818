"""What every test server on loopback shares: a threading ``socketserver`` on 127.0.0.1 that
serves from a daemon thread while the server is used in a ``with`` block."""

from __future__ import annotations

import socketserver
import threading
from typing import Self


class Loopback:
    def _listen(self, server: socketserver.TCPServer, *, poll_interval: float = 0.5) -> None:
        """Serve ``server`` (a threading server bound to 127.0.0.1, port 0) once the ``with``
        block opens; its request threads never keep the test process alive."""
        assert isinstance(server, socketserver.ThreadingMixIn)
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": poll_interval}, daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
