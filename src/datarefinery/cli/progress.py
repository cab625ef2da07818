"""The rich progress bar and the end-of-run summary."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from rich.text import Text

from datarefinery.llm.engine import EngineStats
from datarefinery.manifest import DiversitySummary, Manifest
from datarefinery.runner import RunResult


class _RatesColumn(ProgressColumn):
    """records/s, tokens/s and rejects of the step in progress."""

    def __init__(self, sink: RichProgress) -> None:
        super().__init__()
        self.sink = sink

    def render(self, task: Task) -> Text:
        elapsed = max(task.elapsed or 0.0, 1e-6)
        stats = self.sink.engine_stats
        tokens = stats.usage.total_tokens - self.sink.tokens_at_start if stats else 0
        rejected = task.fields.get("rejected", 0)
        return Text(
            f"{task.completed / elapsed:6.2f} rec/s  {tokens / elapsed:7.1f} tok/s  "
            f"kept {task.fields.get('kept', 0)}  rejected {rejected}",
            style="red" if rejected else "green",
        )


class RichProgress:
    """A ProgressSink that draws one bar per step."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.engine_stats: EngineStats | None = None
        self.tokens_at_start = 0
        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            _RatesColumn(self),
            console=console,
            transient=False,
        )
        self._task: TaskID | None = None

    def __enter__(self) -> RichProgress:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()

    def bind_engine(self, stats: EngineStats | None) -> None:
        self.engine_stats = stats

    def step_started(self, name: str, total_in: int | None) -> None:
        self.tokens_at_start = self.engine_stats.usage.total_tokens if self.engine_stats else 0
        self._task = self._progress.add_task(name, total=total_in, kept=0, rejected=0)

    def advance(self, records_in: int, kept: int, rejected: int) -> None:
        if self._task is None:
            return
        task = self._progress.tasks[self._task]
        self._progress.update(
            self._task,
            advance=records_in,
            kept=task.fields.get("kept", 0) + kept,
            rejected=task.fields.get("rejected", 0) + rejected,
        )

    def step_finished(self, name: str) -> None:
        if self._task is not None:
            task = self._progress.tasks[self._task]
            if task.total is None:
                self._progress.update(self._task, total=task.completed)
        self._task = None


def _duration(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes}m {secs:02d}s" if minutes else f"{seconds:.1f}s"


def print_summary(console: Console, result: RunResult, samples: int = 3) -> None:
    """One screen: where the files went, counts per step, labels, tokens, and a few records."""
    out = result.run_dir
    colour = "green" if result.status == "complete" else "yellow"
    console.print(
        f"[{colour} bold]{result.status}[/] in {_duration(result.seconds)} → [bold]{out}[/]"
    )
    if result.message:
        console.print(f"[yellow]{result.message}[/]")

    files = Table.grid(padding=(0, 2))
    if result.status == "complete":
        files.add_row("dataset", str(result.dataset_path), f"{result.dataset_size} records")
        files.add_row("rejected", str(result.rejected_path), f"{result.rejected_size} records")
    files.add_row("manifest", str(out / "manifest.json"), "")
    console.print(files)

    steps = Table(title=None, show_edge=False, header_style="bold")
    for column in ("step", "in", "kept", "rejected (by reason)", "time"):
        steps.add_column(column, justify="left" if column.startswith(("step", "rej")) else "right")
    for summary in result.steps:
        reasons = ", ".join(f"{k} {v}" for k, v in summary.rejected.items()) or "0"
        resumed = f" ({summary.shards_resumed} shards resumed)" if summary.shards_resumed else ""
        steps.add_row(
            summary.name + resumed,
            str(summary.records_in),
            str(summary.records_out),
            reasons,
            _duration(summary.seconds),
        )
    console.print(steps)

    manifest = result.manifest
    engine = manifest.engine if manifest else None
    if engine:
        console.print(
            f"tokens spent {result.usage.total_tokens:,} (prompt {result.usage.prompt_tokens:,}"
            f" / completion {result.usage.completion_tokens:,})"
            f" · calls {engine.backend_calls} · from cache {engine.cache_hits}"
            f" · retries {engine.retries} · re-asks {engine.reasks}"
            f" · cost ${result.cost_usd:.4f}"
        )

    if result.status != "complete" or not result.dataset_path.exists():
        return
    records = _read_head(result.dataset_path, limit=100_000)
    label_field = _label_field(manifest)
    if label_field:
        counts = Counter(str(r["fields"].get(label_field)) for r in records)
        console.print(
            f"{label_field}: " + " · ".join(f"{k} {v}" for k, v in sorted(counts.items()))
        )
    _print_diversity(console, manifest.diversity if manifest else None)
    for record in records[:samples]:
        fields = record["fields"]
        label = f"[bold]{escape(str(fields.get(label_field)))}[/] " if label_field else ""
        body = escape(
            " | ".join(f"{k}: {str(v)[:140]}" for k, v in fields.items() if k != label_field)
        )
        console.print(f"  • {label}{body}", highlight=False, markup=True)


def _print_diversity(console: Console, summary: DiversitySummary | None) -> None:
    if summary is None or not summary.fields:
        return
    embedding = summary.embedding or ""
    for name, values in summary.fields.items():
        parts = [f"distinct-1 {values.distinct_1:.3f}", f"distinct-2 {values.distinct_2:.3f}"]
        if values.dispersion is not None:
            parts.append(f"dispersion {values.dispersion:.3f}")
        console.print(f"diversity of {name}: " + " · ".join(parts), highlight=False)
    if embedding.startswith("not computed"):
        console.print(f"[yellow]embedding dispersion {escape(embedding)}[/]")
    elif embedding:
        console.print(f"  (dispersion: mean pairwise distance of {embedding} embeddings)")


def _read_head(path: Any, limit: int) -> list[dict[str, Any]]:
    rows = []
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            rows.append(json.loads(line))
            if len(rows) >= limit:
                break
    return rows


def _label_field(manifest: Manifest | None) -> str | None:
    task = manifest.task if manifest else None
    for name, spec in (task.fields if task else {}).items():
        if spec.type == "label":
            return name
    return None
