import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from datarefinery.config import LlamaCppConfig, TaskSpec
from datarefinery.errors import ConfigError, InputFileError
from datarefinery.io import read_records, write_records
from datarefinery.io.messages import parse_messages
from datarefinery.llm.structured import parse_reply
from datarefinery.records import Record, Rejected
from datarefinery.steps.base import StepContext
from datarefinery.steps.curate.validate import Validate, ValidateConfig
from datarefinery.steps.writing import item_model, reply_fields

CHAT = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Where is my parcel?"},
    {"role": "assistant", "content": 'It left the warehouse today, with "express" post.'},
]
TASK = TaskSpec.model_validate(
    {
        "description": "support chats",
        "fields": {"messages": {"type": "messages", "max_chars": 60}, "topic": {}},
    }
)


def test_parse_messages_names_the_message_and_the_problem() -> None:
    assert parse_messages(CHAT) == CHAT
    assert parse_messages(json.dumps(CHAT)) == CHAT
    cases: list[tuple[Any, str]] = [
        ([], "holds no messages"),
        ("not json", "the text is not JSON"),
        ({"role": "user"}, "expected a list of messages, got dict"),
        ([{"role": "bot", "content": "hi"}], "message 1: role 'bot' is not one of system"),
        ([CHAT[1], CHAT[0]], "message 2: a system message may only come first"),
        ([{"role": "user", "content": "  "}], "message 1: content is empty"),
        ([{"role": "user", "content": 3}], "message 1: content must be text, got int"),
        ([{"role": "user", "content": "hi", "name": "x"}], "message 1: unknown keys ['name']"),
        (["hi"], "message 1: expected a mapping"),
    ]
    for value, message in cases:
        with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
            parse_messages(value)
    with pytest.raises(ValueError, match="message 2: content has 19 characters, more than 10"):
        parse_messages(CHAT, max_chars=10)


@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".parquet"])
def test_round_trip_through_each_format(tmp_path: Path, suffix: str) -> None:
    records = [
        Record("a", {"messages": CHAT, "topic": "post"}),
        Record("b", {"messages": CHAT[1:], "topic": "size"}),
    ]
    path = tmp_path / f"chats{suffix}"
    write_records(path, records)
    back = list(read_records(path, messages=["messages"]))
    assert [(r.id, r.fields) for r in back] == [(r.id, r.fields) for r in records]


def test_parquet_stores_a_list_of_structs(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    write_records(tmp_path / "c.parquet", [Record("a", {"messages": CHAT})])
    kind = pq.read_schema(tmp_path / "c.parquet").field("messages").type
    assert str(kind) == "list<element: struct<role: string, content: string>>"


def test_a_bad_chat_in_a_file_names_file_line_record_and_field(tmp_path: Path) -> None:
    path = tmp_path / "chats.csv"
    path.write_text(
        'id,messages\nr1,"[{""role"": ""user"", ""content"": ""hi""}]"\n'
        'r2,"[{""role"": ""bot"", ""content"": ""hi""}]"\n'
    )
    with pytest.raises(InputFileError) as caught:
        list(read_records(path, messages=["messages"]))
    assert str(caught.value) == (
        f"{path}, line 3, field 'messages': record r2: message 1: role 'bot' is not one of "
        "system, user, assistant"
    )


def validate(fields: dict[str, Any], coerce: bool = True) -> Record | Rejected:
    step = Validate(ValidateConfig(coerce=coerce))
    step.setup(StepContext(name="validate", index=0, seed=0, task=TASK, llm=LlamaCppConfig()))
    (out,) = asyncio.run(step.process([Record(id="r7", fields=fields)]))
    return out


def test_validate_checks_chats_and_parses_their_json_text() -> None:
    ok = validate({"messages": json.dumps(CHAT), "topic": "post"})
    assert isinstance(ok, Record) and ok.fields["messages"] == CHAT
    bad = validate({"messages": [{"role": "user", "content": "x" * 61}], "topic": "post"})
    assert isinstance(bad, Rejected) and bad.reason == "invalid_field"
    assert bad.record.id == "r7"
    assert bad.detail == "messages: message 1: content has 61 characters, more than 60"
    strict = validate({"messages": json.dumps(CHAT), "topic": "post"}, coerce=False)
    assert isinstance(strict, Rejected) and "got text" in strict.detail


def test_structured_output_schema_for_a_chat() -> None:
    model = item_model(TASK, ["messages", "topic"])
    schema = model.model_json_schema()
    message = schema["$defs"]["ChatMessage"]
    assert message["properties"]["role"]["enum"] == ["system", "user", "assistant"]
    assert message["properties"]["content"]["maxLength"] == 60
    reply = parse_reply(json.dumps({"messages": CHAT[1:], "topic": "post"}), model)
    assert not hasattr(reply, "reason")
    assert reply_fields(reply, ["messages"]) == {"messages": CHAT[1:]}  # type: ignore[arg-type]
    bot = {"messages": [{"role": "bot", "content": "hi"}], "topic": "t"}
    wrong = parse_reply(json.dumps(bot), model)
    assert getattr(wrong, "reason", None) == "schema"


def test_inline_seeds_with_a_bad_chat_stop_the_spec() -> None:
    from datarefinery.config import spec_from_dict

    task = TASK.model_dump() | {"seeds": [{"messages": [{"role": "user"}], "topic": "t"}]}
    with pytest.raises(ConfigError, match=r"task.seeds\[0\].messages: message 1: content must"):
        spec_from_dict({"task": task, "steps": [{"validate": {}}]})
