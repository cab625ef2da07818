from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import datarefinery
from datarefinery.errors import ConfigError
from datarefinery.io.read import read_records
from datarefinery.llm.base import Request
from datarefinery.llm.scripted import ScriptedBackend
from datarefinery.records import Record
from tests.support.examples import run_example

CODENAME = "Reminder: the Project BLUEHERON demo moves to Thursday, and ORCA-7 ships Friday."
CLEAN = "Reminder: the project demo moves to Thursday, and the new build ships Friday."
PATTERNS = [r"\bProject\s+[A-Z]{3,}\b", r"\b[A-Z]{3,}-\d+\b"]
INSTRUCTION = "Remove the internal project code names and keep everything else."


def _text(reply: str) -> str:
    return json.dumps({"text": reply})


def _verdict(score: int, reason: str = "looks fine") -> str:
    return json.dumps({"reason": reason, "score": score})


def _run(
    tmp_path: Path,
    replies: list[str] | Callable[[Request], str],
    texts: tuple[str, ...] = (CODENAME,),
    **options: Any,
) -> tuple[list[Record], list[dict[str, Any]], ScriptedBackend]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    source = tmp_path / "in.jsonl"
    source.write_text(
        "".join(json.dumps({"id": f"m{i}", "text": t}) + "\n" for i, t in enumerate(texts))
    )
    step = {"instruction": INSTRUCTION, "checks": {"must_not_match": PATTERNS}, **options}
    spec = {"seed": 3, "input": str(source), "steps": [{"refine": step}]}
    backend = ScriptedBackend(replies)
    result = datarefinery.run(spec, tmp_path / "out", backend=backend, diversity=False)
    assert result.status == "complete", result.message
    rejected = [json.loads(x) for x in result.rejected_path.read_text().splitlines()]
    return list(read_records(result.dataset_path)), rejected, backend


def _outcome(record: Record) -> str:
    return str(record.provenance.conditioning["outcome"])


def test_a_clean_input_is_not_sent_to_the_model(tmp_path: Path) -> None:
    (record,), rejected, backend = _run(tmp_path, [], texts=(CLEAN,))
    assert backend.requests == [] and rejected == []
    assert record.fields["text"] == CLEAN
    assert _outcome(record) == "unchanged"
    assert record.provenance.technique == "" and record.provenance.model is None
    assert record.scores["verified"] is True and record.scores["attempts"] == 0


def test_always_rewrite_asks_the_model_for_a_clean_input_too(tmp_path: Path) -> None:
    edited = CLEAN.replace("Reminder:", "Note:")
    (record,), _, backend = _run(tmp_path, [_text(edited)], texts=(CLEAN,), always_rewrite=True)
    assert len(backend.requests) == 1
    assert record.fields["text"] == edited and _outcome(record) == "rewritten"


def test_a_passing_rewrite_is_kept_and_the_prompt_names_what_must_go(tmp_path: Path) -> None:
    (record,), _, backend = _run(tmp_path, [_text(CLEAN)])
    prompt = backend.requests[0].messages[-1].content
    assert INSTRUCTION in prompt
    assert '"Project BLUEHERON"' in prompt and '"ORCA-7"' in prompt
    assert record.fields["text"] == CLEAN
    assert _outcome(record) == "rewritten" and record.provenance.technique == "gdr"
    assert record.provenance.model is not None and record.provenance.template_hash
    assert record.provenance.conditioning["failed_on_input"] == ["must_not_match"]
    assert record.provenance.conditioning["spans_to_change"] == {"PATTERN": 2}
    assert record.scores["verified"] is True and record.scores["attempts"] == 1
    assert record.scores["change_outside"] <= 0.15
    # What had to go is not written anywhere in the emitted record.
    assert "BLUEHERON" not in json.dumps(record.to_dict())


def test_a_failed_pattern_check_is_reasked_with_the_match(tmp_path: Path) -> None:
    leaky = CLEAN.replace("the new build", "ORCA-7")
    (record,), _, backend = _run(tmp_path, [_text(leaky), _text(CLEAN)])
    assert len(backend.requests) == 2
    reask = backend.requests[1].messages[-1].content
    assert "must_not_match" in reask and '"ORCA-7"' in reask
    assert "BLUEHERON" not in reask  # only what is still wrong
    assert backend.requests[1].messages[-2].role == "assistant"
    assert record.fields["text"] == CLEAN and record.scores["attempts"] == 2


