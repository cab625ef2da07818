"""The QA experiment end to end on the embedded default model (SmolLM2-135M, one thread) with
tiny counts: real generation, the verbatim span check, the real span model (one epoch, short
inputs), EM / F1 on the real-format files.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from datarefinery.loop.qa_experiment import preset_experiment, run_qa_experiment
from datarefinery.models.smallmodel import TransformerOptions
from tests.support.qa import qa_folder

pytestmark = pytest.mark.slow


def read(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_qa_experiment_on_the_embedded_model(tmp_path: Path) -> None:
    import torch

    torch.set_num_threads(1)
    out = tmp_path / "out"
    exp = preset_experiment(
        qa_folder(tmp_path),
        out,
        budget=8,
        # One thread: on a loaded shared machine llama.cpp's spinning thread team stalls.
        llm={"max_tokens": 48, "n_threads": 1, "n_ctx": 1024, "temperature": 0.7},
        seeds=[0],
        methods=["gold", "zerogen", "s3"],
        rounds=1,
        k=1,
        small_model=TransformerOptions(kind="transformer", epochs=1, max_length=64),
    )
    table = run_qa_experiment(exp)
    rows = {row["method"]: row for row in table["rows"]}
    assert list(rows) == ["gold", "ZeroGen", "S3"]
    for row in rows.values():
        assert 0 <= row["accuracy"] <= 1 and 0 <= row["em"] <= row["accuracy"] + 1e-9
    for method, calls in (("zerogen", 8), ("s3", 4)):
        rounds = out / method / "seed-0" / "rounds"
        made = read(rounds / "00" / "run" / "dataset.jsonl")
        rejected = read(rounds / "00" / "run" / "rejected.jsonl")
        # every call is a record whose answer is a span of its context, or a rejection with its
        # reason (SmolLM2-135M rarely copies a span: few or none survive, and that is measured)
        assert len(made) + len(rejected) == calls
        assert all(r["fields"]["answer"] in r["fields"]["context"] for r in made)
        assert all(r["reason"] for r in rejected)
        for record in made:
            assert record["provenance"]["model"].startswith("llamacpp:SmolLM2")
    s3 = json.loads((out / "s3" / "seed-0" / "summary.json").read_text())
    assert s3["status"] == "complete" and s3["rounds"][0]["val_em"] is not None
    assert "| S3 | 1 |" in (out / "table.md").read_text()
