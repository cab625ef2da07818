"""``dedup``: drop exact, near- and semantic duplicates, keeping the first occurrence.

- ``exact``: a hash of the fields after Unicode, case and whitespace normalization.
- ``minhash``: MinHash signatures of word n-gram shingles in an LSH index (``rensa``); a candidate
  from the index counts when its estimated Jaccard similarity reaches ``threshold``.
- ``semantic``: all-MiniLM-L6-v2 sentence embeddings; cosine similarity at or above ``threshold``.

The step is stateful: it sees outputs shard by shard in commit order and rebuilds its index from
the committed shards on resume, so the first occurrence is the same on every run. A duplicate is
rejected with the id of the record it duplicates (in the detail and in
``scores[<step>_duplicate_of]``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import Field

from datarefinery.config import TaskSpec
from datarefinery.errors import MissingDependencyError
from datarefinery.records import Record, Rejected
from datarefinery.steps.base import Output, Step, StepConfig, StepContext
from datarefinery.steps.curate.fields import chosen_fields
from datarefinery.text import lower_words_and_marks, normalized_key

if TYPE_CHECKING:
    from numpy.typing import NDArray

DEFAULT_THRESHOLD = {"exact": 1.0, "minhash": 0.8, "semantic": 0.95}


class DedupConfig(StepConfig):
    method: Literal["exact", "minhash", "semantic"] = "minhash"
    fields: list[str] | None = Field(
        default=None, description="fields compared; default: the task's content fields"
    )
    threshold: float | None = Field(
        default=None, gt=0, le=1, description="Jaccard (minhash) or cosine (semantic) similarity"
    )
    ngram: int = Field(default=3, ge=1, le=20, description="minhash: words per shingle")
    num_perm: int = Field(default=128, ge=16, le=1024)
    bands: int | None = Field(default=None, ge=1, description="minhash: LSH bands; default: tuned")


def shingles(text: str, n: int) -> list[str]:
    """Word n-grams of the tokenized text (the whole text when it has fewer than n words)."""
    tokens = lower_words_and_marks(text)
    if len(tokens) <= n:
        return [" ".join(tokens)]
    return [" ".join(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]


def lsh_bands(threshold: float, num_perm: int) -> int:
    """The number of bands (rows = num_perm / bands, a divisor) that minimizes the sum of the
    false-positive and false-negative areas of the LSH S-curve around ``threshold``.
    """
    grid = np.linspace(0.0, 1.0, 201)
    best, best_error = 1, float("inf")
    for bands in range(1, num_perm + 1):
        if num_perm % bands:
            continue
        rows = num_perm // bands
        hit = 1 - (1 - grid**rows) ** bands
        error = float(np.trapezoid(np.where(grid < threshold, hit, 1 - hit), grid))
        if error < best_error:
            best, best_error = bands, error
    return best


class Dedup(Step[DedupConfig]):
    name = "dedup"
    Config = DedupConfig
    stateful = True

    def _fields(self, task: TaskSpec | None) -> list[str]:
        return chosen_fields(self.config.fields, task)

    def reads(self, task: TaskSpec | None) -> set[str]:
        return set(self._fields(task))

    def setup(self, ctx: StepContext) -> None:
        super().setup(ctx)
        cfg = self.config
        self.fields = self._fields(ctx.task)
        self.threshold = cfg.threshold or DEFAULT_THRESHOLD[cfg.method]
        self._first_with: dict[str, str] = {}
        self._ids: list[str] = []
        if cfg.method == "minhash":
            try:
                import rensa
            except ImportError as exc:
                raise MissingDependencyError("the dedup step's minhash method", "curate") from exc
            bands = cfg.bands or lsh_bands(self.threshold, cfg.num_perm)
            self._rensa = rensa
            self._lsh = rensa.RMinHashLSH(self.threshold, cfg.num_perm, bands)
            self._signatures: list[Any] = []
        elif cfg.method == "semantic":
            from datarefinery.embeddings import Embedder

            self._embedder = Embedder()
            self._vectors: NDArray[np.float32] = np.zeros((0, 384), dtype=np.float32)

    def _text(self, record: Record) -> str:
        return "\n".join(str(record.fields.get(name, "")) for name in self.fields)

    async def process(self, batch: list[Record]) -> list[Output]:
        return list(batch)  # decisions need the committed order: see postprocess

    def restore(self, committed: Iterable[Record]) -> None:
        self.postprocess(list(committed))

    def postprocess(self, outputs: list[Output]) -> list[Output]:
        records = [o for o in outputs if isinstance(o, Record)]
        originals = self._originals(records)
        result: list[Output] = []
        for output in outputs:
            if isinstance(output, Record) and id(output) in originals:
                original, similarity = originals[id(output)]
                scores = {**output.scores, f"{self.ctx.name}_duplicate_of": original}
                marked = Record(output.id, output.fields, output.provenance, scores)
                result.append(Rejected(marked, self.ctx.name, *self._why(original, similarity)))
            else:
                result.append(output)
        return result

    def _why(self, original: str, similarity: float) -> tuple[str, str]:
        method = self.config.method
        if method == "exact":
            return "duplicate", f"exact duplicate (ignoring case and spacing) of record {original}"
        if method == "minhash":
            return (
                "near_duplicate",
                f"near-duplicate of record {original} (estimated Jaccard {similarity:.2f} >= "
                f"{self.threshold:g})",
            )
        return (
            "semantic_duplicate",
            f"same meaning as record {original} (cosine {similarity:.3f} >= {self.threshold:g})",
        )

    def _originals(self, records: list[Record]) -> dict[int, tuple[str, float]]:
        """Python id of each duplicate record -> (id of the kept record it repeats, similarity);
        records that are kept are added to the index.
        """
        method = self.config.method
        if method == "exact":
            found: dict[int, tuple[str, float]] = {}
            for record in records:
                key = normalized_key(record.fields, self.fields)
                first = self._first_with.setdefault(key, record.id)
                if first != record.id:
                    found[id(record)] = (first, 1.0)
            return found
        if method == "minhash":
            return self._minhash(records)
        return self._semantic(records)

    def _minhash(self, records: list[Record]) -> dict[int, tuple[str, float]]:
        found: dict[int, tuple[str, float]] = {}
        cfg = self.config
        for record in records:
            signature = self._rensa.RMinHash(cfg.num_perm, 42)
            signature.update(shingles(self._text(record), cfg.ngram))
            best_key, best = -1, 0.0
            for key in self._lsh.query(signature):
                similarity = float(signature.jaccard(self._signatures[key]))
                if similarity > best or (similarity == best and key < best_key):
                    best_key, best = key, similarity
            if best_key >= 0 and best >= self.threshold:
                found[id(record)] = (self._ids[best_key], best)
                continue
            self._lsh.insert(len(self._ids), signature)
            self._signatures.append(signature)
            self._ids.append(record.id)
        return found

    def _semantic(self, records: list[Record]) -> dict[int, tuple[str, float]]:
        found: dict[int, tuple[str, float]] = {}
        if not records:
            return found
        vectors = self._embedder.encode([self._text(r) for r in records])
        kept_before = len(self._vectors)
        # Similarities to everything kept in earlier shards, in one matrix product.
        earlier = vectors @ self._vectors.T if kept_before else None
        new_rows: list[int] = []
        for i, record in enumerate(records):
            best_index, best = -1, -1.0
            if earlier is not None:
                j = int(np.argmax(earlier[i]))
                best_index, best = j, float(earlier[i, j])
            if new_rows:
                sims = vectors[new_rows] @ vectors[i]
                j = int(np.argmax(sims))
                if float(sims[j]) > best:
                    best_index, best = kept_before + j, float(sims[j])
            if best_index >= 0 and best >= self.threshold:
                found[id(record)] = (self._ids[best_index], best)
                continue
            new_rows.append(i)
            self._ids.append(record.id)
        if new_rows:
            self._vectors = np.vstack([self._vectors, vectors[new_rows]])
        return found
