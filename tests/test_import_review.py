"""``import_review``: annotation tools' answers stored as review decisions of a run.

Fixtures are the hand-written, documentation-shaped exports of ``tests/io/test_labelstudio.py``
and ``tests/io/test_argilla.py``; the round trips export a real (scripted) run, edit the file the
way a person's work in the tool would, and import it.
"""

import json
from pathlib import Path
from typing import Any

import pytest

import datarefinery
from datarefinery import InputFileError, UsageError
from datarefinery.decisions import DecisionStore
from datarefinery.import_review import import_review
from datarefinery.llm.scripted import ScriptedBackend
from tests.io.test_argilla import ANA, BO, nested_export
from tests.io.test_labelstudio import documented_export
from tests.support.specs import SENTIMENT_TASK, review_reply, sentiment_spec


def fake_run(out: Path, ids: list[str]) -> Path:
    out.mkdir()
    (out / "manifest.json").write_text(json.dumps({"spec": {"task": SENTIMENT_TASK}}))
    rows = [{"id": i, "fields": {"text": f"review {i}", "label": "positive"}} for i in ids]
    (out / "dataset.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return out


def _write(path: Path, data: Any) -> Path:
    path.write_text(json.dumps(data))
    return path


def test_label_studio_answers_become_decisions(tmp_path: Path) -> None:
    run = fake_run(tmp_path / "run", ["r1", "r2", "r3", "r4"])
    summary = import_review(run, _write(tmp_path / "ls.json", documented_export()))
    assert summary.tool == "labelstudio"
    assert dict(summary.actions) == {"accept": 1, "correct": 1, "reject": 1}
    assert (summary.drafts, summary.unanswered) == (1, 1)
    latest = DecisionStore.of_run(run).latest()
    assert latest["r1"].action == "accept" and latest["r1"].by == "labelstudio:10"
    assert latest["r1"].at == "2021-03-09T22:16:08.728378Z"
    assert (latest["r2"].action, latest["r2"].label, latest["r2"].by) == (
        "correct",
        "negative",
        "ana@example.org",
    )
    assert latest["r3"].action == "reject"
    assert latest["r3"].reason == "skipped in Label Studio (was_cancelled)"
    assert "r4" not in latest


def test_argilla_answers_become_decisions(tmp_path: Path) -> None:
    run = fake_run(tmp_path / "run", ["r1", "r2", "r3", "r4"])
    summary = import_review(run, _write(tmp_path / "records.json", nested_export()))
    assert summary.tool == "argilla"
    assert dict(summary.actions) == {"accept": 1, "correct": 1, "reject": 1}
    assert (summary.drafts, summary.unanswered) == (1, 1)
    latest = DecisionStore.of_run(run).latest()
    assert (latest["r1"].action, latest["r1"].by) == ("accept", f"argilla:{ANA}")
    assert (latest["r2"].action, latest["r2"].label) == ("correct", "negative")
    assert (latest["r3"].action, latest["r3"].by) == ("reject", f"argilla:{BO}")
    assert latest["r3"].reason == "discarded in Argilla"


def test_without_a_suggestion_the_runs_label_decides(tmp_path: Path) -> None:
    run = fake_run(tmp_path / "run", ["r1"])
    answer = {"value": "positive", "user_id": None, "status": "submitted"}
    records = [{"id": "r1", "fields": {}, "suggestions": {}, "responses": {"label": [answer]}}]
    with pytest.raises(UsageError, match=r"record 1 .*: the file does not say who.*--reviewer-def"):
        import_review(run, _write(tmp_path / "a.json", records))
    summary = import_review(run, tmp_path / "a.json", reviewer_default="ana")
    assert dict(summary.actions) == {"accept": 1}
    assert DecisionStore.of_run(run).latest()["r1"].by == "ana"


def test_importing_twice_stores_nothing_new(tmp_path: Path) -> None:
    run = fake_run(tmp_path / "run", ["r1", "r2", "r3", "r4"])
    path = _write(tmp_path / "records.json", nested_export())
    import_review(run, path)
    digest = DecisionStore.of_run(run).digest()
    again = import_review(run, path)
    assert (again.stored, again.unchanged) == (0, 3)
    assert DecisionStore.of_run(run).digest() == digest


def test_unknown_ids_stop_the_import_with_nothing_stored(tmp_path: Path) -> None:
    run = fake_run(tmp_path / "run", ["r1", "r2"])
    with pytest.raises(InputFileError, match=r"ls.json: record ids that run .* does not hold: "):
        import_review(run, _write(tmp_path / "ls.json", documented_export()))
    assert DecisionStore.of_run(run).latest() == {}


def test_files_that_are_not_an_export(tmp_path: Path) -> None:
    run = fake_run(tmp_path / "run", ["r1"])
    bad = tmp_path / "bad.json"
    bad.write_text('[{"data": {"refinery_id": "r1"},,]')
    with pytest.raises(InputFileError, match=r"bad\.json, line 1: not JSON"):
        import_review(run, bad)
    with pytest.raises(InputFileError, match=r"neither a Label Studio .* nor Argilla"):
        import_review(run, _write(tmp_path / "other.json", [{"text": "x"}]))
    with pytest.raises(UsageError, match="is not a run directory"):
        import_review(tmp_path, bad)


def _run(tmp_path: Path) -> Path:
    spec = sentiment_spec(count=2)
    result = datarefinery.run(spec, tmp_path / "run", backend=ScriptedBackend(review_reply))
    assert result.status == "complete"
    return tmp_path / "run"


def test_label_studio_round_trip(tmp_path: Path) -> None:
    run = _run(tmp_path)
    tasks_path = tmp_path / "tasks.json"
    assert datarefinery.export(run, tasks_path, format="labelstudio") == 4
    assert "negative" in tasks_path.with_suffix(".xml").read_text()
    tasks = json.loads(tasks_path.read_text())
    # What Label Studio's JSON export holds after a person labeled three tasks and skipped one:
    # the imported task (data, predictions) plus annotations.
    for number, task in enumerate(tasks):
        suggested = task["predictions"][0]["result"][0]["value"]["choices"][0]
        chosen = suggested if number < 2 else "negative" if suggested == "positive" else "positive"
        result = [{**task["predictions"][0]["result"][0], "value": {"choices": [chosen]}}]
        task["annotations"] = [
            {
                "id": 100 + number,
                "completed_by": {"id": 1, "email": "ana@example.org"},
                "result": [] if number == 3 else result,
                "was_cancelled": number == 3,
                "updated_at": f"2025-01-01T10:0{number}:00Z",
            }
        ]
    summary = import_review(run, _write(tmp_path / "export.json", tasks))
    assert dict(summary.actions) == {"accept": 2, "correct": 1, "reject": 1}
    latest = DecisionStore.of_run(run).latest()
    assert {d.record_id for d in latest.values()} == {t["data"]["refinery_id"] for t in tasks}
    assert sorted(d.action for d in latest.values()) == ["accept", "accept", "correct", "reject"]


def test_argilla_round_trip(tmp_path: Path) -> None:
    run = _run(tmp_path)
    path = tmp_path / "records.json"
    assert datarefinery.export(run, path, format="argilla") == 4
    records = json.loads(path.read_text())
    # What dataset.records.to_json writes after one annotator submitted, corrected, discarded
    # and left a draft.
    flip = {"positive": "negative", "negative": "positive"}
    answers = [
        lambda s: {"value": s, "status": "submitted"},
        lambda s: {"value": flip[s], "status": "submitted"},
        lambda s: {"value": None, "status": "discarded"},
        lambda s: {"value": s, "status": "draft"},
    ]
    for record, answer in zip(records, answers, strict=True):
        response = answer(record["suggestions"]["label"]["value"])
        record["responses"] = {"label": [{**response, "user_id": ANA}]}
        record["status"] = "completed"
    summary = import_review(run, _write(tmp_path / "annotated.json", records))
    assert dict(summary.actions) == {"accept": 1, "correct": 1, "reject": 1}
    assert summary.drafts == 1
    latest = DecisionStore.of_run(run).latest()
    corrected = latest[records[1]["id"]]
    assert corrected.label == flip[records[1]["suggestions"]["label"]["value"]]
