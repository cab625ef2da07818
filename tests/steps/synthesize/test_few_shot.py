import copy
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

import datarefinery
from datarefinery.errors import ConfigError
from datarefinery.llm.base import Request
from datarefinery.llm.scripted import ScriptedBackend, schema_reply
from tests.support.examples import EXAMPLES, run_example
from tests.support.fake import prompt_of, read_jsonl
from tests.support.specs import SENTIMENT_TASK

SEED_FILE = EXAMPLES / "data" / "reviews.jsonl"

SEEDS = [
    {"text": f"A {label} review number {i}, with details.", "label": label}
    for label in ("positive", "negative")
    for i in range(4)
]


def spec(options: dict[str, Any], seeds: Any = None) -> dict[str, Any]:
    task = copy.deepcopy(SENTIMENT_TASK) | {"seeds": SEEDS if seeds is None else seeds}
    return {"seed": 5, "task": task, "llm": {"max_tokens": 64}, "steps": [{"few_shot": options}]}


def fresh_text(name: str, request: Request, index: int) -> str:
    return f"Something else entirely, call {request.seed}."


def test_demonstrations_rotate_and_every_seed_is_shown_equally(tmp_path: Path) -> None:
    backend = ScriptedBackend(schema_reply(fresh_text))
    result = datarefinery.run(spec({"count_per_label": 6, "k": 2}), tmp_path, backend=backend)
    records = read_jsonl(result.dataset_path)
    assert len(records) == 12
    shown: dict[str, Counter[str]] = {"positive": Counter(), "negative": Counter()}
    windows: dict[str, list[tuple[str, ...]]] = {"positive": [], "negative": []}
    for record in records:
        conditioning = record["provenance"]["conditioning"]
        ids = conditioning["seed_ids"]
        assert len(ids) == 2 and len(set(ids)) == 2
        shown[conditioning["label"]].update(ids)
        windows[conditioning["label"]].append(tuple(ids))
    for label, counts in shown.items():
        # 6 calls × 2 demos over 4 seeds of the label: each seed 3 times, never another label.
        assert sorted(counts.values()) == [3, 3, 3, 3]
        # consecutive calls show different windows
        assert all(a != b for a, b in zip(windows[label], windows[label][1:], strict=False))
    positive_ids = {f"seed-{i}" for i in range(4)}
    assert set(shown["positive"]) == positive_ids
    assert not set(shown["negative"]) & positive_ids
    prompt = prompt_of(backend.requests[0])
    assert "Example 1:" in prompt and "Example 2:" in prompt and "review number" in prompt


def test_a_record_that_copies_a_demonstration_is_rejected(tmp_path: Path) -> None:
    def copy_first_demo(name: str, request: Request, index: int) -> str:
        prompt = prompt_of(request)
        return prompt.split("text: ")[1].split("\n")[0]

    result = datarefinery.run(
        spec({"count_per_label": 2, "k": 2}),
        tmp_path,
        backend=ScriptedBackend(schema_reply(copy_first_demo)),
    )
    rejected = read_jsonl(result.rejected_path)
    assert len(rejected) == 4 and {r["reason"] for r in rejected} == {"copies_seed"}
    assert "ROUGE-L 1.00 with seed seed-" in rejected[0]["detail"]


def test_demos_of_any_label_show_their_labels(tmp_path: Path) -> None:
    backend = ScriptedBackend(schema_reply(fresh_text))
    datarefinery.run(
        spec({"count_per_label": 1, "k": 8, "demos": "any"}), tmp_path, backend=backend
    )
    prompt = prompt_of(backend.requests[0])
    assert "label: positive" in prompt and "label: negative" in prompt


def test_seeds_from_a_file_and_missing_seeds(tmp_path: Path) -> None:
    seeds = tmp_path / "seeds.jsonl"
    seeds.write_text(
        '{"id": "a", "text": "Great fun from start to end.", "label": "positive"}\n'
        '{"id": "b", "text": "Dull and far too long.", "label": "negative"}\n'
    )
    result = datarefinery.run(
        spec({"count_per_label": 1, "k": 1}, seeds=str(seeds)),
        tmp_path / "out",
        backend=ScriptedBackend(schema_reply(fresh_text)),
    )
    ids = {r["provenance"]["conditioning"]["seed_ids"][0] for r in read_jsonl(result.dataset_path)}
    assert ids == {"a", "b"}
    with pytest.raises(ConfigError, match="no seed has the label 'negative'"):
        datarefinery.run(
            spec({"count_per_label": 1}, seeds=SEEDS[:2]),
            tmp_path / "out2",
            backend=ScriptedBackend(schema_reply()),
        )
    no_seeds = spec({"count_per_label": 1})
    del no_seeds["task"]["seeds"]
    with pytest.raises(ConfigError, match="needs seed examples"):
        datarefinery.run(no_seeds, tmp_path / "out3", backend=ScriptedBackend(schema_reply()))


