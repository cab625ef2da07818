"""Fixtures shared by the suite: the embedded model and a real llama.cpp server on loopback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from datarefinery.llm.models import default_model_path

# No hub is reachable; make any accidental hub access fail fast instead of hanging.
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def model_path() -> Path:
    return default_model_path()


@dataclass(frozen=True)
class Server:
    base_url: str
    model: str
    api_key: str
    log_path: Path


SERVER_API_KEY = "sk-test-0f3c9a7e5d1b4c2a"
# The variable specs name in llm.api_key_env for the server's key.
SERVER_KEY_ENV = "DATAREFINERY_TEST_KEY"


@pytest.fixture(scope="session")
def llama_server(model_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """``python -m llama_cpp.server`` on 127.0.0.1 with an API key, for the whole session."""
    port = free_port()
    log_path = tmp_path_factory.mktemp("server") / "server.log"
    env = dict(os.environ, API_KEY=SERVER_API_KEY)
    command = [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        str(model_path),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--n_ctx",
        "2048",
        "--n_threads",
        "2",
        "--verbose",
        "False",
    ]
    with log_path.open("w") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"llama_cpp.server exited:\n{log_path.read_text()[-2000:]}")
            try:
                reply = httpx.get(
                    f"{base_url}/models",
                    headers={"Authorization": f"Bearer {SERVER_API_KEY}"},
                    timeout=2,
                )
                if reply.status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("llama_cpp.server did not start within 120 s")
            time.sleep(0.3)
        yield Server(base_url, model_path.name, SERVER_API_KEY, log_path)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[str]:
    """A local Ray cluster of 2 CPUs for the whole session; yields its address (for a second
    driver, such as the ``refinery`` command, to join)."""
    ray = pytest.importorskip("ray", reason="the Ray executor needs datarefinery[ray]")
    # Workers read the server's key from their node's environment, as on a real cluster: the
    # node (started here) inherits it; nothing passes it to the workers.
    before = os.environ.get(SERVER_KEY_ENV)
    os.environ[SERVER_KEY_ENV] = SERVER_API_KEY
    try:
        context = ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING")
    finally:
        if before is None:
            del os.environ[SERVER_KEY_ENV]
        else:
            os.environ[SERVER_KEY_ENV] = before
    try:
        yield str(context.address_info["address"])
    finally:
        ray.shutdown()
