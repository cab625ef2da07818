"""One evaluation of a dataset: diversity always; fidelity and utility against real data; privacy
against the source records. The API behind ``refinery evaluate`` and the report of ``refinery run``.

Embedding-based metrics use a seeded sample of at most ``max_embed`` records per set (embedding
long texts costs about 50 ms each on 2 cores); counting metrics use every record.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from datarefinery.config import TaskSpec
from datarefinery.detect.base import PIIDetector
from datarefinery.detect.factory import make_detector
from datarefinery.embeddings import Embedder
from datarefinery.errors import UsageError
from datarefinery.evaluate import diversity as div
from datarefinery.evaluate import fidelity as fid
from datarefinery.evaluate.calibration import calibrate
from datarefinery.evaluate.privacy import (
    known_value_leaks,
    pii_found,
    source_pii_leaks,
    verbatim_overlap,
)
from datarefinery.evaluate.utility import utility
from datarefinery.io.read import read_records
from datarefinery.manifest import LoopManifest, Manifest, step_outcomes
from datarefinery.models.smallmodel import ModelKind
from datarefinery.records import Record
from datarefinery.rundir import RunDir

if TYPE_CHECKING:
    from numpy.typing import NDArray


class MemoEmbedder(Embedder):
    """An embedder that remembers every text it encoded, so the report, the fidelity tests and
    the embedding utility model share one encoding of each text.
    """

    def __init__(self, model: str = "default") -> None:
        super().__init__(model)
        self._memo: dict[str, NDArray[np.float32]] = {}

    def encode(self, texts: Sequence[str]) -> NDArray[np.float32]:
        missing = list(dict.fromkeys(t for t in texts if t not in self._memo))
        if missing:
            for text, vector in zip(missing, super().encode(missing), strict=True):
                self._memo[text] = vector
        if not texts:
            return np.zeros((0, 384), dtype=np.float32)
        return np.stack([self._memo[t] for t in texts])


@dataclass
class Dataset:
    """Records to evaluate, with the run's manifest when they come from a run directory."""

    path: Path
    records: list[Record]
    manifest: Manifest | LoopManifest | None = None

    @property
    def task(self) -> TaskSpec | None:
        return self.manifest.task if self.manifest else None


def load_dataset(path: str | Path) -> Dataset:
    """A run directory (its dataset.jsonl and manifest.json) or a data file."""
    path = Path(path)
    if path.is_dir() and (path / "manifest.json").exists():
        dataset_path = path / "dataset.jsonl"
        if not dataset_path.exists():
            raise UsageError(f"{path} is a run directory without dataset.jsonl: is the run done?")
        manifest = RunDir(path).read_manifest()
        return Dataset(path, list(read_records(dataset_path)), manifest)
    return Dataset(path, list(read_records(path)))


@dataclass
class Evaluation:
    """The metrics (``metrics``, what metrics.json holds) and what the plots need."""

    metrics: dict[str, Any]
    dataset: Dataset
    text_fields: list[str]
    label_field: str | None
    lengths: dict[str, list[int]] = field(default_factory=dict)
    labels: dict[str, dict[str, int]] = field(default_factory=dict)
    judge_scores: list[float] = field(default_factory=list)
    map_points: dict[str, list[tuple[float, float]]] = field(default_factory=dict)


def _text(record: Record, fields: Sequence[str]) -> str:
    return "\n".join(str(record.fields.get(f, "")) for f in fields)


def _sample(records: list[Record], limit: int, seed: int) -> list[Record]:
    if len(records) <= limit:
        return records
    picks = np.random.default_rng(seed).choice(len(records), limit, replace=False)
    return [records[i] for i in sorted(picks)]


