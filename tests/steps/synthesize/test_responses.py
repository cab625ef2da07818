import asyncio
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

import datarefinery
from datarefinery.config import LlamaCppConfig, LLMConfig, TaskSpec
from datarefinery.errors import ConfigError
from datarefinery.llm.base import Backend, Request, Response
from datarefinery.llm.engine import Engine
from datarefinery.llm.limits import Budget, Limits
from datarefinery.llm.pool import EnginePool
from datarefinery.llm.scripted import ScriptedBackend
from datarefinery.pipeline import Pipeline
from datarefinery.records import Record, Rejected
from datarefinery.steps.base import Output, StepContext
from datarefinery.steps.synthesize.responses import Responses, ResponsesConfig
from tests.support.fake import prompt_of, read_jsonl

PROMPTS = [
    Record("p1", {"prompt": "Why is the sky blue?"}),
    Record("p2", {"prompt": "Name a prime number."}),
]


def answer(request: Request) -> str:
    return f"answer to {prompt_of(request)} at t={request.params.temperature} seed={request.seed}"


def respond(
    options: dict[str, Any],
    batch: list[Record],
    *,
    backend: Backend | None = None,
    pool: EnginePool | None = None,
    task: TaskSpec | None = None,
) -> list[Output]:
    step = Responses(ResponsesConfig.model_validate(options))
    engine = Engine(backend or ScriptedBackend(answer))
    step.setup(
        StepContext(
            name="responses",
            index=0,
            seed=7,
            task=task,
            llm=LlamaCppConfig(temperature=0.5, max_tokens=64),
            engine=engine,
            engines=pool,
        )
    )
    return asyncio.run(step.process(batch))


def test_n_samples_at_cycled_temperatures_share_the_prompt_and_name_their_sampling() -> None:
    outputs = respond({"n": 3, "temperatures": [0.2, 1.0]}, PROMPTS)
    assert all(isinstance(o, Record) for o in outputs) and len(outputs) == 6
    first = [o for o in outputs if isinstance(o, Record) and o.provenance.parent_ids == ["p1"]]
    assert [r.provenance.conditioning["temperature"] for r in first] == [0.2, 1.0, 0.2]
    assert len({r.provenance.conditioning["seed"] for r in first}) == 3
    assert {r.provenance.conditioning["group"] for r in first} == {"p1"}
    assert len({r.id for r in first}) == 3
    for record in first:
        assert record.fields["prompt"] == "Why is the sky blue?"
        assert record.fields["response"].startswith("answer to Why is the sky blue?")
        assert record.provenance.model == "scripted:scripted"
        assert record.provenance.technique == "responses"


def test_default_two_candidates_at_the_run_temperature_and_a_system_message() -> None:
    backend = ScriptedBackend(answer)
    outputs = respond({"system": "Be brief."}, PROMPTS[:1], backend=backend)
    assert len(outputs) == 2
    assert [r.params.temperature for r in backend.requests] == [0.5, 0.5]
    assert [m.role for m in backend.requests[0].messages] == ["system", "user"]
    assert backend.requests[0].json_schema is None  # free text, not JSON