def test_still_matching_after_the_reask_is_rejected_with_the_check(tmp_path: Path) -> None:
    leaky = CLEAN.replace("the new build", "ORCA-7")
    records, (rejected,), _ = _run(tmp_path, [_text(leaky), _text(leaky)])
    assert records == []
    assert rejected["reason"] == "pattern_remains"
    assert "ORCA-7" in rejected["detail"] and "must_not_match" in rejected["detail"]


def test_max_change_stops_a_rewrite_that_changes_the_rest(tmp_path: Path) -> None:
    other = "The meeting is cancelled and everyone can go home early today."
    records, (rejected,), backend = _run(
        tmp_path,
        [_text(other), _text(other)],
        checks={"must_not_match": PATTERNS, "max_change": 0.3},
    )
    assert records == []
    assert rejected["reason"] == "changed_too_much"
    reask = backend.requests[1].messages[-1].content
    assert "max_change" in reask and "at most 30%" in reask


def test_no_entities_uses_the_detector_and_names_the_type(tmp_path: Path) -> None:
    text = "Ask Project BLUEHERON support at blueheron-team@example.com for access."
    still = "Ask the project support at blueheron-team@example.com for access."
    checks = {"must_not_match": PATTERNS, "no_entities": ["EMAIL_ADDRESS"]}
    records, (rejected,), backend = _run(
        tmp_path,
        [_text(still), _text(still)],
        texts=(text,),
        checks=checks,
        detector={"kind": "regex"},
    )
    assert records == []
    assert '"blueheron-team@example.com"' in backend.requests[0].messages[-1].content
    reask = backend.requests[1].messages[-1].content
    assert "no_entities" in reask and "(EMAIL_ADDRESS)" in reask
    assert rejected["reason"] == "entity_remains"


def _judged(rewrites: list[str], scores: list[int]) -> Callable[[Request], str]:
    """Rewrite requests get ``rewrites`` in turn, judge requests ``scores`` in turn."""
    queue = {"text": list(rewrites), "score": list(scores)}

    def reply(request: Request) -> str:
        schema = request.json_schema or {}
        if "score" in schema.get("properties", {}):
            return _verdict(queue["score"].pop(0), "it mentions a deadline")
        return _text(queue["text"].pop(0))

    return reply


JUDGE = {"criterion": "The message names no internal project.", "threshold": 4}


def test_the_judge_is_a_separate_request_and_its_reason_is_reasked(tmp_path: Path) -> None:
    reply = _judged([CLEAN, CLEAN], [2, 5])
    (record,), _, backend = _run(
        tmp_path, reply, checks={"must_not_match": PATTERNS, "judge": JUDGE}
    )
    kinds = ["score" in (r.json_schema or {}).get("properties", {}) for r in backend.requests]
    assert kinds == [False, True, False, True]  # rewrite, judge, rewrite, judge
    judge_prompt = backend.requests[1].messages[-1].content
    assert JUDGE["criterion"] in judge_prompt and CLEAN in judge_prompt
    assert len(backend.requests[1].messages) == 2  # its own conversation, not the rewrite's
    reask = backend.requests[2].messages[-1].content
    assert "judge: scored 2 of 5 (needs 4): it mentions a deadline" in reask
    assert _outcome(record) == "rewritten" and record.scores["judge_score"] == 5


def test_the_judge_decides_whether_a_pattern_clean_input_is_rewritten(tmp_path: Path) -> None:
    checks = {"must_not_match": PATTERNS, "judge": JUDGE}
    (kept,), _, backend = _run(tmp_path / "a", _judged([], [5]), texts=(CLEAN,), checks=checks)
    assert len(backend.requests) == 1 and _outcome(kept) == "unchanged"
    assert kept.scores["judge_score"] == 5
    edited = CLEAN.replace("the project demo", "the demo")
    (redone,), _, backend = _run(
        tmp_path / "b", _judged([edited], [2, 4]), texts=(CLEAN,), checks=checks
    )
    assert len(backend.requests) == 3 and _outcome(redone) == "rewritten"
    assert redone.provenance.conditioning["failed_on_input"] == ["judge"]