def _resolve_fields(
    dataset: Dataset, text_field: str | None, label_field: str | None
) -> tuple[list[str], str | None]:
    task = dataset.task
    first = dataset.records[0].fields if dataset.records else {}
    if text_field:
        texts = [f.strip() for f in text_field.split(",")]
    elif task is not None:
        texts = [n for n, f in task.fields.items() if f.type == "text"]
    else:
        texts = ["text"]
    missing = [f for f in texts if f not in first]
    if dataset.records and (not texts or missing):
        raise UsageError(
            f"{dataset.path}: no text field {missing or ''} in the records (fields: "
            f"{sorted(first)}); name it with --text-field"
        )
    if label_field is None:
        label_field = (task.label_field if task else None) or (
            "label" if "label" in first else None
        )
    return texts, label_field


def diversity_metrics(
    texts: list[str], vectors: NDArray[np.float32], labels: list[str] | None, seed: int
) -> dict[str, Any]:
    metrics: dict[str, Any] = {
        "records": len(texts),
        "distinct_1": round(div.distinct_n(texts, 1), 4),
        "distinct_2": round(div.distinct_n(texts, 2), 4),
        "distinct_3": round(div.distinct_n(texts, 3), 4),
        "self_rouge2": round(div.self_rouge2(texts, seed=seed), 4),
        "embedding_mean_pairwise_l2": round(div.mean_pairwise_distance(vectors, seed=seed), 4),
        "embedding_centroid_dispersion": round(div.centroid_dispersion(vectors), 4),
        "vendi_score": round(div.vendi_score(vectors), 3),
        "embedded_records": len(vectors),
        "lengths": div.length_stats(texts),
    }
    if labels is not None:
        metrics["label_balance"] = div.label_balance(labels)
    return metrics


