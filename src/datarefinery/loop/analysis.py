"""S3's extra-data analysis: how close is each extrapolated record to the misclassified example
it was made from?

For every (example, record made from it) pair of a finished S3 run: the cosine similarity of
their sentence embeddings and the word-level edit distance of their written text, normalized by
the longer length (0 = same words, 1 = nothing in common). As a yardstick the same two measures
are taken between each record and another example of the same label drawn at random from the
same file: extrapolations should be much closer to their own example than to a random one,
without being copies.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from pathlib import Path
from statistics import mean
from typing import Any

from datarefinery.errors import MissingDependencyError
from datarefinery.text import rouge_tokens


def word_edit_distance(a: Sequence[str], b: Sequence[str]) -> float:
    """Levenshtein distance over words, divided by the longer length (0.0 for two empty)."""
    if not a and not b:
        return 0.0
    previous = list(range(len(b) + 1))
    for i, x in enumerate(a, start=1):
        current = [i]
        for j, y in enumerate(b, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (x != y)))
        previous = current
    return previous[-1] / max(len(a), len(b))


def _read(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def extrapolation_pairs(run_dir: Path) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(example, record made from it) for every round of an S3 run directory."""
    pairs = []
    for folder in sorted((run_dir / "rounds").glob("[0-9][0-9]")):
        examples = {e["id"]: e for e in _read(folder / "examples.jsonl")}
        for record in _read(folder / "run" / "dataset.jsonl"):
            parents = record["provenance"].get("parent_ids") or []
            if parents and parents[0] in examples:
                pairs.append((examples[parents[0]], record))
    return pairs


def extra_data_analysis(
    run_dir: Path, fields: Sequence[str], label_field: str, *, seed: int = 0
) -> dict[str, Any]:
    """Mean cosine similarity and normalized word edit distance between the examples of an S3
    run and their extrapolations, and the same against random same-label examples.

    ``fields`` are the written fields compared (joined). Cosine is left out, with a note, when
    the ``embed`` extra is not installed.
    """
    pairs = extrapolation_pairs(run_dir)
    result: dict[str, Any] = {"pairs": len(pairs)}
    if not pairs:
        return result

    def text(row: dict[str, Any]) -> str:
        return " ".join(str(row["fields"][f]) for f in fields)

    by_label: dict[str, list[dict[str, Any]]] = {}
    for example, _ in pairs:
        by_label.setdefault(str(example["fields"][label_field]), []).append(example)
    rng = random.Random(seed)
    others = []
    for example, record in pairs:
        pool = [e for e in by_label[str(record["fields"][label_field])] if e["id"] != example["id"]]
        others.append(rng.choice(pool) if pool else example)

    result["edit_distance"] = round(
        mean(word_edit_distance(rouge_tokens(text(e)), rouge_tokens(text(r))) for e, r in pairs), 4
    )
    result["edit_distance_random"] = round(
        mean(
            word_edit_distance(rouge_tokens(text(o)), rouge_tokens(text(r)))
            for o, (_, r) in zip(others, pairs, strict=True)
        ),
        4,
    )
    try:
        from datarefinery.embeddings import Embedder, cosine

        embedder = Embedder()
        made = embedder.encode([text(r) for _, r in pairs])
        own = embedder.encode([text(e) for e, _ in pairs])
        random_ = embedder.encode([text(o) for o in others])
    except MissingDependencyError as exc:
        result["cosine_note"] = str(exc)
        return result
    result["cosine"] = round(float(cosine(own, made).mean()), 4)
    result["cosine_random"] = round(float(cosine(random_, made).mean()), 4)
    return result
