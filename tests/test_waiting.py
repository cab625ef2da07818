"""Exporting a run that waits for review, and the whole co-annotation loop through an annotation
tool: run (waits) -> export -> a person answers in the tool -> import-review -> run (complete)."""

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import datarefinery
from datarefinery.cli.app import app
from datarefinery.config import load_spec
from datarefinery.decisions import Decision, DecisionStore
from datarefinery.errors import UsageError
from tests.support.fake import read_jsonl
from tests.support.review import golden_backend, review_example

RUNNER = CliRunner()
ROUTED = ["u2", "u4"]  # what the goldens' model routes on examples/review.yaml


def _said(output: str) -> str:
    return " ".join(output.split())


def waiting_run(tmp_path: Path) -> Path:
    out = tmp_path / "runs" / "review"
    result = _run(tmp_path, out)
    assert result.status == "waiting_for_review", result.message
    return out


def _run(tmp_path: Path, out: Path) -> datarefinery.RunResult:
    spec = load_spec(review_example(tmp_path))
    return datarefinery.run(spec, out, backend=golden_backend(), diversity=False)


def _export(out: Path, path: Path, *options: str) -> str:
    done = RUNNER.invoke(app, ["export", str(out), "-o", str(path), *options])
    assert done.exit_code == 0, done.output
    return _said(done.output)


def test_a_waiting_run_exports_the_records_it_waits_on(tmp_path: Path) -> None:
    out = waiting_run(tmp_path)
    said = _export(out, tmp_path / "waiting.jsonl")
    assert f"wrote 2 records to {tmp_path / 'waiting.jsonl'}" in said
    assert "waits for review: exporting the records it waits on" in said
    rows = read_jsonl(tmp_path / "waiting.jsonl")
    assert [r["id"] for r in rows] == ROUTED
    assert all(r["scores"]["route"] == "label" for r in rows)

    DecisionStore.of_run(out).record(Decision("u2", "accept", by="ana"))
    _export(out, tmp_path / "left.csv")
    assert (tmp_path / "left.csv").read_text().count("\nu4,") == 1
    assert "u2" not in (tmp_path / "left.csv").read_text()
    _export(out, tmp_path / "routed.jsonl", "--records", "routed")
    assert [r["id"] for r in read_jsonl(tmp_path / "routed.jsonl")] == ROUTED
    _export(out, tmp_path / "all.jsonl", "--records", "all")
    assert [r["id"] for r in read_jsonl(tmp_path / "all.jsonl")] == ["u1", "u2", "u3", "u4"]


def test_training_formats_and_a_misplaced_records_option_are_refused(tmp_path: Path) -> None:
    out = waiting_run(tmp_path)
    done = RUNNER.invoke(app, ["export", str(out), "-o", str(tmp_path / "t.jsonl"), "-f", "alpaca"])
    assert done.exit_code == 2
    said = _said(done.output)
    assert "waits for review: it has no dataset to train on yet (--format alpaca)" in said
    assert "--format jsonl | csv | parquet | hf | argilla | labelstudio" in said
    bad = RUNNER.invoke(
        app, ["export", str(out), "-o", str(tmp_path / "x.jsonl"), "--records", "x"]
    )
    assert bad.exit_code == 2 and "use one of undecided, routed, all" in _said(bad.output)

    DecisionStore.of_run(out).record_many(Decision(i, "accept", by="ana") for i in ROUTED)
    assert _run(tmp_path, out).status == "complete"
    with pytest.raises(UsageError, match="is not one: leave it out"):
        datarefinery.export(out, tmp_path / "y.jsonl", review="all")
    assert datarefinery.export(out, tmp_path / "y.jsonl") == 4  # finished: the dataset


