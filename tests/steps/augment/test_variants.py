import copy
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

import datarefinery
from datarefinery.errors import ConfigError
from datarefinery.llm.base import Request
from datarefinery.llm.scripted import ScriptedBackend
from datarefinery.steps.augment.variants import word_similarity
from tests.support.examples import run_example
from tests.support.fake import prompt_of, read_jsonl
from tests.support.specs import SENTIMENT_TASK

REVIEWS = [
    {"id": "a", "text": "I loved the film and the music was great.", "label": "positive"},
    {"id": "b", "text": "The film was dull and the acting was weak.", "label": "negative"},
    {"id": "c", "text": "A great cast and a clever, funny script.", "label": "positive"},
]


def spec(
    tmp_path: Path, step: dict[str, Any], rows: list[dict[str, Any]] = REVIEWS
) -> dict[str, Any]:
    source = tmp_path / "reviews.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return {
        "seed": 6,
        "task": copy.deepcopy(SENTIMENT_TASK),
        "input": str(source),
        "llm": {"max_tokens": 64},
        "steps": [step],
    }


def original_of(request: Request) -> str:
    return prompt_of(request).split("text: ")[1].split("\n")[0]


def test_paraphrase_keeps_labels_links_parents_and_passes_originals(tmp_path: Path) -> None:
    def reply(request: Request) -> str:
        return json.dumps({"text": f"In other words, {original_of(request)} ({request.seed})"})

    result = datarefinery.run(
        spec(tmp_path, {"paraphrase": {"per_record": 2}}),
        tmp_path / "out",
        backend=ScriptedBackend(reply),
    )
    records = read_jsonl(result.dataset_path)
    assert len(records) == 9
    originals = {r["id"]: r for r in records if r["provenance"]["step"] == "input"}
    rewrites = [r for r in records if r["provenance"]["step"] == "paraphrase"]
    assert set(originals) == {"a", "b", "c"} and len(rewrites) == 6
    for rewrite in rewrites:
        (parent,) = rewrite["provenance"]["parent_ids"]
        assert rewrite["fields"]["label"] == originals[parent]["fields"]["label"]
        assert originals[parent]["fields"]["text"] in rewrite["fields"]["text"]
        assert rewrite["provenance"]["source"] == "augmented"
        assert rewrite["provenance"]["conditioning"]["label"] == rewrite["fields"]["label"]
    assert Counter(r["provenance"]["parent_ids"][0] for r in rewrites) == {"a": 2, "b": 2, "c": 2}


def test_unchanged_and_duplicate_rewrites_are_rejected(tmp_path: Path) -> None:
    def reply(request: Request) -> str:
        original = original_of(request)
        if original.startswith("I loved"):
            return json.dumps({"text": original.upper().rstrip(".")})  # the same words, shouted
        return json.dumps({"text": "I loved the film and the music was great."})

    result = datarefinery.run(
        spec(tmp_path, {"paraphrase": {"keep_original": False}}),
        tmp_path / "out",
        backend=ScriptedBackend(reply),
    )
    rejected = read_jsonl(result.rejected_path)
    # b's rewrite is kept (the original it equals is not in the output); c's duplicates it.
    assert sorted(r["reason"] for r in rejected) == ["duplicate", "unchanged"]
    assert result.dataset_size == 1
    assert all(r["record"]["provenance"]["parent_ids"] for r in rejected)


def test_style_draws_distinct_styles_per_record(tmp_path: Path) -> None:
    styles = ["formal", "casual", "pirate", "haiku"]

    def reply(request: Request) -> str:
        style = prompt_of(request).split("in this style: ")[1].split(".\n")[0]
        return json.dumps({"text": f"{style}: {original_of(request)}"})

    result = datarefinery.run(
        spec(tmp_path, {"style": {"styles": styles, "per_record": 2, "keep_original": False}}),
        tmp_path / "out",
        backend=ScriptedBackend(reply),
    )
    records = read_jsonl(result.dataset_path)
    assert len(records) == 6
    per_parent: dict[str, list[str]] = {}
    for record in records:
        style = record["provenance"]["conditioning"]["style"]
        assert record["fields"]["text"].startswith(f"{style}: ")
        per_parent.setdefault(record["provenance"]["parent_ids"][0], []).append(style)
    assert all(len(set(v)) == 2 and set(v) <= set(styles) for v in per_parent.values())
    with pytest.raises(ConfigError, match="more than the 4 styles"):
        datarefinery.run(
            spec(tmp_path, {"style": {"styles": styles, "per_record": 5}}),
            tmp_path / "out2",
            backend=ScriptedBackend([]),
        )


