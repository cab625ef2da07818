"""The batched decoder on the real default model."""

import json
import time
from concurrent.futures import CancelledError

import pytest

from datarefinery.llm.base import Message, Request, SamplingParams
from datarefinery.llm.llamacpp_decoder import BatchedDecoder
from datarefinery.llm.models import default_model_path

pytestmark = pytest.mark.slow

SCHEMA = {
    "type": "object",
    "properties": {"text": {"type": "string", "minLength": 10, "maxLength": 60}},
    "required": ["text"],
    "additionalProperties": False,
}


def review(i: int, schema: dict | None = SCHEMA, max_tokens: int = 40) -> Request:  # type: ignore[type-arg]
    label = ("positive", "negative")[i % 2]
    return Request(
        messages=(
            Message("system", "You answer with JSON only."),
            Message("user", f'Write a short {label} movie review as {{"text": ...}}.'),
        ),
        params=SamplingParams(temperature=0.9, max_tokens=max_tokens),
        json_schema=schema,
        seed=40 + i,
    )


def generate(parallel: int, requests: list[Request]) -> list[str]:
    decoder = BatchedDecoder(str(default_model_path()), n_ctx=512, parallel=parallel, n_threads=2)
    try:
        return [f.result(timeout=300).text for f in [decoder.submit(r) for r in requests]]
    finally:
        decoder.close()


def test_batched_answers_equal_one_at_a_time_answers() -> None:
    # Each sequence has its own KV cells and sampler; batching must not change what it says.
    requests = [review(i) for i in range(4)]
    solo = generate(1, requests)
    batched = generate(4, requests)
    assert batched == solo
    for text in batched:
        value = json.loads(text)
        assert set(value) == {"text"} and 10 <= len(value["text"]) <= 60


def test_stop_strings_and_length_limit() -> None:
    decoder = BatchedDecoder(str(default_model_path()), n_ctx=512, parallel=2, n_threads=2)
    try:
        request = Request(
            messages=(Message("user", "Count from 1 to 20, separated by commas."),),
            params=SamplingParams(temperature=0.0, max_tokens=40, stop=("7",)),
            seed=1,
        )
        stopped = decoder.submit(request).result(timeout=300)
        assert stopped.finish_reason == "stop" and "7" not in stopped.text
        capped = decoder.submit(review(0, schema=None, max_tokens=5)).result(timeout=300)
        assert capped.finish_reason == "length" and capped.usage.completion_tokens == 5
    finally:
        decoder.close()


def test_a_cancelled_request_frees_its_slot() -> None:
    decoder = BatchedDecoder(str(default_model_path()), n_ctx=512, parallel=1, n_threads=2)
    try:
        first = decoder.submit(review(0, schema=None, max_tokens=400))
        time.sleep(0.5)
        first.cancel()
        with pytest.raises(CancelledError):
            first.result()
        second = decoder.submit(review(1, max_tokens=40)).result(timeout=300)
        assert json.loads(second.text)["text"]
    finally:
        decoder.close()
