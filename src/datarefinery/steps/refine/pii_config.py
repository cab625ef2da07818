"""``pii_rewrite``'s options, and its preservation gate (``max_edits``)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from datarefinery.detect.factory import DetectorConfig
from datarefinery.steps.refine.surrogates import Consistency
from datarefinery.steps.refine.text_field import TextStepConfig

# Chosen on the presidio_pii validation split and long texts made from it (bench/pii_gate): one
# edit (a/an, a pronoun after a new name) gave the best F1 with SmolLM2 and within 0.003 of zero
# edits with Qwen2.5-Coder-1.5B; a share of 0.02 changed no decision there and lets a long text
# make an agreement edit per 50 words, while 0.05-0.1 let short Qwen rewrites through that cost
# precision. Neither model's long rewrites passed anything but a gate ten times looser.
CHANGE_TOKENS = 1
CHANGE_SHARE = 0.02


class EditLimit(BaseModel):
    """The preservation gate (issue 12: derived on the presidio_pii validation split and long
    texts made from it, ``bench/pii_gate/derive.py``; figures in ``bench/README.md``).
    """

    model_config = ConfigDict(extra="forbid")

    tokens: int = Field(
        default=CHANGE_TOKENS,
        ge=0,
        description="edits any rewrite may make outside the PII (a/an, a pronoun)",
    )
    share: float = Field(
        default=CHANGE_SHARE,
        ge=0,
        le=1,
        description="and this share of the words and marks outside the PII, for long texts",
    )

    def allows(self, changed: int, outside: int) -> bool:
        return changed <= self.tokens + self.share * outside


class PIIRewriteConfig(TextStepConfig):
    detection: Literal["model+detectors", "detectors"] = Field(
        default="model+detectors",
        description="model+detectors: the model also lists the personal values of every record "
        "(hints, checked against the text); detectors: only records with a detected span reach "
        "the model (faster, recall bounded by the detectors)",
    )
    detector: DetectorConfig = Field(default_factory=DetectorConfig)
    consistency: Consistency = Field(
        default="record", description="same fake for the same value within a record or dataset"
    )
    max_reasks: int = Field(default=1, ge=0, le=5, description="re-asks after a failed check")
    max_edits: EditLimit = Field(
        default_factory=lambda: EditLimit(),
        description="edits outside the PII a rewrite may make: tokens + share x the tokens there",
    )
    chunk_chars: int = Field(
        default=1000,
        ge=100,
        description="longer texts are rewritten in chunks of about this size (paragraphs, then "
        "sentences), each its own model call; smaller where the model's context holds less",
    )
    template: str = "pii_rewrite"
    detect_template: str = "pii_detect"
    temperature: float | None = Field(default=0.2, ge=0, le=2)

    @model_validator(mode="before")
    @classmethod
    def _removed_options(cls, data: Any) -> Any:
        if isinstance(data, dict) and "min_preservation" in data:
            raise ValueError(
                "min_preservation was replaced by max_edits: {tokens: N, share: S}, the edits "
                "outside the PII a rewrite may make (N + S x the tokens there); a bag-of-words "
                "F1 let long rewrites drop whole phrases"
            )
        if isinstance(data, dict) and "rewrite_clean" in data:
            raise ValueError(
                "rewrite_clean was removed: every record now reaches the model by default "
                "(detection: model+detectors); for the old default, where only records with a "
                "detected span reach the model, write detection: detectors"
            )
        return data
