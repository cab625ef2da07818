import asyncio

from datarefinery.config import LlamaCppConfig, TaskSpec
from datarefinery.records import Record, Rejected
from datarefinery.steps.base import StepContext
from datarefinery.steps.curate.validate import Validate, ValidateConfig

TASK = TaskSpec.model_validate(
    {
        "description": "d",
        "fields": {
            "text": {"min_chars": 3},
            "stars": {"type": "int"},
            "label": {"type": "label"},
        },
        "labels": ["pos", "neg"],
    }
)


def run(fields: dict) -> Record | Rejected:  # type: ignore[type-arg]
    step = Validate(ValidateConfig())
    step.setup(StepContext(name="validate", index=0, seed=0, task=TASK, llm=LlamaCppConfig()))
    (out,) = asyncio.run(step.process([Record(id="r", fields=fields)]))
    return out


def test_valid_record_passes_and_csv_numbers_are_converted() -> None:
    out = run({"text": "good", "stars": "4", "label": "pos"})
    assert isinstance(out, Record)
    assert out.fields["stars"] == 4


def test_each_problem_is_named() -> None:
    cases = {
        "missing_field": {"text": "good", "label": "pos"},
        "invalid_field": {"text": "good", "stars": "four", "label": "pos"},
    }
    for reason, fields in cases.items():
        out = run(fields)
        assert isinstance(out, Rejected) and out.reason == reason
    short = run({"text": "a", "stars": 1, "label": "pos"})
    assert isinstance(short, Rejected) and "text: shorter than 3" in short.detail
    label = run({"text": "fine", "stars": 1, "label": "meh"})
    assert isinstance(label, Rejected) and "'meh' is not one of the labels" in label.detail
