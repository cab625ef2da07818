"""The sandbox keeps generated code in: no network, no processes, no view of the parent, the
run directory or the file system, bounded output and a result the code cannot forge.

The escape probes run the sandbox from a throw-away parent process (``PARENT``), started with a
secret in its environment and a run directory as its working directory, so that a probe that gets
out (reads the secret, kills its parent) hits that process and never the test runner.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import socket
import sqlite3
import subprocess
import sys
import sysconfig
import threading
import uuid
from pathlib import Path
from typing import Any

import pytest

import datarefinery
from datarefinery.errors import UsageError
from datarefinery.sandbox import SandboxResult, run_python

SRC = Path(datarefinery.__file__).resolve().parents[1]
SECRET = "sk-test-" + "7f3e9a1c" * 4

# Runs the code from stdin in the sandbox (or, for the controls, in a plain `python -I` child
# with an empty environment, which is what the sandbox did before it used namespaces) and prints
# the result as JSON with its own peak memory.
PARENT = r"""
import asyncio, json, os, subprocess, sys, tempfile
from datarefinery.sandbox import run_python
code = sys.stdin.read()
if sys.argv[1] == "plain":
    with tempfile.TemporaryDirectory() as empty:
        done = subprocess.run([sys.executable, "-I", "-c", code + "\nprint(answer)"], cwd=empty,
                              env={}, capture_output=True, text=True)
    out = {"status": "ok" if done.returncode == 0 else "error", "answer": done.stdout.strip(),
           "stdout": "", "error": done.stderr[-2000:]}
else:
    result = asyncio.run(run_python(code, timeout_s=60))
    out = {"status": result.status, "answer": result.answer, "stdout": result.stdout,
           "error": result.error}
# Peak RSS of this image (VmHWM), not ru_maxrss, which keeps the forking test runner's size.
status = open("/proc/self/status").read().split("VmHWM:")[1]
out["peak_rss_kib"] = int(status.split()[0])
print(json.dumps(out))
"""

# Each probe records "LEAK" when it got through, else what stopped it.
PROBES = r"""
import json, os, signal
outcomes = {}
def probe(name, action, leaked=lambda value: True):
    try:
        value = action()
    except BaseException as exc:
        outcomes[name] = "blocked: " + type(exc).__name__
    else:
        outcomes[name] = "LEAK" if leaked(value) else "nothing"
