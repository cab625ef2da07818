"""Running generated Python in a sandbox built from the kernel's namespaces (through bubblewrap),
rlimits and a seccomp filter.

What the code sees: an empty, private working directory (``/sandbox``, a size-limited tmpfs that
vanishes with the run) and, read-only, the interpreter with its standard library (at ``/runtime``;
no site-packages, neither the venv's nor the base install's) and the system's shared-library
directories. Nothing else exists in its mount namespace: no home directory, project, run directory,
``/tmp`` or ``/proc``, and all but its working directory is read-only. Its own PID namespace (no
other process to see or signal), network namespace (a loopback only), user, IPC, UTS and cgroup
namespaces; an empty environment; no capabilities; no further user namespaces; a new session (no
terminal to push keystrokes into); bubblewrap kills it when its parent goes.

Inside, a small launcher sets rlimits (CPU time, address space, file size, no core, 32 tasks, 64
open files) and installs a seccomp filter, a second layer (:mod:`datarefinery.seccomp`): no
sockets, programs or child processes (threads are allowed), no ptrace or ``process_vm_*`` or
``pidfd_getfd``, no ``unshare``/``setns``/``mount``. Then it runs the code. The kernel does not
apply the task limit to root's processes; run as root, the code still gets one process (fork is
refused), and its threads are bounded by the address-space limit only. The parent kills the
sandbox at the wall-clock timeout.

The result cannot be forged. The launcher and the code share a process, so nothing the launcher
holds (a descriptor, a nonce) is out of the code's reach. So the parent trusts only what the code
cannot fake, and treats the rest as the code's own statement. Outside the sandbox, the parent
judges the timeout, output overflow and death by a signal (bubblewrap passes the exit status on).
Printed output is never parsed: it is read up to ``STDOUT_BYTES``, and the sandbox is killed past
that. The launcher's report (status ``ok``/``error``/``memory``, the result variable as a string,
the exception) goes to a separate descriptor. It is read up to ``REPORT_BYTES`` and counts only
when the process then exits 0 and the channel holds exactly one well-formed report. A result
line on stdout, extra bytes, another status, or an exit before the launcher reports make the run
an ``error``. Code that writes a report of its own and exits achieves no more than setting
``answer``: the answer is untrusted data, cut to ``ANSWER_CHARS`` here and shorter by callers.

Fail closed: without ``bwrap`` (Debian/Ubuntu: ``apt-get install bubblewrap``, 0.8 or newer), with
user namespaces disabled, or on a platform other than Linux on x86-64 or aarch64, nothing runs and
the caller gets a :class:`~datarefinery.errors.UsageError` that says why.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from datarefinery.errors import UsageError
from datarefinery.seccomp import seccomp_program

STDOUT_BYTES = 1 << 20  # printed output read before the sandbox is killed
REPORT_BYTES = 1 << 16
ANSWER_CHARS = 4000
STDOUT_CHARS = 4000  # the tail of the printed output kept in the result
_PROCESSES = 32  # tasks (threads) in the sandbox's user namespace (RLIMIT_NPROC)
_OPEN_FILES = 64
_WORKDIR = "/sandbox"
_RUNTIME = "/runtime"
_REPORTED = {"ok", "error", "memory"}  # what the launcher may say; the parent judges the rest

# Runs inside the sandbox as `python -I -S -B -c`. It reads its spec and the code from stdin, keeps
# stderr (the parent's report channel) on a new descriptor, points 0 and 2 at /dev/null, then
# sets the limits and the filter, and only then compiles the code.
_LAUNCHER = r"""
import ctypes, json, os, resource, sys, traceback
spec = json.loads(sys.stdin.buffer.readline())
code = sys.stdin.buffer.read().decode("utf-8", "replace")
null = os.open("/dev/null", os.O_RDWR)
report = os.dup(2)
os.dup2(null, 0)
os.dup2(null, 2)
def send(result):
    try:
        sys.stdout.flush()
    except BaseException:
        pass
    os.write(report, json.dumps(result).encode())
    os._exit(0)