def _label_studio_answers(tasks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What Label Studio's Export -> JSON gives after a person (ana, user 7) kept the first
    task's pre-annotated label and chose the other label on the second (Label Studio 1.x)."""
    exported = []
    for number, task in enumerate(tasks):
        (suggested,) = task["predictions"][0]["result"][0]["value"]["choices"]
        chosen = suggested if number == 0 else {"positive": "negative"}.get(suggested, "positive")
        exported.append(
            {
                **task,
                "project": 3,
                "annotations": [
                    {
                        "id": 100 + number,
                        "completed_by": {"id": 7, "email": "ana@example.org"},
                        "result": [
                            {
                                "id": f"res{number}",
                                "from_name": "label",
                                "to_name": "text",
                                "type": "choices",
                                "origin": "manual",
                                "value": {"choices": [chosen]},
                            }
                        ],
                        "was_cancelled": False,
                        "ground_truth": False,
                        "created_at": f"2025-03-0{number + 1}T10:00:00.000000Z",
                        "updated_at": f"2025-03-0{number + 1}T10:00:05.000000Z",
                        "lead_time": 4.2,
                    }
                ],
                "drafts": [],
            }
        )
    return exported


def test_the_label_studio_loop_completes_the_run(tmp_path: Path) -> None:
    out = waiting_run(tmp_path)
    tasks_path = tmp_path / "review" / "tasks.json"
    said = _export(out, tasks_path, "--format", "labelstudio")
    assert f"wrote 2 records to {tasks_path}" in said
    tasks = json.loads(tasks_path.read_text())
    assert [t["data"]["refinery_id"] for t in tasks] == ROUTED
    assert '<Choice value="negative"/>' in tasks_path.with_suffix(".xml").read_text()
    models = {t["data"]["refinery_id"]: t["predictions"][0]["result"][0] for t in tasks}

    exported = tmp_path / "review" / "export.json"
    exported.write_text(json.dumps(_label_studio_answers(tasks)))
    done = RUNNER.invoke(app, ["import-review", str(out), str(exported)])
    assert done.exit_code == 0, done.output
    assert "Label Studio: 2 decisions stored" in _said(done.output)
    assert "(accept 1 · correct 1 · reject 0)" in _said(done.output)

    assert _run(tmp_path, out).status == "complete"
    records = {r["id"]: r for r in read_jsonl(out / "dataset.jsonl")}
    kept, flipped = (models[i]["value"]["choices"][0] for i in ROUTED)
    assert records["u2"]["fields"]["label"] == kept
    assert records["u4"]["fields"]["label"] == {"positive": "negative"}.get(flipped, "positive")
    for record_id, decision in zip(ROUTED, ["accept", "correct"], strict=True):
        reviewed = records[record_id]["provenance"]["conditioning"]["reviewed"]
        assert (reviewed["by"], reviewed["decision"]) == ("ana@example.org", decision)
    assert "reviewed" not in records["u1"]["provenance"]["conditioning"]


def test_the_argilla_loop_completes_the_run(tmp_path: Path) -> None:
    out = waiting_run(tmp_path)
    path = tmp_path / "records.json"
    _export(out, path, "-f", "argilla")
    rows = json.loads(path.read_text())
    assert [r["id"] for r in rows] == ROUTED
    assert [r["metadata"]["route"] for r in rows] == ["label", "label"]
    # As dataset.records.to_json writes them (Argilla 2.x) after ana submitted the first record
    # with its suggestion and discarded the second.
    ana = "0d4e8a2c-65a0-4b5e-9b1e-3f1c2a7e9d10"
    rows[0]["responses"] = {
        "label": [{"value": rows[0]["suggestions"]["label"]["value"], "user_id": ana}]
    }
    rows[0]["responses"]["label"][0]["status"] = "submitted"
    rows[1]["responses"] = {"label": [{"value": None, "user_id": ana, "status": "discarded"}]}
    for row in rows:
        row["status"] = "completed"
    path.write_text(json.dumps(rows))
    done = RUNNER.invoke(app, ["import-review", str(out), str(path)])
    assert done.exit_code == 0, done.output
    assert "(accept 1 · correct 0 · reject 1)" in _said(done.output)

    assert _run(tmp_path, out).status == "complete"
    assert [r["id"] for r in read_jsonl(out / "dataset.jsonl")] == ["u1", "u2", "u3"]
    (rejected,) = read_jsonl(out / "rejected.jsonl")
    assert (rejected["record"]["id"], rejected["reason"]) == ("u4", "reviewer_rejected")
    assert rejected["record"]["provenance"]["conditioning"]["reviewed"]["by"] == f"argilla:{ana}"
