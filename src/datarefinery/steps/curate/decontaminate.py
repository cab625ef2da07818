"""``decontaminate``: reject records that share a word n-gram with a benchmark.

The benchmark files (JSONL, CSV or Parquet) are indexed once, in ``setup``: each text of the
indexed fields is one item. A record is rejected (``contaminated``) when one of its checked fields
shares ``n`` consecutive words (default 13) with an item, or contains the whole word sequence of
an item shorter than ``n`` words; texts are compared as plain words (lower-case, punctuation
stripped, whitespace collapsed: ``ngrams.plain_words``). The detail names the benchmark file, the
benchmark record (its ``id``, else its line or row) and field, and the shared words.

Items under ``min_words`` words are not indexed: a one-word label or answer ("positive", "42")
would otherwise reject every record that uses the word.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, field_validator

from datarefinery.config import TaskSpec
from datarefinery.errors import ConfigError, InputFileError
from datarefinery.io.formats import Format
from datarefinery.io.read import detect_format, read_numbered
from datarefinery.records import Record, Rejected, stable_id
from datarefinery.steps.base import Output, RecordStep, StepConfig, StepContext
from datarefinery.steps.curate.ngrams import Match, NgramIndex, plain_words
from datarefinery.text import string_leaves

_DETAIL_WORDS = 30  # the shared words quoted in a rejection, at most


class DecontaminateConfig(StepConfig):
    benchmarks: list[str] = Field(
        min_length=1, description="benchmark files (.jsonl/.csv/.parquet), relative to the spec"
    )
    benchmark_format: Format = "auto"
    fields: list[str] | None = Field(
        default=None, min_length=1, description="benchmark fields to index; default: every text"
    )
    check_fields: list[str] | None = Field(
        default=None, min_length=1, description="fields checked; default: the task's text fields"
    )
    n: int = Field(default=13, ge=1, le=64, description="words shared that make a match")
    min_words: int = Field(
        default=3, ge=1, description="benchmark texts with fewer words are not indexed"
    )

    @field_validator("benchmarks", mode="before")
    @classmethod
    def _one_file(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value


class Decontaminate(RecordStep[DecontaminateConfig]):
    name = "decontaminate"
    cpu_bound = True
    Config = DecontaminateConfig

    def _checked(self, task: TaskSpec | None) -> list[str]:
        if self.config.check_fields is not None:
            return list(self.config.check_fields)
        text_fields = [n for n, spec in task.fields.items() if spec.type == "text"] if task else []
        return text_fields or ["text"]

    def reads(self, task: TaskSpec | None) -> set[str]:
        return set(self._checked(task))

    def setup(self, ctx: StepContext) -> None:
        super().setup(ctx)
        self.checked = self._checked(ctx.task)
        self.index = NgramIndex(self.config.n)
        # Per item: (benchmark file as the spec names it, which record, which field).
        self.sources: list[tuple[str, str, str]] = []
        for position, given in enumerate(self.config.benchmarks):
            self._index_file(position, given)
        self.index.freeze()

    def _index_file(self, position: int, given: str) -> None:
        path = Path(given)
        if not path.is_absolute():
            path = self.ctx.base_dir / path
        if not path.exists():
            raise ConfigError(
                f"benchmark file {given!r} not found (looked for {path}; a relative path is "
                "relative to the spec's folder)",
                where=f"step {self.ctx.name}, option benchmarks[{position}]",
            )
        fmt = self.config.benchmark_format
        fmt = detect_format(path) if fmt == "auto" else fmt
        row_word = "row" if fmt in ("parquet", "hf") else "line"
        before, too_short = len(self.index), 0
        for line, record in read_numbered(path, format=fmt):
            has_id = record.id != stable_id(path.name, line)
            which = f"record {record.id!r}" if has_id else f"{row_word} {line}"
            for field, text in self._benchmark_texts(record, path, line):
                words = plain_words(text)
                if len(words) < self.config.min_words:
                    too_short += bool(words)
                    continue
                self.index.add(words)
                self.sources.append((given, which, field))
        if len(self.index) == before:
            fields = self.config.fields or "its text fields"
            raise InputFileError(
                str(path),
                f"nothing to index: {fields} hold no text of {self.config.min_words} words or "
                f"more ({too_short} shorter texts); name the benchmark's text fields with "
                "'fields:' or lower 'min_words:'",
            )

    def _benchmark_texts(self, record: Record, path: Path, line: int) -> list[tuple[str, str]]:
        """(field, text) of each text to index in one benchmark record."""
        if self.config.fields is None:
            return [(k, v) for k, v in record.fields.items() if isinstance(v, str)]
        texts: list[tuple[str, str]] = []
        for field in self.config.fields:
            if field not in record.fields:
                present = ", ".join(sorted(record.fields)) or "none"
                raise InputFileError(
                    str(path),
                    f"missing (the row has: {present}); check 'fields:' of the decontaminate step",
                    line=line,
                    field=field,
                )
            value = record.fields[field]
            if value is None:
                continue
            leaves = string_leaves(value) if isinstance(value, str | list | dict) else [str(value)]
            texts.extend((field, text) for text in leaves)
        return texts

    def apply(self, record: Record) -> Output:
        for field in self.checked:
            if field not in record.fields:
                detail = f"no field {field!r} to check against the benchmarks"
                return Rejected(record, self.ctx.name, "missing_field", detail)
            for text in string_leaves(record.fields[field]):
                match = self.index.find(text)
                if match is not None:
                    return Rejected(record, self.ctx.name, "contaminated", self._why(match, field))
        return record

    def _why(self, match: Match, field: str) -> str:
        given, which, benchmark_field = self.sources[match.item]
        words = match.words.split()
        quoted = " ".join(words[:_DETAIL_WORDS]) + (" ..." if len(words) > _DETAIL_WORDS else "")
        shared = f"all {len(words)} words of" if match.whole_item else f"{len(words)} words with"
        return (
            f"field {field!r} shares {shared} benchmark {given} {which}, field "
            f"{benchmark_field!r}: {quoted!r}"
        )
