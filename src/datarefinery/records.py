"""The one record type that flows through every step, and the rejection that travels beside it."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class Provenance:
    """How a record came to be.

    ``conditioning`` holds what the generator was given (label, attributes, rationale, seed ids,
    context id...), so a record can always be traced back to the prompt that made it.
    """

    step: str = ""
    technique: str = ""
    model: str | None = None
    template_hash: str | None = None
    parent_ids: list[str] = field(default_factory=list)
    conditioning: dict[str, Any] = field(default_factory=dict)
    source: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "technique": self.technique,
            "model": self.model,
            "template_hash": self.template_hash,
            "parent_ids": list(self.parent_ids),
            "conditioning": dict(self.conditioning),
            "source": self.source,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Provenance:
        return cls(
            step=str(data.get("step", "")),
            technique=str(data.get("technique", "")),
            model=data.get("model"),
            template_hash=data.get("template_hash"),
            parent_ids=[str(p) for p in data.get("parent_ids", [])],
            conditioning=dict(data.get("conditioning", {})),
            source=data.get("source"),
        )


@dataclass(slots=True)
class Record:
    """A training example: task columns in ``fields``, lineage in ``provenance``, step scores in
    ``scores`` (numbers, or short strings such as a judge's reason).
    """

    id: str
    fields: dict[str, Any]
    provenance: Provenance = field(default_factory=Provenance)
    scores: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "fields": self.fields,
            "provenance": self.provenance.to_dict(),
            "scores": self.scores,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Record:
        return cls(
            id=str(data["id"]),
            fields=dict(data["fields"]),
            provenance=Provenance.from_dict(data.get("provenance") or {}),
            scores=dict(data.get("scores") or {}),
        )

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, sort_keys=False)


@dataclass(slots=True)
class Rejected:
    """A record a step dropped. ``reason`` is a short code that reports group by
    (``invalid_json``, ``duplicate``...); ``detail`` is the human explanation, e.g. the validation
    error or the raw reply.
    """

    record: Record
    step: str
    reason: str
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "reason": self.reason,
            "detail": self.detail,
            "record": self.record.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Rejected:
        return cls(
            record=Record.from_dict(data["record"]),
            step=str(data["step"]),
            reason=str(data["reason"]),
            detail=str(data.get("detail", "")),
        )


def stable_id(*parts: object) -> str:
    """A short deterministic id from the given parts, so a rerun names every record the same way."""
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode("utf-8")).hexdigest()
    return digest[:16]
