import json

from datarefinery.manifest import (
    Counts,
    DiversitySummary,
    EngineCounts,
    LoopManifest,
    Manifest,
    ShardStats,
    StepSummary,
    parse_manifest,
)


def manifest() -> Manifest:
    made = Manifest(
        name="m",
        spec_hash="abc",
        spec_path="spec.yaml",
        spec={
            "seed": 1,
            "task": {"description": "d", "fields": {"t": {"type": "label"}}, "labels": ["a", "b"]},
        },
        versions={"python": "3"},
    )
    made.begin_session(None)
    return made


def test_the_file_keeps_its_keys_in_order_and_leaves_out_what_a_run_has_not_got() -> None:
    made = manifest()
    made.record_shard((10, 5), 0.0012345678, EngineCounts(requests=2))
    made.set_status("running")
    data = made.to_json()
    assert list(data) == [
        "format", "name", "status", "spec_hash", "spec_path", "spec", "inputs", "step_settings",
        "templates", "versions",
        "executor", "model",
        "sessions", "usage_spent", "message", "steps", "tokens", "cost_usd", "engine",
    ]  # fmt: skip
    assert data["tokens"] == {"prompt": 10, "completion": 5, "total": 15}
    assert data["cost_usd"] == 0.001235
    assert data["usage_spent"] == [10, 5]
    assert list(data["sessions"][0]) == ["started", "seconds"]
    made.diversity = DiversitySummary.model_validate(
        {"records": 3, "fields": {"t": {"distinct_1": 0.5, "distinct_2": 1.0}}}
    )
    made.counts = Counts(dataset=3)
    made.finish_session()
    data = made.to_json()
    assert list(data)[-2:] == ["diversity", "counts"]
    assert data["diversity"] == {
        "records": 3,
        "fields": {"t": {"distinct_1": 0.5, "distinct_2": 1.0}},
    }
    assert list(data["sessions"][0]) == ["started", "seconds", "finished"]


def test_a_written_manifest_reads_back_to_the_same_file() -> None:
    made = manifest()
    summary = StepSummary(name="a", step="a")
    summary.add(ShardStats(records_in=2, records_out=1, rejected={"z": 1, "b": 2}, seconds=0.12345))
    summary.add(ShardStats(records_in=1, records_out=1), resumed=True)
    made.record_step(summary)
    made.record_shard((1, 2), 0.5, None)
    made.set_status("stopped", "budget")
    text = json.dumps(made.to_json())
    again = parse_manifest(text)
    assert isinstance(again, Manifest)
    assert json.dumps(again.to_json()) == text
    assert again.steps[0].shards == 2 and again.steps[0].shards_resumed == 1
    assert made.to_json()["steps"][0]["rejected"] == {"b": 2, "z": 1}
    assert made.to_json()["steps"][0]["seconds"] == 0.123


def test_a_new_session_keeps_earlier_sessions_and_what_they_spent() -> None:
    first = manifest()
    first.record_shard((100, 50), 1.0, None)
    first.set_status("interrupted")
    earlier = parse_manifest(json.dumps(first.to_json()))
    second = manifest()
    second.begin_session(earlier)
    assert len(second.sessions) == 2 and second.sessions[0] == first.sessions[0]
    assert second.usage_spent == (100, 50)
    assert second.rejected_by_reason() == {}


def test_key_access_reads_the_json_form() -> None:
    made = manifest()
    made.record_shard((1, 1), 0.0, EngineCounts(cache_hits=4))
    assert made["engine"]["cache_hits"] == 4
    assert "counts" not in made and "engine" in made
    assert made.get("counts", "none") == "none"
    assert made.task is not None and made.task.fields["t"].type == "label"


def test_the_loop_manifest_is_told_apart_by_its_kind() -> None:
    loop = LoopManifest(name="s3", spec_hash="h")
    loop.begin_session(None)
    assert list(loop.to_json())[-1] == "sessions"
    loop.rounds = [{"round": 0}]
    loop.status, loop.message, loop.best_round, loop.tokens = "complete", "", 0, 12
    loop.finish_session()
    data = loop.to_json()
    assert data["kind"] == "s3" and list(data)[-4:] == ["rounds", "message", "best_round", "tokens"]
    assert list(data["sessions"][0]) == ["started", "finished"]
    again = parse_manifest(json.dumps(data))
    assert isinstance(again, LoopManifest) and again.to_json() == data
