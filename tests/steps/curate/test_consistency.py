import json
from pathlib import Path

import pytest

import datarefinery
from datarefinery.llm.base import Request
from datarefinery.llm.engine import Engine
from datarefinery.llm.scripted import ScriptedBackend
from datarefinery.records import Record
from datarefinery.steps.curate.consistency import Consistency, ConsistencyConfig, answers_match
from tests.steps.curate.helpers import kept, rejected, run_step
from tests.steps.curate.test_judge import curate_spec, write_input


def test_llm_relabeling_rejects_disagreements_with_the_votes() -> None:
    def labeler(request: Request) -> str:
        text = request.messages[-1].content
        return json.dumps({"label": "negative" if "awful" in text else "positive"})

    batch = [
        Record("ok", {"text": "A lovely film.", "label": "positive"}),
        Record("wrong", {"text": "An awful film.", "label": "positive"}),
    ]
    backend = ScriptedBackend(labeler)
    outputs = run_step(Consistency(ConsistencyConfig(k=3)), batch, engine=Engine(backend))
    (good,) = kept(outputs)
    assert good.scores == {"consistency_label": "positive", "consistency_agreement": 1.0}
    (bad,) = rejected(outputs)
    assert bad.reason == "label_disagrees"
    assert "labeled 'positive', the model says 'negative'" in bad.detail
    assert len({r.seed for r in backend.requests}) == 6  # k distinct seeds per record


def test_classifier_cross_fitted_on_the_input() -> None:
    batch = []
    for i in range(8):
        batch.append(Record(f"p{i}", {"text": f"great wonderful {i}", "label": "positive"}))
        batch.append(Record(f"n{i}", {"text": f"awful terrible {i}", "label": "negative"}))
    batch.append(Record("bad", {"text": "awful terrible", "label": "positive"}))
    step = Consistency(ConsistencyConfig(method="classifier", folds=3))
    assert step.needs_whole_input() and not step.uses_llm
    outputs = run_step(step, batch)
    assert [r.record.id for r in rejected(outputs)] == ["bad"]


def test_classifier_trained_on_a_file(tmp_path: Path) -> None:
    train = tmp_path / "train.jsonl"
    rows = [{"text": f"great wonderful {i}", "label": "positive"} for i in range(5)]
    rows += [{"text": f"awful terrible {i}", "label": "negative"} for i in range(5)]
    train.write_text("".join(json.dumps(r) + "\n" for r in rows))
    step = Consistency(ConsistencyConfig(method="classifier", train=str(train)))
    assert not step.needs_whole_input()
    outputs = run_step(step, [Record("x", {"text": "terrible, awful", "label": "positive"})])
    (out,) = rejected(outputs)
    assert out.record.scores["consistency_label"] == "negative"


def test_answers_match() -> None:
    assert answers_match("1,234", "1234.0")
    assert answers_match("$12.50", "12.5")
    assert answers_match("Paris.", "paris")
    assert not answers_match("41", "42")


def test_execute_compares_the_computed_answer_with_the_stated_one() -> None:
    batch = [
        Record("right", {"code": "answer = 17 * 3", "solution": "So 17 * 3 = 51. #### 51"}),
        Record("wrong", {"code": "print(17 + 3)", "solution": "#### 51"}),
        Record("crash", {"code": "answer = 1 / 0", "solution": "#### 0"}),
        Record("loop", {"code": "while True:\n    pass", "solution": "#### 1"}),
    ]
    config = ConsistencyConfig(
        method="execute",
        code_field="code",
        answer_field="solution",
        answer_pattern=r"####\s*(\S+)",
        cpu_s=1,
    )
    outputs = run_step(Consistency(config), batch, task=None)
    assert [r.id for r in kept(outputs)] == ["right"]
    assert kept(outputs)[0].scores["consistency_computed"] == "51"
    reasons = {r.record.id: r.reason for r in rejected(outputs)}
    assert reasons == {
        "wrong": "answer_mismatch",
        "crash": "execution_failed",
        "loop": "execution_failed",
    }
    details = {r.record.id: r.detail for r in rejected(outputs)}
    assert "stated answer '51', the code computes '20'" in details["wrong"]
    assert "cpu_limit" in details["loop"]


def test_execute_without_an_answer_field_runs_the_code_s_own_asserts() -> None:
    batch = [
        Record("pass", {"code": "def f(x):\n    return x * 2\nassert f(2) == 4"}),
        Record("fail", {"code": "def f(x):\n    return x + 2\nassert f(3) == 6"}),
    ]
    config = ConsistencyConfig(method="execute", code_field="code")
    outputs = run_step(Consistency(config), batch, task=None)
    assert [r.id for r in kept(outputs)] == ["pass"]
    assert "AssertionError" in rejected(outputs)[0].detail


def test_execute_keeps_only_a_short_copy_of_what_the_code_returns() -> None:
    huge = "9" * 3000 + "<script>"
    batch = [
        Record("long", {"code": f"answer = {huge!r}", "solution": "#### 51"}),
        Record("printed", {"code": f"print({huge!r})", "solution": "#### 51"}),
    ]
    config = ConsistencyConfig(
        method="execute", code_field="code", answer_field="solution", answer_pattern=r"####\s*(\S+)"
    )
    outputs = run_step(Consistency(config), batch, task=None)
    assert {r.reason for r in rejected(outputs)} == {"answer_mismatch"}
    for out in rejected(outputs):
        computed = out.record.scores["consistency_computed"]
        assert computed.startswith("999") and len(computed) <= 240 and "<script>" not in computed
        assert len(out.detail) <= 400 and "<script>" not in out.detail


def test_execute_refuses_at_set_up_without_the_sandbox(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from datarefinery.errors import UsageError

    monkeypatch.setenv("PATH", str(tmp_path))  # no bwrap
    step = Consistency(ConsistencyConfig(method="execute", code_field="code"))
    with pytest.raises(UsageError, match="apt-get install bubblewrap"):
        run_step(step, [Record("r", {"code": "answer = 1"})], task=None)


@pytest.mark.slow
def test_llm_consistency_on_the_embedded_model(tmp_path: Path) -> None:
    rows = [
        {"id": "a", "text": "I loved it: a wonderful, moving film.", "label": "positive"},
        {"id": "b", "text": "Terrible. Boring plot, awful acting.", "label": "positive"},
    ]
    spec = curate_spec(write_input(tmp_path / "in.jsonl", rows), {"consistency": {"k": 3}})
    result = datarefinery.run(spec, tmp_path / "run")
    assert result.status == "complete"
    out = list(datarefinery.read_records(result.dataset_path))
    dropped = [json.loads(line) for line in result.rejected_path.read_text().splitlines()]
    assert len(out) + len(dropped) == 2
    for record in out:  # kept records agree with the majority of three real votes
        assert record.scores["consistency_label"] == record.fields["label"]
        assert record.scores["consistency_agreement"] >= 1 / 3
    for row in dropped:
        assert row["reason"] in {"label_disagrees", "no_vote"}
        assert (
            row["record"]["scores"]["consistency_label"] != "positive" or row["reason"] == "no_vote"
        )
    assert result.manifest["engine"]["requests"] >= 6