def test_counterfactual_flips_labels_minimally(tmp_path: Path) -> None:
    def reply(request: Request) -> str:
        original = original_of(request)
        if "dull" in original:  # rewritten from scratch: not a minimal edit
            return json.dumps({"text": "What a triumph of cinema, a joy from start to end!"})
        return json.dumps({"text": original.replace("loved", "hated").replace("great", "awful")})

    rows = [*REVIEWS, {"id": "d", "text": "No opinion at all here.", "label": "meh"}]
    backend = ScriptedBackend(reply)
    result = datarefinery.run(
        spec(tmp_path, {"counterfactual": {"keep_original": False}}, rows),
        tmp_path / "out",
        backend=backend,
    )
    assert 'so that the label becomes "negative"' in prompt_of(backend.requests[0])
    kept = read_jsonl(result.dataset_path)
    rejected = {
        r["record"]["id"] if r["reason"] == "no_label" else r["reason"]: r
        for r in read_jsonl(result.rejected_path)
    }
    flipped = {r["provenance"]["parent_ids"][0]: r for r in kept}
    assert flipped["a"]["fields"] == {
        "text": "I hated the film and the music was awful.",
        "label": "negative",
    }
    assert flipped["a"]["provenance"]["conditioning"] == {
        "label": "negative",
        "from_label": "positive",
    }
    assert "b" not in flipped and rejected["not_minimal"]["record"]["fields"]["label"] == "positive"
    assert "d" in rejected  # a label outside the task cannot be flipped


def test_word_similarity() -> None:
    assert word_similarity("a b c d", "a b c d") == 1.0
    assert word_similarity("I loved it", "I hated it") == pytest.approx(2 / 3)
    assert word_similarity("x y", "p q") == 0.0


@pytest.mark.slow
@pytest.mark.parametrize("example", ["paraphrase", "style", "counterfactual"])
def test_examples_on_the_embedded_model(tmp_path: Path, example: str) -> None:
    result = run_example(example, tmp_path, limit=2, max_chars={"text": 160})
    assert result.status == "complete"
    kept, rejected = read_jsonl(result.dataset_path), read_jsonl(result.rejected_path)
    originals = [r for r in kept if r["provenance"]["step"] == "input"]
    rewrites = [r for r in kept if r["provenance"]["step"] == example]
    assert len(originals) == 2  # keep_original
    assert len(rewrites) + len(rejected) == 2  # one rewrite each (one target label each)
    labels = {r["id"]: r["fields"]["label"] for r in originals}
    for record in rewrites:
        (parent,) = record["provenance"]["parent_ids"]
        flipped = labels[parent] != record["fields"]["label"]
        assert flipped == (example == "counterfactual")


def test_verify_k_relabels_rewrites_and_rejects_those_that_did_not_flip(tmp_path: Path) -> None:
    def reply(request: Request) -> str:
        prompt = prompt_of(request)
        if "Which label fits best?" in prompt:  # the verifying vote
            negative = "hated" in prompt or "weak" in prompt
            return json.dumps({"label": "negative" if negative else "positive"})
        original = original_of(request)
        return json.dumps({"text": original.replace("loved", "hated").replace("dull", "slow")})

    rows = REVIEWS[:2]
    backend = ScriptedBackend(reply)
    result = datarefinery.run(
        spec(tmp_path, {"counterfactual": {"keep_original": False, "verify_k": 3}}, rows),
        tmp_path / "out",
        backend=backend,
    )
    (kept,) = read_jsonl(result.dataset_path)
    assert kept["fields"]["label"] == "negative" and kept["scores"]["label_agreement"] == 1.0
    (rejected,) = read_jsonl(result.rejected_path)
    # "dull" -> "slow" keeps a negative review negative: the vote says so
    assert rejected["reason"] == "label_not_flipped"
    assert (
        "re-labeled 'negative'" in rejected["detail"]
        and "expected 'positive'" in rejected["detail"]
    )
    votes = [r for r in backend.requests if "Which label fits best?" in prompt_of(r)]
    assert len(votes) == 6 and all(r.params.max_tokens == 32 for r in votes)
