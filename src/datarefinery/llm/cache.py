"""SQLite response cache: a rerun of the same requests costs nothing.

The key is a SHA-256 over the backend kind, the model identity and the request (messages, sampling
parameters, schema, seed). Only responses are stored; credentials are never part of a request, so
they cannot end up here.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any, Protocol

from datarefinery.llm.base import Request, Response

_SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY,
    response TEXT NOT NULL,
    created REAL NOT NULL
)
"""


def request_key(kind: str, identity: str, request: Request) -> str:
    material = {"kind": kind, "identity": identity, **request.key_material()}
    blob = json.dumps(material, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class ResponseStore(Protocol):
    """Where an engine looks answers up and stores them: a ``ResponseCache`` in this process, or
    a proxy to one hosted elsewhere (the Ray executor's coordinator).
    """

    async def lookup(self, key: str) -> Response | None: ...

    async def store(self, key: str, response: Response) -> None: ...

    def close(self) -> None: ...


class ResponseCache:
    """A persistent map from request key to response.

    Each write commits on its own, so a process killed mid-run keeps every answer it received.
    A cache pickles as its path: the copy opens the same file (SQLite serves several
    connections).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(self.path, check_same_thread=False, timeout=30.0)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute(_SCHEMA)
        self._conn.commit()

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.path,))

    async def lookup(self, key: str) -> Response | None:
        return self.get(key)

    async def store(self, key: str, response: Response) -> None:
        self.put(key, response)

    def get(self, key: str) -> Response | None:
        with self._lock:
            row = self._conn.execute(
                "SELECT response FROM responses WHERE key = ?", (key,)
            ).fetchone()
        if row is None:
            return None
        return Response.from_cache_dict(json.loads(row[0]))

    def put(self, key: str, response: Response) -> None:
        blob = json.dumps(response.to_cache_dict(), ensure_ascii=False)
        with self._lock:
            self._conn.execute(
                "INSERT OR REPLACE INTO responses (key, response, created) VALUES (?, ?, ?)",
                (key, blob, time.time()),
            )
            self._conn.commit()

    def __len__(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM responses").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._conn.close()
