"""A labelled dataset that is not one of the experiment's presets, for the S3 harness's tests.

The task calls its text "opinion", the files call it "body"; the label column is "verdict" with
its own values (mapped by ``label_map``); validation is CSV, test Parquet, train JSONL.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import yaml

from datarefinery.llm.base import Request

HAPPY = ["glad", "pleased", "delighted", "thrilled"]
UNHAPPY = ["angry", "upset", "annoyed", "furious"]


def opinions_spec(tmp_path: Path, **changes: Any) -> Path:
    """The spec, its data files beside it; ``changes`` replace top-level sections."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = tmp_path / "opinions"
    folder.mkdir()
    rows = [(f"I am {w} with the order {i}", "thumbs_up") for i, w in enumerate(HAPPY * 2)]
    rows += [(f"we are {w} about the order {i}", "thumbs_down") for i, w in enumerate(UNHAPPY * 2)]
    with (folder / "val.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["body", "verdict"])
        writer.writerows(rows)
    pq.write_table(
        pa.table({"body": [r[0] for r in rows], "verdict": [r[1] for r in rows]}),
        folder / "test.parquet",
    )
    with (folder / "train.jsonl").open("w") as handle:
        for i, (text, verdict) in enumerate(rows * 2):
            handle.write(json.dumps({"id": f"t{i}", "body": f"{text}!", "verdict": verdict}) + "\n")
    spec = {
        "name": "opinions",
        "seed": 3,
        "task": {
            "description": "Sentiment of short customer reviews of an online shop.",
            "fields": {
                "opinion": {
                    "description": "a short customer review of an online order",
                    "min_chars": 10,
                    "max_chars": 120,
                },
                "label": {"type": "label"},
            },
            "labels": {
                "happy": "the customer liked the order",
                "unhappy": "the customer disliked the order",
            },
        },
        "llm": {"max_tokens": 64},
        "synthesis": [{"rationale": {"count_per_label": 50, "rationales": 2}}],
        "data": {
            "validation": "val.csv",
            "test": "test.parquet",
            "train": "train.jsonl",
            "label_field": "verdict",
            "label_map": {"thumbs_up": "happy", "thumbs_down": "unhappy"},
            "columns": {"opinion": "body"},
        },
        "loop": {
            "small_model": {"kind": "tfidf-lr", "c": 10},
            "rounds": 1,
            "extrapolate": {"k": 2},
        },
        **changes,
    }
    path = folder / "spec.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def opinions_script(request: Request) -> str:
    """A ``ScriptedBackend`` script for the task: words of the prompt's label, varied by seed."""
    prompt = request.messages[-1].content
    label = "unhappy" if '"unhappy"' in prompt else "happy"
    words = HAPPY if label == "happy" else UNHAPPY
    seed = request.seed or 0
    if "reasons" in json.dumps(request.json_schema):
        return json.dumps({"reasons": [f"{words[0]} about the delivery", f"{words[1]} staff"]})
    return json.dumps({"opinion": f"so {words[seed % 4]} with it, note {seed}"})
