"""Run directories for the review page's tests, written with the run directory's own classes: a
finished run (dataset + rejections) or one stopped after some steps (committed shards only)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from datarefinery.io.write import write_jsonl_atomic
from datarefinery.llm.scripted import ScriptedBackend
from datarefinery.manifest import Manifest, ShardStats
from datarefinery.records import Provenance, Record, Rejected
from datarefinery.rundir import RunDir
from tests.support.texts import SENTENCES

LABELS = {"positive": "the reviewer liked the movie", "negative": "the reviewer disliked it"}
SPEC: dict[str, Any] = {
    "name": "review-demo",
    "task": {"description": "Sentiment of movie reviews.", "labels": LABELS},
    "steps": [{"label": {"k": 5}}, {"judge": {"criteria": ["fluent"]}}],
}

_TEXTS = SENTENCES[:7]  # the movie reviews


def demo_records(n: int) -> list[Record]:
    """``n`` labeled reviews with varied label agreement and judge scores; every 10th is routed."""
    records = []
    for i in range(n):
        scores: dict[str, Any] = {
            "label_agreement": [1.0, 0.8, 0.6, 0.4][i % 4],
            "judge": 1 + i % 5,
        }
        if i % 10 == 3:
            scores["route"] = "label"
            scores["route_reason"] = "label_agreement 0.40 < 0.67"
        records.append(
            Record(
                id=f"r{i:06d}",
                fields={"text": _TEXTS[i % len(_TEXTS)], "label": ["positive", "negative"][i % 2]},
                provenance=Provenance(step="input", technique="input", source="reviews.jsonl"),
                scores=scores,
            )
        )
    return records


def write_run(
    out: Path,
    kept: list[Record],
    rejected: Sequence[Rejected] = (),
    *,
    status: str = "complete",
    spec: dict[str, Any] | None = None,
) -> Path:
    """A run directory: finished (``status`` complete: dataset.jsonl and rejected.jsonl), or
    not (the records committed as the first step's only shard)."""
    run = RunDir(out)
    out.mkdir(parents=True, exist_ok=True)
    manifest = Manifest(name="review-demo", spec_hash="test", status=status, spec=spec or SPEC)
    run.write_manifest(manifest)
    if status == "complete":
        write_jsonl_atomic(run.dataset_path, (r.to_json() for r in kept))
        write_jsonl_atomic(run.rejected_path, (json.dumps(r.to_dict()) for r in rejected))
    else:
        stats = ShardStats(records_in=len(kept), records_out=len(kept))
        run.step_dir(0, "label").commit(0, kept, list(rejected), stats)
    return out


def review_example(folder: Path) -> Path:
    """``examples/review.yaml`` written into ``folder`` with its input path made absolute, so a
    test (or a bench script) can run it there."""
    from tests.support.cli import write_spec
    from tests.support.examples import EXAMPLES, example_spec

    data = example_spec("review")
    data["input"] = str(EXAMPLES / data["input"])
    folder.mkdir(parents=True, exist_ok=True)
    return write_spec(folder / "review.yaml", data)


def golden_backend() -> ScriptedBackend:
    """The goldens' scripted model: on ``examples/review.yaml`` it routes u2 and u4 (agreement
    0.6 < 0.8), both labeled by it as their goldens show."""
    from tests.support.goldens import golden_reply

    return ScriptedBackend(golden_reply)


TOKEN = "page-test-token"


@contextmanager
def serving(out: Path, reviewer: str = "ana", token: str = TOKEN) -> Iterator[str]:
    """The real review app for run directory ``out`` served by uvicorn on a free loopback port,
    in a thread; yields its address (without the token)."""
    from datarefinery.review.app import create_app
    from datarefinery.review.load import load_run
    from datarefinery.review.server import bind, server

    app = create_app(out, load_run(out), reviewer=reviewer, token=token)
    sock = bind(0)
    uvicorn_server = server(app)
    thread = threading.Thread(target=uvicorn_server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not uvicorn_server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/"
    finally:
        uvicorn_server.should_exit = True
        thread.join(10)
