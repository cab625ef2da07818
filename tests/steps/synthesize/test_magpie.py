from pathlib import Path
from typing import Any

import httpx
import pytest

import datarefinery
from datarefinery.errors import ConfigError
from datarefinery.llm.base import Request, Response
from datarefinery.llm.scripted import ScriptedBackend
from tests.conftest import SERVER_KEY_ENV as KEY_ENV
from tests.conftest import Server
from tests.llm.test_chat_template import SMOLLM2
from tests.support.examples import run_example
from tests.support.fake import read_jsonl

SYSTEM = "Users ask about cooking."

# What the scripted model writes after the pre-query, by pair index (in the order the calls come).
INSTRUCTIONS = [
    "How long should I boil an egg?",
    "",  # ends the turn at once
    "<|im_start|>assistant\nSure!",  # leaks the template
    "user\nWhat is salt?",  # a role name on the first line
    "How long should I boil an egg? ",  # a repeat (spacing aside)
    "Hi?",  # too short
    Response("Tell me everything about", finish_reason="length"),
    "What makes bread rise?",
]


def spec(**options: Any) -> dict[str, Any]:
    step = {"count": len(INSTRUCTIONS), "system_prompt": SYSTEM}
    return {
        "seed": 3,
        "shard_size": 100,
        "llm": {"concurrency": 1},
        "steps": [{"magpie": step | options}],
    }


class Recording(ScriptedBackend):
    """Replies in call order: each instruction call takes the next entry of INSTRUCTIONS."""

    def __init__(self, **kwargs: Any) -> None:
        self.made = 0
        super().__init__(self.reply, **kwargs)

    def reply(self, request: Request) -> Any:
        if request.prompt is not None:
            self.made += 1
            return INSTRUCTIONS[self.made - 1]
        return f"Answer to: {request.messages[-1].content}"


def test_pairs_and_every_rejection_reason(tmp_path: Path) -> None:
    backend = Recording()
    result = datarefinery.run(spec(), tmp_path, backend=backend)
    assert result.status == "complete", result.message
    # Calls run concurrently, so which job got which instruction is not fixed: compare as sets.
    kept = sorted((r["fields"] for r in read_jsonl(result.dataset_path)), key=str)
    assert kept == [
        {
            "instruction": "How long should I boil an egg?",
            "response": "Answer to: How long should I boil an egg?",
        },
        {"instruction": "What makes bread rise?", "response": "Answer to: What makes bread rise?"},
    ]
    reasons = [r["reason"] for r in read_jsonl(result.rejected_path)]
    assert sorted(reasons) == sorted(
        [
            "empty_instruction",
            "template_leak",
            "template_leak",
            "duplicate",
            "too_short",
            "truncated_instruction",
        ]
    )
    raw = [r for r in backend.requests if r.prompt is not None]
    assert len(raw) == len(INSTRUCTIONS)
    assert raw[0].prompt == f"<|im_start|>system\n{SYSTEM}<|im_end|>\n<|im_start|>user\n"
    assert raw[0].params.stop == ("<|im_end|>",) and raw[0].params.max_tokens == 128
    assert len({r.seed for r in raw}) == len(raw)  # every call samples differently
    chats = [r for r in backend.requests if r.prompt is None]
    assert [m.role for m in chats[0].messages] == ["system", "user"]
    assert chats[0].messages[0].content == SYSTEM
    record = read_jsonl(result.dataset_path)[0]
    assert record["provenance"]["technique"] == "magpie"
    assert record["provenance"]["model"] == "scripted:scripted"


