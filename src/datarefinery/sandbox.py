"""Running generated Python in a sandboxed subprocess: no network, no child processes, CPU-time,
memory and file-size limits, and a wall-clock timeout.

The child is ``python -I`` running a small launcher that, before it reads the untrusted code,
lowers its own rlimits (``RLIMIT_CPU``, ``RLIMIT_AS``, ``RLIMIT_FSIZE``, ``RLIMIT_CORE``) and
installs a seccomp filter (kernel-enforced, no root needed, cannot be undone by the child) that
makes ``socket()``, ``io_uring_setup``, ``execve``, ``fork``, non-thread ``clone`` and ``ptrace``
fail with EPERM. So the code cannot open a connection of any kind, start a program, or escape its
limits. It runs in an empty temporary directory with an empty environment; the parent kills the
whole process group at the timeout. Only Linux on x86-64 and aarch64 is supported: elsewhere
nothing runs (an error, never unsandboxed execution).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import platform
import signal
import sys
import tempfile
import time
from dataclasses import dataclass

from datarefinery.errors import UsageError

# The launcher is a string (not a module file) so that the child imports nothing from this
# package: ``-I`` ignores the environment, user site-packages and the current directory.
_LAUNCHER = r"""
import ctypes, io, json, resource, struct, sys, traceback
spec = json.loads(sys.stdin.readline())
mem = spec["memory_mb"] * 1024 * 1024
resource.setrlimit(resource.RLIMIT_CPU, (spec["cpu_s"], spec["cpu_s"] + 1))
resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
resource.setrlimit(resource.RLIMIT_FSIZE, (spec["file_kb"] * 1024,) * 2)
resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
libc = ctypes.CDLL(None, use_errno=True)
prog = bytes.fromhex(spec["bpf"])
count = len(prog) // 8
buffer = ctypes.create_string_buffer(prog, len(prog))
class FProg(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]
fprog = FProg(count, ctypes.addressof(buffer))
if libc.prctl(38, 1, 0, 0, 0) != 0 or libc.prctl(22, 2, ctypes.byref(fprog), 0, 0) != 0:
    error = "seccomp: errno %d" % ctypes.get_errno()
    print(json.dumps({"status": "sandbox_failed", "error": error}))
    sys.exit(0)
code = sys.stdin.read()
out = io.StringIO()
real_stdout, sys.stdout = sys.stdout, out
namespace = {"__name__": "__main__"}
result = {"status": "ok"}
try:
    exec(compile(code, "<generated>", "exec"), namespace)
except MemoryError:
    result = {"status": "memory", "error": "MemoryError"}
except BaseException as exc:
    result = {"status": "error", "error": "".join(traceback.format_exception_only(exc)).strip()}
