import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import datarefinery
from datarefinery.errors import ConfigError
from datarefinery.llm.base import Request
from datarefinery.llm.scripted import ScriptedBackend
from datarefinery.steps.synthesize.dialogue import turn_problem
from tests.support.examples import run_example
from tests.support.fake import read_jsonl

TASK = {
    "description": "Support chats for a shoe shop.",
    "fields": {"messages": {"type": "messages", "max_chars": 80}},
}
PERSONAS = ["an impatient customer", "a first-time buyer"]


def spec(options: dict[str, Any], task: dict[str, Any] = TASK) -> dict[str, Any]:
    step = {"count": 2, "turns": 2, "personas": PERSONAS} | options
    return {"seed": 5, "task": task, "steps": [{"dialogue": step}]}


Turn = Callable[[str, int, int, Request], str]


def chat_model(say: Turn) -> Callable[[Request], str]:
    """A script that answers each message call with ``say(role, turn, attempt, request)``; the
    attempt counts calls with the same prompt (a re-ask differs only in its seed)."""
    attempts: Counter[str] = Counter()

    def reply(request: Request) -> str:
        key = json.dumps([(m.role, m.content) for m in request.messages])
        attempts[key] += 1
        if request.messages[0].content.startswith("You play the user"):
            role, turn = "user", request.messages[-1].content.count("\nUser: ") + 1
        else:
            role, turn = "assistant", sum(m.role == "user" for m in request.messages)
        return json.dumps({"message": say(role, turn, attempts[key], request)})

    return reply


def polite(role: str, turn: int, attempt: int, request: Request) -> str:
    persona = "late" if "impatient" in request.messages[-1].content else "size"
    if role == "user":
        return f"Question {turn} about my {persona} order, try {attempt}."
    return f"Answer {turn}: we are on it, try {attempt}."


def run(tmp_path: Path, options: dict[str, Any], say: Turn = polite) -> datarefinery.RunResult:
    return datarefinery.run(
        spec(options), tmp_path, backend=ScriptedBackend(chat_model(say)), diversity=False
    )


def test_a_dialogue_alternates_user_and_assistant_with_persona_and_seeds(tmp_path: Path) -> None:
    result = run(tmp_path, {"system": "Be brief."})
    kept = read_jsonl(result.dataset_path)
    assert len(kept) == 2 and result.rejected_size == 0
    first = kept[0]
    assert first["fields"]["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Question 1 about my late order, try 1."},
        {"role": "assistant", "content": "Answer 1: we are on it, try 1."},
        {"role": "user", "content": "Question 2 about my late order, try 1."},
        {"role": "assistant", "content": "Answer 2: we are on it, try 1."},
    ]
    conditioning = first["provenance"]["conditioning"]
    assert conditioning["persona"] == PERSONAS[0]
    assert kept[1]["provenance"]["conditioning"]["persona"] == PERSONAS[1]
    seeds = conditioning["turn_seeds"]
    assert [(s["turn"], s["role"], s["tries"]) for s in seeds] == [
        (1, "user", 1),
        (1, "assistant", 1),
        (2, "user", 1),
        (2, "assistant", 1),
    ]
    assert len({s["seed"] for s in seeds}) == 4
    assert first["provenance"]["technique"] == "dialogue"


def test_the_assistant_sees_the_chat_as_chat_messages(tmp_path: Path) -> None:
    backend = ScriptedBackend(chat_model(polite))
    datarefinery.run(spec({"count": 1, "system": "Be brief."}), tmp_path, backend=backend)
    last = backend.requests[-1]
    assert [m.role for m in last.messages] == ["system", "user", "assistant", "user"]
    assert last.messages[0].content.startswith("Be brief.")
    assert last.messages[-1].content == "Question 2 about my late order, try 1."


def test_a_broken_turn_is_asked_again_with_a_new_seed_keeping_earlier_turns(
    tmp_path: Path,
) -> None:
    def slips(role: str, turn: int, attempt: int, request: Request) -> str:
        if role == "user" and turn == 2 and attempt == 1:
            return "Thanks! How can I help you with anything else?"  # speaks as the assistant
        if role == "assistant" and turn == 1 and attempt < 3:
            return "Assistant: fine.\nUser: and then?" if attempt == 1 else " "
        if role == "user" and turn == 1 and attempt == 1:
            return 'Answer with one JSON object: {"message": "<the user\'s message>"}.'
        return polite(role, turn, attempt, request)

    result = run(tmp_path, {"count": 1})
    again = run(tmp_path / "slips", {"count": 1}, slips)
    assert again.rejected_size == 0
    (record,) = read_jsonl(again.dataset_path)
    (plain,) = read_jsonl(result.dataset_path)
    messages = record["fields"]["messages"]
    assert messages[0]["content"] == "Question 1 about my late order, try 2."
    assert messages[1]["content"] == "Answer 1: we are on it, try 3."
    assert messages[2]["content"] == "Question 2 about my late order, try 2."
    seeds = record["provenance"]["conditioning"]["turn_seeds"]
    assert [s["tries"] for s in seeds] == [2, 3, 2, 1]
    first_seeds = [s["seed"] for s in plain["provenance"]["conditioning"]["turn_seeds"]]
    assert seeds[0]["seed"] != first_seeds[0] and seeds[3]["seed"] == first_seeds[3]


