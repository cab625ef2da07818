from __future__ import annotations

import json
from pathlib import Path

import pytest

import datarefinery
from datarefinery.io.read import read_records
from datarefinery.llm.base import Request
from datarefinery.llm.scripted import ScriptedBackend

TOXIC = "shut up you fucking idiot, this shit code is broken again"
SAME = json.dumps({"reason": "The same complaint, said politely.", "same_meaning": True})


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
    records, rejected, backend = _run(tmp_path, [polite, SAME], [TOXIC, "the code is broken again"])
    by_id = {r.id: r for r in records}
    assert by_id["t0"].fields["text"] == "please be quiet, this code is broken again"
    scores = by_id["t0"].scores
    assert scores["toxicity_before"] >= 0.5 > scores["toxicity_after"]
    assert scores["similarity_to_input"] >= 0.6
    assert by_id["t1"].fields["text"] == "the code is broken again"
    assert by_id["t1"].scores["attempts"] == 0
    assert scores["stopped_by_toxicity"] == scores["stopped_by_judge"] == 0
    assert len(backend.requests) == 2 and not rejected  # the rewrite, then the meaning judge


def test_still_toxic_after_reask_is_rejected_with_reason(tmp_path: Path) -> None:
    rude = json.dumps({"text": "shut up, this shit is broken, idiot"})
    records, rejected, backend = _run(tmp_path, [rude, rude], [TOXIC])
    assert records == []
    assert rejected[0]["reason"] == "still_toxic"
    assert rejected[0]["record"]["scores"]["stopped_by_toxicity"] == 2
    reask = backend.requests[1].messages[-1].content
    assert reask.startswith('Your rewrite is still offensive: "')
    assert '"shit"' in reask and '"idiot"' in reask and "keep the meaning" in reask


def test_meaning_lost_is_rejected(tmp_path: Path) -> None:
    off_topic = json.dumps({"text": "I like turtles and sunny weather."})
    _, rejected, backend = _run(tmp_path, [off_topic], [TOXIC], {"max_reasks": 0})
    assert rejected[0]["reason"] == "meaning_lost"
    assert rejected[0]["detail"].startswith("by cosine: similarity")
    assert rejected[0]["record"]["scores"]["stopped_by_cosine"] == 1
    assert len(backend.requests) == 1  # cosine stopped it: the judge was not asked


def _sensible_judge(request: Request) -> str:
    """A rewriter that drops the negation first, and a judge that notices."""
    prompt = request.messages[-1].content
    if request.json_schema and "same_meaning" in request.json_schema["properties"]:
        if "Rewrite: the man said thank you" in prompt:
            return json.dumps(
                {"reason": "The original says he did not thank anyone.", "same_meaning": False}
            )
        return SAME
    if "changed the meaning" in prompt:
        return json.dumps({"text": "the man didn't even say thank you for the gift"})
    return json.dumps({"text": "the man said thank you for the gift"})


FLIP = "the fucking jerk didn't even say thank you for the gift"


@pytest.mark.parametrize("check", ["judge", "both"])
def test_judge_stops_a_flipped_meaning_and_its_reason_is_reasked(
    tmp_path: Path, check: str
) -> None:
    records, rejected, backend = _run(
        tmp_path, _sensible_judge, [FLIP], {"meaning_check": check, "max_reasks": 1}
    )
    assert not rejected
    [record] = records
    assert record.fields["text"] == "the man didn't even say thank you for the gift"
    assert record.scores["stopped_by_judge"] == 1 and record.scores["stopped_by_cosine"] == 0
    assert record.provenance.conditioning["meaning_check"] == check
    reask = backend.requests[2].messages[-1].content
    assert "changed the meaning (The original says he did not thank anyone)" in reask


def test_judge_stop_rejects_naming_the_judge(tmp_path: Path) -> None:
    _, rejected, _ = _run(tmp_path, _sensible_judge, [FLIP], {"max_reasks": 0})
    assert rejected[0]["reason"] == "meaning_lost"
    assert rejected[0]["detail"] == "by judge: The original says he did not thank anyone."
    assert rejected[0]["record"]["scores"]["stopped_by_judge"] == 1


def test_cosine_alone_lets_the_flip_through(tmp_path: Path) -> None:
    """Why the judge exists: the embedding sees the same topic and passes the flipped rewrite."""
    records, _, backend = _run(tmp_path, _sensible_judge, [FLIP], {"meaning_check": "cosine"})
    assert records[0].fields["text"] == "the man said thank you for the gift"
    assert records[0].scores["similarity_to_input"] >= 0.6
    assert len(backend.requests) == 1


def test_unanswered_meaning_judge_stops_the_rewrite(tmp_path: Path) -> None:
    polite = json.dumps({"text": "please be quiet, this code is broken again"})

    def script(request: Request) -> str:
        return "no idea" if "same_meaning" in str(request.json_schema) else polite

    _, rejected, _ = _run(tmp_path, script, [TOXIC], {"max_reasks": 0})
    assert rejected[0]["detail"] == "by judge: the judge gave no valid answer"


def test_llm_scorer_reasks_with_the_phrases_the_model_quotes(tmp_path: Path) -> None:
    def script(request: Request) -> str:
        properties = (request.json_schema or {}).get("properties", {})
        if "toxicity" in properties:
            prompt = request.messages[-1].content
            return json.dumps({"toxicity": "none" if "dear" in prompt else "severe"})
        if "quotes" in properties:
            return json.dumps({"quotes": ["you clown"]})
        if "same_meaning" in properties:
            return SAME
        if "still offensive" in request.messages[-1].content:
            return json.dumps({"text": "dear colleague, the code is broken again"})
        return json.dumps({"text": "the code is broken again, you clown"})

    records, _, backend = _run(tmp_path, script, [TOXIC], {"scorer": "llm"})
    assert records[0].fields["text"] == "dear colleague, the code is broken again"
    assert records[0].scores["stopped_by_toxicity"] == 1
    reasks = [r.messages[-1].content for r in backend.requests if "still offensive" in str(r)]
    assert 'Your rewrite is still offensive: "you clown".' in reasks[0]


@pytest.mark.slow
def test_embedded_model_detoxifies_or_rejects(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text(json.dumps({"id": "t", "text": "this movie is fucking shit"}) + "\n")
    spec = {
        "input": str(source),
        "llm": {"temperature": 0.3, "n_threads": 1},
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
        assert set(item["record"]["scores"]) >= {"stopped_by_cosine", "stopped_by_judge"}
