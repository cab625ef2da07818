"""Runs against a real OpenAI-compatible server (llama-cpp-python's, on loopback, started by the
``llama_server`` fixture): structured output, cache, faults injected by a proxy, and secrets."""

import asyncio
import json
import logging
from pathlib import Path

import pytest

import datarefinery
from datarefinery.executors.local import LocalExecutor
from datarefinery.llm.base import Message, Request, SamplingParams
from datarefinery.llm.openai_compat import OpenAICompatBackend
from tests.conftest import SERVER_KEY_ENV as KEY_ENV
from tests.conftest import Server
from tests.support.cli import refinery, write_spec
from tests.support.faultproxy import FaultProxy
from tests.support.specs import sentiment_spec
from tests.support.texts import HARD_TEXTS

pytestmark = pytest.mark.slow


def server_spec(base_url: str, server: Server, **llm: object) -> dict:  # type: ignore[type-arg]
    return sentiment_spec(
        count=3,
        backend="openai",
        base_url=base_url,
        model=server.model,
        api_key_env=KEY_ENV,
        **llm,
    )


def test_structured_generation_through_the_server(
    llama_server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_ENV, llama_server.api_key)
    spec = server_spec(llama_server.base_url, llama_server)
    result = datarefinery.run(spec, tmp_path)
    assert result.status == "complete"
    records = [json.loads(line) for line in result.dataset_path.read_text().splitlines()]
    assert len(records) + result.rejected_size == 6
    assert len(records) >= 4
    for record in records:
        assert 10 <= len(record["fields"]["text"]) <= 160
        assert (
            record["provenance"]["model"] == f"openai:{llama_server.base_url}|{llama_server.model}"
        )
    again = datarefinery.run(spec, tmp_path, fresh=False)
    assert again.manifest["engine"]["backend_calls"] == 0


@pytest.mark.parametrize("executor", ["local", "ray"])
def test_faults_are_retried_and_every_record_is_accounted_for(
    llama_server: Server,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
    executor: str,
) -> None:
    """On Ray, a worker actor calls through the proxy; the retries it counts must reach the
    driver's manifest, and the key it was given must not reach Ray's own logs. (One worker: the
    server answers one request at a time, so a second would only double the latency.)"""
    chosen: str | LocalExecutor = executor
    if executor == "ray":
        request.getfixturevalue("ray_cluster")
        from datarefinery.executors.ray import RayExecutor

        chosen = RayExecutor(workers=1)
    monkeypatch.setenv(KEY_ENV, llama_server.api_key)
    upstream = llama_server.base_url.removesuffix("/v1")
    # Every kind of fault once at the start, then 30% of requests at random.
    schedule = ("429", None, "500", None, "hang", None, "reset")
    # The timeout leaves room for a slow answer on a loaded machine; a hang outlasts it.
    with FaultProxy(upstream, fault_rate=0.3, hang_s=12.0, seed=4, schedule=schedule) as proxy:
        spec = server_spec(
            proxy.base_url, llama_server, concurrency=1, timeout_s=10.0, max_retries=8
        )
        spec["task"]["fields"]["text"]["max_chars"] = 100
        result = datarefinery.run(spec, tmp_path, executor=chosen)
    assert result.status == "complete", result.message
    assert result.manifest["executor"] == executor
    assert result.dataset_size + result.rejected_size == 6
    injected = {k: v for k, v in proxy.counts.items() if k != "forwarded"}
    assert set(injected) == {"429", "500", "hang", "reset"}, proxy.counts
    # Every injected fault was retried (on a loaded machine a slow answer may time out, too).
    assert result.manifest["engine"]["retries"] >= sum(injected.values())
    ids = [json.loads(line)["id"] for line in result.dataset_path.read_text().splitlines()]
    assert len(ids) == len(set(ids))
    if executor == "ray":
        import ray

        context = ray.get_runtime_context()
        session = Path(context.get_temp_dir()) / context.get_session_name()
        assert (session / "logs").is_dir()
        for path in (session / "logs").rglob("*"):
            if path.is_file():
                assert llama_server.api_key.encode() not in path.read_bytes(), f"key in {path}"


def test_api_key_never_reaches_logs_files_or_output(
    llama_server: Server, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    secret = llama_server.api_key
    upstream = llama_server.base_url.removesuffix("/v1")
    with FaultProxy(upstream, fault_rate=0.5, seed=1, faults=("429", "500")) as proxy:
        spec_path = write_spec(tmp_path / "spec.yaml", server_spec(proxy.base_url, llama_server))
        completed = refinery(
            "run", spec_path, "-o", tmp_path / "out", "--verbose", env={KEY_ENV: secret}
        )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "retry" in completed.stderr  # --verbose logged the injected failures...
    assert secret not in completed.stdout + completed.stderr  # ...without the key
    for path in (tmp_path / "out").rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), f"key found in {path}"
    # The same holds in-process, with every logger at DEBUG.
    caplog.set_level(logging.DEBUG)
    import os

    os.environ[KEY_ENV] = secret
    try:
        datarefinery.run(server_spec(llama_server.base_url, llama_server), tmp_path / "again")
    finally:
        del os.environ[KEY_ENV]
    assert secret not in caplog.text


def test_wrong_key_stops_the_run_with_a_clear_error(llama_server: Server, tmp_path: Path) -> None:
    spec_path = write_spec(tmp_path / "spec.yaml", server_spec(llama_server.base_url, llama_server))
    completed = refinery("run", spec_path, "-o", tmp_path / "out", "-q", env={KEY_ENV: "sk-wrong"})
    assert completed.returncode == 3
    assert "HTTP 401" in completed.stdout
    assert "sk-wrong" not in completed.stdout + completed.stderr


def test_the_byte_bound_holds_for_what_the_server_counts(
    llama_server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The prompt tokens the server reports, chat template and default system prompt included,
    never exceed the bound the budget reserves, for text of every kind and several turns."""
    monkeypatch.setenv(KEY_ENV, llama_server.api_key)
    backend = OpenAICompatBackend(
        base_url=llama_server.base_url, model=llama_server.model, api_key_env=KEY_ENV
    )

    async def check() -> list[tuple[int, int]]:
        pairs = []
        for turns in (1, 3):
            for text in HARD_TEXTS:
                request = Request(
                    messages=tuple(
                        Message(role, text)  # type: ignore[arg-type]
                        for role in ("user", "assistant", "user")[:turns]
                    ),
                    params=SamplingParams(max_tokens=1, temperature=0),
                )
                bound = await backend.prompt_token_bound(request)
                response = await backend.complete(request)
                pairs.append((response.usage.prompt_tokens, bound))
        await backend.aclose()
        return pairs

    pairs = asyncio.run(check())
    assert all(0 < reported <= bound for reported, bound in pairs), pairs
