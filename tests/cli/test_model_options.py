"""The model options every model-calling command shares: how they merge, their errors, --help."""

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from datarefinery.cli.app import app
from datarefinery.cli.model_options import llm_block_from_options
from datarefinery.errors import ConfigError, UsageError
from tests.conftest import SERVER_KEY_ENV as KEY_ENV
from tests.conftest import Server
from tests.support.cli import refinery, write_spec
from tests.support.specs import sentiment_spec

BASE = {"model": "default", "n_ctx": 4096, "temperature": 0.2, "concurrency": 8}
OPTIONS = ("--llm", "--model", "--base-url", "--api-key-env", "--threads", "--parallel", "--n-ctx")
COMMANDS = [
    ["run"],
    ["plan"],
    ["s3"],
    ["experiment", "s3"],
    ["refine", "pii"],
    ["refine", "detox"],
    ["refine", "code"],
    ["eval", "pii"],
    ["eval", "detox"],
]


def llm_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "llm.yaml"
    path.write_text(text)
    return path


def invoke(*args: str | Path) -> tuple[int, str]:
    result = CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": "200"})
    return result.exit_code, " ".join(result.output.split())


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_model_command_shows_the_model_options(command: list[str]) -> None:
    code, output = invoke(*command, "--help")
    assert code == 0
    assert "Model (any command that calls one)" in output
    for option in OPTIONS:
        assert option in output


def test_no_option_leaves_the_base_as_it_is() -> None:
    assert llm_block_from_options(base=BASE) is None


def test_the_shortcuts_override_the_file_which_overrides_the_base(tmp_path: Path) -> None:
    path = llm_file(tmp_path, "llm:\n  model: /m/a.gguf\n  temperature: 0.5\n  parallel: 2\n")
    chosen = llm_block_from_options(path, model="/m/b.gguf", threads=1, base=BASE)
    assert chosen == {
        **BASE,
        "model": "/m/b.gguf",
        "backend": "llamacpp",
        "temperature": 0.5,
        "parallel": 2,
        "n_threads": 1,
    }


def test_base_url_makes_a_server_block_keeping_the_shared_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MY_KEY", "sk-1")
    chosen = llm_block_from_options(
        model="qwen", base_url="http://s/v1", api_key_env="MY_KEY", parallel=3, base=BASE
    )
    assert chosen == {
        "backend": "openai",
        "model": "qwen",
        "base_url": "http://s/v1",
        "api_key_env": "MY_KEY",
        "temperature": 0.2,
        "concurrency": 3,
    }


def test_base_url_without_model_says_to_name_the_served_model() -> None:
    with pytest.raises(UsageError, match="--base-url needs --model NAME"):
        llm_block_from_options(base_url="http://s/v1", base=BASE)


def test_a_bad_llm_file_names_file_line_and_field(tmp_path: Path) -> None:
    path = llm_file(
        tmp_path, "llm:\n  backend: openai\n  model: q\n  base_url: http://s\n  n_ctx: 1\n"
    )
    with pytest.raises(
        ConfigError, match=rf"{path}, line 5, field llm.n_ctx: an option of backend"
    ):
        llm_block_from_options(path, base=BASE)


def test_a_missing_key_variable_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NO_SUCH_KEY_VAR", raising=False)
    with pytest.raises(UsageError, match="--api-key-env names the environment variable NO_SUCH"):
        llm_block_from_options(model="q", base_url="http://s/v1", api_key_env="NO_SUCH_KEY_VAR")
    path = llm_file(
        tmp_path,
        "llm:\n  backend: openai\n  model: q\n  base_url: http://s\n"
        "  api_key_env: NO_SUCH_KEY_VAR\n",
    )
    with pytest.raises(UsageError, match=r"llm.yaml \(llm.api_key_env\) names the environment"):
        llm_block_from_options(path)


def test_a_key_given_in_place_of_its_variable_is_not_echoed() -> None:
    with pytest.raises(UsageError, match="never the key itself") as caught:
        llm_block_from_options(model="q", base_url="http://s/v1", api_key_env="sk-live-123abc")
    assert "sk-live-123abc" not in str(caught.value)


def test_commands_exit_2_on_bad_model_options(tmp_path: Path) -> None:
    spec = write_spec(tmp_path / "spec.yaml", sentiment_spec())
    path = llm_file(tmp_path, "llm:\n  model: m.gguf\n  temperature: 7\n")
    code, output = invoke("run", spec, "-o", tmp_path / "out", "--llm", path)
    assert code == 2
    assert f"{path}, line 3, field llm.temperature: Input should be less than or equal to 2" in (
        output
    )
    assert not (tmp_path / "out").exists()
    code, output = invoke("eval", "pii", "--gold", tmp_path / "g.jsonl", "--model", "qwen")
    assert code == 2 and "needs --base-url URL" in output
    code, output = invoke("refine", "detox", spec, "-o", tmp_path / "o2", "--api-key-env", "K")
    assert code == 2 and "--api-key-env names the key of a server" in output


def gold_line(id: str, text: str, *values: tuple[str, str]) -> str:
    spans = [
        {"entity_type": kind, "start": text.index(v), "end": text.index(v) + len(v), "value": v}
        for kind, v in values
    ]
    return json.dumps({"id": id, "text": text, "spans": spans})


@pytest.mark.slow
def test_eval_pii_on_a_server_given_by_base_url(llama_server: Server, tmp_path: Path) -> None:
    """What a user with a vLLM / Ollama / llama.cpp server types: no spec, only the options."""
    gold = tmp_path / "gold.jsonl"
    gold.write_text(
        "\n".join(
            [
                gold_line(
                    "a", "Mail me at jo.marsh@example.org today.", ("EMAIL", "jo.marsh@example.org")
                ),
                gold_line("b", "Call 415-555-0134 after five.", ("PHONE", "415-555-0134")),
                gold_line(
                    "c", "Send the file to kim@example.net please.", ("EMAIL", "kim@example.net")
                ),
            ]
        )
        + "\n"
    )
    out = tmp_path / "figures.json"
    completed = refinery(
        *("eval", "pii", "--gold", gold, "--out", out, "--method", "pii_rewrite"),
        *("--detector", "regex", "--base-url", llama_server.base_url),
        *("--model", llama_server.model, "--api-key-env", KEY_ENV),
        env={KEY_ENV: llama_server.api_key},
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    figures = json.loads(out.read_text())
    method = figures["methods"]["pii_rewrite"]
    assert figures["records"] == 3 and method["status"] == "complete"
    for name in ("token_recall", "lenient_recall", "precision", "f1", "leaks", "records_per_s"):
        assert method[name] is not None
    assert figures["llm"]["backend"] == "openai" and figures["llm"]["api_key_env"] == KEY_ENV
    manifest = json.loads((Path(method["run_dir"]) / "manifest.json").read_text())
    assert manifest["model"]["backend"] == "openai"
    assert manifest["model"]["identity"] == f"{llama_server.base_url}|{llama_server.model}"
    assert manifest["engine"]["backend_calls"] >= 1
    # The key reached the server (it refuses requests without it) and nothing else.
    assert llama_server.api_key not in completed.stdout + completed.stderr
    assert llama_server.api_key not in out.read_text()
    assert llama_server.api_key not in json.dumps(manifest)
