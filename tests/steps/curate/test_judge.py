import copy
import json
from pathlib import Path
from typing import Any

import pytest

import datarefinery
from datarefinery.llm.base import Request
from datarefinery.llm.engine import Engine
from datarefinery.llm.scripted import ScriptedBackend
from datarefinery.records import Record
from datarefinery.steps.curate.judge import Judge, JudgeConfig
from tests.steps.curate.helpers import kept, records, rejected, run_step
from tests.support.specs import SENTIMENT_TASK

REVIEWS = [
    {
        "id": "a",
        "text": "A warm, funny film with a superb cast; I smiled all the way through.",
        "label": "positive",
    },
    {
        "id": "b",
        "text": "Dull, overlong and badly acted. I walked out after an hour.",
        "label": "negative",
    },
    {"id": "c", "text": "film film film film", "label": "positive"},
]


def judge(config: dict[str, Any], batch: list[Record], reply: Any) -> tuple[list[Any], Any]:
    backend = ScriptedBackend(reply)
    outputs = run_step(Judge(JudgeConfig.model_validate(config)), batch, engine=Engine(backend))
    return outputs, backend


def test_pointwise_scores_reason_and_threshold() -> None:
    def reply(request: Request) -> str:
        good = "warm" in request.messages[-1].content
        return json.dumps({"reason": "ok" if good else "repetitive", "quality": 5 if good else 2})

    outputs, backend = judge({"threshold": 3}, records("A warm film.", "film film"), reply)
    (good,) = kept(outputs)
    assert good.scores == {"judge": 5.0, "judge_reason": "ok"}
    (bad,) = rejected(outputs)
    assert bad.reason == "low_score" and "mean score 2.00 < threshold 3: repetitive" in bad.detail
    schema = backend.requests[0].json_schema
    assert schema["properties"]["quality"]["enum"] == [1, 2, 3, 4, 5]
    prompt = backend.requests[0].messages[-1].content
    assert "quality: realistic" in prompt and "text: A warm film." in prompt


def test_several_criteria_are_averaged() -> None:
    config = {"criteria": {"fluency": "reads well", "label_fit": "matches its label"}}
    outputs, _ = judge(
        config, records("x"), [json.dumps({"reason": "r", "fluency": 4, "label_fit": 1})]
    )
    (out,) = outputs
    assert out.scores["judge"] == 2.5 and out.scores["judge_fluency"] == 4


def test_a_reply_outside_the_scale_is_rejected_after_a_reask() -> None:
    outputs, backend = judge({}, records("x"), lambda r: json.dumps({"reason": "r", "quality": 9}))
    (out,) = rejected(outputs)
    assert out.reason != "low_score" and len(backend.requests) == 2


def pairs(*texts: str) -> list[Record]:
    return [Record(f"r{i}", {"prompt": "Review a comedy.", "text": t}) for i, t in enumerate(texts)]


def test_pairwise_keeps_order_consistent_preferences() -> None:
    def prefers_funny(request: Request) -> str:
        prompt = request.messages[-1].content
        first = prompt.split("\nA: ")[1].split("\n")[0]
        return json.dumps({"reason": "funnier", "better": "A" if "funny" in first else "B"})

    outputs, backend = judge(
        {"mode": "pairwise", "group_by": "prompt"}, pairs("dull", "funny", "lonely"), prefers_funny
    )
    (pair,) = kept(outputs)
    assert pair.fields == {
        "prompt": "Review a comedy.",
        "chosen": "funny",
        "rejected": "dull",
        "margin": 1.0,
    }
    assert pair.provenance.parent_ids == ["r1", "r0"]
    assert len(backend.requests) == 2  # both orders
    (alone,) = rejected(outputs)
    assert alone.reason == "unpaired" and alone.record.id == "r2"


