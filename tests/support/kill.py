"""Killing a real ``refinery run`` with SIGKILL at a chosen point (after so many shards of a step
were committed), for the resume-after-crash tests."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from tests.support.cli import LEAN, REFINERY


def committed(step_dir: Path) -> int:
    return len(list(step_dir.glob("*.done"))) if step_dir.exists() else 0


def kill_after_commits(
    spec: Path, out: Path, step_dir: str, commits: int, delay_s: float, timeout_s: float = 300
) -> bool:
    """Start ``refinery run SPEC -o OUT``, wait until ``OUT/steps/<step_dir>`` holds ``commits``
    committed shards (0: do not wait), sleep ``delay_s`` and SIGKILL it. Returns whether the kill
    hit a running process (False: the run had already ended)."""
    process = subprocess.Popen(
        [*REFINERY, "run", str(spec), "-o", str(out), "-q", *LEAN],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ},
    )
    deadline = time.monotonic() + timeout_s
    try:
        while committed(out / "steps" / step_dir) < commits and process.poll() is None:
            assert time.monotonic() < deadline, "the run did not reach the kill point in time"
            time.sleep(0.005)
        time.sleep(delay_s)
        alive = process.poll() is None
        process.send_signal(signal.SIGKILL)
    finally:
        process.kill()
        process.wait()
    return alive