"""


def run(code: str, **limits: float) -> SandboxResult:
    return asyncio.run(run_python(code, **limits))  # type: ignore[arg-type]


def from_parent(
    code: str, cwd: Path, *, mode: str = "sandbox"
) -> tuple[dict[str, Any] | None, int]:
    """Run ``code`` (``PARENT_PID`` replaced by the parent's pid) from a fresh parent process that
    has ``SECRET`` in its environment; return its report (None if it died) and exit status."""
    env = dict(os.environ, SECRET_TEST_KEY=SECRET, PYTHONPATH=str(SRC))
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, mode],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=cwd,
        env=env,
        start_new_session=True,  # a process-group kill from the probe stays in this group
    )
    stdout, _ = parent.communicate(code.replace("PARENT_PID", str(parent.pid)).encode(), 120)
    report = json.loads(stdout) if parent.returncode == 0 else None
    return report, parent.returncode


def outcomes(report: dict[str, Any] | None) -> dict[str, str]:
    assert report is not None and report["status"] == "ok", report
    result: dict[str, str] = json.loads(report["answer"])
    return result


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    """A run directory with a manifest and an LLM cache, as ``refinery run`` leaves them."""
    path = tmp_path / "run"
    path.mkdir()
    (path / "manifest.json").write_text(json.dumps({"schema": 1, "note": "run-dir-marker"}))
    with contextlib.closing(sqlite3.connect(path / "cache.sqlite")) as db:
        db.execute("CREATE TABLE responses (key TEXT PRIMARY KEY, value TEXT)")
        db.execute("INSERT INTO responses VALUES ('k', 'cached reply')")
        db.commit()
    return path


def digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_result_variable_and_printed_output() -> None:
    assert run("answer = 6 * 7").output() == "42"
    printed = run("print('x'); print(2 + 3)")
    assert printed.ok and printed.output() == "5"
    failed = run("1 / 0")
    assert failed.status == "error" and "ZeroDivisionError" in failed.error
    assert run("import json, fractions, decimal, math\nanswer = math.comb(5, 2)").output() == "10"


ENVIRON = (
    PROBES
    + r"""
secret = "SECRET_TEST_KEY"
has = lambda text: secret in text
read = lambda path: open(path, "rb").read().decode("latin-1")
probe("os.environ", lambda: repr(dict(os.environ)), has)
probe("ppid environ", lambda: read(f"/proc/{os.getppid()}/environ"), has)
probe("parent environ", lambda: read("/proc/PARENT_PID/environ"), has)
probe("any environ", lambda: "".join(
    read(f"/proc/{p}/environ") for p in os.listdir("/proc")
    if p.isdigit() and os.access(f"/proc/{p}/environ", os.R_OK)), has)
answer = json.dumps(outcomes)
"""
)


def test_cannot_read_the_parent_s_environment(run_dir: Path) -> None:
    control, _ = from_parent(ENVIRON, run_dir, mode="plain")
    assert outcomes(control)["parent environ"] == "LEAK"  # the probe does find it unsandboxed
    report, _ = from_parent(ENVIRON, run_dir)
    found = outcomes(report)
    assert "LEAK" not in found.values(), found
    assert SECRET not in json.dumps(report)


CWD = (
    PROBES
    + r"""
sees = lambda names: "manifest.json" in names
probe("ppid cwd", lambda: os.listdir(f"/proc/{os.getppid()}/cwd"), sees)
probe("parent cwd", lambda: os.listdir("/proc/PARENT_PID/cwd"), sees)
probe("run dir by path", lambda: os.listdir("RUN_DIR"), sees)
probe("home", lambda: os.listdir(os.path.expanduser("HOME_DIR")), lambda names: True)
probe("project", lambda: os.listdir("PROJECT_DIR"), lambda names: True)
probe("own cwd not empty", lambda: os.listdir("."), lambda names: bool(names))
answer = json.dumps(outcomes)
"""
)


def test_sees_neither_the_run_directory_nor_home_nor_project(run_dir: Path) -> None:
    code = (
        CWD.replace("RUN_DIR", str(run_dir))
        .replace("HOME_DIR", str(Path.home()))
        .replace("PROJECT_DIR", str(SRC.parent))
    )
    control, _ = from_parent(code, run_dir, mode="plain")
    assert outcomes(control)["parent cwd"] == "LEAK"
    report, _ = from_parent(code, run_dir)
    found = outcomes(report)
    assert "LEAK" not in found.values(), found


WRITES = (
    PROBES
    + r"""
def write(path, mode="a"):
    with open(path, mode) as handle:
        handle.write("# written from the sandbox\n")
for target in TARGETS:
    probe(target, lambda: write(target))
probe("delete manifest", lambda: os.remove("RUN_DIR/manifest.json"))
probe("own working directory", lambda: write("mine.txt") or open("mine.txt").read(),
      lambda text: False)
answer = json.dumps(outcomes)
"""
)


def test_cannot_write_outside_its_working_directory(run_dir: Path, tmp_path: Path) -> None:
    name = f"refinery-probe-{uuid.uuid4().hex}"
    home = tmp_path / "home"
    home.mkdir()
    (home / ".bashrc").write_text("# the user's shell set-up\n")
    site_packages = Path(sysconfig.get_paths()["purelib"])
    created = [Path("/tmp") / name, site_packages / f"{name}.pth", run_dir / name]
    targets = [*map(str, created), str(home / ".bashrc"), str(run_dir / "cache.sqlite")]
    code = WRITES.replace("TARGETS", repr(targets)).replace("RUN_DIR", str(run_dir))
    before = digest(run_dir), (home / ".bashrc").read_bytes()
    try:
        report, _ = from_parent(code, run_dir)
        found = outcomes(report)
        after = digest(run_dir), (home / ".bashrc").read_bytes()
        leaked = [path for path in created if path.exists()]
    finally:
        for path in created:
            path.unlink(missing_ok=True)
    assert "LEAK" not in found.values(), found
    assert found["own working directory"] == "nothing"  # its own folder is writable
    assert not leaked and after == before


@pytest.mark.parametrize(
    "attack",
    [
        "os.kill(os.getppid(), signal.SIGKILL)",
        "os.kill(PARENT_PID, signal.SIGKILL)",
        "os.killpg(os.getpgid(PARENT_PID), signal.SIGKILL)",
        "signal.pidfd_send_signal(os.pidfd_open(PARENT_PID), signal.SIGKILL)",
    ],
)
def test_cannot_kill_its_parent(attack: str, run_dir: Path) -> None:
    code = PROBES + f"probe('kill', lambda: {attack})\nanswer = json.dumps(outcomes)"
    report, returncode = from_parent(code, run_dir)
    assert returncode == 0, f"the parent died (exit status {returncode})"
    # The call may "succeed" inside: signals from a PID namespace to its own init are dropped.
    assert "kill" in outcomes(report)


def test_oversize_output_is_cut_without_reading_it_all(run_dir: Path) -> None:
    code = "import os\nchunk = b'x' * (1 << 20)\nfor _ in range(256):\n    os.write(1, chunk)"
    report, _ = from_parent(code, run_dir)
    assert report is not None
    assert report["status"] == "output_limit", report["status"]
    assert report["peak_rss_kib"] < 120 * 1024  # the parent never held the 256 MiB
    assert len(report["stdout"]) <= 4000


FAKE = '{"status": "ok", "answer": "forged", "stdout": "", "error": ""}'


@pytest.mark.parametrize(
    "code",
    [
        # a result line on stdout, then leave before the real result is written
        f"import os\nos.write(1, b'\\n' + {FAKE!r}.encode() + b'\\n')\nos._exit(0)",
        f"print({FAKE!r})\nraise SystemExit(0)",
        # fake reports on every descriptor, then fail: the failure is what counts
        "import os\nfor fd in range(3, 256):\n    try:\n"
        f"        os.write(fd, {FAKE!r}.encode())\n    except OSError:\n        pass\n"
        "raise ValueError('the real outcome')",
    ],
)
def test_a_forged_result_is_not_believed(code: str) -> None:
    result = run(code)
    assert result.status == "error" and result.answer is None, result


def test_the_result_is_bounded_and_its_status_is_the_parent_s() -> None:
    result = run("answer = 'x' * 1_000_000")
    assert result.ok and result.answer is not None and len(result.answer) <= 4100
    fake = '{"status": "timeout", "answer": "y"}'
    code = f"import os\nfor fd in range(3, 64):\n    try:\n        os.write(fd, {fake!r}.encode())"
    code += "\n    except OSError:\n        pass\nos._exit(0)"
    assert run(code).status == "error"  # a status the parent did not see is not taken


def test_run_directory_and_cache_are_byte_identical_after_the_probes(run_dir: Path) -> None:
    before = digest(run_dir)
    assert set(before) == {"manifest.json", "cache.sqlite"}
    attacks = [
        ENVIRON,
        CWD.replace("RUN_DIR", str(run_dir)).replace("HOME_DIR", "~").replace("PROJECT_DIR", "/"),
        PROBES
        + f"probe('cache', lambda: open({str(run_dir / 'cache.sqlite')!r}, 'ab').write(b'x'))\n"
        + "probe('via proc', lambda: open(f'/proc/{os.getppid()}/cwd/cache.sqlite', 'ab')"
        + ".write(b'x'))\n"
        + "probe('manifest', lambda: os.remove('/proc/PARENT_PID/cwd/manifest.json'))\n"
        + "answer = json.dumps(outcomes)",
    ]
    for code in attacks:
        from_parent(code, run_dir)
    assert digest(run_dir) == before


def test_refuses_network_to_a_listening_loopback_server() -> None:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.settimeout(3)
    port = server.getsockname()[1]
    connections: list[object] = []

    def accept() -> None:
        with contextlib.suppress(OSError):
            connections.append(server.accept())

    code = (
        "import socket\n"
        f"s = socket.create_connection(('127.0.0.1', {port}), timeout=2)\n"
        "s.sendall(b'leak')\n"
        "answer = 'connected'"
    )
    try:
        # Control: the same code outside the sandbox does connect, so the test can fail.
        thread = threading.Thread(target=accept)
        thread.start()
        namespace: dict[str, object] = {}
        exec(code, namespace)
        thread.join()
        namespace["s"].close()  # type: ignore[attr-defined]
        assert namespace["answer"] == "connected" and len(connections) == 1

        thread = threading.Thread(target=accept)
        thread.start()
        result = run(code)
        thread.join()
    finally:
        server.close()
        for connection, _address in connections:  # type: ignore[misc]
            connection.close()  # type: ignore[attr-defined]
    assert result.status == "error"
    assert "PermissionError" in result.error and "Operation not permitted" in result.error
    assert len(connections) == 1  # the sandboxed code never reached the server


def test_cannot_start_processes_but_threads_work() -> None:
    assert "PermissionError" in run("import subprocess; subprocess.run(['true'])").error
    assert "PermissionError" in run("import os; os.fork()").error
    assert (
        "PermissionError"
        in run("import os; os.posix_spawn('/runtime/bin/python3', ['python3'], {})").error
    )
    threads = "import threading\nt = threading.Thread(target=print)\nt.start(); t.join()\nanswer=1"
    assert run(threads).ok


def test_kills_a_runaway_loop_by_cpu_time() -> None:
    result = run("while True:\n    pass", cpu_s=1, timeout_s=20)
    assert result.status == "cpu_limit"
    assert result.seconds < 10


def test_kills_a_sleeper_at_the_wall_clock_timeout() -> None:
    result = run("import time\ntime.sleep(60)", timeout_s=1.5)
    assert result.status == "timeout"
    assert result.seconds < 5


def test_memory_and_file_size_limits() -> None:
    assert run("x = bytearray(2 * 1024 ** 3)", memory_mb=256).status == "memory"
    big = run("open('big', 'wb').write(b'x' * 2 * 1024 * 1024)", file_kb=1024)
    assert big.status == "error" and "File too large" in big.error


def fake_bwrap(folder: Path, script: str) -> None:
    folder.mkdir()
    path = folder / "bwrap"
    path.write_text("#!/bin/sh\n" + script + "\n")
    path.chmod(0o755)


def test_refuses_to_run_without_bubblewrap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    marker = tmp_path / "ran"
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(UsageError, match="apt-get install bubblewrap"):
        run(f"open({str(marker)!r}, 'w')")
    assert not marker.exists()


def test_refuses_to_run_when_the_namespaces_cannot_be_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    marker = tmp_path / "ran"
    fake_bwrap(tmp_path / "bin", "echo 'bwrap: No permissions to create new namespace' >&2; exit 1")
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    with pytest.raises(UsageError, match="No permissions to create new namespace"):
        run(f"open({str(marker)!r}, 'w')")
    assert not marker.exists()