sys.stdout = real_stdout
value = namespace.get(spec["result_var"])
result["answer"] = None if value is None else str(value)
result["stdout"] = out.getvalue()[-4000:]
real_stdout.write("\n" + json.dumps(result) + "\n")
"""

# seccomp / BPF constants (linux/seccomp.h, linux/filter.h, linux/audit.h)
_RET_ALLOW = 0x7FFF0000
_RET_ERRNO = 0x00050000
_RET_KILL = 0x80000000
_EPERM, _ENOSYS = 1, 38
_CLONE_THREAD = 0x00010000
_ARCHES = {
    # machine: (AUDIT_ARCH, denied syscalls, clone, clone3)
    "x86_64": (0xC000003E, [41, 425, 59, 322, 57, 58, 101], 56, 435),
    "aarch64": (0xC00000B7, [198, 425, 221, 281, 117], 220, 435),
}


def _insn(code: int, jt: int, jf: int, k: int) -> bytes:
    return int.to_bytes(code, 2, "little") + bytes([jt, jf]) + int.to_bytes(k, 4, "little")


def seccomp_program(machine: str | None = None) -> bytes:
    """The BPF filter the child installs (raw ``struct sock_filter`` array)."""
    machine = machine or platform.machine()
    if sys.platform != "linux" or machine not in _ARCHES:
        raise UsageError(
            f"running generated code needs the Linux sandbox (x86_64 or aarch64); this is "
            f"{sys.platform}/{machine}, so nothing is executed"
        )
    arch, denied, clone, clone3 = _ARCHES[machine]
    ld_w_abs, jeq, jset, jge, ret = 0x20, 0x15, 0x45, 0x35, 0x06
    prog = [
        _insn(ld_w_abs, 0, 0, 4),  # seccomp_data.arch
        _insn(jeq, 1, 0, arch),
        _insn(ret, 0, 0, _RET_KILL),
        _insn(ld_w_abs, 0, 0, 0),  # seccomp_data.nr
        _insn(jge, 0, 1, 0x40000000),  # x32 ABI numbers: refuse
        _insn(ret, 0, 0, _RET_ERRNO | _EPERM),
        _insn(jeq, 0, 1, clone3),  # ENOSYS makes libc fall back to clone(), checked below
        _insn(ret, 0, 0, _RET_ERRNO | _ENOSYS),
        _insn(jeq, 0, 4, clone),
        _insn(ld_w_abs, 0, 0, 16),  # clone flags (args[0], low word)
        _insn(jset, 0, 1, _CLONE_THREAD),
        _insn(ret, 0, 0, _RET_ALLOW),  # a thread
        _insn(ret, 0, 0, _RET_ERRNO | _EPERM),  # a new process
    ]
    for number in denied:
        prog += [_insn(jeq, 0, 1, number), _insn(ret, 0, 0, _RET_ERRNO | _EPERM)]
    prog.append(_insn(ret, 0, 0, _RET_ALLOW))
    return b"".join(prog)


@dataclass(frozen=True)
class SandboxResult:
    """``status``: ok | error (an exception; ``error`` has it) | memory | timeout (wall clock) |
    cpu_limit | killed (another signal) | sandbox_failed. ``answer`` is the string value of the
    result variable when the code set it."""

    status: str
    answer: str | None = None
    stdout: str = ""
    error: str = ""
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def output(self) -> str | None:
        """The result variable, else the last non-empty line printed."""
        if self.answer is not None:
            return self.answer
        lines = [line for line in self.stdout.splitlines() if line.strip()]
        return lines[-1].strip() if lines else None


async def run_python(
    code: str,
    *,
    timeout_s: float = 10.0,
    cpu_s: int = 5,
    memory_mb: int = 512,
    file_kb: int = 1024,
    result_var: str = "answer",
) -> SandboxResult:
    """Run ``code`` in the sandbox and report how it ended (never raises for the code's faults)."""
    spec = {
        "cpu_s": int(cpu_s),
        "memory_mb": int(memory_mb),
        "file_kb": int(file_kb),
        "result_var": result_var,
        "bpf": seccomp_program().hex(),
    }
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="refinery-sandbox-") as workdir:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-I",
            "-c",
            _LAUNCHER,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=workdir,
            env={"PATH": os.defpath, "PYTHONHASHSEED": "0", "LC_ALL": "C.UTF-8"},
            start_new_session=True,  # its own process group, killed whole at the timeout
        )
        payload = (json.dumps(spec) + "\n" + code).encode("utf-8")
        try:
            stdout, stderr = await asyncio.wait_for(process.communicate(payload), timeout_s)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            await process.wait()
            seconds = time.perf_counter() - started
            return SandboxResult("timeout", error=f"killed after {timeout_s:g} s", seconds=seconds)
    seconds = time.perf_counter() - started
    returncode = process.returncode or 0
    if returncode < 0:
        signum = -returncode
        status = "cpu_limit" if signum in (signal.SIGXCPU, signal.SIGKILL) else "killed"
        name = signal.Signals(signum).name
        return SandboxResult(status, error=f"terminated by {name}", seconds=seconds)
    last = stdout.decode("utf-8", "replace").rstrip().rsplit("\n", 1)[-1]
    try:
        data = json.loads(last)
    except json.JSONDecodeError:
        detail = stderr.decode("utf-8", "replace")[-500:]
        return SandboxResult("error", error=f"exit {returncode}: {detail}", seconds=seconds)
    return SandboxResult(
        status=str(data["status"]),
        answer=data.get("answer"),
        stdout=str(data.get("stdout", "")),
        error=str(data.get("error", "")),
        seconds=seconds,
    )
