"""``plan`` on a scripted model: the planned run directory, the run that continues in it, the
estimate through a step that drops records, budgets."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import datarefinery
from datarefinery.errors import RunDirError
from datarefinery.llm.base import Request
from datarefinery.llm.scripted import ScriptedBackend, schema_reply
from datarefinery.loop.plan import PLANNED, plan
from tests.support.specs import review_reply, sentiment_spec


def _manifest(out: Path) -> dict[str, Any]:
    return json.loads((out / "manifest.json").read_text())  # type: ignore[no-any-return]


def test_plan_leaves_a_planned_directory_that_run_continues_from_its_cache(
    tmp_path: Path,
) -> None:
    spec = sentiment_spec(count=4)
    out = tmp_path / "out"
    planned = plan(spec, out, sample=2, backend=ScriptedBackend(review_reply))
    assert sorted(p.name for p in out.iterdir()) == ["cache.sqlite", "manifest.json"]
    manifest = _manifest(out)
    assert manifest["status"] == PLANNED and manifest["engine"]["backend_calls"] == 2
    (step,) = planned.steps
    assert step.calls.mid == 8 and step.sample_calls == 2
    assert step.prompt is not None and '"positive"' in step.prompt

    backend = ScriptedBackend(review_reply)
    result = datarefinery.run(spec, out, backend=backend, diversity=False)
    assert result.status == "complete" and result.dataset_size == 8
    engine = result.manifest["engine"] if result.manifest else {}
    assert engine["cache_hits"] == 2 and engine["backend_calls"] == 6 == len(backend.requests)
    # The scripted replies differ by a digit or two: the estimate is the run's tokens, nearly.
    assert planned.total.tokens.low <= result.usage.total_tokens <= planned.total.tokens.high
    assert (
        abs(planned.total.tokens.mid - result.usage.total_tokens) < 0.05 * result.usage.total_tokens
    )
    assert len(result.manifest["sessions"]) == 2 if result.manifest else False


def test_a_different_spec_is_refused_and_a_run_is_not_replanned(tmp_path: Path) -> None:
    plan(sentiment_spec(count=2), tmp_path, sample=1, backend=ScriptedBackend(review_reply))
    with pytest.raises(RunDirError, match="different spec"):
        datarefinery.run(sentiment_spec(count=3), tmp_path, backend=ScriptedBackend(review_reply))
    again = plan(sentiment_spec(count=2), tmp_path, sample=1, backend=ScriptedBackend([]))
    assert again.steps[0].cached_calls == 1 and again.spent.total_tokens == 0
    datarefinery.run(
        sentiment_spec(count=2), tmp_path, backend=ScriptedBackend(review_reply), diversity=False
    )
    with pytest.raises(RunDirError, match="holds a run already"):
        plan(sentiment_spec(count=2), tmp_path, sample=1, backend=ScriptedBackend(review_reply))


def _drop_negatives(name: str, request: Request, index: int) -> str:
    prompt = request.messages[-1].content
    if name == "text" and '"negative"' in prompt and "Rewrite" not in prompt:
        return f"DROP this negative review {request.seed}"
    return f"a review for call {request.seed} number {index}"


def test_later_steps_scale_by_the_sampled_survival(tmp_path: Path) -> None:
    spec = sentiment_spec(count=6)
    spec["steps"] += [{"filter": {"must_not_match": ["DROP"]}}, {"paraphrase": {"per_record": 1}}]
    planned = plan(spec, tmp_path, sample=4, backend=ScriptedBackend(schema_reply(_drop_negatives)))
    generate, cut, rewrite = planned.steps
    assert generate.records_out.mid == 12
    sampled_kept = cut.records_out.mid / cut.records_in.mid
    assert rewrite.records_in == cut.records_out
    assert rewrite.calls.mid == pytest.approx(12 * sampled_kept)
    result = datarefinery.run(
        spec, tmp_path, backend=ScriptedBackend(schema_reply(_drop_negatives)), diversity=False
    )
    assert result.status == "complete"
    made = result.manifest["engine"]["requests"] if result.manifest else 0
    assert planned.total.calls.low <= made <= planned.total.calls.high


def test_a_budget_the_run_would_reach_is_warned(tmp_path: Path) -> None:
    spec = sentiment_spec(count=20, budget={"max_tokens": 2000})
    planned = plan(spec, tmp_path, sample=2, backend=ScriptedBackend(review_reply))
    assert any("max_tokens = 2000 would stop the run early" in w for w in planned.warnings)
    priced = sentiment_spec(count=2, pricing={"input_per_mtok": 1000, "output_per_mtok": 1000})
    quoted = plan(priced, tmp_path / "priced", sample=2, backend=ScriptedBackend(review_reply))
    assert quoted.total.cost_usd.mid == pytest.approx(quoted.total.tokens.mid / 1000)
