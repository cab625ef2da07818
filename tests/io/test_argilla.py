"""Argilla: records with suggestions and the dataset settings out; exported records read back.

The fixtures follow Argilla 2.x: ``Record.to_dict`` as ``dataset.records.to_json`` writes it
(``responses`` by question, ``[{value, user_id, status}]``; 2.0/2.1 without ``status``) and
``to_list(flatten=True)`` (``label.responses``, ``.users``, ``.status``, ``label.suggestion``),
as documented in the SDK reference (records, import/export guide). Written by hand.
"""

import json
from pathlib import Path
from typing import Any

import pytest

from datarefinery import InputFileError
from datarefinery.io.argilla import is_argilla, read_argilla, settings_path, write_argilla
from datarefinery.records import Provenance, Record

ANA = "4e0f3c1a-7d2b-4a57-9b5e-2f0d6c1b9a10"
BO = "9a1b2c3d-0000-4000-8000-000000000002"


def _records() -> list[tuple[Record, None]]:
    routed = Record(
        "r1",
        {"text": "Loved it, mostly.", "label": "positive"},
        Provenance(step="label", model="smollm2"),
        {
            "label_agreement": 0.6,
            "route": "label",
            "route_reason": "label_agreement 0.60 < 0.67",
        },
    )
    return [(routed, None)]


def test_records_are_rg_record_dicts_with_suggestions(tmp_path: Path) -> None:
    path = tmp_path / "records.json"
    assert write_argilla(path, _records(), None) == 1
    (row,) = json.loads(path.read_text())
    assert row == {
        "id": "r1",
        "fields": {"text": "Loved it, mostly."},
        "metadata": {
            "refinery_id": "r1",
            "route": "label",
            "route_reason": "label_agreement 0.60 < 0.67",
        },
        "suggestions": {"label": {"value": "positive", "score": 0.6, "agent": "smollm2"}},
        "responses": {},
        "vectors": {},
        "status": "pending",
        "_server_id": None,
    }


def test_settings_hold_the_fields_and_a_label_question(tmp_path: Path) -> None:
    path = tmp_path / "records.json"
    write_argilla(path, _records(), None)
    settings = json.loads(settings_path(path).read_text())
    assert settings_path(path).name == "records.settings.json"
    assert [f["name"] for f in settings["fields"]] == ["text"]
    (question,) = settings["questions"]
    assert question["name"] == "label"
    assert question["settings"]["type"] == "label_selection"
    assert [o["value"] for o in question["settings"]["options"]] == ["positive"]
    names = [p["name"] for key in ("fields", "questions", "metadata") for p in settings[key]]
    assert len(names) == len(set(names))  # Argilla refuses a name used twice


def nested_export() -> list[dict[str, Any]]:
    """``dataset.records.to_json(path)`` of four records after two people answered."""
    suggestion = {"label": {"value": "positive", "score": 0.6, "agent": "smollm2"}}
    return [
        {
            "id": "r1",
            "fields": {"text": "Loved it, mostly."},
            "metadata": {"refinery_id": "r1"},
            "suggestions": suggestion,
            "responses": {
                "label": [
                    {"value": "positive", "user_id": ANA, "status": "submitted"},
                    {"value": "negative", "user_id": BO, "status": "draft"},
                ]
            },
            "vectors": {},
            "status": "completed",
            "_server_id": "b7c2a0c4-1111-4e0e-8a47-3c5b8f6c1d22",
        },
        {
            "id": "r2",
            "fields": {"text": "Meh."},
            "metadata": {"refinery_id": "r2"},
            "suggestions": suggestion,
            "responses": {"label": [{"value": "negative", "user_id": ANA, "status": "submitted"}]},
            "vectors": {},
            "status": "completed",
            "_server_id": None,
        },
        {
            "id": "r3",
            "fields": {"text": "Spam."},
            "metadata": {"refinery_id": "r3"},
            "suggestions": {},
            "responses": {"label": [{"value": None, "user_id": BO, "status": "discarded"}]},
            "vectors": {},
            "status": "completed",
            "_server_id": None,
        },
        {
            "id": "r4",
            "fields": {"text": "Unseen."},
            "metadata": {"refinery_id": "r4"},
            "suggestions": suggestion,
            "responses": {},
            "vectors": {},
            "status": "pending",
            "_server_id": None,
        },
    ]


def test_nested_records_read_as_annotations() -> None:
    data = nested_export()
    assert is_argilla(data)
    found = read_argilla(data, "records.json")
    assert (found.drafts, found.items) == (1, 4)
    got = [(a.record_id, a.status, a.label, a.suggested, a.by) for a in found.annotations]
    assert got == [
        ("r1", "submitted", "positive", "positive", f"argilla:{ANA}"),
        ("r2", "submitted", "negative", "positive", f"argilla:{ANA}"),
        ("r3", "discarded", None, None, f"argilla:{BO}"),
    ]


def test_argilla_2_0_responses_without_status_count_as_submitted() -> None:
    old = [
        {
            "id": "r2",
            "fields": {"text": "Meh."},
            "metadata": {},
            "suggestions": {"label": {"value": "positive", "score": None, "agent": None}},
            "responses": {"label": [{"value": "negative", "user_id": "None"}]},
            "vectors": {},
            "_server_id": None,
        }
    ]
    (only,) = read_argilla(old, "records.json").annotations
    assert (only.record_id, only.status, only.label, only.by) == (
        "r2",
        "submitted",
        "negative",
        None,
    )


def test_flattened_records_read_the_same() -> None:
    flat = [
        {
            "id": "r1",
            "status": "completed",
            "_server_id": "b7c2a0c4-1111-4e0e-8a47-3c5b8f6c1d22",
            "text": "Loved it, mostly.",
            "refinery_id": "r1",
            "label.responses": ["negative", "positive"],
            "label.responses.users": [ANA, BO],
            "label.responses.status": ["submitted", "draft"],
            "label.suggestion": "positive",
            "label.suggestion.score": 0.6,
            "label.suggestion.agent": "smollm2",
        }
    ]
    assert is_argilla(flat)
    found = read_argilla(flat, "flat.json")
    assert found.drafts == 1
    (only,) = found.annotations
    assert (only.record_id, only.label, only.suggested, only.by) == (
        "r1",
        "negative",
        "positive",
        f"argilla:{ANA}",
    )


@pytest.mark.parametrize(
    ("broken", "message"),
    [
        ({"records": []}, "a JSON list of records"),
        ([{"fields": {"text": "x"}, "responses": {}}], "record 1: no id"),
        (
            [{"id": "r1", "fields": {}, "responses": {"label": [{"value": "x", "status": "ok"}]}}],
            r"record 1 \(id r1\), response 1: status 'ok'",
        ),
        (
            [{"id": "r1", "fields": {}, "responses": {"label": [{"value": ["a", "b"]}]}}],
            "multi-label answer",
        ),
        (
            [{"id": "r1", "label.responses": ["a"], "label.responses.users": []}],
            "must be lists of one length",
        ),
    ],
)
def test_malformed_records_name_the_file_and_position(broken: Any, message: str) -> None:
    with pytest.raises(InputFileError, match=message):
        read_argilla(broken, "records.json")