@pytest.mark.parametrize(
    ("say", "reason", "detail"),
    [
        (lambda role, turn, attempt, r: "   ", "empty_turn", "turn 1 (user), 3 tries"),
        (lambda role, turn, attempt, r: "x" * 81, "schema", "turn 1 (user), 3 tries"),
    ],
)
def test_a_turn_that_stays_broken_rejects_the_dialogue(
    tmp_path: Path, say: Turn, reason: str, detail: str
) -> None:
    result = run(tmp_path, {"count": 1}, say)
    (rejected,) = read_jsonl(result.rejected_path)
    assert rejected["reason"] == reason and rejected["detail"].startswith(detail)


def test_a_repeating_assistant_rejects_with_the_turn_and_keeps_what_was_said(
    tmp_path: Path,
) -> None:
    def parrot(role: str, turn: int, attempt: int, request: Request) -> str:
        if role == "assistant" and turn == 2:
            return request.messages[-1].content  # repeats the user's message
        return polite(role, turn, attempt, request)

    result = run(tmp_path, {"count": 1, "retries": 1}, parrot)
    assert not read_jsonl(result.dataset_path)
    (rejected,) = read_jsonl(result.rejected_path)
    assert rejected["reason"] == "repeated_turn"
    assert rejected["detail"] == "turn 2 (assistant), 2 tries: repeats message 3"
    assert len(rejected["record"]["fields"]["messages"]) == 3


def test_reruns_repeat_every_call_and_a_resume_is_answered_by_the_cache(tmp_path: Path) -> None:
    first = run(tmp_path / "a", {})
    second = run(tmp_path / "b", {})
    assert first.dataset_path.read_text() == second.dataset_path.read_text()
    backend = ScriptedBackend([])  # any call would fail: all must come from the cache
    again = datarefinery.run(spec({}), tmp_path / "a", backend=backend, diversity=False)
    assert again.dataset_path.read_text() == first.dataset_path.read_text()
    assert backend.requests == []


def test_attributes_are_drawn_per_dialogue(tmp_path: Path) -> None:
    task = TASK | {"attributes": {"mood": ["angry", "calm"], "item": {"boots": 1, "sandals": 1}}}
    backend = ScriptedBackend(chat_model(polite))
    result = datarefinery.run(
        spec({"personas": None, "count": 6, "turns": 1}, task), tmp_path, backend=backend
    )
    kept = read_jsonl(result.dataset_path)
    draws = [r["provenance"]["conditioning"]["attributes"] for r in kept]
    assert all(set(d) == {"mood", "item"} for d in draws) and len(draws) == 6
    assert "mood: " in backend.requests[0].messages[-1].content


def test_config_errors_say_how_to_fix_them(tmp_path: Path) -> None:
    no_chat = {"description": "d", "fields": {"text": {}}}
    with pytest.raises(ConfigError, match="exactly one field with 'type: messages'"):
        datarefinery.run(spec({}, no_chat), tmp_path / "1", backend=ScriptedBackend([]))
    with pytest.raises(ConfigError, match="needs someone to simulate"):
        datarefinery.run(spec({"personas": None}), tmp_path / "2", backend=ScriptedBackend([]))
    with pytest.raises(ConfigError, match="'topic' is not a messages field"):
        datarefinery.run(spec({"field": "topic"}), tmp_path / "3", backend=ScriptedBackend([]))


def test_turn_problem() -> None:
    earlier = [{"role": "user", "content": "Where is my parcel, please?"}]
    assert turn_problem("It is on its way.", "assistant", earlier, 80) is None
    assert turn_problem("", "user", [], 80) == ("empty_turn", "the message is empty")
    assert turn_problem("x" * 9, "user", [], 8)[0] == "too_long"  # type: ignore[index]
    for text in ("Customer: hi", "Hi.\nAgent: hello", "### assistant\nhi"):
        assert turn_problem(text, "user", [], 80)[0] == "role_confusion"  # type: ignore[index]
    slipped = turn_problem("As an AI, I can check.", "user", [], 80)
    assert slipped is not None and slipped[0] == "role_confusion"
    assert turn_problem("As an AI, I can check.", "assistant", [], 80) is None
    welcome = turn_problem("Welcome to the shoe shop! Follow me.", "user", [], 80)
    assert welcome is not None and welcome[0] == "role_confusion"
    placeholder = turn_problem("<The user's message to the chat-</em>", "user", [], 80)
    assert placeholder == ("copies_instructions", "the user message is the prompt's placeholder")
    assert turn_problem("where is my parcel, PLEASE?", "assistant", earlier, 80) == (
        "repeated_turn",
        "repeats message 1",
    )
    assert turn_problem("Where is my parcel please", "assistant", earlier, 80) == (
        "repeated_turn",
        "nearly repeats the previous message",
    )
    quoted = "Where is my parcel, please? I ask because I am the customer and I am waiting."
    assert turn_problem(quoted, "assistant", earlier, 80) == (
        "repeated_turn",
        "holds the whole previous message",
    )
    prompt = ("Write the first message this user sends to the assistant.",)
    assert turn_problem("Write the first message this user sends.", "user", [], 80, prompt) == (
        "copies_instructions",
        f"the user message copies the prompt's {prompt[0]!r}",
    )


@pytest.mark.slow
def test_example_on_the_embedded_model(tmp_path: Path) -> None:
    result = run_example("dialogue", tmp_path, {"count": 1, "turns": 2}, n_threads=1)
    assert result.status == "complete"
    kept, rejected = read_jsonl(result.dataset_path), read_jsonl(result.rejected_path)
    assert len(kept) + len(rejected) == 1
    for record in kept:
        roles = [m["role"] for m in record["fields"]["messages"]]
        assert roles == ["system", "user", "assistant", "user", "assistant"]
        assert record["provenance"]["model"].startswith("llamacpp:SmolLM2-135M-Instruct")
    for reject in rejected:
        assert reject["detail"].startswith("turn ")
