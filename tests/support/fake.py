"""Small helpers for tests of scripted runs (the schema-filling script itself is public:
``datarefinery.llm.schema_reply``)."""

from __future__ import annotations

import json
from typing import Any

from datarefinery.llm.base import Request


def prompt_of(request: Request) -> str:
    return request.messages[-1].content


def read_jsonl(path: Any) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]