def evaluate(
    dataset: str | Path | Dataset,
    *,
    real: str | Path | None = None,
    real_train: str | Path | None = None,
    source: str | Path | None = None,
    known_values: Sequence[str] = (),
    text_field: str | None = None,
    label_field: str | None = None,
    real_label_field: str | None = None,
    detector: PIIDetector | None = None,
    utility_models: Sequence[ModelKind] = ("tfidf-lr", "embedding-lr"),
    max_embed: int = 2000,
    seed: int = 0,
    embedder: Embedder | None = None,
) -> Evaluation:
    """Compute every metric the inputs allow. ``real`` is a labeled real set (fidelity, and
    utility's test set); ``real_train`` a real training split (utility's reference); ``source``
    the records the dataset was made from (privacy overlap). ``real_label_field`` names the real
    sets' label column when it differs (e.g. ``label_text`` in the IMDb files). ``detector``
    defaults to ``make_detector("both")`` (Presidio + patterns + addresses; the refine extra).
    """
    # Why long: the whole report in the order it is read (diversity, fidelity, utility, privacy),
    # each family a short guarded block; the families share the loaded texts and embeddings
    started = time.perf_counter()
    data = dataset if isinstance(dataset, Dataset) else load_dataset(dataset)
    if not data.records:
        raise UsageError(f"{data.path}: the dataset has no records to evaluate")
    text_fields, label = _resolve_fields(data, text_field, label_field)
    if detector is None:
        detector = make_detector("both")
    memo = embedder if isinstance(embedder, MemoEmbedder) else MemoEmbedder()
    records = data.records
    texts = [_text(r, text_fields) for r in records]
    labels = [str(r.fields.get(label)) for r in records] if label else None
    embedded = _sample(records, max_embed, seed)
    vectors = memo.encode([_text(r, text_fields) for r in embedded])
    result = Evaluation(metrics={}, dataset=data, text_fields=text_fields, label_field=label)
    metrics = result.metrics
    metrics["dataset"] = _describe(data, text_fields, label)
    metrics["diversity"] = diversity_metrics(texts, vectors, labels, seed)
    task = data.task
    if task is not None and task.attributes:
        metrics["diversity"]["attribute_coverage"] = div.attribute_coverage(
            # Weighted attributes map value -> weight; coverage is over the values either way.
            [r.provenance.conditioning for r in records],
            {name: list(values) for name, values in task.attributes.items()},
        )
    result.lengths["dataset"] = [len(t.split()) for t in texts]
    if labels is not None:
        result.labels["dataset"] = metrics["diversity"]["label_balance"]["counts"]
    result.judge_scores = _judge_scores(records)
    if result.judge_scores:
        metrics["curation"] = {"judge_mean": round(float(np.mean(result.judge_scores)), 3)}
    if data.manifest is not None:
        counts = data.manifest.counts if isinstance(data.manifest, Manifest) else None
        metrics.setdefault("curation", {})["rejected_by_reason"] = (
            counts.rejected_by_reason if counts else {}
        )
        metrics["curation"].update(step_outcomes(data.manifest))
        if (calibration := calibrate(data.path)) is not None:
            metrics["calibration"] = calibration.to_dict()

    real_vectors = None
    if real is not None:
        real_records = _read_real(real, text_fields, label, real_label_field)
        real_texts = [_text(r, text_fields) for r in real_records]
        real_embedded = _sample(real_records, max_embed, seed)
        real_vectors = memo.encode([_text(r, text_fields) for r in real_embedded])
        real_labels = [str(r.fields.get(label)) for r in real_records] if label else None
        metrics["real"] = {"path": str(real), "records": len(real_records)}
        # Distinct-n and the Vendi score grow or shrink with the number of texts, so the real
        # side of the comparison is a seeded sample of the dataset's size.
        matched = _sample(real_embedded, min(len(records), len(real_embedded)), seed)
        metrics["real_diversity"] = diversity_metrics(
            [_text(r, text_fields) for r in matched],
            memo.encode([_text(r, text_fields) for r in matched]),
            [str(r.fields.get(label)) for r in matched] if label else None,
            seed,
        )
        metrics["real_diversity"]["size_matched_sample_of"] = len(real_records)
        result.lengths["real"] = [len(t.split()) for t in real_texts]
        if real_labels is not None:
            result.labels["real"] = dict(sorted(Counter(real_labels).items()))
        metrics["fidelity"] = _fidelity(records, real_records, vectors, real_vectors, text_fields)
        if label is not None:
            train = None
            if real_train is not None:
                train = _read_real(real_train, text_fields, label, real_label_field)
            metrics["utility"] = utility(
                records,
                real_records,
                text_fields=text_fields,
                label_field=label,
                real_train=train,
                kinds=utility_models,
                seed=seed,
                embedder=memo,
            )
            if real_train is not None:
                metrics["utility"]["real_train"] = str(real_train)
    result.map_points = _embedding_map(vectors, real_vectors, seed)

    privacy: dict[str, Any] = {"pii": pii_found(texts, detector)}
    if known_values:
        privacy["known_values"] = known_value_leaks(texts, known_values)
    if source is not None:
        source_records = list(read_records(source))
        source_texts = [_source_text(r, text_fields) for r in source_records]
        privacy["verbatim_overlap"] = verbatim_overlap(
            texts,
            source_texts,
            ids=[r.id for r in records],
            source_ids=[r.id for r in source_records],
        )
        privacy["source_pii"] = source_pii_leaks(texts, source_texts, detector)
        privacy["source"] = {"path": str(source), "records": len(source_records)}
    metrics["privacy"] = privacy
    metrics["embedding_model"] = memo.name
    metrics["seconds"] = round(time.perf_counter() - started, 2)
    return result


def _describe(data: Dataset, text_fields: list[str], label: str | None) -> dict[str, Any]:
    described: dict[str, Any] = {
        "path": str(data.path),
        "records": len(data.records),
        "text_fields": text_fields,
        "label_field": label,
    }
    if data.manifest is not None:
        manifest = data.manifest
        described["run"] = {
            "name": manifest.name,
            "spec_hash": manifest.spec_hash,
            "status": manifest.status,
        }
    return described


