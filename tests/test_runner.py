"""End-to-end runs with a scripted backend: bookkeeping, resume, budget, rejections. The same
behaviours against the real embedded model and server are in test_embedded.py / test_server.py."""

import json
from pathlib import Path

import pytest

import datarefinery
from datarefinery.errors import RunDirError
from datarefinery.llm.base import Request
from datarefinery.llm.scripted import ScriptedBackend
from tests.support.specs import review_reply, sentiment_spec


def lines(path: Path) -> list[dict]:  # type: ignore[type-arg]
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_run_writes_dataset_rejected_and_manifest(tmp_path: Path) -> None:
    result = datarefinery.run(
        sentiment_spec(count=3), tmp_path / "out", backend=ScriptedBackend(review_reply)
    )
    assert result.status == "complete"
    dataset = lines(result.dataset_path)
    assert len(dataset) == 6
    assert {r["fields"]["label"] for r in dataset} == {"positive", "negative"}
    provenance = dataset[0]["provenance"]
    assert provenance["step"] == "zero_shot" and provenance["technique"] == "zero_shot"
    assert provenance["model"] == "scripted:scripted"
    assert provenance["template_hash"] and provenance["conditioning"]["label"]
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["status"] == "complete"
    assert manifest["counts"] == {"dataset": 6, "rejected": 0, "rejected_by_reason": {}}
    assert manifest["steps"][0]["records_out"] == 6
    assert manifest["tokens"]["total"] > 0
    assert manifest["versions"]["datarefinery"]
    assert lines(result.rejected_path) == []


def test_rerun_resumes_without_calls_or_duplicates(tmp_path: Path) -> None:
    first = ScriptedBackend(review_reply)
    datarefinery.run(sentiment_spec(count=3), tmp_path, backend=first)
    before = (tmp_path / "dataset.jsonl").read_text()
    second = ScriptedBackend(review_reply)
    result = datarefinery.run(sentiment_spec(count=3), tmp_path, backend=second)
    assert second.requests == []  # every shard was committed: nothing to redo
    assert result.steps[0].shards_resumed == result.steps[0].shards == 3
    assert (tmp_path / "dataset.jsonl").read_text() == before


def test_cache_answers_uncommitted_work(tmp_path: Path) -> None:
    datarefinery.run(sentiment_spec(count=3), tmp_path, backend=ScriptedBackend(review_reply))
    # Lose the committed shards but keep the cache: the rerun recomputes from the cache alone.
    for marker in (tmp_path / "steps").rglob("*.done"):
        marker.unlink()
    (tmp_path / "steps" / "01-zero_shot" / "_COMPLETE").unlink()
    backend = ScriptedBackend(review_reply)
    result = datarefinery.run(sentiment_spec(count=3), tmp_path, backend=backend)
    assert backend.requests == []
    assert result.manifest["engine"]["cache_hits"] == 6
    assert result.dataset_size == 6


def test_invalid_replies_are_rejected_with_reason(tmp_path: Path) -> None:
    def reply(request: Request) -> str:
        # Negative calls never produce valid JSON, even when re-asked.
        return "I refuse" if '"negative"' in request.messages[1].content else review_reply(request)

    result = datarefinery.run(sentiment_spec(count=2), tmp_path, backend=ScriptedBackend(reply))
    assert result.dataset_size == 2
    rejected = lines(result.rejected_path)
    assert len(rejected) == 2
    assert {r["reason"] for r in rejected} == {"invalid_json"}
    assert "I refuse" in rejected[0]["detail"]
    assert result.manifest["counts"]["rejected_by_reason"] == {"zero_shot:invalid_json": 2}


def test_exact_duplicates_are_rejected_across_shards(tmp_path: Path) -> None:
    def reply(request: Request) -> str:
        return json.dumps({"text": "The Same Review, every time."})

    result = datarefinery.run(sentiment_spec(count=3), tmp_path, backend=ScriptedBackend(reply))
    assert result.dataset_size == 1
    rejected = lines(result.rejected_path)
    assert [r["reason"] for r in rejected] == ["duplicate"] * 5
    first_id = lines(result.dataset_path)[0]["id"]
    assert all(first_id in r["detail"] for r in rejected)


