"""``report.html``: one self-contained page (inline CSS and SVG, no script, nothing fetched; a
Content-Security-Policy forbids any request), every dataset string HTML-escaped.
"""

from __future__ import annotations

from html import escape
from typing import Any

from datarefinery.evaluate.calibration import figure_rows
from datarefinery.evaluate.report import svg
from datarefinery.evaluate.suite import Evaluation

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#212529;
background:#f8f9fa}
main{max-width:1120px;margin:0 auto;padding:24px}
h1{font-size:22px;margin:0 0 4px} h2{font-size:17px;margin:28px 0 10px}
.muted{color:#868e96}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(200px,1fr));gap:12px}
.card{background:#fff;border:1px solid #dee2e6;border-radius:8px;padding:12px}
.card b{display:block;font-size:20px} .card span{color:#868e96;font-size:12px}
.charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(520px,1fr));gap:14px}
figure{margin:0;background:#fff;border:1px solid #dee2e6;border-radius:8px;padding:8px}
figcaption{font-weight:600;margin:2px 4px 6px}
svg.chart{max-width:100%;height:auto;font-size:11px}
svg .bg{fill:#fff} svg .axis{stroke:#adb5bd} svg .tick,svg .axis-label{fill:#495057}
table{border-collapse:collapse;width:100%;background:#fff}
th,td{border:1px solid #dee2e6;padding:5px 8px;text-align:left;vertical-align:top}
th{background:#f1f3f5} td.num{text-align:right;font-variant-numeric:tabular-nums}
td.text{max-width:520px;white-space:pre-wrap;word-break:break-word}
code{font-size:12px}
"""

# (section, key, what it means) for the metrics table; missing entries are skipped.
_ROWS: list[tuple[str, str, str]] = [
    ("diversity", "records", "records"),
    ("diversity", "distinct_1", "distinct-1 (unique unigrams / all)"),
    ("diversity", "distinct_2", "distinct-2"),
    ("diversity", "distinct_3", "distinct-3"),
    ("diversity", "self_rouge2", "self-ROUGE-2 (lower = more varied phrasing)"),
    ("diversity", "embedding_mean_pairwise_l2", "mean pairwise embedding L2"),
    ("diversity", "embedding_centroid_dispersion", "mean L2 distance to centroid"),
    ("diversity", "vendi_score", "Vendi score (effective distinct items)"),
    ("diversity", "lengths.words.mean", "mean length (words)"),
    ("diversity", "lengths.words.p90", "90th percentile length (words)"),
    ("diversity", "label_balance.normalized_entropy", "label balance (normalized entropy)"),
]


def lookup(data: dict[str, Any], dotted: str) -> Any:
    value: Any = data
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.4g}"
    return escape(str(value))


def _cards(metrics: dict[str, Any]) -> str:
    items = [
        ("records", lookup(metrics, "diversity.records")),
        ("distinct-2", lookup(metrics, "diversity.distinct_2")),
        ("Vendi score", lookup(metrics, "diversity.vendi_score")),
        ("real-vs-synthetic AUC (0.5 ideal)", lookup(metrics, "fidelity.classifier_auc_embedding")),
        ("utility accuracy, TF-IDF", lookup(metrics, "utility.tfidf-lr.dataset.accuracy")),
        ("records with PII", lookup(metrics, "privacy.pii.records_with_pii")),
        ("≥50-char verbatim spans", lookup(metrics, "privacy.verbatim_overlap.records_with_span")),
        ("mean judge score", lookup(metrics, "curation.judge_mean")),
    ]
    return "".join(
        f'<div class="card"><span>{escape(name)}</span><b>{_fmt(value)}</b></div>'
        for name, value in items
        if value is not None
    )


def _metrics_table(metrics: dict[str, Any]) -> str:
    has_real = "real_diversity" in metrics
    real_head = "<th>real (sample of the dataset's size)</th>" if has_real else ""
    head = f"<tr><th>metric</th><th>dataset</th>{real_head}</tr>"
    rows = []
    for section, key, meaning in _ROWS:
        value = lookup(metrics.get(section, {}), key)
        if value is None:
            continue
        real = lookup(metrics.get("real_diversity", {}), key) if has_real else None
        cells = f'<td class="num">{_fmt(value)}</td>'
        if has_real:
            cells += f'<td class="num">{_fmt(real)}</td>'
        rows.append(f"<tr><td>{escape(meaning)}</td>{cells}</tr>")
    extra = []
    for section in ("fidelity", "privacy", "curation"):
        for key, value in _flatten(metrics.get(section, {})):
            if not isinstance(value, (dict, list)):
                extra.append(
                    f'<tr><td>{escape(section)}.{escape(key)}</td><td class="num">{_fmt(value)}'
                    f"</td>{'<td></td>' if has_real else ''}</tr>"
                )
    for kind, entry in metrics.get("utility", {}).items():
        if not isinstance(entry, dict):
            continue
        for source, scores in entry.items():
            for name in ("accuracy", "macro_f1", "error"):
                if name in scores:
                    extra.append(
                        f"<tr><td>utility.{escape(kind)}.{escape(source)}.{name}</td>"
                        f'<td class="num">{_fmt(scores[name])}</td>'
                        f"{'<td></td>' if has_real else ''}</tr>"
                    )
    return f"<table>{head}{''.join(rows + extra)}</table>"


def _flatten(data: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    items: list[tuple[str, Any]] = []
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            items.extend(_flatten(value, f"{name}."))
        else:
            items.append((name, value))
    return items


def _records_table(evaluation: Evaluation, limit: int = 12) -> str:
    label = evaluation.label_field
    rows = []
    for record in evaluation.dataset.records[:limit]:
        text = "\n".join(str(record.fields.get(f, "")) for f in evaluation.text_fields)
        prov = record.provenance
        origin = " · ".join(
            escape(str(v)) for v in (prov.step, prov.technique, prov.model, prov.source) if v
        )
        scores = ", ".join(f"{escape(k)}={escape(str(v))[:80]}" for k, v in record.scores.items())
        rows.append(
            f"<tr><td><code>{escape(record.id)}</code></td>"
            f"<td>{escape(str(record.fields.get(label, ''))) if label else ''}</td>"
            f'<td class="text">{escape(text[:600])}{"…" if len(text) > 600 else ""}</td>'
            f"<td>{origin or '–'}</td><td>{scores or '–'}</td></tr>"
        )
    return (
        "<table><tr><th>id</th><th>label</th><th>text</th><th>provenance</th><th>scores</th>"
        f"</tr>{''.join(rows)}</table>"
    )


def _calibration(metrics: dict[str, Any]) -> str:
    data = metrics.get("calibration")
    if not data:
        return ""
    rows = "".join(
        f'<tr><td>{escape(figure)}</td><td class="num">{escape(value)}</td>'
        f"<td>{escape(detail)}</td></tr>"
        for figure, value, detail in figure_rows(data)
    )
    return (
        f'<h2>Judges against people</h2><p class="muted">{data["decisions"]} review decisions; '
        "95 % intervals: bootstrap over records for kappa, Wilson for shares</p>"
        f"<table><tr><th>figure</th><th>value</th><th>detail</th></tr>{rows}</table>"
    )


def render_html(evaluation: Evaluation) -> str:
    metrics = evaluation.metrics
    charts = [
        (
            "Embedding map (PCA of sentence embeddings)",
            svg.scatter(evaluation.map_points, "2-D PCA map of dataset and real embeddings"),
        ),
        (
            "Length (words)",
            svg.histogram(
                {k: [float(v) for v in vs] for k, vs in evaluation.lengths.items()},
                "length histogram",
                "words per record",
            ),
        ),
    ]
    if evaluation.labels:
        shares = {
            name: {k: v / max(1, sum(c.values())) for k, v in c.items()}
            for name, c in evaluation.labels.items()
        }
        charts.append(("Labels (share of records)", svg.bars(shares, "label shares", "share")))
    if evaluation.judge_scores:
        charts.append(
            (
                "Judge scores",
                svg.histogram(
                    {"dataset": evaluation.judge_scores}, "judge score histogram", "score", bins=8
                ),
            )
        )
    figures = "".join(
        f"<figure><figcaption>{escape(title)}</figcaption>{chart}</figure>"
        for title, chart in charts
    )
    described = metrics.get("dataset", {})
    subtitle = f"{described.get('records', 0)} records from {described.get('path', '')}"
    if "real" in metrics:
        subtitle += f" · compared with {metrics['real']['records']} real records"
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "style-src 'unsafe-inline'; img-src data:\">"
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>datarefinery report</title><style>{_CSS}</style></head><body><main>"
        f'<h1>Dataset report</h1><p class="muted">{escape(subtitle)}</p>'
        f'<div class="cards">{_cards(metrics)}</div>'
        f'<h2>Plots</h2><div class="charts">{figures}</div>'
        f"<h2>Metrics</h2>{_metrics_table(metrics)}{_calibration(metrics)}"
        f"<h2>Sample of records</h2>{_records_table(evaluation)}"
        f'<p class="muted">embeddings: {escape(str(metrics.get("embedding_model", "")))} · '
        f"computed in {metrics.get('seconds', 0)} s · full numbers in metrics.json</p>"
        "</main></body></html>\n"
    )
