"""``refinery plan`` then ``refinery run`` on the real embedded model, from examples/."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.cli import LEAN, refinery, write_spec
from tests.support.examples import example_spec


@pytest.mark.slow
def test_plan_estimates_the_real_run_within_30_percent(tmp_path: Path) -> None:
    spec = example_spec("sentiment")
    spec["steps"][0]["zero_shot"]["count_per_label"] = 4  # 8 calls; the plan samples 2
    spec["llm"].update(max_tokens=120, n_threads=1)
    spec_path = write_spec(tmp_path / "sentiment.yaml", spec)
    out = tmp_path / "out"

    planned = refinery("plan", spec_path, "-o", out, "--sample", "2")
    assert planned.returncode == 0, planned.stdout + planned.stderr
    assert "first prompt of zero_shot" in planned.stdout and "Write one new" in planned.stdout
    assert "sample: 2 call(s) (0 from the cache)" in planned.stdout
    assert sorted(p.name for p in out.iterdir()) == ["cache.sqlite", "manifest.json"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "planned" and manifest["engine"]["backend_calls"] == 2
    (row,) = [line for line in planned.stdout.splitlines() if line.strip().startswith("total")]
    calls, prompt, completion = (_first_number(cell) for cell in row.split("│")[2:5])
    assert calls == 8

    ran = refinery("run", spec_path, "-o", out, "-q", *LEAN)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "complete"
    assert manifest["engine"]["cache_hits"] == 2 and manifest["engine"]["backend_calls"] == 6
    real = manifest["tokens"]["total"]  # the plan's sample tokens included: the run reused them
    print(f"estimate {prompt + completion} tokens, run {real}")
    assert abs(prompt + completion - real) <= 0.3 * real


def _first_number(cell: str) -> int:
    return int(cell.split("(")[0].strip().replace(",", ""))
