"""The report renders in a real browser: no console errors, no blocked requests, plots present."""

from pathlib import Path

import pytest

from datarefinery.evaluate import evaluate_dataset, write_report
from tests.support.chromium import open_page

PROBE = """JSON.stringify({
  charts: [...document.querySelectorAll('svg.chart')].map(s => ({
    kind: s.dataset.chart,
    width: s.getBoundingClientRect().width,
    marks: s.querySelectorAll('circle, rect:not(.bg)').length,
    points: s.querySelectorAll('circle').length,
  })),
  scripts: document.querySelectorAll('script').length,
  rows: document.querySelectorAll('table tr').length,
  title: document.title,
})"""


def test_the_checker_sees_console_errors(tmp_path: Path) -> None:
    # Control: a broken page must be reported, or the render test below could not fail.
    page = tmp_path / "broken.html"
    page.write_text("<html><body><script>console.error('bad'); undefinedCall();</script>")
    result = open_page(page, "1")
    assert any("console" in e for e in result.errors)
    assert any("exception" in e for e in result.errors)


@pytest.mark.slow
def test_report_renders_in_headless_chromium(tmp_path: Path, labeled: tuple[Path, Path]) -> None:
    import json

    data, real = labeled
    evaluation = evaluate_dataset(data, real=real, real_label_field="label_text", source=real)
    paths = write_report(evaluation, tmp_path / "report")
    result = open_page(paths["report"], PROBE)
    (tmp_path / "report.png").write_bytes(result.screenshot)
    assert result.errors == []
    probe = json.loads(result.value)
    kinds = [c["kind"] for c in probe["charts"]]
    assert kinds == ["scatter", "histogram", "bars", "histogram"]  # the last: judge scores
    assert all(c["width"] > 100 and c["marks"] > 0 for c in probe["charts"])
    scatter = probe["charts"][0]
    assert scatter["points"] == 13 + 12  # every dataset and real record is a point
    assert probe["scripts"] == 0  # the record holding <script> was escaped, not run
    assert probe["rows"] > 20 and probe["title"] == "datarefinery report"
    assert len(result.screenshot) > 10_000
