"""No secret reaches a file, a log line or Ray's session directory.

A key sits in the environment (``llm.api_key_env``) and, twice more, in the server URL
(``http://user:KEY@127.0.0.1:PORT/v1?key=KEY``). A real server on loopback refuses any request
without both the bearer key and the query key, and echoes the key in its first (503) answer. The
run goes through it on this machine and on a fresh local Ray cluster, with every log at DEBUG
(datarefinery, httpx, httpcore; Ray's workers too), and writes its report. Then every file under
OUT, everything the run printed and every file of Ray's session directory is searched for the key.
The same server is then given on the command line instead of in the spec.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.support.authserver import AuthServer
from tests.support.cli import LEAN, refinery, write_spec
from tests.support.specs import sentiment_spec

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
KEY_ENV = "DATAREFINERY_SECRETS_TEST_KEY"


def files_holding(folder: Path, secret: bytes) -> list[str]:
    return [
        str(path)
        for path in folder.rglob("*")
        if path.is_file() and not path.is_symlink() and secret in path.read_bytes()
    ]


@pytest.mark.parametrize("executor", ["local", "ray"])
def test_no_secret_reaches_files_logs_or_the_ray_session(tmp_path: Path, executor: str) -> None:
    if executor == "ray":
        pytest.importorskip("ray", reason="the Ray executor needs datarefinery[ray]")
    secret = f"sk-XYZ{secrets.token_hex(12)}"
    out = tmp_path / "out"
    # Ray's sockets live in its temp dir, whose path must stay short.
    ray_temp = Path(tempfile.mkdtemp(prefix="drsec-", dir="/tmp"))
    try:
        with AuthServer(secret) as server:
            base_url = f"http://user:{secret}@127.0.0.1:{server.port}/v1?key={secret}"
            spec = sentiment_spec(
                count=3,
                backend="openai",
                base_url=base_url,
                model="auth-test",
                api_key_env=KEY_ENV,
            )
            spec_path = write_spec(tmp_path / "spec.yaml", spec)
            completed = subprocess.run(
                [sys.executable, "-m", "tests.support.verbose_run", spec_path, out, executor]
                + [str(ray_temp)] * (executor == "ray"),
                capture_output=True,
                text=True,
                timeout=600,
                cwd=ROOT,
                env={**os.environ, KEY_ENV: secret},
            )
        printed = completed.stdout + completed.stderr
        assert completed.returncode == 0, printed[-4000:]
        # The requests carried every credential (so the key really was in use), and the logs
        # really were verbose: httpx's request lines and the retry of the 503.
        assert server.authorized >= 7 and server.refused == 0
        assert "HTTP Request: POST" in printed and "retry 1/" in printed
        session_logs = "".join(
            p.read_text(errors="replace") for p in ray_temp.rglob("worker-*") if p.is_file()
        )
        if executor == "ray":
            assert "HTTP Request: POST" in session_logs
        # What is stored names the server without its credentials.
        manifest = json.loads((out / "manifest.json").read_text())
        public_url = f"http://127.0.0.1:{server.port}/v1"
        assert manifest["executor"] == executor
        assert manifest["model"]["identity"] == f"{public_url}|auth-test"
        assert manifest["spec"]["llm"]["base_url"] == public_url
        assert (out / "report" / "card.md").exists()
        # And the key is nowhere.
        assert secret not in printed
        assert files_holding(out, secret.encode()) == []
        assert files_holding(ray_temp, secret.encode()) == []
    finally:
        shutil.rmtree(ray_temp, ignore_errors=True)


def test_no_secret_reaches_the_run_when_the_server_is_given_on_the_command_line(
    tmp_path: Path,
) -> None:
    """The same server chosen by ``refinery run --base-url --model --api-key-env`` over a spec
    whose own block is the embedded model: the run uses the server, its manifest names it without
    credentials and the key's variable by name only, and another model is a different run.
    """
    secret = f"sk-XYZ{secrets.token_hex(12)}"
    out = tmp_path / "out"
    spec_path = write_spec(tmp_path / "spec.yaml", sentiment_spec(count=3))
    with AuthServer(secret) as server:
        base_url = f"http://user:{secret}@127.0.0.1:{server.port}/v1?key={secret}"
        options = ["--base-url", base_url, "--model", "auth-test", "--api-key-env", KEY_ENV]
        env = {KEY_ENV: secret}
        completed = refinery("run", spec_path, "-o", out, *LEAN, *options, env=env)
        again = refinery("run", spec_path, "-o", out, *LEAN, *options, env=env)
        other = refinery("run", spec_path, "-o", out, *LEAN, *options[:2], "--model", "x", env=env)
    printed = "".join(c.stdout + c.stderr for c in (completed, again, other))
    assert completed.returncode == 0, printed[-4000:]
    assert server.authorized >= 7 and server.refused == 0
    manifest = json.loads((out / "manifest.json").read_text())
    public_url = f"http://127.0.0.1:{server.port}/v1"
    assert manifest["model"]["identity"] == f"{public_url}|auth-test"
    assert manifest["spec"]["llm"]["base_url"] == public_url
    assert manifest["spec"]["llm"]["api_key_env"] == KEY_ENV
    assert again.returncode == 0
    assert other.returncode == 2 and "different spec" in other.stderr
    assert secret not in printed
    assert files_holding(out, secret.encode()) == []
