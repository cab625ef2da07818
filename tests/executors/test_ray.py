"""The Ray executor on a local 2-CPU cluster started by the test session: the same dataset as the
local executor (including exact-duplicate rejection across shards), a shared cache, and a budget
and rate limit that hold for the whole cluster. The same on the real embedded model and through
the CLI is at the end; faults injected between workers and a real server are in test_server.py."""

import json
import time
from pathlib import Path
from typing import Any

import pytest

import datarefinery
from datarefinery.errors import (
    BackendError,
    BudgetExceededError,
    ConfigError,
    DatarefineryError,
    FatalBackendError,
    RequestRejectedError,
    RetryableBackendError,
    UsageError,
)
from datarefinery.llm.base import Request, Response, Usage
from datarefinery.llm.limits import estimate_prompt_tokens
from datarefinery.llm.scripted import ScriptedBackend
from tests.support.cli import LEAN, refinery, write_spec
from tests.support.specs import sentiment_spec

pytestmark = pytest.mark.slow

ray = pytest.importorskip("ray", reason="the Ray executor needs datarefinery[ray]")
from datarefinery.executors.ray import (  # noqa: E402
    RayExecutor,
    describe_failure,
    rebuild_failure,
)


def few_distinct(request: Request) -> str:
    """Only five different reviews per label, so most calls produce exact duplicates and the
    stateful duplicate rejection decides what is kept."""
    prompt = request.messages[-1].content
    label = "positive" if '"positive"' in prompt else "negative"
    return json.dumps({"text": f"A {label} review, variant {(request.seed or 0) % 5}."})


def two_step_spec(**llm: Any) -> dict[str, Any]:
    spec = sentiment_spec(count=12, shard_size=3, **llm)
    spec["steps"].append({"validate": {}})
    return spec


def read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def test_ray_gives_the_local_dataset_including_duplicate_rejection(
    ray_cluster: str, tmp_path: Path
) -> None:
    spec = two_step_spec()
    local = datarefinery.run(spec, tmp_path / "local", backend=ScriptedBackend(few_distinct))
    on_ray = datarefinery.run(
        spec,
        tmp_path / "ray",
        backend=ScriptedBackend(few_distinct, delay_s=0.01),
        executor=RayExecutor(workers=2),
    )
    assert on_ray.status == local.status == "complete"
    assert local.manifest["counts"]["rejected_by_reason"]["zero_shot:duplicate"] > 0
    assert read(tmp_path / "ray" / "dataset.jsonl") == read(tmp_path / "local" / "dataset.jsonl")
    assert read(tmp_path / "ray" / "rejected.jsonl") == read(tmp_path / "local" / "rejected.jsonl")
    assert on_ray.manifest["executor"] == "ray"
    assert on_ray.manifest["counts"] == local.manifest["counts"]
    # The workers' counters reach the driver's manifest.
    assert on_ray.manifest["engine"]["backend_calls"] == 24
    assert on_ray.usage == local.usage


def test_a_rerun_on_the_cluster_or_locally_answers_from_the_shared_cache(
    ray_cluster: str, tmp_path: Path
) -> None:
    spec = two_step_spec()
    first = datarefinery.run(
        spec, tmp_path, backend=ScriptedBackend(few_distinct), executor=RayExecutor(workers=2)
    )
    before = read(tmp_path / "dataset.jsonl")

    def forget_commits() -> None:
        for marker in (tmp_path / "steps").rglob("*.done"):
            marker.unlink()
        for marker in (tmp_path / "steps").rglob("_COMPLETE"):
            marker.unlink()

    forget_commits()
    again = datarefinery.run(
        spec, tmp_path, backend=ScriptedBackend(few_distinct), executor=RayExecutor(workers=2)
    )
    assert again.manifest["engine"]["backend_calls"] == 0
    assert again.manifest["engine"]["cache_hits"] == 24
    assert again.usage == first.usage  # nothing new was spent
    assert read(tmp_path / "dataset.jsonl") == before

    forget_commits()
    backend = ScriptedBackend(few_distinct)
    datarefinery.run(spec, tmp_path, backend=backend)  # the local executor, same cache file
    assert backend.requests == []
    assert read(tmp_path / "dataset.jsonl") == before


def priced_exactly(request: Request) -> Response:
    """A reply whose usage is exactly the engine's worst-case reservation for the call, so that
    a budget of X tokens lets calls worth X tokens through, whatever the timing."""
    prompt = estimate_prompt_tokens(request.prompt_chars())
    return Response(few_distinct(request), usage=Usage(prompt, request.params.max_tokens))


