"""People's review decisions on a run's records, stored in ``OUT/review/decisions.sqlite``.

Every decision is one row, written in its own transaction the moment it is made, so a crash or a
restart of the review page loses nothing and a second reviewer later sees the first one's work.
Rows are never updated: a changed mind is a new row, and the newest row per record is the one that
counts (``latest``), while ``history`` keeps who decided what and when.

``digest`` hashes the decisions in force. The ``review`` step puts it into its identity, so a
decision made or changed after the step committed makes a rerun redo the step instead of skipping
it.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from datarefinery.errors import ConfigError

Action = Literal["accept", "correct", "edit", "reject"]
ACTIONS: tuple[Action, ...] = ("accept", "correct", "edit", "reject")
DECISIONS_FILE = Path("review") / "decisions.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS decisions (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    record_id TEXT NOT NULL,
    action TEXT NOT NULL,
    label TEXT,
    fields TEXT,
    reason TEXT,
    by TEXT NOT NULL,
    at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS decisions_by_record ON decisions (record_id, seq);
"""


def now_utc() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass(frozen=True, slots=True)
class Decision:
    """One person's decision on one record.

    ``correct`` sets ``label``; ``edit`` replaces the fields named in ``fields`` (and may set
    ``label`` too); ``reject`` should say why in ``reason``; ``accept`` keeps the record as it is.
    """

    record_id: str
    action: Action
    by: str
    label: str | None = None
    fields: dict[str, Any] = field(default_factory=dict)
    reason: str | None = None
    at: str = field(default_factory=now_utc)

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise ConfigError(f"unknown review action {self.action!r}; use one of {ACTIONS}")
        if not self.by.strip():
            raise ConfigError("a review decision needs the reviewer's name (--reviewer NAME)")
        if self.action == "correct" and self.label is None:
            raise ConfigError(f"record {self.record_id}: 'correct' needs the corrected label")
        if self.action == "edit" and not self.fields and self.label is None:
            raise ConfigError(f"record {self.record_id}: 'edit' needs the fields it changes")

    def to_dict(self) -> dict[str, Any]:
        return {
            "record_id": self.record_id,
            "action": self.action,
            "label": self.label,
            "fields": dict(self.fields),
            "reason": self.reason,
            "by": self.by,
            "at": self.at,
        }

    def provenance(self) -> dict[str, Any]:
        """What a reviewed record's provenance says: ``reviewed: {by, decision, at}`` (+ reason)."""
        entry: dict[str, Any] = {"by": self.by, "decision": self.action, "at": self.at}
        if self.reason:
            entry["reason"] = self.reason
        return entry


class DecisionStore:
    """The decisions of one run directory. Safe to open from several processes at once (SQLite in
    WAL mode): the review page writes while a ``refinery run`` reads.
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def of_run(cls, out: Path) -> DecisionStore:
        return cls(Path(out) / DECISIONS_FILE)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=30)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(_SCHEMA)
            yield conn
        finally:
            conn.close()

    def record(self, decision: Decision) -> None:
        self.record_many([decision])

    def record_many(self, decisions: Iterable[Decision]) -> int:
        """Store decisions in one transaction: a bulk action is all or nothing."""
        rows = [
            (
                d.record_id,
                d.action,
                d.label,
                json.dumps(d.fields, ensure_ascii=False, sort_keys=True) if d.fields else None,
                d.reason,
                d.by,
                d.at,
            )
            for d in decisions
        ]
        with self._connect() as conn, conn:
            conn.executemany(
                "INSERT INTO decisions (record_id, action, label, fields, reason, by, at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
        return len(rows)

    def _rows(self, where: str = "", args: tuple[Any, ...] = ()) -> list[Decision]:
        if not self.path.exists():
            return []
        with self._connect() as conn:
            cursor = conn.execute(
                "SELECT record_id, action, label, fields, reason, by, at FROM decisions "
                f"{where} ORDER BY seq",
                args,
            )
            return [
                Decision(
                    record_id=row[0],
                    action=row[1],
                    label=row[2],
                    fields=json.loads(row[3]) if row[3] else {},
                    reason=row[4],
                    by=row[5],
                    at=row[6],
                )
                for row in cursor.fetchall()
            ]

    def latest(self) -> dict[str, Decision]:
        """The decision in force for each decided record (the newest one)."""
        return {d.record_id: d for d in self._rows()}

    def history(self, record_id: str) -> list[Decision]:
        return self._rows("WHERE record_id = ?", (record_id,))

    def digest(self, record_ids: Iterable[str] | None = None) -> str:
        """A hash of the decisions in force (of ``record_ids`` only, when given)."""
        latest = self.latest()
        wanted = sorted(latest if record_ids is None else set(record_ids) & set(latest))
        blob = json.dumps([latest[i].to_dict() for i in wanted], sort_keys=True)
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]
