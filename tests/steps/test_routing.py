"""The ``route`` option of label, judge and consistency: uncertain records kept for people."""

import json
from typing import Any

from datarefinery.llm.base import Request
from datarefinery.llm.engine import Engine
from datarefinery.llm.scripted import ScriptedBackend
from datarefinery.records import Record, Rejected
from datarefinery.steps.curate.consistency import Consistency, ConsistencyConfig
from datarefinery.steps.curate.judge import Judge, JudgeConfig
from datarefinery.steps.routing import RouteRule, route_kept, route_or_reject, routed
from tests.steps.curate.helpers import kept, records, rejected, run_step


def judged(route: Any) -> list[Any]:
    def reply(request: Request) -> str:
        score = 5 if "warm" in request.messages[-1].content else 2
        return json.dumps({"reason": "because", "quality": score})

    config = JudgeConfig.model_validate({"threshold": 3, "route": route})
    engine = Engine(ScriptedBackend(reply))
    return run_step(Judge(config), records("A warm film.", "film film"), engine=engine)


def test_judge_routes_instead_of_rejecting() -> None:
    assert [r.reason for r in rejected(judged(False))] == ["low_score"]
    by_threshold = {r.id: r.scores for r in kept(judged({"below": 3}))}
    assert "route" not in by_threshold["r0"]
    assert by_threshold["r1"]["route"] == "judge"
    assert by_threshold["r1"]["route_reason"] == "judge 2.00 < 3"
    (uncertain,) = [r for r in kept(judged(True)) if "route" in r.scores]
    assert uncertain.scores["route_reason"].startswith("low_score: mean score 2.00 < threshold 3")
    # A threshold that the rejected score does not meet: still rejected.
    assert [r.reason for r in rejected(judged({"below": 1.5}))] == ["low_score"]
    # Above: the top-scored record goes to people as well; the low one is still rejected.
    above = judged({"above": 4})
    assert [r.scores["route_reason"] for r in kept(above)] == ["judge 5.00 > 4"]
    assert [r.reason for r in rejected(above)] == ["low_score"]


def test_consistency_routes_a_disagreement() -> None:
    def reply(request: Request) -> str:
        return json.dumps({"label": "negative"})

    batch = records("A warm film.")
    config = ConsistencyConfig.model_validate({"k": 2, "route": True})
    outputs = run_step(Consistency(config), batch, engine=Engine(ScriptedBackend(reply)))
    (record,) = kept(outputs)
    assert record.scores["route"] == "consistency"
    assert record.scores["route_reason"].startswith("label_disagrees: labeled 'positive'")
    plain = ConsistencyConfig.model_validate({"k": 2})
    outputs = run_step(Consistency(plain), batch, engine=Engine(ScriptedBackend(reply)))
    assert [r.reason for r in rejected(outputs)] == ["label_disagrees"]


def test_a_second_routing_step_keeps_the_first_reason() -> None:
    record = routed(Record("x", {"text": "t"}), "label", "label_agreement 0.50 < 0.67")
    again = routed(record, "judge", "judge 2.00 < 3")
    assert again.scores["route"] == "judge"
    assert again.scores["route_reason"] == "label_agreement 0.50 < 0.67; judge 2.00 < 3"
    rule = RouteRule(below=0.5)
    assert route_kept(rule, Record("y", {}), "s", "score", 0.7).scores == {}
    rejection = Rejected(Record("z", {}), "s", "low", "why")
    assert route_or_reject(False, rejection, "score", 0.1) is rejection
