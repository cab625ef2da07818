"""``filter``: declarative heuristics, each rejection naming the rule that failed.

Rules run in a fixed order (required fields, allowed labels, length, regex, repetition, language)
and the first failure rejects the record with the rule as the reason code (``too_short``,
``label_not_allowed``, ``language``...) and the values in the detail. Text rules apply to each of
``fields`` (default: the task's text fields, else ``text``).
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from pydantic import Field, field_validator

from datarefinery.config import TaskSpec
from datarefinery.errors import ConfigError, MissingDependencyError
from datarefinery.records import Record, Rejected
from datarefinery.steps.base import Output, RecordStep, StepConfig, StepContext
from datarefinery.text import lower_words_and_marks


class FilterConfig(StepConfig):
    fields: list[str] | None = Field(
        default=None, description="text fields the text rules check; default: the task's"
    )
    required: list[str] = Field(default_factory=list, description="fields that must be non-empty")
    labels: list[str] | None = Field(
        default=None, description="allowed labels (of the task's label field, else 'label')"
    )
    min_chars: int | None = Field(default=None, ge=0)
    max_chars: int | None = Field(default=None, ge=1)
    min_words: int | None = Field(default=None, ge=0)
    max_words: int | None = Field(default=None, ge=1)
    must_match: list[str] = Field(default_factory=list, description="regexes that must match")
    must_not_match: list[str] = Field(
        default_factory=list, description="regexes that must not match"
    )
    language: list[str] | None = Field(
        default=None, description="ISO 639-1 codes a text may be in (py3langid, offline)"
    )
    min_language_confidence: float = Field(default=0.5, ge=0, le=1)
    max_repetition: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="largest share of a text's word 3-grams that may be repeats",
    )

    @field_validator("must_match", "must_not_match")
    @classmethod
    def _compiles(cls, patterns: list[str]) -> list[str]:
        for pattern in patterns:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"{pattern!r} is not a valid regex: {exc}") from None
        return patterns


def repetition_ratio(text: str, n: int = 3) -> float:
    """Share of the word n-grams of ``text`` that repeat an earlier n-gram of the same text
    (0 for no repetition; "a b c a b c" has 4 trigrams of which 1 is a repeat).
    """
    tokens = lower_words_and_marks(text)
    grams = [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]
    if not grams:
        return 0.0
    return 1 - len(set(grams)) / len(grams)


@lru_cache(maxsize=1)
def _language_identifier() -> Any:
    try:
        from py3langid.langid import MODEL_DIR, MODEL_FILE, LanguageIdentifier
    except ImportError as exc:
        raise MissingDependencyError("the filter step's language rule", "curate") from exc
    return LanguageIdentifier.from_modelpath(MODEL_DIR / MODEL_FILE, norm_probs=True)


def detect_language(text: str) -> tuple[str, float]:
    """(ISO 639-1 code, probability) from py3langid's bundled model; no download."""
    language, probability = _language_identifier().classify(text)
    return str(language), float(probability)


class Filter(RecordStep[FilterConfig]):
    name = "filter"
    # Not cpu_bound: its rules take 26-54 us a record, less than sending the record to a worker
    # process and back (pickling alone: 52-77 us, measured 2026-12-02).
    Config = FilterConfig

    def _text_fields(self, task: TaskSpec | None) -> list[str]:
        if self.config.fields is not None:
            return list(self.config.fields)
        if task is not None:
            return [n for n, f in task.fields.items() if f.type == "text"]
        return ["text"]

    def _label_field(self, task: TaskSpec | None) -> str:
        return (task.label_field if task else None) or "label"

    def reads(self, task: TaskSpec | None) -> set[str]:
        fields = set(self._text_fields(task)) | set(self.config.required)
        if self.config.labels is not None:
            fields.add(self._label_field(task))
        return fields

    def setup(self, ctx: StepContext) -> None:
        super().setup(ctx)
        cfg = self.config
        self.text_fields = self._text_fields(ctx.task)
        self.label_field = self._label_field(ctx.task)
        if ctx.task is not None and cfg.labels is not None:
            unknown = set(cfg.labels) - set(ctx.task.labels)
            if unknown:
                raise ConfigError(
                    f"step {ctx.name}: labels {sorted(unknown)} are not among the task's labels"
                )
        self.must = [re.compile(p) for p in cfg.must_match]
        self.must_not = [re.compile(p) for p in cfg.must_not_match]
        if cfg.language is not None:
            _language_identifier()  # fail at set-up, not on the first record, when missing

    def apply(self, record: Record) -> Output:
        problem = self._first_problem(record)
        if problem is None:
            return record
        rule, detail = problem
        return Rejected(record, self.ctx.name, rule, detail)

    def _first_problem(self, record: Record) -> tuple[str, str] | None:
        cfg = self.config
        for name in cfg.required:
            value = record.fields.get(name)
            if value is None or (isinstance(value, str) and not value.strip()):
                return "missing_field", f"required field {name!r} is missing or empty"
        if cfg.labels is not None:
            label = record.fields.get(self.label_field)
            if str(label) not in cfg.labels:
                return "label_not_allowed", f"label {label!r} is not one of {cfg.labels}"
        for name in self.text_fields:
            text = str(record.fields.get(name, ""))
            problem = self._text_problem(name, text)
            if problem is not None:
                return problem
        return None

    def _text_problem(self, name: str, text: str) -> tuple[str, str] | None:
        cfg = self.config
        chars, words = len(text), len(text.split())
        if cfg.min_chars is not None and chars < cfg.min_chars:
            return "too_short", f"{name}: {chars} characters < min_chars {cfg.min_chars}"
        if cfg.max_chars is not None and chars > cfg.max_chars:
            return "too_long", f"{name}: {chars} characters > max_chars {cfg.max_chars}"
        if cfg.min_words is not None and words < cfg.min_words:
            return "too_short", f"{name}: {words} words < min_words {cfg.min_words}"
        if cfg.max_words is not None and words > cfg.max_words:
            return "too_long", f"{name}: {words} words > max_words {cfg.max_words}"
        for pattern in self.must:
            if not pattern.search(text):
                return "regex_must_match", f"{name}: no match for {pattern.pattern!r}"
        for pattern in self.must_not:
            match = pattern.search(text)
            if match:
                return (
                    "regex_must_not_match",
                    f"{name}: {pattern.pattern!r} matched {match.group(0)[:80]!r}",
                )
        if cfg.max_repetition is not None:
            ratio = repetition_ratio(text)
            if ratio > cfg.max_repetition:
                return (
                    "repetition",
                    f"{name}: {ratio:.2f} of word 3-grams repeat (> {cfg.max_repetition})",
                )
        if cfg.language is not None:
            language, probability = detect_language(text)
            if language not in cfg.language or probability < cfg.min_language_confidence:
                return (
                    "language",
                    f"{name}: detected {language!r} (p={probability:.2f}), allowed {cfg.language}"
                    f" at p >= {cfg.min_language_confidence}",
                )
        return None
