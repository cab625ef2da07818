from __future__ import annotations

import json
from pathlib import Path

import datarefinery
from datarefinery.io.read import read_records


def test_dirs_replaces_every_occurrence_and_keeps_the_rest(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text(
        json.dumps({"id": "a", "text": "Mail anna@example.com. Again: anna@example.com!"})
        + "\n"
        + json.dumps({"id": "b", "text": "nothing private here"})
        + "\n"
    )
    spec = {
        "input": str(source),
        "steps": [{"dirs": {"mode": "placeholder", "detector": {"kind": "regex"}}}],
    }
    result = datarefinery.run(spec, tmp_path / "out")
    records = {r.id: r for r in read_records(result.dataset_path)}
    assert records["a"].fields["text"] == "Mail <EMAIL_ADDRESS>. Again: <EMAIL_ADDRESS>!"
    assert records["a"].scores["pii_spans"] == 2
    replaced = records["a"].provenance.conditioning["replaced"]
    assert [r["entity_type"] for r in replaced] == ["EMAIL_ADDRESS"] * 2
    assert "anna@example.com" not in json.dumps(records["a"].to_dict())
    assert records["b"].fields["text"] == "nothing private here"
    assert records["b"].scores["token_f1_outside_pii"] == 1.0
