"""The card and the report count what became of a refinement step's records."""

import json
from pathlib import Path

import datarefinery
from datarefinery.evaluate.report.card import render_card
from datarefinery.evaluate.report.html import render_html
from datarefinery.evaluate.suite import Evaluation, load_dataset
from datarefinery.llm.base import Request
from datarefinery.llm.scripted import ScriptedBackend
from datarefinery.manifest import step_outcomes


def _reply(request: Request) -> str:
    if "values" in (request.json_schema or {}).get("properties", {}):
        return json.dumps({"values": []})
    return json.dumps({"text": "Something else entirely."})  # changes too much: replaced


def test_card_and_report_count_each_outcome(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    texts = ["Write to anna.k@example.org today.", "Nothing personal here."]
    source.write_text(
        "".join(json.dumps({"id": f"r{i}", "text": t}) + "\n" for i, t in enumerate(texts))
    )
    spec = {
        "input": str(source),
        "steps": [{"pii_rewrite": {"detector": {"kind": "regex"}}}],
    }
    result = datarefinery.run(spec, tmp_path / "run", backend=ScriptedBackend(_reply))
    data = load_dataset(result.run_dir)
    metrics = {"curation": step_outcomes(data.manifest)}
    assert metrics["curation"]["outcomes"]["pii_rewrite"]["replaced"] == 1
    evaluation = Evaluation(metrics=metrics, dataset=data, text_fields=["text"], label_field=None)
    card = render_card(evaluation)
    assert "What became of the records pii_rewrite kept: replaced 1, unchanged 1." in card
    page = render_html(evaluation)
    assert "curation.outcomes.pii_rewrite.unchanged" in page