def test_temperature_range_spreads_the_candidates() -> None:
    config = ResponsesConfig.model_validate({"n": 3, "temperature_range": [0.2, 1.0]})
    assert [config.temperature(i) for i in range(3)] == [0.2, 0.6, 1.0]
    one = ResponsesConfig.model_validate({"n": 1, "temperature_range": [0.3, 0.9]})
    assert one.temperature(0) == 0.3


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"temperatures": [0.2], "temperature_range": [0.1, 0.5]}, "not both"),
        ({"temperature_range": [1.0, 0.5]}, "low <= high"),
        ({"temperatures": [3.0]}, "between 0 and 2"),
        ({"models": [{"backend": "openai", "model": "m"}]}, "base_url"),
    ],
)
def test_bad_options_say_what_to_write(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        ResponsesConfig.model_validate(options)


def test_empty_truncated_and_missing_prompts_are_rejected_with_which_candidate() -> None:
    def reply(request: Request) -> str | Response:
        if "prime" in prompt_of(request):
            return Response(text="2, 3, 5, 7, 11, 13, 17", finish_reason="length")
        return "   "

    outputs = respond(
        {"n": 1}, [*PROMPTS, Record("p3", {"prompt": ""})], backend=ScriptedBackend(reply)
    )
    reasons = {o.record.id: o.reason for o in outputs if isinstance(o, Rejected)}
    assert reasons == {"p1": "empty_response", "p2": "truncated", "p3": "missing_prompt"}
    kept = respond({"n": 1, "reject_truncated": False}, PROMPTS[1:], backend=ScriptedBackend(reply))
    assert isinstance(kept[0], Record) and kept[0].fields["response"].startswith("2, 3")


def test_instruction_is_the_prompt_field_of_an_instruction_task() -> None:
    task = TaskSpec.model_validate(
        {"description": "d", "fields": {"instruction": {}, "output": {}}}
    )
    step = Responses(ResponsesConfig())
    assert step.reads(task) == {"instruction"} and step.reads(None) == {"prompt"}
    outputs = respond({"n": 1}, [Record("i1", {"instruction": "Say hi."})], task=task)
    assert isinstance(outputs[0], Record) and "Say hi." in outputs[0].fields["response"]


def blocks() -> list[LLMConfig]:
    config = ResponsesConfig.model_validate(
        {
            "models": [
                {"backend": "llamacpp", "model": "small.gguf", "temperature": 0.3},
                {"backend": "openai", "base_url": "http://x/v1", "model": "big", "max_tokens": 9},
            ]
        }
    )
    assert config.models is not None
    return config.models


def scripted_models(config: LLMConfig) -> Backend:
    return ScriptedBackend(lambda r: f"{config.model} says hi", name=config.model)


def test_several_models_one_candidate_each_with_their_own_sampling() -> None:
    limits = Limits(Budget())
    pool = EnginePool(None, limits, scripted_models)
    outputs = respond({"models": [b.model_dump() for b in blocks()]}, PROMPTS, pool=pool)
    records = [o for o in outputs if isinstance(o, Record)]
    assert len(records) == 4
    by_model = {r.provenance.model: r for r in records if r.provenance.parent_ids == ["p1"]}
    assert set(by_model) == {"scripted:small.gguf", "scripted:big"}
    assert by_model["scripted:big"].fields["response"] == "big says hi"
    assert by_model["scripted:small.gguf"].provenance.conditioning["temperature"] == 0.3
    assert by_model["scripted:big"].provenance.conditioning["model_block"] == 1
    assert pool.stats().requests == 4
    engines = {id(pool.engine_for(b)) for b in blocks()}
    assert len(engines) == 2  # one engine per block, reused
    big = pool.engine_for(blocks()[1]).backend
    assert isinstance(big, ScriptedBackend) and big.requests[0].params.max_tokens == 9
    assert all(pool.engine_for(b).admission is limits for b in blocks())


def test_a_run_with_models_shares_the_runs_cache_and_counts_their_calls(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("datarefinery.llm.pool.make_backend", scripted_models)
    (tmp_path / "in.jsonl").write_text(
        "".join(json.dumps({"id": r.id, **r.fields}) + "\n" for r in PROMPTS)
    )
    spec = {
        "name": "models",
        "seed": 1,
        "input": str(tmp_path / "in.jsonl"),
        "steps": [{"responses": {"models": [b.model_dump() for b in blocks()], "n": 2}}],
    }
    main = ScriptedBackend(answer)
    first = datarefinery.run(spec, tmp_path / "run", backend=main, diversity=False)
    assert first.status == "complete" and first.dataset_size == 8
    assert first.manifest["engine"]["backend_calls"] == 8
    models = {r["provenance"]["model"] for r in read_jsonl(first.dataset_path)}
    assert models == {"scripted:small.gguf", "scripted:big"}
    assert main.requests == []  # the run's own model was never asked
    shutil.rmtree(tmp_path / "run" / "steps")  # redo the step: its calls come from the cache
    again = datarefinery.run(spec, tmp_path / "run", backend=main, diversity=False)
    assert again.dataset_path.read_text() == first.dataset_path.read_text()
    assert again.manifest["engine"]["cache_hits"] == 8


def test_a_bad_model_block_names_file_line_and_field(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "name: x\n"
        "input: in.jsonl\n"
        "steps:\n"
        "  - responses:\n"
        "      models:\n"
        "        - {backend: llamacpp, model: default}\n"
        "        - {backend: openai, model: big, n_ctx: 512}\n"
    )
    with pytest.raises(ConfigError) as caught:
        Pipeline.from_spec(datarefinery.load_spec(spec))
    message = str(caught.value)
    assert "line 7, field steps[0].responses.models[1].base_url: backend 'openai' needs" in message
    assert "models[1].n_ctx: an option of backend llamacpp" in message