def test_pairwise_drops_position_bias() -> None:
    outputs, _ = judge(
        {"mode": "pairwise", "group_by": "prompt"},
        pairs("one", "two"),
        lambda r: json.dumps({"reason": "first is best", "better": "A"}),
    )
    assert [r.reason for r in rejected(outputs)] == ["inconsistent_preference"] * 2
    assert "first-shown answer both times" in rejected(outputs)[0].detail


def test_pairwise_rejects_a_tie_in_either_order() -> None:
    def tie_when_one_is_first(request: Request) -> str:
        first = request.messages[-1].content.split("\nA: ")[1].split("\n")[0]
        return json.dumps({"reason": "same", "better": "tie" if first == "one" else "A"})

    outputs, backend = judge(
        {"mode": "pairwise", "group_by": "prompt"}, pairs("one", "two"), tie_when_one_is_first
    )
    assert [r.reason for r in rejected(outputs)] == ["tie"] * 2
    assert "a tie" in rejected(outputs)[0].detail
    assert backend.requests[0].json_schema["properties"]["better"]["enum"] == ["A", "B", "tie"]


def test_pairwise_needs_group_by() -> None:
    with pytest.raises(ValueError, match="group_by"):
        JudgeConfig(mode="pairwise")


def write_input(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def curate_spec(input_path: Path, step: dict[str, Any], **task: Any) -> dict[str, Any]:
    return {
        "name": "curate",
        "seed": 1,
        "task": {**copy.deepcopy(SENTIMENT_TASK), **task},
        "llm": {"max_tokens": 96, "n_ctx": 1024},
        "input": str(input_path),
        "steps": [step],
    }


@pytest.mark.slow
def test_judge_on_the_embedded_model(tmp_path: Path) -> None:
    spec = curate_spec(
        write_input(tmp_path / "in.jsonl", REVIEWS[1:]),
        {"judge": {"threshold": 3, "reason_chars": 60}},
    )
    result = datarefinery.run(spec, tmp_path / "run")
    assert result.status == "complete"
    out = list(datarefinery.read_records(result.dataset_path))
    dropped = [json.loads(line) for line in result.rejected_path.read_text().splitlines()]
    assert len(out) + len(dropped) == 2
    for record in out:
        assert record.scores["judge"] in {3.0, 4.0, 5.0}
        assert 0 < len(record.scores["judge_reason"]) <= 60
    for row in dropped:
        assert row["reason"] == "low_score" and "< threshold 3" in row["detail"]
        assert row["record"]["scores"]["judge"] in {1.0, 2.0}
    again = datarefinery.run(spec, tmp_path / "run")  # resumes, from the cache
    assert again.manifest["engine"]["backend_calls"] == 0
    assert result.dataset_path.read_text() == again.dataset_path.read_text()


@pytest.mark.slow
def test_pairwise_judge_on_the_embedded_model(tmp_path: Path) -> None:
    rows = [
        {"id": "a", "prompt": "Review a comedy.", "text": REVIEWS[0]["text"], "label": "positive"},
        {"id": "b", "prompt": "Review a comedy.", "text": "film film film", "label": "positive"},
    ]
    spec = curate_spec(
        write_input(tmp_path / "in.jsonl", rows),
        {"judge": {"mode": "pairwise", "group_by": "prompt", "reason_chars": 60}},
        fields={"prompt": {}, "text": {}, "label": {"type": "label"}},
    )
    result = datarefinery.run(spec, tmp_path / "run")
    assert result.status == "complete"
    out = list(datarefinery.read_records(result.dataset_path))
    dropped = [json.loads(line) for line in result.rejected_path.read_text().splitlines()]
    if out:  # the model kept its preference when the order was swapped
        (pair,) = out
        assert {pair.fields["chosen"], pair.fields["rejected"]} == {
            rows[0]["text"],
            "film film film",
        }
        assert sorted(pair.provenance.parent_ids) == ["a", "b"]
    else:  # or it did not: both records are rejected as position bias, with the reason
        assert [r["reason"] for r in dropped] == ["inconsistent_preference"] * 2
