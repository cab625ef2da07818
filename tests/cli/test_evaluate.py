import json
from pathlib import Path

import pytest

from tests.support.cli import refinery, write_spec
from tests.support.datasets import NEGATIVE, POSITIVE, labeled, write_jsonl
from tests.support.specs import SENTIMENT_TASK

__all__ = ["labeled"]  # the fixture


@pytest.mark.slow
def test_evaluate_writes_metrics_report_and_card(
    tmp_path: Path, labeled: tuple[Path, Path]
) -> None:
    data, real = labeled
    known = tmp_path / "known.txt"
    known.write_text("jane@example.org\n")
    completed = refinery(
        "evaluate", data, "--real", real, "--real-label-field", "label_text",
        "--real-train", real, "--source", real, "--known-values", known, "-o", tmp_path / "out",
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    assert "C2ST AUC" in completed.stdout
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert set(metrics) >= {"diversity", "real_diversity", "fidelity", "utility", "privacy"}
    assert metrics["diversity"]["records"] == 13
    assert metrics["privacy"]["known_values"]["records_with_leak"] == 1
    assert metrics["privacy"]["pii"]["spans_by_type"] == {"EMAIL_ADDRESS": 1}
    assert "jane@example.org" not in (tmp_path / "out" / "metrics.json").read_text()
    assert set(metrics["utility"]["tfidf-lr"]) == {"dataset", "real_reference"}
    card = (tmp_path / "out" / "card.md").read_text()
    assert "not a run directory" in card.lower() and "## Measurements" in card


def test_evaluate_names_a_missing_text_field(tmp_path: Path) -> None:
    data = write_jsonl(tmp_path / "d.jsonl", [{"review": "good", "label": "positive"}])
    completed = refinery("evaluate", data, "-o", tmp_path / "out")
    assert completed.returncode == 2
    assert "no text field" in completed.stderr and "--text-field" in completed.stderr


@pytest.mark.slow
def test_run_writes_the_report_with_the_card_from_the_manifest(tmp_path: Path) -> None:
    rows = [{"text": t, "label": "positive"} for t in POSITIVE]
    rows += [{"text": t, "label": "negative"} for t in NEGATIVE]
    rows += [{"text": POSITIVE[0], "label": "positive"}, {"text": "short", "label": "negative"}]
    spec = {
        "name": "curated",
        "task": SENTIMENT_TASK,
        "input": str(write_jsonl(tmp_path / "in.jsonl", rows)),
        "steps": [{"filter": {"min_words": 3}}, {"dedup": {"method": "exact"}}],
    }
    completed = refinery("run", write_spec(tmp_path / "spec.yaml", spec), "-o", tmp_path / "run")
    assert completed.returncode == 0, completed.stderr
    assert "report.html" in completed.stdout
    card = (tmp_path / "run" / "report" / "card.md").read_text()
    assert "# Dataset card: curated" in card
    assert "| filter | min_words=3 | 14 | 13 | too_short 1 |" in card
    assert "| dedup | method=exact | 13 | 12 | duplicate 1 |" in card
    metrics = json.loads((tmp_path / "run" / "report" / "metrics.json").read_text())
    assert metrics["curation"]["rejected_by_reason"] == {
        "filter:too_short": 1,
        "dedup:duplicate": 1,
    }
    skipped = refinery("run", tmp_path / "spec.yaml", "-o", tmp_path / "run2", "--no-report", "-q")
    assert skipped.returncode == 0 and not (tmp_path / "run2" / "report").exists()