mem = spec["memory_mb"] * 1024 * 1024
resource.setrlimit(resource.RLIMIT_CPU, (spec["cpu_s"], spec["cpu_s"] + 1))
resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
resource.setrlimit(resource.RLIMIT_FSIZE, (spec["file_kb"] * 1024,) * 2)
resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
resource.setrlimit(resource.RLIMIT_NPROC, (spec["processes"],) * 2)
resource.setrlimit(resource.RLIMIT_NOFILE, (spec["open_files"],) * 2)
libc = ctypes.CDLL(None, use_errno=True)
prog = bytes.fromhex(spec["bpf"])
buffer = ctypes.create_string_buffer(prog, len(prog))
class FProg(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]
fprog = FProg(len(prog) // 8, ctypes.addressof(buffer))
if libc.prctl(38, 1, 0, 0, 0) != 0 or libc.prctl(22, 2, ctypes.byref(fprog), 0, 0) != 0:
    send({"status": "error", "error": "sandbox: seccomp errno %d" % ctypes.get_errno()})
namespace = {"__name__": "__main__"}
try:
    exec(compile(code, "<generated>", "exec"), namespace)
    value = namespace.get(spec["result_var"])
    result = {"status": "ok", "answer": None if value is None else str(value)[:spec["cap"]]}
except MemoryError:
    result = {"status": "memory", "error": "MemoryError"}
except BaseException as exc:
    error = "".join(traceback.format_exception_only(exc)).strip()
    result = {"status": "error", "error": error[-spec["cap"]:]}
send(result)
"""


@dataclass(frozen=True)
class SandboxResult:
    """``status``: ok | error (an exception, or no valid report; ``error`` says which) | memory |
    timeout (wall clock) | cpu_limit | killed (another signal) | output_limit (printed more than
    ``STDOUT_BYTES``). ``answer`` is the string value of the result variable when the code set
    it: untrusted, at most ``ANSWER_CHARS`` long.
    """

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


def clip(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, saying how much was cut (for untrusted output that
    goes into scores, details and logs).
    """
    if len(text) <= limit:
        return text
    return f"{text[:limit]}…[{len(text) - limit} more chars]"


def _library_binds() -> list[str]:
    """The system's shared-library directories, read-only, and the top-level links to them."""
    args: list[str] = []
    for top in ("/lib", "/lib64", "/lib32", "/libx32"):
        if os.path.islink(top):
            args += ["--symlink", os.readlink(top), top]
    multiarch = getattr(sys.implementation, "_multiarch", "")
    lib = f"lib/{multiarch}" if multiarch else "lib"
    seen: set[str] = set()
    for path in ("/lib64", "/usr/lib64", f"/{lib}", f"/usr/{lib}"):
        real = os.path.realpath(path)
        if os.path.isdir(real) and real not in seen:
            seen.add(real)
            args += ["--ro-bind", real, real]
    return args


def _runtime_binds() -> list[str]:
    """The interpreter, its shared library and its standard library, read-only under
    ``/runtime``, with the base install's site-packages hidden.
    """
    exe = os.path.realpath(getattr(sys, "_base_executable", None) or sys.executable)
    stdlib = os.path.dirname(os.path.realpath(os.__file__))
    inside = f"{_RUNTIME}/{sys.platlibdir}/python{sys.version_info[0]}.{sys.version_info[1]}"
    args = ["--ro-bind", exe, f"{_RUNTIME}/bin/python3", "--ro-bind", stdlib, inside]
    dynload = sysconfig.get_config_var("DESTSHARED")
    if dynload and os.path.isdir(dynload) and not os.path.realpath(dynload).startswith(stdlib):
        args += ["--ro-bind", dynload, f"{inside}/lib-dynload"]
    libdir, soname = sysconfig.get_config_var("LIBDIR"), sysconfig.get_config_var("INSTSONAME")
    if sysconfig.get_config_var("Py_ENABLE_SHARED") and libdir and soname:
        shared = os.path.join(libdir, soname)
        if os.path.exists(shared):
            args += ["--ro-bind", shared, f"{_RUNTIME}/lib/{soname}"]
            args += ["--setenv", "LD_LIBRARY_PATH", f"{_RUNTIME}/lib"]
    if os.path.isdir(os.path.join(stdlib, "site-packages")):
        args += ["--tmpfs", f"{inside}/site-packages", "--remount-ro", f"{inside}/site-packages"]
    return args


# Every namespace bubblewrap can make (--unshare-all only *tries* the user namespace: required
# here); no further user namespaces; killed with its parent; no terminal; no capabilities.
_ISOLATION = [
    *("--unshare-all", "--unshare-user", "--disable-userns", "--die-with-parent"),
    *("--new-session", "--cap-drop", "ALL", "--clearenv", "--setenv", "LC_ALL", "C.UTF-8"),
]


@functools.cache
def _base_command(bwrap: str) -> tuple[str, ...]:
    devices = ["--dev", "/dev", "--remount-ro", "/dev"]
    return (bwrap, *_ISOLATION, *_library_binds(), *_runtime_binds(), *devices)


def _command(bwrap: str, workdir_bytes: int) -> list[str]:
    workdir = ["--size", str(workdir_bytes), "--perms", "0700", "--tmpfs", _WORKDIR, "--chdir"]
    python = [f"{_RUNTIME}/bin/python3", "-I", "-S", "-B", "-c", _LAUNCHER]
    return [*_base_command(bwrap), *workdir, _WORKDIR, "--remount-ro", "/", "--", *python]


def _payload(code: str, cpu_s: int, memory_mb: int, file_kb: int, result_var: str) -> bytes:
    spec = {
        "cpu_s": int(cpu_s),
        "memory_mb": int(memory_mb),
        "file_kb": int(file_kb),
        "processes": _PROCESSES,
        "open_files": _OPEN_FILES,
        "result_var": result_var,
        "cap": ANSWER_CHARS,
        "bpf": seccomp_program().hex(),
    }
    return (json.dumps(spec) + "\n" + code).encode("utf-8", "replace")


_BWRAP_ENV = {"PATH": os.defpath, "LC_ALL": "C"}
_MISSING = (
    "running generated code needs bubblewrap (`bwrap`, 0.8 or newer) for its sandbox, and it is "
    "not on PATH: install it (Debian/Ubuntu: apt-get install bubblewrap; Fedora: dnf install "
    "bubblewrap) and run again. Nothing was executed."
)


@functools.cache
def _checked(bwrap: str) -> str:
    """Runs a one-line program through the whole sandbox once per process; raises when any
    layer cannot be set up (failures are not cached, so a fix takes effect on the next call).
    """
    done = subprocess.run(
        _command(bwrap, 1 << 20),
        input=_payload("answer = 'ready'", 5, 256, 64, "answer"),
        capture_output=True,
        env=_BWRAP_ENV,
        timeout=60,
        check=False,
    )
    result = _judge(done.returncode, done.stderr, done.stdout, 0.0)
    if result.answer != "ready":
        detail = clip((result.error or result.stdout).strip(), 600)
        raise UsageError(
            f"the sandbox for generated code cannot be set up with {bwrap}: {detail}. It needs "
            "bubblewrap 0.8 or newer and unprivileged user namespaces (if they are disabled: "
            "sysctl kernel.unprivileged_userns_clone=1, or on Ubuntu 24.04 an AppArmor profile "
            "that allows userns for bwrap). Nothing was executed."
        )
    return bwrap


def ensure_sandbox() -> str:
    """Check that the sandbox can run code here (once per process) and return the ``bwrap`` it
    uses; raise UsageError otherwise.
    """
    seccomp_program()
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        raise UsageError(_MISSING)
    return _checked(bwrap)


def _signal_of(returncode: int) -> int | None:
    # bubblewrap exits with 128 + the signal that ended the code; a negative code is bwrap's own
    signum = -returncode if returncode < 0 else returncode - 128
    return signum if signum in signal.valid_signals() and signum > 0 else None


def _judge(returncode: int, report: bytes, stdout: bytes, seconds: float) -> SandboxResult:
    """The verdict from the exit status and the report (see the module docstring)."""
    printed = stdout.decode("utf-8", "replace")[-STDOUT_CHARS:]
    signum = _signal_of(returncode)
    if signum is not None:
        status = "cpu_limit" if signum in (signal.SIGXCPU, signal.SIGKILL) else "killed"
        error = f"terminated by {signal.Signals(signum).name}"
        return SandboxResult(status, stdout=printed, error=error, seconds=seconds)
    data: Any = None
    with contextlib.suppress(ValueError):
        data = json.loads(report)
    valid = (
        returncode == 0
        and isinstance(data, dict)
        and data.get("status") in _REPORTED
        and isinstance(data.get("answer"), str | None)
        and isinstance(data.get("error", ""), str)
    )
    if not valid:
        seen = report.decode("utf-8", "replace").strip()
        what = f"an invalid report: {clip(seen, 300)}" if seen else "no report"
        error = f"the sandbox ended with exit status {returncode} and {what}"
        return SandboxResult("error", stdout=printed, error=error, seconds=seconds)
    answer = data.get("answer")
    return SandboxResult(
        status=str(data["status"]),
        answer=None if answer is None else answer[:ANSWER_CHARS],
        stdout=printed,
        error=clip(str(data.get("error", "")), ANSWER_CHARS),
        seconds=seconds,
    )


async def _read_bounded(
    stream: asyncio.StreamReader | None, limit: int, overflow: Callable[[], None]
) -> bytes:
    """Up to ``limit`` bytes; past that ``overflow`` is called (it kills the sandbox) and the rest
    is read to its end and dropped, so that the pipe closes.
    """
    assert stream is not None
    data = bytearray()
    while chunk := await stream.read(1 << 16):
        if len(data) + len(chunk) > limit:
            if len(data) <= limit:
                data += chunk
                del data[limit + 1 :]
                overflow()
            continue
        data += chunk
    return bytes(data[:limit])


async def run_python(
    code: str,
    *,
    timeout_s: float = 10.0,
    cpu_s: int = 5,
    memory_mb: int = 512,
    file_kb: int = 1024,
    result_var: str = "answer",
) -> SandboxResult:
    """Run ``code`` in the sandbox and report how it ended. Never raises for the code's faults;
    raises :class:`UsageError`, running nothing, when the sandbox cannot be set up.
    """
    # Why long: starting, feeding, reading (bounded) and judging the sandboxed process must share
    # one try/finally that kills it on every path
    bwrap = await asyncio.to_thread(ensure_sandbox)
    workdir_bytes = max(8 << 20, 4 * int(file_kb) * 1024)
    payload = _payload(code, cpu_s, memory_mb, file_kb, result_var)
    started = time.perf_counter()
    process = await asyncio.create_subprocess_exec(
        *_command(bwrap, workdir_bytes),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=_BWRAP_ENV,
    )
    overflowed: list[str] = []

    def stop(channel: str) -> Callable[[], None]:
        def kill() -> None:
            overflowed.append(channel)
            with contextlib.suppress(ProcessLookupError):
                process.kill()  # bwrap; the sandbox dies with it (--die-with-parent, PID 1 gone)

        return kill

    async def feed() -> None:
        assert process.stdin is not None
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            process.stdin.write(payload)
            await process.stdin.drain()
        process.stdin.close()

    def reading() -> list[Coroutine[Any, Any, bytes]]:
        return [
            _read_bounded(process.stdout, STDOUT_BYTES, stop("stdout")),
            _read_bounded(process.stderr, REPORT_BYTES, stop("report")),
        ]

    try:
        async with asyncio.timeout(timeout_s):
            _, stdout, report = await asyncio.gather(feed(), *reading())
            returncode = await process.wait()
    except TimeoutError:
        stop("timeout")()
        with contextlib.suppress(TimeoutError):  # read the pipes to their end so they close
            await asyncio.wait_for(asyncio.gather(process.wait(), *reading()), 10)
        seconds = time.perf_counter() - started
        return SandboxResult("timeout", error=f"killed after {timeout_s:g} s", seconds=seconds)
    finally:
        if process.returncode is None:  # cancelled: do not leave the sandbox running
            with contextlib.suppress(ProcessLookupError):
                process.kill()
    seconds = time.perf_counter() - started
    printed = stdout.decode("utf-8", "replace")[-STDOUT_CHARS:]
    if "stdout" in overflowed:
        error = f"printed more than {STDOUT_BYTES} bytes; the rest was not read"
        return SandboxResult("output_limit", stdout=printed, error=error, seconds=seconds)
    if overflowed:
        error = f"more than {REPORT_BYTES} bytes on the sandbox's report channel"
        return SandboxResult("error", stdout=printed, error=error, seconds=seconds)
    return _judge(returncode, report, stdout, seconds)
