"""Label Studio: tasks with predictions and the labeling config out; its JSON export read back.

The export fixtures follow the documented "JSON format of annotated tasks" (Label Studio 1.x
docs, guide/task_format and guide/export), written by hand here, not by our exporter.
"""

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from datarefinery import InputFileError
from datarefinery.io.annotations import LabelingTask
from datarefinery.io.labelstudio import (
    config_path,
    is_labelstudio,
    labeling_config,
    read_labelstudio,
    write_labelstudio,
)
from datarefinery.records import Provenance, Record

TASK = LabelingTask("label", ("positive", "negative"), ("text",))


def _records() -> list[tuple[Record, None]]:
    liked = Record(
        "r1",
        {"text": "Loved it.", "label": "positive"},
        Provenance(step="label", model="smollm2"),
        {"label_agreement": 0.6},
    )
    return [(liked, None), (Record("r2", {"text": "Dull."}), None)]


def test_tasks_carry_the_id_and_the_label_as_a_prediction(tmp_path: Path) -> None:
    path = tmp_path / "tasks.json"
    assert write_labelstudio(path, _records(), None) == 2
    tasks = json.loads(path.read_text())
    assert tasks[0] == {
        "id": 1,
        "data": {"text": "Loved it.", "refinery_id": "r1"},
        "predictions": [
            {
                "model_version": "smollm2",
                "score": 0.6,
                "result": [
                    {
                        "from_name": "label",
                        "to_name": "text",
                        "type": "choices",
                        "value": {"choices": ["positive"]},
                    }
                ],
            }
        ],
    }
    assert "predictions" not in tasks[1]  # nothing to suggest for an unlabeled record
    assert config_path(path).name == "tasks.xml"


def test_the_labeling_config_names_every_label_and_the_text_fields() -> None:
    nli = LabelingTask("label", ("entailment", "not_entailment"), ("premise", "hypothesis"))
    view = ET.fromstring(labeling_config(nli))
    texts = [(t.get("name"), t.get("value")) for t in view.iter("Text")]
    assert texts == [("premise", "$premise"), ("hypothesis", "$hypothesis")]
    choices = view.find("Choices")
    assert choices is not None
    assert (choices.get("name"), choices.get("toName"), choices.get("choice")) == (
        "label",
        "premise",
        "single",
    )
    assert [c.get("value") for c in choices.iter("Choice")] == ["entailment", "not_entailment"]


def _choice(label: str) -> dict[str, Any]:
    return {
        "from_name": "label",
        "id": "Dx_aB91ISN",
        "to_name": "text",
        "type": "choices",
        "origin": "manual",
        "value": {"choices": [label]},
    }


def _annotation(label: str | None, by: Any, at: str, cancelled: bool = False) -> dict[str, Any]:
    return {
        "id": 1001,
        "result": [] if label is None else [_choice(label)],
        "was_cancelled": cancelled,
        "ground_truth": False,
        "created_at": at,
        "updated_at": at,
        "lead_time": 4.288,
        "result_count": 0,
        "task": 1,
        "completed_by": by,
    }


def documented_export() -> list[dict[str, Any]]:
    """A project's "JSON" export as the Label Studio docs show it, for three of our tasks."""
    prediction = {
        "created_ago": "3 hours",
        "model_version": "smollm2",
        "score": 0.6,
        "result": [_choice("positive")],
    }
    return [
        {
            "id": 1,
            "created_at": "2021-03-09T21:52:49.513742Z",
            "updated_at": "2021-03-09T22:16:08.746926Z",
            "project": 83,
            "data": {"text": "Loved it.", "refinery_id": "r1"},
            "meta": {},
            "annotations": [_annotation("positive", 10, "2021-03-09T22:16:08.728378Z")],
            "drafts": [],
            "predictions": [prediction],
        },
        {
            "id": 2,
            "project": 83,
            "data": {"text": "Meh.", "refinery_id": "r2"},
            "annotations": [
                _annotation(
                    "negative",
                    {"id": 11, "email": "ana@example.org", "first_name": "", "last_name": ""},
                    "2021-03-10T09:00:00.000000Z",
                )
            ],
            "drafts": [{"id": 7, "result": [_choice("positive")], "user": "bo@example.org"}],
            "predictions": [prediction],
        },
        {
            "id": 3,
            "project": 83,
            "data": {"text": "Spam spam spam.", "refinery_id": "r3"},
            "annotations": [_annotation(None, 10, "2021-03-10T10:00:00.0Z", cancelled=True)],
            "predictions": [],
        },
        {"id": 4, "project": 83, "data": {"text": "Unseen.", "refinery_id": "r4"}},
    ]


def test_the_documented_export_reads_as_annotations() -> None:
    data = documented_export()
    assert is_labelstudio(data)
    found = read_labelstudio(data, "export.json")
    assert (found.drafts, found.items) == (1, 4)
    one, two, three = found.annotations
    assert (one.record_id, one.status, one.label, one.suggested, one.by) == (
        "r1",
        "submitted",
        "positive",
        "positive",
        "labelstudio:10",
    )
    assert one.at == "2021-03-09T22:16:08.728378Z"
    assert (two.label, two.suggested, two.by) == ("negative", "positive", "ana@example.org")
    assert (three.record_id, three.status, three.label, three.suggested) == (
        "r3",
        "discarded",
        None,
        None,
    )
    assert three.where == "task 3 (id 3), annotation 1"


@pytest.mark.parametrize(
    ("broken", "message"),
    [
        ({"tasks": []}, "a JSON list of tasks"),
        ([{"id": 5, "data": {"text": "x"}}], r"task 1 \(id 5\): no data.refinery_id"),
        (
            [{"data": {"refinery_id": "r1"}, "annotations": [{"result": {"choices": 1}}]}],
            "task 1, annotation 1: 'result' is not a list",
        ),
        (
            [
                {
                    "data": {"refinery_id": "r1"},
                    "annotations": [
                        {"result": [{**_choice("x"), "value": {"choices": ["a", "b"]}}]}
                    ],
                }
            ],
            "task 1, annotation 1: expected one chosen label",
        ),
    ],
)
def test_malformed_exports_name_the_file_and_position(broken: Any, message: str) -> None:
    with pytest.raises(InputFileError, match=message):
        read_labelstudio(broken, "export.json")