@pytest.mark.slow
def test_example_on_the_embedded_model(tmp_path: Path) -> None:
    result = run_example("few_shot", tmp_path, {"count_per_label": 1}, max_chars={"text": 160})
    assert result.status == "complete"
    kept, rejected = read_jsonl(result.dataset_path), read_jsonl(result.rejected_path)
    assert len(kept) + len(rejected) == 2
    assert {r["reason"] for r in rejected} <= {"copies_seed", "duplicate", "schema", "invalid_json"}
    seeds = {r["id"]: r["label"] for r in map(json.loads, SEED_FILE.read_text().splitlines())}
    for record in kept:
        conditioning = record["provenance"]["conditioning"]
        assert len(conditioning["seed_ids"]) == 2
        assert {seeds[i] for i in conditioning["seed_ids"]} == {record["fields"]["label"]}
        assert 40 <= len(record["fields"]["text"]) <= 160


def test_demos_from_review_are_the_records_people_kept_with_their_corrections(
    tmp_path: Path,
) -> None:
    from datarefinery.decisions import Decision, DecisionStore

    rows = [
        {"id": "a", "text": "Loved every minute of this film."},
        {"id": "b", "text": "Mixed feelings about this one, honestly."},
        {"id": "c", "text": "Hated the plot and the acting."},
    ]
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in rows))
    reviewed = tmp_path / "round1"
    first_round = {
        "seed": 5,
        "task": copy.deepcopy(SENTIMENT_TASK),
        "input": str(source),
        "steps": [{"label": {"k": 1, "route": True}}, {"review": {"require": "none"}}],
    }
    labeler = ScriptedBackend(lambda request: json.dumps({"label": "positive"}))
    assert datarefinery.run(first_round, reviewed, backend=labeler).status == "complete"
    store = DecisionStore.of_run(reviewed)
    store.record_many(
        [
            Decision("a", "accept", by="alice"),
            Decision("b", "correct", by="alice", label="negative"),
            Decision("c", "reject", by="alice", reason="off topic"),
        ]
    )
    data = spec({"count_per_label": 2, "k": 1, "demos_from_review": str(reviewed)}, seeds=[])
    del data["task"]["seeds"]
    backend = ScriptedBackend(schema_reply(fresh_text))
    out = tmp_path / "round2"
    result = datarefinery.run(data, out, backend=backend, diversity=False)
    assert result.status == "complete"
    shown = {
        r["provenance"]["conditioning"]["label"]: set(r["provenance"]["conditioning"]["seed_ids"])
        for r in read_jsonl(result.dataset_path)
    }
    assert shown == {"positive": {"a"}, "negative": {"b"}}  # b as corrected, c rejected
    prompts = [prompt_of(r) for r in backend.requests]
    assert any("Mixed feelings" in p for p in prompts)
    assert not any("Hated the plot" in p for p in prompts)

    # A changed decision in the reviewed run redoes the step on the next run.
    store.record(Decision("c", "correct", by="bob", label="negative"))
    again = datarefinery.run(data, out, backend=backend, diversity=False)
    assert again.steps[0].shards_resumed == 0
    negative = set().union(
        *(
            r["provenance"]["conditioning"]["seed_ids"]
            for r in read_jsonl(again.dataset_path)
            if r["provenance"]["conditioning"]["label"] == "negative"
        )
    )
    assert negative == {"b", "c"}
    unchanged = datarefinery.run(data, out, backend=backend, diversity=False)
    assert unchanged.steps[0].shards_resumed == unchanged.steps[0].shards


def test_demos_from_review_needs_a_reviewed_run(tmp_path: Path) -> None:
    data = spec({"count_per_label": 1, "demos_from_review": str(tmp_path / "nothing")})
    with pytest.raises(ConfigError, match="holds no review decisions"):
        datarefinery.run(data, tmp_path / "out", backend=ScriptedBackend(schema_reply(fresh_text)))
