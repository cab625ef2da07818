from pathlib import Path

from datarefinery.llm.base import Message, Request, Response, SamplingParams, Usage
from datarefinery.llm.cache import ResponseCache, request_key


def request(**changes: object) -> Request:
    base: dict[str, object] = {
        "messages": (Message("user", "hi"),),
        "params": SamplingParams(temperature=0.5),
        "json_schema": {"type": "object"},
        "seed": 1,
    }
    base.update(changes)
    return Request(**base)  # type: ignore[arg-type]


def test_key_covers_every_part_of_the_request() -> None:
    key = request_key("llamacpp", "model-a", request())
    assert key == request_key("llamacpp", "model-a", request())
    variants = [
        request_key("openai", "model-a", request()),
        request_key("llamacpp", "model-b", request()),
        request_key("llamacpp", "model-a", request(messages=(Message("user", "ho"),))),
        request_key("llamacpp", "model-a", request(params=SamplingParams(temperature=0.6))),
        request_key("llamacpp", "model-a", request(json_schema=None)),
        request_key("llamacpp", "model-a", request(seed=2)),
    ]
    assert key not in variants
    assert len(set(variants)) == len(variants)


def test_cache_persists_across_connections(tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite"
    cache = ResponseCache(path)
    response = Response(text="hello", usage=Usage(3, 1), latency_s=0.2, model="m")
    cache.put("k", response)
    cache.close()
    again = ResponseCache(path)
    hit = again.get("k")
    assert hit is not None
    assert hit.text == "hello"
    assert hit.usage == Usage(3, 1)
    assert hit.cached is True
    assert again.get("missing") is None
    assert len(again) == 1
