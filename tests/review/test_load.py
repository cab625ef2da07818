import json
from pathlib import Path

import pytest

from datarefinery.errors import RunDirError
from datarefinery.records import Provenance, Record, Rejected
from datarefinery.review.load import load_run
from tests.support.goldens import run_golden
from tests.support.review import demo_records, write_run


def test_a_finished_run_shows_its_dataset_and_rejections_with_reasons(tmp_path: Path) -> None:
    kept = demo_records(4)
    gone = Rejected(demo_records(5)[4], "judge", "low_score", "fluent 1 < 3")
    run = load_run(write_run(tmp_path / "run", kept, [gone]))
    assert run.source == "dataset.jsonl"
    assert [(s.record.id, s.status) for s in run.records][-1] == ("r000004", "rejected")
    assert (run.records[-1].step, run.records[-1].reason) == ("judge", "low_score")
    assert run.records[3].status == "routed" and run.records[3].step == "label"
    assert run.labels == ["positive", "negative"]
    assert run.judge_steps == set()  # a finished run without steps/ folders


def test_an_unfinished_run_shows_the_newest_committed_step(tmp_path: Path) -> None:
    out = write_run(tmp_path / "run", demo_records(3), status="running")
    gone = Rejected(demo_records(4)[3], "label", "no_vote")
    out_2 = write_run(tmp_path / "run2", demo_records(3), [gone], status="waiting")
    assert load_run(out).source == "steps/01-label"
    shown = load_run(out_2).records
    assert [(s.status, s.reason) for s in shown][-1] == ("rejected", "no_vote")
    (out / "steps" / "01-label" / "shard-00000.done").unlink()
    with pytest.raises(RunDirError, match="no committed records"):
        load_run(out)
    with pytest.raises(RunDirError, match=r"manifest\.json"):
        load_run(tmp_path)


def test_parents_come_from_earlier_steps_and_the_input(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text(json.dumps({"id": "seed1", "text": "from the input file"}) + "\n")
    earlier = Record("mid", {"text": "from step one"})
    derived = Record(
        "child", {"text": "rewritten"}, Provenance(step="paraphrase", parent_ids=["mid", "seed1"])
    )
    out = tmp_path / "run"
    spec = {"name": "x", "input": "in.jsonl", "steps": [{"paraphrase": {}}]}
    write_run(out, [derived], spec=spec)
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["spec_path"] = str(tmp_path / "spec.yaml")
    (out / "manifest.json").write_text(json.dumps(manifest))
    from datarefinery.manifest import ShardStats
    from datarefinery.rundir import RunDir

    RunDir(out).step_dir(0, "paraphrase").commit(0, [earlier], [], ShardStats())
    run = load_run(out)
    assert run.parents == {
        "mid": {"text": "from step one"},
        "seed1": {"text": "from the input file"},
    }


def test_a_real_run_directory_loads(tmp_path: Path) -> None:
    run_golden("label", tmp_path / "label")
    run = load_run(tmp_path / "label")
    assert {s.record.id for s in run.records} >= {"u1", "u2"}
    assert run.labels == ["positive", "negative"]
