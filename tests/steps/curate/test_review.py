"""The review step: routed records stop the run until people decide; decisions are applied,
recorded in provenance, and a changed decision redoes the step and every later one."""

import copy
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

import datarefinery
from datarefinery.cli.app import app
from datarefinery.cli.console import EXIT_WAITING
from datarefinery.decisions import Decision, DecisionStore
from datarefinery.llm.base import Request
from datarefinery.llm.scripted import ScriptedBackend
from tests.support.cli import LEAN, refinery, write_spec
from tests.support.examples import EXAMPLES, example_spec
from tests.support.fake import prompt_of, read_jsonl
from tests.support.specs import SENTIMENT_TASK

ROWS = [
    {"id": "a", "text": "Loved every minute of this film."},
    {"id": "b", "text": "Mixed feelings about this one, honestly."},
    {"id": "c", "text": "Hated the plot and the acting."},
]


def spec(tmp_path: Path, review: dict[str, Any] | None = None) -> dict[str, Any]:
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    return {
        "name": "review-test",
        "seed": 8,
        "task": copy.deepcopy(SENTIMENT_TASK),
        "input": str(source),
        "steps": [
            {"label": {"k": 2, "route": {"below": 0.67}}},
            {"review": review or {}},
            {"validate": {}},  # a step after the review: it must be redone with it
        ],
    }


def labeler() -> ScriptedBackend:
    """'Mixed' gets one vote per label (agreement 0.5, routed); the others are unanimous."""
    mixed = Counter[str]()

    def reply(request: Request) -> str:
        text = prompt_of(request)
        if "Mixed" in text:
            mixed[str(request.seed)] += 1
            return json.dumps({"label": "positive" if len(mixed) == 1 else "negative"})
        return json.dumps({"label": "positive" if "Loved" in text else "negative"})

    return ScriptedBackend(reply)


def run(spec_data: dict[str, Any], out: Path, backend: ScriptedBackend) -> datarefinery.RunResult:
    return datarefinery.run(spec_data, out, backend=backend, diversity=False)


def by_id(path: Path) -> dict[str, dict[str, Any]]:
    return {r["id"]: r for r in read_jsonl(path)}


def test_routed_records_wait_then_decisions_make_the_dataset(tmp_path: Path) -> None:
    data, out, backend = spec(tmp_path), tmp_path / "out", labeler()
    waiting = run(data, out, backend)
    assert waiting.status == "waiting_for_review"
    assert "1 record(s) routed to review" in waiting.message
    assert f"refinery review {out} --reviewer NAME" in waiting.message
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "waiting_for_review"
    assert manifest["review"] == {"step": "review", "waiting": 1}
    assert not (out / "dataset.jsonl").exists() and not (out / "steps" / "03-validate").exists()
    (routed,) = [
        r for r in read_jsonl(out / "steps/01-label/shard-00000.jsonl") if "route" in r["scores"]
    ]
    assert routed["id"] == "b" and routed["scores"]["route"] == "label"
    assert routed["scores"]["route_reason"] == "label_agreement 0.50 < 0.67"

    # Waiting again without decisions changes nothing and calls nothing.
    calls = len(backend.requests)
    assert run(data, out, backend).status == "waiting_for_review"
    assert len(backend.requests) == calls

    store = DecisionStore.of_run(out)
    store.record(
        Decision("b", "correct", by="alice", label="negative", at="2025-01-01T00:00:00+00:00")
    )
    done = run(data, out, backend)
    assert done.status == "complete", done.message
    records = by_id(out / "dataset.jsonl")
    assert records["b"]["fields"]["label"] == "negative"
    assert records["b"]["provenance"]["conditioning"]["reviewed"] == {
        "by": "alice",
        "decision": "correct",
        "at": "2025-01-01T00:00:00+00:00",
    }
    assert "reviewed" not in records["a"]["provenance"]["conditioning"]
    assert json.loads((out / "manifest.json").read_text()).get("review") is None

    # A decision after the review step committed: the step and the one after it are redone.
    store.record(Decision("c", "reject", by="bob", reason="not a review"))
    again = run(data, out, backend)
    assert [s.shards_resumed for s in again.steps] == [1, 0, 0]
    assert set(by_id(out / "dataset.jsonl")) == {"a", "b"}
    (rejected,) = read_jsonl(out / "rejected.jsonl")
    assert rejected["reason"] == "reviewer_rejected" and rejected["detail"] == "not a review"
    assert rejected["record"]["provenance"]["conditioning"]["reviewed"]["by"] == "bob"

    # A changed mind: the newest decision counts, and the dataset changes again.
    store.record(Decision("c", "accept", by="bob"))
    changed = run(data, out, backend)
    assert [s.shards_resumed for s in changed.steps] == [1, 0, 0]
    assert set(by_id(out / "dataset.jsonl")) == {"a", "b", "c"}
    assert not (out / "rejected.jsonl").read_text()

    # Nothing changed: nothing is redone, no model call is made.
    calls = len(backend.requests)
    same = run(data, out, backend)
    assert [s.shards_resumed for s in same.steps] == [1, 1, 1]
    assert len(backend.requests) == calls
    assert not list((out / "steps").glob(".discarded-*"))


