"""Serving the review app on 127.0.0.1: a socket bound first, so the printed URL is the real one."""

from __future__ import annotations

import socket

import uvicorn
from starlette.types import ASGIApp

HOST = "127.0.0.1"


def bind(port: int = 0) -> socket.socket:
    """A listening socket on loopback only (``port`` 0: a free port the system picks)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((HOST, port))
    sock.listen(128)
    return sock


def server(app: ASGIApp) -> uvicorn.Server:
    """A uvicorn server for ``app``; call ``.run(sockets=[bind(port)])`` to serve."""
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    return uvicorn.Server(config)
