import asyncio
import json
from collections.abc import Callable

from datarefinery.config import TaskSpec
from datarefinery.llm.base import Request, SamplingParams
from datarefinery.llm.engine import Engine
from datarefinery.llm.scripted import ScriptedBackend
from datarefinery.prompts.render import load_template
from datarefinery.records import Record
from datarefinery.steps.voting import Vote, label_reply_model, vote

TASK = TaskSpec.model_validate(
    {"description": "Sentiment.", "labels": {"positive": "liked it", "negative": "did not"}}
)


def run_vote(answer: Callable[[Request], str], k: int) -> tuple[Vote, list[Request]]:
    backend = ScriptedBackend(answer)
    result = asyncio.run(
        vote(
            Engine(backend),
            load_template("label"),
            TASK,
            Record(id="r", fields={"text": "Loved it."}),
            input_fields=["text"],
            k=k,
            params=SamplingParams(),
            seeds=list(range(1, k + 1)),
        )
    )
    return result, backend.requests


def by_seed(answers: dict[int, str]) -> Callable[[Request], str]:
    return lambda request: json.dumps({"label": answers[request.seed or 0]})


def test_majority_and_agreement() -> None:
    result, requests = run_vote(by_seed({1: "positive", 2: "negative", 3: "positive"}), k=3)
    assert result.label == "positive"
    assert result.votes == {"positive": 2, "negative": 1}
    assert result.agreement == 2 / 3 and result.failures == 0
    prompt = requests[0].messages[-1].content
    assert "text: Loved it." in prompt and "- positive: liked it" in prompt
    assert requests[0].json_schema is not None
    assert sorted(r.seed or 0 for r in requests) == [1, 2, 3]


def test_invalid_answers_do_not_vote() -> None:
    # Seed 2 answers a label outside the set, on the first ask and on the re-ask.
    result, requests = run_vote(by_seed({1: "negative", 2: "meh", 3: "positive"}), k=3)
    assert result.failures == 1
    assert result.votes == {"negative": 1, "positive": 1}
    assert len(requests) == 4  # three asks and one re-ask


def test_no_valid_answer_gives_no_label() -> None:
    result, _ = run_vote(lambda request: "no idea", k=2)
    assert result == Vote(None, 0.0, {}, 2, 2)


def test_ties_go_to_the_first_listed_label() -> None:
    result, _ = run_vote(by_seed({1: "negative", 2: "positive"}), k=2)
    assert result.label == "positive" and result.agreement == 0.5


def test_schema_is_an_enum_of_labels() -> None:
    schema = label_reply_model(["a", "b"]).model_json_schema()
    enums = [d.get("enum") for d in schema.get("$defs", {}).values()]
    assert enums == [["a", "b"]]
