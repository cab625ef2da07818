from pathlib import Path
from typing import Any

import pytest

from datarefinery.records import Provenance, Record
from datarefinery.steps.curate.preferences import Preferences, PreferencesConfig
from tests.steps.curate.helpers import kept, rejected, run_step
from tests.support.examples import run_example
from tests.support.fake import read_jsonl


def candidate(rid: str, prompt: str, response: str, score: Any) -> Record:
    scores = {} if score is None else {"judge": score}
    return Record(
        rid,
        {"prompt": prompt, "response": response},
        Provenance(step="responses", model=f"m-{rid}"),
        scores,
    )


def pair_up(batch: list[Record], **options: Any) -> list[Any]:
    return run_step(Preferences(PreferencesConfig.model_validate(options)), batch, task=None)


def test_best_and_worst_become_a_pair_with_their_margin() -> None:
    batch = [
        candidate("a", "Q1", "meh", 3.0),
        candidate("b", "Q1", "great", 4.5),
        candidate("c", "Q1", "bad", 1.5),
        candidate("d", "Q2", "fine", 4),
        candidate("e", "Q2", "poor", 2),
    ]
    outputs = pair_up(batch)
    first, second = kept(outputs)
    assert first.fields == {"prompt": "Q1", "chosen": "great", "rejected": "bad", "margin": 3.0}
    assert first.provenance.parent_ids == ["b", "c"]
    assert first.provenance.conditioning["chosen_model"] == "m-b"
    assert first.scores == {"chosen_score": 4.5, "rejected_score": 1.5}
    assert second.fields["margin"] == 2.0 and second.fields["chosen"] == "fine"
    (middle,) = rejected(outputs)
    assert middle.reason == "middle_candidate" and middle.record.id == "a"
    assert "between the pair's 1.5 and 4.5" in middle.detail


def test_ties_lone_and_unscored_candidates_are_rejected_with_their_reason() -> None:
    batch = [
        candidate("a", "Q1", "x", 3.0),
        candidate("b", "Q1", "y", 3.0),
        candidate("c", "Q2", "z", 5.0),
        candidate("d", "Q2", "w", None),
        candidate("e", "Q3", "v", "high"),
    ]
    outputs = pair_up(batch)
    assert kept(outputs) == []
    reasons = {r.record.id: r.reason for r in rejected(outputs)}
    assert reasons == {"a": "tie", "b": "tie", "c": "unpaired", "d": "unscored", "e": "unscored"}


def test_equal_scores_go_to_the_first_candidate_and_min_margin_holds() -> None:
    batch = [candidate("a", "Q", "x", 4), candidate("b", "Q", "y", 4), candidate("c", "Q", "z", 3)]
    (pair,) = kept(pair_up(batch))
    assert pair.provenance.parent_ids == ["a", "c"]
    outputs = pair_up(batch, min_margin=1.5)
    assert {r.reason for r in rejected(outputs)} == {"small_margin"} and not kept(outputs)


def test_other_score_and_fields() -> None:
    batch = [
        Record("a", {"q": "Q", "text": "one"}, scores={"reward": 0.9}),
        Record("b", {"q": "Q", "text": "two"}, scores={"reward": 0.1}),
    ]
    step = Preferences(PreferencesConfig(score="reward", group_by="q", compare="text"))
    assert step.reads(None) == {"q", "text"}
    assert step.writes(None) == {"q", "chosen", "rejected", "margin"}
    (pair,) = kept(run_step(step, batch, task=None))
    assert pair.fields == {"q": "Q", "chosen": "one", "rejected": "two", "margin": 0.8}


@pytest.mark.slow
def test_example_on_the_embedded_model(tmp_path: Path) -> None:
    result = run_example(
        "preferences",
        tmp_path,
        {"n": 2, "temperatures": [0.2, 1.0], "max_tokens": 40, "reject_truncated": False},
        limit=1,
        max_tokens=96,
        n_ctx=1024,
        n_threads=1,
    )
    assert result.status == "complete"
    candidates = read_jsonl(tmp_path / "steps" / "01-responses" / "shard-00000.jsonl")
    assert [c["provenance"]["conditioning"]["temperature"] for c in candidates] == [0.2, 1.0]
    for row in candidates:
        assert row["provenance"]["model"].startswith("llamacpp:SmolLM2")
        assert row["fields"]["response"] and row["provenance"]["parent_ids"] == ["p1"]
    pairs, dropped = read_jsonl(result.dataset_path), read_jsonl(result.rejected_path)
    for pair in pairs:
        assert set(pair["fields"]) == {"prompt", "chosen", "rejected", "margin"}
        assert (
            pair["fields"]["margin"] > 0 and pair["fields"]["chosen"] != pair["fields"]["rejected"]
        )
    assert len(pairs) == 1 or {r["reason"] for r in dropped} & {"tie", "unpaired"}