def test_field_names_and_truncated_responses(tmp_path: Path) -> None:
    def cut(request: Request) -> Any:
        if request.prompt is not None:
            return f"Question {request.seed}?"
        return Response("An answer that goes on and", finish_reason="length")

    options = {"count": 2, "instruction_field": "prompt", "response_field": "completion"}
    result = datarefinery.run(spec(**options), tmp_path / "a", backend=ScriptedBackend(cut))
    rejected = read_jsonl(result.rejected_path)
    assert [r["reason"] for r in rejected] == ["truncated_response"] * 2
    assert set(rejected[0]["record"]["fields"]) == {"prompt", "completion"}
    options["keep_truncated"] = True
    result = datarefinery.run(spec(**options), tmp_path / "b", backend=ScriptedBackend(cut))
    assert len(read_jsonl(result.dataset_path)) == 2


def test_the_spec_template_wins_and_a_backend_without_one_is_a_config_error(
    tmp_path: Path,
) -> None:
    backend = Recording(chat_template=None)
    with pytest.raises(ConfigError, match="chat_template"):
        datarefinery.run(spec(), tmp_path / "a", backend=backend)
    template = "{% for m in messages %}### {{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
    result = datarefinery.run(
        spec(chat_template=template), tmp_path / "b", backend=Recording(chat_template=None)
    )
    assert result.status == "complete"
    with pytest.raises(ConfigError, match="different names"):
        datarefinery.run(spec(response_field="instruction"), tmp_path / "c", backend=Recording())


@pytest.mark.slow
def test_example_on_the_embedded_model(tmp_path: Path) -> None:
    result = run_example(
        "magpie",
        tmp_path,
        {
            "count": 2,
            "instruction_max_tokens": 32,
            "response_max_tokens": 32,
            "keep_truncated": True,
        },
        n_threads=1,
        parallel=1,
    )
    assert result.status == "complete", result.message
    kept, rejected = read_jsonl(result.dataset_path), read_jsonl(result.rejected_path)
    assert len(kept) + len(rejected) == 2
    for record in kept:
        assert record["fields"]["instruction"] and record["fields"]["response"]
        assert "<|im_" not in record["fields"]["instruction"]
    assert {r["reason"] for r in rejected} <= {
        "empty_instruction",
        "template_leak",
        "truncated_instruction",
        "too_short",
        "duplicate",
        "empty_response",
    }


@pytest.mark.slow
def test_through_the_openai_compatible_server(
    llama_server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_ENV, llama_server.api_key)
    llm = {
        "backend": "openai",
        "base_url": llama_server.base_url,
        "model": llama_server.model,
        "api_key_env": KEY_ENV,
        "max_tokens": 32,
        "temperature": 1.0,
    }
    props = httpx.get(
        llama_server.base_url.removesuffix("/v1") + "/props",
        headers={"Authorization": f"Bearer {llama_server.api_key}"},
    )
    # llama-cpp-python's server has no /props (llama.cpp's own server has): the template is given.
    assert props.status_code == 404
    step = {"count": 2, "instruction_max_tokens": 32, "keep_truncated": True}
    spec = {"seed": 5, "llm": llm, "steps": [{"magpie": step}]}
    with pytest.raises(ConfigError, match="chat_template"):
        datarefinery.run(spec, tmp_path / "a")
    spec["steps"] = [{"magpie": step | {"chat_template": SMOLLM2}}]
    result = datarefinery.run(spec, tmp_path / "b")
    assert result.status == "complete", result.message
    kept, rejected = read_jsonl(result.dataset_path), read_jsonl(result.rejected_path)
    assert len(kept) + len(rejected) == 2
    for record in kept:
        assert record["fields"]["instruction"] and "<|im_" not in record["fields"]["instruction"]


def test_a_task_if_given_must_have_exactly_the_two_fields(tmp_path: Path) -> None:
    task = {"description": "d", "fields": {"instruction": {}, "response": {}}}
    result = datarefinery.run(spec() | {"task": task}, tmp_path / "a", backend=Recording())
    assert result.status == "complete" and len(read_jsonl(result.dataset_path)) == 2
    task["fields"] = {"instruction": {}, "output": {}}
    with pytest.raises(ConfigError, match="instruction_field and response_field"):
        datarefinery.run(spec() | {"task": task}, tmp_path / "b", backend=Recording())