def _read_real(
    path: str | Path, text_fields: list[str], label: str | None, real_label: str | None
) -> list[Record]:
    """Real records with the label under the dataset's label field name."""
    wanted = real_label or label
    required = [*text_fields, *([wanted] if wanted else [])]
    records = list(read_records(path, required=required))
    if label and wanted and wanted != label:
        for record in records:
            record.fields[label] = record.fields[wanted]
    if label:
        for record in records:
            record.fields[label] = str(record.fields[label])
    return records


def _source_text(record: Record, text_fields: list[str]) -> str:
    present = [f for f in text_fields if f in record.fields]
    if present:
        return _text(record, present)
    return "\n".join(str(v) for v in record.fields.values() if isinstance(v, str))


def _fidelity(
    records: list[Record],
    real_records: list[Record],
    vectors: NDArray[np.float32],
    real_vectors: NDArray[np.float32],
    text_fields: list[str],
) -> dict[str, Any]:
    from datarefinery.models.crossfit import out_of_fold_proba

    result: dict[str, Any] = {
        "mmd_rbf": round(fid.mmd_rbf(vectors, real_vectors), 5),
        "frechet_distance": round(fid.frechet_distance(vectors, real_vectors), 5),
        "classifier_auc_embedding": round(fid.classifier_auc(vectors, real_vectors), 4),
    }
    # The same test on TF-IDF features catches surface artifacts (markup, stock phrases) that
    # sentence embeddings smooth over.
    size = min(len(records), len(real_records), 2000)
    if size >= 5:
        rng = np.random.default_rng(0)
        pick_a = rng.choice(len(records), size, replace=False)
        pick_b = rng.choice(len(real_records), size, replace=False)
        pooled = [
            Record(f"s{i}", {"text": _text(records[i], text_fields), "origin": "synthetic"})
            for i in pick_a
        ] + [
            Record(f"r{i}", {"text": _text(real_records[i], text_fields), "origin": "real"})
            for i in pick_b
        ]
        proba, classes = out_of_fold_proba(
            pooled, kind="tfidf-lr", text_fields=["text"], label_field="origin", folds=5, seed=0
        )
        from sklearn.metrics import roc_auc_score

        target = [r.fields["origin"] == "synthetic" for r in pooled]
        auc = roc_auc_score(target, proba[:, classes.index("synthetic")])
        result["classifier_auc_tfidf"] = round(float(auc), 4)
    result["compared"] = {"dataset": len(vectors), "real": len(real_vectors)}
    return result


_JUDGE_KEY = re.compile(r"^judge(_\d+)?$")


def _judge_scores(records: list[Record]) -> list[float]:
    """The mean judge score of each judged record (scores key of a ``judge`` step instance)."""
    values = []
    for record in records:
        for key, value in record.scores.items():
            if _JUDGE_KEY.match(key) and isinstance(value, (int, float)):
                values.append(float(value))
                break
    return values


def _embedding_map(
    vectors: NDArray[np.float32], real_vectors: NDArray[np.float32] | None, seed: int
) -> dict[str, list[tuple[float, float]]]:
    """A 2-D PCA projection fitted on both sets together (at most 1,000 points each)."""
    rng = np.random.default_rng(seed)

    def cap(v: NDArray[np.float32]) -> NDArray[np.float32]:
        return v[np.sort(rng.choice(len(v), 1000, replace=False))] if len(v) > 1000 else v

    parts = {"dataset": cap(vectors)}
    if real_vectors is not None and len(real_vectors):
        parts["real"] = cap(real_vectors)
    stacked = np.vstack(list(parts.values())).astype(np.float64)
    if len(stacked) < 2:
        return {name: [(0.0, 0.0)] * len(v) for name, v in parts.items()}
    centered = stacked - stacked.mean(axis=0)
    _, _, components = np.linalg.svd(centered, full_matrices=False)
    projected = centered @ components[:2].T
    out: dict[str, list[tuple[float, float]]] = {}
    start = 0
    for name, part in parts.items():
        chunk = projected[start : start + len(part)]
        out[name] = [(round(float(x), 4), round(float(y), 4)) for x, y in chunk]
        start += len(part)
    return out
