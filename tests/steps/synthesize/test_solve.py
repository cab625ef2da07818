import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from datarefinery.config import LlamaCppConfig
from datarefinery.llm.base import Request
from datarefinery.llm.engine import Engine
from datarefinery.llm.scripted import ScriptedBackend
from datarefinery.records import Record
from datarefinery.steps.base import Output, StepContext
from datarefinery.steps.registry import step_class
from datarefinery.steps.synthesize.solve import Solve, SolveConfig
from tests.steps.curate.helpers import kept, rejected, run_step
from tests.support.examples import run_example
from tests.support.fake import read_jsonl

PROBLEMS = [
    Record(
        "p1", {"question": "Mia has 12 pencils, gives 5 away and buys 8. How many?", "answer": "15"}
    ),
    Record("p2", {"question": "4 trays of 6 muffins, 17 sold. How many are left?", "answer": "7"}),
]


def seed_of(problem: str, index: int) -> int:
    ctx = StepContext(name="solve", index=0, seed=7, task=None, llm=LlamaCppConfig())
    return ctx.call_seed(problem, index)


def solution(answer: str, reasoning: str = "12 - 5 + 8 = 15") -> str:
    return json.dumps({"reasoning": reasoning, "result": answer})


def scripted(replies: dict[tuple[str, int], list[str] | str]) -> tuple[Engine, ScriptedBackend]:
    """Replies by (problem id, sample index): one reply, or one per ask (the re-ask second)."""
    by_seed = {seed_of(p, i): r if isinstance(r, list) else [r] for (p, i), r in replies.items()}

    def script(request: Request) -> str:
        assert request.seed is not None
        queue = by_seed[request.seed]
        return queue.pop(0) if len(queue) > 1 else queue[0]

    backend = ScriptedBackend(script)
    return Engine(backend), backend


def solve(replies: dict[tuple[str, int], Any], batch: list[Record], **options: Any) -> list[Output]:
    engine, _ = scripted(replies)
    return run_step(Solve(SolveConfig(**options)), batch, task=None, engine=engine)


def test_keeps_correct_samples_rejects_wrong_ones_and_unsolved_problems() -> None:
    replies = {
        ("p1", 0): solution("15"),
        ("p1", 1): solution("14"),
        ("p1", 2): solution("$15.00"),
        ("p1", 3): solution("fifteen"),
        **{("p2", i): solution("8", "24 - 17 = 8") for i in range(4)},
    }
    outputs = solve(replies, PROBLEMS, n=4, temperatures=[0.5, 1.0])
    good = kept(outputs)
    assert [r.provenance.conditioning["sample"] for r in good] == [0, 2]
    for record in good:
        assert record.fields["reasoning"] == "12 - 5 + 8 = 15"
        assert record.fields["question"] == PROBLEMS[0].fields["question"]
        assert record.provenance.parent_ids == ["p1"]
        assert record.provenance.technique == "rejection_sampling"
        assert record.scores == {"solve_pass_rate": 0.5, "solve_correct": 2, "solve_samples": 4}
    assert good[1].fields["answer"] == "$15.00"
    conditioning = good[1].provenance.conditioning
    assert conditioning == {
        "sample": 2,
        "seed": seed_of("p1", 2),
        "temperature": 0.5,
        "reference": "15",
    }
    reasons = Counter(r.reason for r in rejected(outputs))
    assert reasons == {"wrong_answer": 5, "no_answer": 1, "unsolved": 1}
    by_id = {r.record.id: r for r in rejected(outputs)}
    wrong = next(r for r in by_id.values() if r.record.provenance.conditioning.get("sample") == 1)
    assert wrong.detail == "got '14' (from '14'), expected '15'"
    assert wrong.record.fields["answer"] == "14"  # the sample's own answer, kept for inspection
    unsolved = by_id["p2"]
    assert unsolved.reason == "unsolved"
    assert unsolved.detail == "none of the 4 samples matched the reference '7' (4 wrong_answer)"
    assert unsolved.record.scores["solve_pass_rate"] == 0.0


def test_each_sample_is_its_own_request_with_its_seed_and_temperature() -> None:
    engine, backend = scripted({("p1", i): solution("15") for i in range(3)})
    run_step(
        Solve(SolveConfig(n=3, temperatures=[0.2, 0.9])), PROBLEMS[:1], task=None, engine=engine
    )
    sent = sorted((r.seed, r.params.temperature) for r in backend.requests)
    assert sent == sorted((seed_of("p1", i), t) for i, t in enumerate([0.2, 0.9, 0.2]))
    properties = list(backend.requests[0].json_schema["properties"])
    # The grammar follows the declared order: the reasoning must come before the answer.
    assert properties == ["reasoning", "result"]
    assert "Mia has 12 pencils" in backend.requests[0].messages[-1].content


