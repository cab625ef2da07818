from __future__ import annotations

import json
from pathlib import Path

import pytest

import datarefinery
from datarefinery.io.read import read_records
from datarefinery.llm.scripted import ScriptedBackend

TOXIC = "shut up you fucking idiot, this shit code is broken again"


def _run(tmp_path: Path, replies, texts, options=None):  # type: ignore[no-untyped-def]
    source = tmp_path / "in.jsonl"
    source.write_text(
        "".join(json.dumps({"id": f"t{i}", "text": t}) + "\n" for i, t in enumerate(texts))
    )
    spec = {"input": str(source), "steps": [{"detox_rewrite": options or {}}]}
    backend = ScriptedBackend(replies)
    result = datarefinery.run(spec, tmp_path / "out", backend=backend)
    rejected = [json.loads(x) for x in result.rejected_path.read_text().splitlines()]
    return list(read_records(result.dataset_path)), rejected, backend


def test_toxic_record_rewritten_clean_record_untouched(tmp_path: Path) -> None:
    polite = json.dumps({"text": "please be quiet, this code is broken again"})
    records, rejected, backend = _run(tmp_path, [polite], [TOXIC, "the code is broken again"])
    by_id = {r.id: r for r in records}
    assert by_id["t0"].fields["text"] == "please be quiet, this code is broken again"
    scores = by_id["t0"].scores
    assert scores["toxicity_before"] >= 0.5 > scores["toxicity_after"]
    assert scores["similarity_to_input"] >= 0.6
    assert by_id["t1"].fields["text"] == "the code is broken again"
    assert by_id["t1"].scores["attempts"] == 0
    assert len(backend.requests) == 1 and not rejected


def test_still_toxic_after_reask_is_rejected_with_reason(tmp_path: Path) -> None:
    rude = json.dumps({"text": "shut up, this shit is broken, idiot"})
    records, rejected, backend = _run(tmp_path, [rude, rude], [TOXIC])
    assert records == []
    assert rejected[0]["reason"] == "still_toxic"
    assert "still rude" in backend.requests[1].messages[-1].content


def test_meaning_lost_is_rejected(tmp_path: Path) -> None:
    off_topic = json.dumps({"text": "I like turtles and sunny weather."})
    _, rejected, _ = _run(tmp_path, [off_topic], [TOXIC], {"max_reasks": 0})
    assert rejected[0]["reason"] == "meaning_lost"


@pytest.mark.slow
def test_embedded_model_detoxifies_or_rejects(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text(json.dumps({"id": "t", "text": "this movie is fucking shit"}) + "\n")
    spec = {
        "input": str(source),
        "llm": {"temperature": 0.3},
        "steps": [{"detox_rewrite": {"max_reasks": 1}}],
    }
    result = datarefinery.run(spec, tmp_path / "out")
    assert result.status == "complete"
    records = list(read_records(result.dataset_path))
    rejected = [json.loads(x) for x in result.rejected_path.read_text().splitlines()]
    assert len(records) + len(rejected) == 1
    for record in records:  # whatever the small model wrote, what is emitted passed the checks
        assert record.scores["toxicity_after"] < 0.5
        assert record.scores["similarity_to_input"] >= 0.6
    for item in rejected:
        assert item["reason"] in {"still_toxic", "meaning_lost", "invalid_json", "schema"}