def test_keep_original_emits_the_input_unverified(tmp_path: Path) -> None:
    leaky = CLEAN.replace("the new build", "ORCA-7")
    (record,), rejected, _ = _run(tmp_path, [_text(leaky)], max_reasks=0, on_fail="keep_original")
    assert rejected == [] and record.fields["text"] == CODENAME
    assert _outcome(record) == "kept_original" and record.scores["verified"] is False
    assert record.provenance.technique == ""
    assert record.provenance.conditioning["fallback"] == "must_not_match"


def test_regex_replace_patches_the_last_rewrite(tmp_path: Path) -> None:
    leaky = CLEAN.replace("the new build", "ORCA-7")
    (record,), _, _ = _run(
        tmp_path, [_text(leaky), _text(leaky)], on_fail="regex_replace", placeholder="[project]"
    )
    assert record.fields["text"] == CLEAN.replace("the new build", "[project]")
    assert _outcome(record) == "rewritten_patched" and record.provenance.technique == "gdr"
    assert record.scores["verified"] is True


def test_regex_replace_falls_back_to_the_input_when_the_rewrite_is_unusable(
    tmp_path: Path,
) -> None:
    other = "The meeting is cancelled and everyone can go home early today."
    checks = {"must_not_match": PATTERNS, "max_change": 0.3}
    (record,), _, _ = _run(
        tmp_path, [_text(other)], max_reasks=0, checks=checks, on_fail="regex_replace"
    )
    expected = "Reminder: the [REDACTED] demo moves to Thursday, and [REDACTED] ships Friday."
    assert record.fields["text"] == expected
    assert _outcome(record) == "replaced" and record.provenance.technique == "dirs"
    assert record.provenance.conditioning["fallback"] == "max_change"
    assert record.scores["change_outside"] == 0.0


def test_regex_replace_is_verified_again_and_rejected_if_it_fails(tmp_path: Path) -> None:
    leaky = CLEAN.replace("the new build", "ORCA-7")
    checks = {"must_not_match": PATTERNS, "judge": JUDGE}
    records, (rejected,), _ = _run(
        tmp_path, _judged([leaky], [1, 1]), max_reasks=0, checks=checks, on_fail="regex_replace"
    )
    assert records == []
    assert rejected["reason"] == "judge_below_threshold"
    assert rejected["detail"].startswith("after '[REDACTED]' replacement: judge: scored 1 of 5")


def test_an_unparseable_reply_is_rejected_with_its_reason(tmp_path: Path) -> None:
    records, (rejected,), _ = _run(tmp_path, ["not json", "still not json"])
    assert records == []
    assert rejected["reason"] in {"invalid_json", "schema"}


@pytest.mark.parametrize(
    ("checks", "options", "message"),
    [
        ({"must_not_match": ["(unclosed"]}, {}, r"must_not_match\[0\] '\(unclosed'"),
        ({"must_not_match": ["x*"]}, {}, "matches the empty string"),
        ({"no_entities": ["SECRET_THING"]}, {}, "unknown entity types"),
        ({"max_change": 0.3}, {}, "give at least one of must_not_match"),
        ({"judge": JUDGE}, {"on_fail": "regex_replace"}, "regex_replace replaces"),
    ],
)
def test_config_errors_say_how_to_fix_them(
    tmp_path: Path, checks: dict[str, Any], options: dict[str, Any], message: str
) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text(json.dumps({"id": "m", "text": CODENAME}) + "\n")
    step = {"instruction": INSTRUCTION, "checks": checks, **options}
    spec = {"input": str(source), "steps": [{"refine": step}]}
    with pytest.raises(ConfigError, match=message):
        datarefinery.run(spec, tmp_path / "out", backend=ScriptedBackend([]))


@pytest.mark.slow
def test_example_on_the_embedded_model(tmp_path: Path) -> None:
    result = run_example(
        "refine_codenames",
        tmp_path,
        {"max_reasks": 0},
        limit=2,
        n_threads=1,
        parallel=1,
        max_tokens=64,
    )
    assert result.status == "complete", result.message
    records = list(read_records(result.dataset_path))
    assert result.rejected_size == 0  # regex_replace: every record comes out, verified
    assert len(records) == 2
    for record in records:
        assert "BLUEHERON" not in record.fields["text"] and "ORCA-7" not in record.fields["text"]
        assert record.scores["verified"] is True and record.scores["attempts"] == 1
        assert record.scores["change_outside"] <= 0.15
        assert _outcome(record) in {"rewritten", "rewritten_patched", "replaced"}
