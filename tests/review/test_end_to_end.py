"""Co-annotation end to end, as a person lives it: `refinery run` stops waiting for review (exit
4), the real review page in headless Chromium takes their key presses, and the same `refinery run`
completes with their decisions in the dataset. With REFINERY_SCREENSHOT=1 it also rewrites the
README's screenshot, docs/review-page.png."""

import json
import os
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import datarefinery
from datarefinery.cli.app import app
from datarefinery.cli.console import EXIT_WAITING
from tests.support.chromium import live_page
from tests.support.cli import LEAN
from tests.support.fake import read_jsonl
from tests.support.review import TOKEN, golden_backend, review_example, serving

ROOT = Path(__file__).resolve().parents[2]
ROWS = "[...document.querySelectorAll('tr.row')].map(r => r.dataset.id)"
DECISIONS = "[...document.querySelectorAll('tr.row td.decision')].map(d => d.textContent)"


def test_route_wait_review_in_the_browser_then_complete(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend, real_run = golden_backend(), datarefinery.run

    def scripted_run(*args: Any, **options: Any) -> datarefinery.RunResult:
        return real_run(*args, **{**options, "backend": backend})

    monkeypatch.setattr(datarefinery, "run", scripted_run)
    # Relative paths from the project folder, as a user types them: the page's header (and the
    # README's screenshot) reads runs/review.
    monkeypatch.chdir(tmp_path)
    out = Path("runs/review")
    command = ["run", str(review_example(Path("."))), "-o", str(out), "-q", *LEAN]
    waiting = CliRunner().invoke(app, command)
    assert waiting.exit_code == EXIT_WAITING == 4, waiting.output
    assert not (out / "dataset.jsonl").exists()
    labeled = {r["id"]: r for r in read_jsonl(out / "steps/01-label/shard-00000.jsonl")}
    routed = [i for i, r in labeled.items() if r["scores"].get("route") == "label"]
    assert len(routed) == 2

    with serving(out, reviewer="ana") as url, live_page() as page:
        assert page.goto(f"{url}?token={TOKEN}") == 200
        first, second = page.evaluate(ROWS)[:2]
        assert {first, second} == set(routed)  # routed records head the queue
        page.press("a")  # accept the first
        page.wait_until("document.querySelectorAll('tr.row td.decision')[0].textContent")
        if os.environ.get("REFINERY_SCREENSHOT"):  # the README's: one decision made
            (ROOT / "docs" / "review-page.png").write_bytes(page.screenshot())
        page.press("c")  # correct the second's label: the other one of the task's two
        page.wait_until("document.getElementById('correct-dialog').open")
        flipped = "negative" if labeled[second]["fields"]["label"] == "positive" else "positive"
        page.press({"positive": "1", "negative": "2"}[flipped])
        page.wait_until("document.querySelectorAll('tr.row td.decision')[1].textContent")
        assert page.evaluate(DECISIONS)[:2] == ["accept · ana", f"correct → {flipped} · ana"]
        assert page.errors() == []

    done = CliRunner().invoke(app, command)
    assert done.exit_code == 0, done.output
    records = {r["id"]: r for r in read_jsonl(out / "dataset.jsonl")}
    assert set(records) == set(labeled)
    assert records[first]["fields"]["label"] == labeled[first]["fields"]["label"]
    assert records[second]["fields"]["label"] == flipped
    for record_id, decision in ((first, "accept"), (second, "correct")):
        reviewed = records[record_id]["provenance"]["conditioning"]["reviewed"]
        assert (reviewed["by"], reviewed["decision"]) == ("ana", decision)
    assert json.loads((out / "manifest.json").read_text())["status"] == "complete"