def test_edits_are_checked_against_the_task(tmp_path: Path) -> None:
    data, out, backend = spec(tmp_path, {"require": "none"}), tmp_path / "out", labeler()
    assert run(data, out, backend).status == "complete"
    DecisionStore.of_run(out).record_many(
        [
            Decision("a", "edit", by="alice", fields={"text": "Loved it, every single minute."}),
            Decision("b", "edit", by="alice", fields={"text": "Fine."}, label="neutral"),
            Decision("c", "edit", by="alice", fields={"mood": "grim"}),
        ]
    )
    result = run(data, out, backend)
    assert result.status == "complete"
    records = by_id(out / "dataset.jsonl")
    assert records["a"]["fields"]["text"] == "Loved it, every single minute."
    assert records["a"]["provenance"]["conditioning"]["reviewed"]["decision"] == "edit"
    rejected = {r["record"]["id"]: r for r in read_jsonl(out / "rejected.jsonl")}
    assert rejected["b"]["reason"] == "invalid_edit"
    assert "'neutral' is not one of the labels" in rejected["b"]["detail"]
    assert rejected["b"]["record"]["fields"]["text"] == ROWS[1]["text"]  # the edit is not kept
    assert rejected["c"]["reason"] == "invalid_edit" and "mood" in rejected["c"]["detail"]


@pytest.mark.parametrize(("require", "waiting"), [("all", 3), ("routed", 1), ("none", 0)])
def test_require_says_which_undecided_records_block(
    tmp_path: Path, require: str, waiting: int
) -> None:
    result = run(spec(tmp_path, {"require": require}), tmp_path / "out", labeler())
    assert result.status == ("waiting_for_review" if waiting else "complete")
    if waiting:
        assert result.manifest is not None and result.manifest.review is not None
        assert result.manifest.review.waiting == waiting
    else:  # an undecided routed record passes, still marked
        assert by_id(tmp_path / "out" / "dataset.jsonl")["b"]["scores"]["route"] == "label"


def test_refinery_run_exits_4_while_waiting_and_0_after_the_review(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec_path = write_spec(tmp_path / "spec.yaml", spec(tmp_path))
    out, backend, real_run = tmp_path / "out", labeler(), datarefinery.run
    monkeypatch.setattr(
        datarefinery, "run", lambda *a, **kw: real_run(*a, **{**kw, "backend": backend})
    )
    runner = CliRunner()
    args = ["run", str(spec_path), "-o", str(out), "-q", *LEAN]
    waiting = runner.invoke(app, args)
    assert waiting.exit_code == EXIT_WAITING == 4, waiting.output
    assert "waiting_for_review" in waiting.output
    assert "refinery review" in " ".join(waiting.output.split())
    DecisionStore.of_run(out).record(Decision("b", "accept", by="alice"))
    done = runner.invoke(app, args)
    assert done.exit_code == 0, done.output
    assert len(read_jsonl(out / "dataset.jsonl")) == 3


def test_routing_options_are_checked() -> None:
    from datarefinery.steps.curate.consistency import ConsistencyConfig
    from datarefinery.steps.curate.judge import JudgeConfig

    with pytest.raises(ValueError, match="one threshold"):
        JudgeConfig.model_validate({"route": {"below": 3, "above": 4}})
    with pytest.raises(ValueError, match="pointwise"):
        JudgeConfig.model_validate({"mode": "pairwise", "group_by": "p", "route": True})
    with pytest.raises(ValueError, match="route: true"):
        ConsistencyConfig.model_validate(
            {"method": "execute", "code_field": "c", "route": {"below": 1}}
        )
    assert JudgeConfig.model_validate({"route": {"above": 4.5}}).route.above == 4.5  # type: ignore[union-attr]


@pytest.mark.slow
def test_example_waits_then_completes_on_the_embedded_model(tmp_path: Path) -> None:
    data = example_spec("review")
    data["input"] = {"path": str(EXAMPLES / data["input"]), "limit": 2}
    data["steps"][0]["label"].update(k=2, route={"below": 1.01})  # every record goes to people
    data["llm"].update(n_threads=1, max_tokens=24)
    spec_path = write_spec(tmp_path / "review.yaml", data)
    out = tmp_path / "out"
    waiting = refinery("run", spec_path, "-o", out, "-q", *LEAN)
    assert waiting.returncode == 4, waiting.stdout + waiting.stderr
    assert "refinery review" in " ".join(waiting.stdout.split())
    labeled = read_jsonl(out / "steps/01-label/shard-00000.jsonl")
    assert labeled and all(r["scores"]["route"] == "label" for r in labeled)
    first, *rest = labeled
    flipped = "negative" if first["fields"]["label"] == "positive" else "positive"
    DecisionStore.of_run(out).record_many(
        [Decision(first["id"], "correct", by="alice", label=flipped)]
        + [Decision(r["id"], "accept", by="alice") for r in rest]
    )
    done = refinery("run", spec_path, "-o", out, "-q", *LEAN)
    assert done.returncode == 0, done.stdout + done.stderr
    records = by_id(out / "dataset.jsonl")
    assert records[first["id"]]["fields"]["label"] == flipped
    assert all(
        r["provenance"]["conditioning"]["reviewed"]["by"] == "alice" for r in records.values()
    )
    manifest = yaml.safe_load((out / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["engine"]["backend_calls"] == 0
