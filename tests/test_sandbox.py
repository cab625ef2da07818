"""The sandbox refuses network and process creation and enforces its limits."""

import asyncio
import contextlib
import socket
import threading

import pytest

from datarefinery.sandbox import SandboxResult, run_python


def run(code: str, **limits: float) -> SandboxResult:
    return asyncio.run(run_python(code, **limits))  # type: ignore[arg-type]


def test_result_variable_and_printed_output() -> None:
    assert run("answer = 6 * 7").output() == "42"
    printed = run("print('x'); print(2 + 3)")
    assert printed.ok and printed.output() == "5"
    failed = run("1 / 0")
    assert failed.status == "error" and "ZeroDivisionError" in failed.error


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
        assert namespace["answer"] == "connected" and len(connections) == 1

        thread = threading.Thread(target=accept)
        thread.start()
        result = run(code)
        thread.join()
    finally:
        server.close()
    assert result.status == "error"
    assert "PermissionError" in result.error and "Operation not permitted" in result.error
    assert len(connections) == 1  # the sandboxed code never reached the server


def test_cannot_start_processes_but_threads_work() -> None:
    assert "PermissionError" in run("import subprocess; subprocess.run(['true'])").error
    assert "PermissionError" in run("import os; os.fork()").error
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


def test_memory_limit() -> None:
    result = run("x = bytearray(2 * 1024 ** 3)", memory_mb=256)
    assert result.status == "memory"


@pytest.mark.parametrize("machine", ["riscv64"])
def test_unsupported_platform_runs_nothing(machine: str) -> None:
    from datarefinery.errors import UsageError
    from datarefinery.sandbox import seccomp_program

    with pytest.raises(UsageError, match="nothing is executed"):
        seccomp_program(machine)
