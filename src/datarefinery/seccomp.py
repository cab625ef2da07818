"""The seccomp filter the sandbox's launcher installs before it runs generated code: a second
layer under the namespaces (see :mod:`datarefinery.sandbox`). It refuses, with EPERM, the calls
that open connections, start programs or processes (threads stay allowed), reach into other
processes, or build new namespaces and mounts, and kills a process that uses another syscall ABI.
"""

from __future__ import annotations

import platform
import sys

from datarefinery.errors import UsageError

# seccomp / BPF constants (linux/seccomp.h, linux/filter.h, linux/audit.h)
_RET_ALLOW = 0x7FFF0000
_RET_ERRNO = 0x00050000
_RET_KILL = 0x80000000
_EPERM, _ENOSYS = 1, 38
_CLONE_THREAD = 0x00010000
_DENIED_X86_64 = [
    *(41, 425),  # socket, io_uring_setup
    *(59, 322, 57, 58),  # execve, execveat, fork, vfork
    *(101, 310, 311, 434, 438),  # ptrace, process_vm_readv/writev, pidfd_open, pidfd_getfd
    *(272, 308, 165, 321, 298, 323),  # unshare, setns, mount, bpf, perf_event_open, userfaultfd
    *(248, 249, 250),  # add_key, request_key, keyctl
]
_DENIED_AARCH64 = [  # the same calls (aarch64 has no fork or vfork)
    *(198, 425),
    *(221, 281),
    *(117, 270, 271, 434, 438),
    *(97, 268, 40, 280, 241, 282),
    *(217, 218, 219),
]
_ARCHES = {
    # machine: (AUDIT_ARCH, denied syscalls, clone, clone3)
    "x86_64": (0xC000003E, _DENIED_X86_64, 56, 435),
    "aarch64": (0xC00000B7, _DENIED_AARCH64, 220, 435),
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
