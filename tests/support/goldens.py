"""Golden outputs: the example specs (and the golden-only specs in ``tests/goldens/specs``) run on a
scripted model, their datasets, rejections and committed shards kept byte for byte.

A refactor that must not change behaviour is checked against them by ``tests/test_goldens.py``.
When a change alters outputs on purpose, regenerate them and review the diff::

    .venv/bin/python -m tests.support.goldens          # rewrites tests/goldens/<spec>/...
    git diff --stat tests/goldens

Timings live only in the manifest and the shards' ``.done`` markers, which are not kept.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

import datarefinery
from datarefinery.config import LoadedSpec, RunSpec
from datarefinery.llm.base import Request
from datarefinery.llm.scripted import ScriptedBackend
from tests.support.texts import SENTENCES

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
GOLDENS = ROOT / "tests" / "goldens"
GOLDEN_SPECS = GOLDENS / "specs"

# Specs that stop waiting for people on the goldens' model (it makes no review decisions): their
# goldens keep what the run committed before the review step.
_WAITING = {"review"}

# The curate example reads the quickstart's output; the goldens give it a file of the repo instead.
_INPUT_OVERRIDES = {"curate": "data/synthetic_reviews.jsonl"}


def _digest(*parts: object) -> int:
    text = "\x1f".join(str(p) for p in parts)
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big")


def _request_key(request: Request) -> str:
    body = [(m.role, m.content) for m in request.messages]
    return json.dumps([body, request.seed, request.json_schema], sort_keys=True, default=str)


def _prose(key: str, name: str, index: int) -> str:
    first = _digest(key, name, index, "a") % len(SENTENCES)
    second = _digest(key, name, index, "b") % len(SENTENCES)
    if second == first:
        second = (second + 1) % len(SENTENCES)
    return f"{SENTENCES[first]} {SENTENCES[second]}"


def _excerpt(key: str, request: Request, name: str, index: int) -> str:
    """A line of the request's last message, or four words of one: what a model that copies from
    its prompt (a rewrite, an answer span) would say."""
    lines = [ln.strip(" -*\"'") for ln in request.messages[-1].content.splitlines()]
    lines = [ln for ln in lines if len(ln.split()) >= 6]
    if not lines:
        return _prose(key, name, index)
    line = lines[_digest(key, name, index, "line") % len(lines)]
    if _digest(key, name, index, "cut") % 2:
        return line
    words = line.split()
    start = _digest(key, name, index, "start") % (len(words) - 3)
    return " ".join(words[start : start + 4])


def golden_reply(request: Request) -> str:
    """A deterministic reply that fits the request's schema, chosen by a hash of the request:
    strings are fixed prose or copied from the prompt, enum values picked the same way."""
    key = _request_key(request)
    schema = request.json_schema
    if not schema:
        return _prose(key, "text", 0)

    def fill(node: dict[str, Any], name: str, index: int) -> Any:
        if "$ref" in node:
            node = schema["$defs"][node["$ref"].split("/")[-1]]
        if "anyOf" in node:
            node = node["anyOf"][0]
        if "enum" in node:
            return node["enum"][_digest(key, name, index) % len(node["enum"])]
        if "const" in node:
            return node["const"]
        kind = node.get("type")
        if kind == "object":
            return {k: fill(child, k, index) for k, child in node.get("properties", {}).items()}
        if kind == "array":
            count = max(1, int(node.get("minItems", 1)))
            return [fill(node.get("items", {}), name, index * 7 + j) for j in range(count)]
        if kind == "integer":
            low = int(node.get("minimum", 0))
            high = int(node.get("maximum", low + 4))
            return low + _digest(key, name, index) % (high - low + 1)
        if kind == "number":
            return round((_digest(key, name, index) % 1000) / 1000, 3)
        if kind == "boolean":
            return _digest(key, name, index) % 2 == 0
        if _digest(key, name, index, "kind") % 3:
            text = _excerpt(key, request, name, index)
        else:
            text = _prose(key, name, index)
        limit = node.get("maxLength")
        return text[: int(limit)] if limit else text

    return json.dumps(fill(schema, "value", 0))


def golden_specs() -> dict[str, Path]:
    """Every spec with goldens, by name: the run specs of ``examples/`` (not the S3 specs) and
    the golden-only specs."""
    found = {p.stem: p for p in sorted(EXAMPLES.glob("*.yaml")) if not p.stem.startswith("s3_")}
    found.update({p.stem: p for p in sorted(GOLDEN_SPECS.glob("*.yaml"))})
    return found


def _load(name: str, path: Path) -> LoadedSpec:
    data: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    if name in _INPUT_OVERRIDES:
        data["input"] = _INPUT_OVERRIDES[name]
    return LoadedSpec(RunSpec.model_validate(data), str(path), {})


def expected_status(name: str) -> str:
    return "waiting_for_review" if name in _WAITING else "complete"


def kept_files(out: Path) -> Iterator[Path]:
    """The outputs a golden keeps, relative to the run directory, in a stable order."""
    for name in ("dataset.jsonl", "rejected.jsonl"):
        if (out / name).exists():  # a run waiting for review has not written them
            yield Path(name)
    for path in sorted((out / "steps").rglob("*")):
        if path.is_file() and (path.suffix == ".jsonl" or path.name == "_COMPLETE"):
            yield path.relative_to(out)


# Not a secret: the golden refine specs read their surrogate key from this variable so that their
# fakes are the same on every run (a real run keys them with a random per-run secret).
GOLDEN_KEY_ENV = "DATAREFINERY_GOLDEN_SURROGATE_KEY"
GOLDEN_KEY = "golden-surrogate-key-0123456789abcdef0123456789abcdef"


def run_golden(name: str, out: Path) -> datarefinery.RunResult:
    os.environ[GOLDEN_KEY_ENV] = GOLDEN_KEY
    backend = ScriptedBackend(golden_reply, name="golden")
    return datarefinery.run(
        _load(name, golden_specs()[name]), out, backend=backend, diversity=False
    )


def regenerate(names: list[str] | None = None) -> None:
    import shutil

    for name in names or list(golden_specs()):
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "out"
            result = run_golden(name, out)
            if result.status != expected_status(name):
                raise SystemExit(f"{name}: run {result.status}: {result.message}")
            target = GOLDENS / name
            shutil.rmtree(target, ignore_errors=True)
            for relative in kept_files(out):
                (target / relative).parent.mkdir(parents=True, exist_ok=True)
                (target / relative).write_bytes((out / relative).read_bytes())
            print(f"{name}: {result.dataset_size} kept, {result.rejected_size} rejected")


if __name__ == "__main__":
    regenerate(sys.argv[1:] or None)