def test_the_budget_holds_for_the_whole_cluster_and_the_run_resumes(
    ray_cluster: str, tmp_path: Path
) -> None:
    def spec(**llm: Any) -> dict[str, Any]:
        built = sentiment_spec(count=10, shard_size=2, concurrency=2, **llm)
        built["steps"][0]["zero_shot"]["max_tokens"] = 20
        return built

    reference = datarefinery.run(spec(), tmp_path / "ref", backend=ScriptedBackend(priced_exactly))
    # Under half of what the run needs: per-worker budgets would let the two workers spend up to
    # twice this in total; the cluster's one budget must stop them below it.
    limit = int(reference.usage.total_tokens * 0.45)
    limited = spec(budget={"max_tokens": limit})
    stopped = datarefinery.run(
        limited,
        tmp_path / "out",
        backend=ScriptedBackend(priced_exactly, delay_s=0.02),
        executor=RayExecutor(workers=2),
    )
    assert stopped.status == "stopped", stopped.message
    assert "token budget reached" in stopped.message
    manifest = json.loads(read(tmp_path / "out" / "manifest.json"))
    spent = sum(manifest["usage_spent"])
    assert limit * 0.5 < spent <= limit
    assert stopped.usage.total_tokens == spent

    limited["llm"]["budget"]["max_tokens"] = 1_000_000
    resumed = datarefinery.run(
        limited, tmp_path / "out", backend=ScriptedBackend(priced_exactly), executor=RayExecutor()
    )
    assert resumed.status == "complete"
    assert read(tmp_path / "out" / "dataset.jsonl") == read(tmp_path / "ref" / "dataset.jsonl")
    # Calls answered before the stop come from the cache, so the two sessions together pay about
    # what one run does (a call answered in the instant of the stop may be paid again; one
    # cancelled with its shard may be missing from the stopped session's counters).
    calls = [s.manifest["engine"]["backend_calls"] for s in (stopped, resumed)]
    assert 18 <= sum(calls) <= 20 + 4, calls
    assert resumed.usage.total_tokens <= reference.usage.total_tokens * 1.2


def test_the_request_rate_limit_holds_for_the_whole_cluster(
    ray_cluster: str, tmp_path: Path
) -> None:
    # 130 calls at 120 requests/minute: the bucket lets 120 through at once, then 2 per second,
    # so the run needs about 5 s. Per-worker buckets (two of 120) would let all through at once.
    spec = sentiment_spec(count=65, shard_size=10, concurrency=16, requests_per_minute=120)
    started = time.monotonic()
    result = datarefinery.run(
        spec, tmp_path, backend=ScriptedBackend(few_distinct), executor=RayExecutor(workers=2)
    )
    elapsed = time.monotonic() - started
    assert result.status == "complete"
    assert result.manifest["engine"]["backend_calls"] == 130
    assert elapsed >= 4.5, f"130 calls at 120/minute took only {elapsed:.1f} s"


def test_embedded_model_on_ray_through_the_cli_equals_the_local_run(
    ray_cluster: str, tmp_path: Path
) -> None:
    """The real embedded model, hosted once per worker actor; the CLI joins the test's cluster."""
    spec_path = write_spec(tmp_path / "spec.yaml", sentiment_spec(count=2, shard_size=1))
    local = refinery("run", spec_path, "-o", tmp_path / "local", "-q", *LEAN)
    assert local.returncode == 0, local.stdout + local.stderr
    on_ray = refinery(
        "run", spec_path, "-o", tmp_path / "ray", "-q", *LEAN, "--executor", "ray",
        "--address", ray_cluster,
    )  # fmt: skip
    assert on_ray.returncode == 0, on_ray.stdout + on_ray.stderr
    assert read(tmp_path / "ray" / "dataset.jsonl") == read(tmp_path / "local" / "dataset.jsonl")
    manifest = json.loads(read(tmp_path / "ray" / "manifest.json"))
    assert manifest["executor"] == "ray"
    assert manifest["engine"]["backend_calls"] >= 4
    assert manifest["counts"]["dataset"] + manifest["counts"]["rejected"] == 4


@pytest.mark.parametrize(
    "error",
    [
        RetryableBackendError("HTTP 503 five times", status=503, retry_after=2.0),
        FatalBackendError("HTTP 401: check the key", status=401),
        RequestRejectedError("prompt too long", status=400),
        BackendError("the server went away"),
        BudgetExceededError("token budget reached"),
        ConfigError("bad option", where="spec.yaml, line 3"),
    ],
)
def test_a_worker_error_reaches_the_driver_as_its_family_and_kind(error: Exception) -> None:
    assert isinstance(error, DatarefineryError)
    rebuilt = rebuild_failure(*describe_failure(error))
    assert type(rebuilt) is (UsageError if isinstance(error, UsageError) else type(error))
    assert str(rebuilt) == str(error)
    assert getattr(rebuilt, "status", None) == getattr(error, "status", None)
    assert getattr(rebuilt, "retry_after", None) == getattr(error, "retry_after", None)