def test_budget_stops_cleanly_and_resumes(tmp_path: Path) -> None:
    # Each call reserves 670 tokens (its prompt's bytes + the template allowance + max_tokens) and
    # the scripted model spends about 65: two fit at once, and a few run before one cannot.
    spec = sentiment_spec(count=4, shard_size=1, budget={"max_tokens": 1500})
    result = datarefinery.run(spec, tmp_path, backend=ScriptedBackend(review_reply))
    assert result.status == "stopped"
    assert "token budget reached" in result.message
    assert not (tmp_path / "dataset.jsonl").exists()
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["status"] == "stopped"
    spent = sum(manifest["usage_spent"])
    assert 0 < spent <= 1500
    # Raising the budget is an execution setting: the same run directory resumes.
    bigger = sentiment_spec(count=4, shard_size=1, budget={"max_tokens": 100_000})
    resumed = datarefinery.run(bigger, tmp_path, backend=ScriptedBackend(review_reply))
    assert resumed.status == "complete"
    assert resumed.dataset_size == 8
    assert resumed.steps[0].shards_resumed > 0


def test_a_different_spec_is_refused_then_fresh_starts_over(tmp_path: Path) -> None:
    datarefinery.run(sentiment_spec(count=1), tmp_path, backend=ScriptedBackend(review_reply))
    with pytest.raises(RunDirError, match="different spec"):
        datarefinery.run(sentiment_spec(count=2), tmp_path, backend=ScriptedBackend(review_reply))
    result = datarefinery.run(
        sentiment_spec(count=2), tmp_path, fresh=True, backend=ScriptedBackend(review_reply)
    )
    assert result.dataset_size == 4


def test_the_llm_override_is_the_runs_model_and_part_of_its_identity(tmp_path: Path) -> None:
    server = {"backend": "openai", "model": "served", "base_url": "http://127.0.0.1:9/v1"}
    first = datarefinery.run(
        sentiment_spec(count=1),
        tmp_path,
        llm=server,
        backend=ScriptedBackend(review_reply),
        diversity=False,
    )
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["spec"]["llm"]["model"] == "served" and first.status == "complete"
    assert manifest["spec"]["llm"]["max_tokens"] == 96  # the spec's own setting carries over
    # Execution-only settings may change on resume; another model may not.
    again = datarefinery.run(
        sentiment_spec(count=1),
        tmp_path,
        llm={**server, "concurrency": 2},
        backend=ScriptedBackend(review_reply),
        diversity=False,
    )
    assert again.status == "complete"
    with pytest.raises(RunDirError, match="different spec"):
        datarefinery.run(
            sentiment_spec(count=1),
            tmp_path,
            backend=ScriptedBackend(review_reply),
            diversity=False,
        )
    other = datarefinery.run(
        sentiment_spec(count=1),
        tmp_path,
        fresh=True,
        backend=ScriptedBackend(review_reply),
        diversity=False,
    )
    assert other.manifest is not None and other.manifest.spec["llm"]["model"] == "default"