def test_a_malformed_reply_is_re_asked_then_rejected_with_its_reason() -> None:
    replies = {
        ("p1", 0): ["I think it is 15", solution("15")],  # fixed on the re-ask: kept
        ("p1", 1): "no json here",  # twice: rejected
    }
    engine, backend = scripted(replies)
    outputs = run_step(Solve(SolveConfig(n=2)), PROBLEMS[:1], task=None, engine=engine)
    assert len(backend.requests) == 4
    assert [r.provenance.conditioning["sample"] for r in kept(outputs)] == [0]
    assert kept(outputs)[0].scores["solve_pass_rate"] == 0.5
    (bad,) = rejected(outputs)
    assert bad.reason == "invalid_json"
    assert "no json here" in bad.detail


def test_keep_first_stops_at_the_first_correct_sample() -> None:
    replies = {("p1", i): solution("15" if i == 1 else "3") for i in range(5)}
    engine, backend = scripted(replies)
    outputs = run_step(
        Solve(SolveConfig(n=5, keep="first")), PROBLEMS[:1], task=None, engine=engine
    )
    assert len(backend.requests) == 2
    (record,) = kept(outputs)
    assert record.scores == {"solve_pass_rate": 0.5, "solve_correct": 1, "solve_samples": 2}
    assert [r.reason for r in rejected(outputs)] == ["wrong_answer"]


def test_keep_one_per_problem_keeps_the_shortest_correct_solution() -> None:
    replies = {
        ("p1", 0): solution("15", "twelve minus five is seven, seven plus eight is fifteen"),
        ("p1", 1): solution("15", "12 - 5 + 8 = 15"),
        ("p1", 2): solution("15", "12 - 5 = 7 and 7 + 8 = 15"),
    }
    outputs = solve(replies, PROBLEMS[:1], n=3, keep="one_per_problem")
    (record,) = kept(outputs)
    assert record.provenance.conditioning["sample"] == 1
    assert record.scores["solve_pass_rate"] == 1.0
    assert [r.reason for r in rejected(outputs)] == ["extra_solution", "extra_solution"]


def test_a_problem_without_a_reference_is_rejected() -> None:
    problem = Record("p3", {"question": "How many?", "answer": " "})
    (output,) = solve({}, [problem])
    assert not isinstance(output, Record)
    assert output.reason == "no_reference"
    assert "'answer'" in output.detail


def test_program_mode_runs_the_program_in_the_sandbox() -> None:
    def program(code: str) -> str:
        return json.dumps({"program": code})

    replies = {
        ("p1", 0): program("pencils = 12 - 5 + 8\nanswer = pencils"),
        ("p1", 1): program("print(12 - 5)\nprint(12 - 5 + 8)"),
        ("p1", 2): program("answer = 1 / 0"),
        ("p1", 3): program("x = 15"),
    }
    outputs = solve(replies, PROBLEMS[:1], n=4, mode="program", cpu_s=1, timeout_s=5)
    good = kept(outputs)
    assert [r.provenance.conditioning["sample"] for r in good] == [0, 1]
    assert [r.fields["answer"] for r in good] == ["15", "15"]
    assert good[0].fields["program"].startswith("pencils = ")
    assert good[0].provenance.technique == "program_of_thought"
    reasons = {r.record.provenance.conditioning["sample"]: r for r in rejected(outputs)}
    assert reasons[2].reason == "execution_failed"
    assert "ZeroDivisionError" in reasons[2].detail
    assert reasons[3].reason == "no_answer"


def test_options_are_checked() -> None:
    with pytest.raises(ValidationError, match="at least one temperature"):
        SolveConfig(temperatures=[])
    with pytest.raises(ValidationError, match=r"outside 0\.\.2"):
        SolveConfig(temperatures=[3.0])
    with pytest.raises(ValidationError):
        SolveConfig(keep="best")  # type: ignore[arg-type]
    assert step_class("solve") is Solve
    step = Solve(SolveConfig(mode="program"))
    assert step.reads(None) == {"question", "answer"}
    assert step.writes(None) == {"program", "answer"}


@pytest.mark.slow
def test_example_on_the_embedded_model(tmp_path: Path) -> None:
    result = run_example("solve_gsm8k", tmp_path, {"n": 2}, limit=2, max_tokens=160, n_threads=1)
    assert result.status == "complete", result.message
    good, bad = read_jsonl(result.dataset_path), read_jsonl(result.rejected_path)
    samples = [r for r in bad if r["reason"] != "unsolved"]
    assert len(good) + len(samples) == 4  # 2 problems x 2 samples, each kept or rejected
    assert {r["reason"] for r in bad} <= {
        "wrong_answer",
        "no_answer",
        "unsolved",
        "invalid_json",
        "schema",
    }
    for record in good:
        assert record["fields"]["reasoning"]
        assert record["scores"]["solve_samples"] == 2
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["steps"][0]["records_in"] == 2
