"""A scripted model that answers any request with JSON fitting the request's schema, so tests of
step logic can say only what matters to them (``text=``) and get valid replies for the rest."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from datarefinery.llm.base import Request

TextFn = Callable[[str, Request, int], str]


def default_text(name: str, request: Request, index: int) -> str:
    return f"{name} number {index} for call {request.seed}"


def prompt_of(request: Request) -> str:
    return request.messages[-1].content


def schema_reply(text: TextFn = default_text) -> Callable[[Request], str]:
    """A ``ScriptedBackend`` script: fills every string with ``text(field, request, index)``,
    every enum with its first value, every list with its ``minItems`` items."""

    def reply(request: Request) -> str:
        schema = request.json_schema or {}
        return json.dumps(_fill(schema, schema, request, "value", 0))

    def _fill(
        node: dict[str, Any], root: dict[str, Any], request: Request, name: str, i: int
    ) -> Any:
        if "$ref" in node:
            node = root["$defs"][node["$ref"].split("/")[-1]]
        if "enum" in node:
            return node["enum"][0]
        kind = node.get("type")
        if kind == "object":
            return {
                key: _fill(child, root, request, key, i)
                for key, child in node.get("properties", {}).items()
            }
        if kind == "array":
            return [
                _fill(node["items"], root, request, name, j) for j in range(node.get("minItems", 1))
            ]
        if kind == "integer":
            return i
        if kind == "boolean":
            return True
        return text(name, request, i)

    return reply


def read_jsonl(path: Any) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]
