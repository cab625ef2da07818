from datarefinery.records import Record
from datarefinery.steps.curate.adversarial import Adversarial, AdversarialConfig
from tests.steps.curate.helpers import kept, rejected, run_step


def test_keeps_what_a_cross_fitted_classifier_finds_hard() -> None:
    batch = []
    for i in range(12):
        batch.append(Record(f"p{i}", {"text": f"wonderful great film {i}", "label": "positive"}))
        batch.append(Record(f"n{i}", {"text": f"awful terrible film {i}", "label": "negative"}))
    # mislabeled-looking records: a classifier that never saw them gets them wrong
    batch.append(Record("hard1", {"text": "wonderful great film", "label": "negative"}))
    batch.append(Record("hard2", {"text": "awful terrible film", "label": "positive"}))
    outputs = run_step(Adversarial(AdversarialConfig(max_confidence=0.6, folds=3)), batch)
    kept_ids = {r.id for r in kept(outputs)}
    assert {"hard1", "hard2"} <= kept_ids
    assert len(kept_ids) < len(batch) / 2
    easy = rejected(outputs)
    assert all(r.reason == "too_easy" and "p=" in r.detail for r in easy)
    assert all(0 <= r.scores["adversarial_p_label"] <= 1 for r in kept(outputs))


def test_in_a_run_whole_input_steps_get_one_shard(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import json

    import datarefinery
    from tests.steps.curate.test_judge import curate_spec, write_input

    rows = [{"text": f"wonderful great film number {i}", "label": "positive"} for i in range(6)]
    rows += [{"text": f"awful terrible film number {i}", "label": "negative"} for i in range(6)]
    rows.append(dict(rows[0]))  # an exact duplicate, in another shard
    spec = curate_spec(write_input(tmp_path / "in.jsonl", rows), {"dedup": {"method": "exact"}})
    spec["steps"].append({"adversarial": {"folds": 2, "max_confidence": 0.99}})
    spec["shard_size"] = 4
    result = datarefinery.run(spec, tmp_path / "run")
    assert result.status == "complete"
    dedup, adversarial = result.manifest["steps"]
    assert dedup["shards"] == 4 and dedup["rejected"] == {"duplicate": 1}
    assert adversarial["shards"] == 1 and adversarial["records_in"] == 12
    rejected_rows = [json.loads(x) for x in result.rejected_path.read_text().splitlines()]
    assert {r["step"] for r in rejected_rows} <= {"dedup", "adversarial"}