def test_refuses_to_reuse_a_non_run_directory(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(RunDirError, match=r"holds no manifest\.json"):
        datarefinery.run(sentiment_spec(), tmp_path, backend=ScriptedBackend(review_reply))
    with pytest.raises(RunDirError, match="refusing to delete"):
        datarefinery.run(
            sentiment_spec(), tmp_path, fresh=True, backend=ScriptedBackend(review_reply)
        )
    assert (tmp_path / "notes.txt").exists()


def test_input_file_through_validate(tmp_path: Path) -> None:
    data = tmp_path / "reviews.jsonl"
    data.write_text(
        '{"text": "Loved every minute of it.", "label": "positive"}\n'
        '{"text": "It was a film, I suppose.", "label": "meh"}\n'
        '{"text": "Terrible acting and a worse plot.", "label": "negative"}\n'
    )
    spec = sentiment_spec()
    spec.update(input=str(data), steps=[{"validate": {}}])
    result = datarefinery.run(spec, tmp_path / "out")
    assert result.dataset_size == 2
    rejected = lines(result.rejected_path)
    assert rejected[0]["reason"] == "invalid_field"
    assert "'meh' is not one of the labels" in rejected[0]["detail"]
    assert result.manifest["model"] is None  # no LLM step, no model loaded


def _validate_spec(data: Path) -> dict[str, object]:
    spec = sentiment_spec()
    spec.update(input=str(data), shard_size=1, steps=[{"validate": {}}])
    return spec


def test_resume_refuses_a_changed_input_file_and_names_it(tmp_path: Path) -> None:
    data = tmp_path / "reviews.jsonl"
    data.write_text('{"text": "Loved every minute of it.", "label": "positive"}\n')
    datarefinery.run(_validate_spec(data), tmp_path / "out")
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert list(manifest["inputs"]) == [str(data.resolve())]
    datarefinery.run(_validate_spec(data), tmp_path / "out")  # unchanged: resumes
    with data.open("a") as handle:
        handle.write('{"text": "Terrible acting and a worse plot.", "label": "negative"}\n')
    with pytest.raises(RunDirError, match=r"reviews\.jsonl changed since the run .* --fresh"):
        datarefinery.run(_validate_spec(data), tmp_path / "out")
    result = datarefinery.run(_validate_spec(data), tmp_path / "out", fresh=True)
    assert result.dataset_size == 2


def test_resume_refuses_a_changed_seed_file(tmp_path: Path) -> None:
    seeds = tmp_path / "seeds.jsonl"
    seeds.write_text(
        '{"text": "A quiet, moving film about two brothers.", "label": "positive"}\n'
        '{"text": "Loud, long and empty from start to end.", "label": "negative"}\n'
    )
    spec = sentiment_spec(count=1)
    spec["task"]["seeds"] = str(seeds)  # type: ignore[index]
    spec["steps"] = [{"few_shot": {"count_per_label": 1, "k": 1}}]
    datarefinery.run(spec, tmp_path / "out", backend=ScriptedBackend(review_reply))
    seeds.write_text(seeds.read_text().replace("brothers", "sisters"))
    with pytest.raises(RunDirError, match=r"seeds\.jsonl changed"):
        datarefinery.run(spec, tmp_path / "out", backend=ScriptedBackend(review_reply))


def _edit_manifest(path: Path, **fields: object) -> None:
    manifest = json.loads(path.read_text())
    manifest.update(fields)
    path.write_text(json.dumps(manifest))


def test_resume_refuses_a_step_whose_defaults_changed(tmp_path: Path) -> None:
    out = tmp_path / "out"
    datarefinery.run(sentiment_spec(count=1), out, backend=ScriptedBackend(review_reply))
    manifest = json.loads((out / "manifest.json").read_text())
    assert set(manifest["step_settings"]) == {"zero_shot"} and manifest["templates"]
    # What an older version with another default of an option the spec leaves out would have
    # written: the spec hash is the same, the step's settings are not.
    _edit_manifest(out / "manifest.json", step_settings={"zero_shot": "0" * 16})
    with pytest.raises(RunDirError, match=r"other settings of step\(s\) zero_shot: .* --fresh"):
        datarefinery.run(sentiment_spec(count=1), out, backend=ScriptedBackend(review_reply))


def test_resume_refuses_changed_shipped_prompts(tmp_path: Path) -> None:
    out = tmp_path / "out"
    datarefinery.run(sentiment_spec(count=1), out, backend=ScriptedBackend(review_reply))
    _edit_manifest(out / "manifest.json", templates="0" * 16)
    with pytest.raises(RunDirError, match="other shipped prompt templates"):
        datarefinery.run(sentiment_spec(count=1), out, backend=ScriptedBackend(review_reply))


def test_a_run_from_before_settings_were_kept_still_resumes(tmp_path: Path) -> None:
    out = tmp_path / "out"
    datarefinery.run(sentiment_spec(count=1), out, backend=ScriptedBackend(review_reply))
    _edit_manifest(out / "manifest.json", step_settings=None, templates=None)
    backend = ScriptedBackend(review_reply)
    result = datarefinery.run(sentiment_spec(count=1), out, backend=backend)
    assert result.status == "complete" and backend.requests == []
    assert json.loads((out / "manifest.json").read_text())["step_settings"]


def test_fresh_never_deletes_the_working_directory_or_a_parent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    work = tmp_path / "project" / "sub"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    datarefinery.run(sentiment_spec(count=1), ".", backend=ScriptedBackend(review_reply))
    (work / "notes.txt").write_text("mine")
    for target in (".", str(work), str(work.parent)):
        with pytest.raises(RunDirError, match="holds the current directory"):
            datarefinery.run(
                sentiment_spec(count=1), target, fresh=True, backend=ScriptedBackend(review_reply)
            )
    assert (work / "notes.txt").exists()


def test_fresh_refuses_a_folder_whose_manifest_is_not_ours(tmp_path: Path) -> None:
    (tmp_path / "manifest.json").write_text('{"name": "some other tool", "files": []}')
    (tmp_path / "weights.bin").write_bytes(b"precious")
    with pytest.raises(RunDirError, match="not a datarefinery run directory"):
        datarefinery.run(
            sentiment_spec(), tmp_path, fresh=True, backend=ScriptedBackend(review_reply)
        )
    assert (tmp_path / "weights.bin").read_bytes() == b"precious"
