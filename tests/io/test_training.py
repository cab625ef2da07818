"""Training-row shapes: which fields fill which part, and the errors that name them."""

import json

import pytest

from datarefinery.io.training import (
    ExportMapping,
    MappingProblem,
    alpaca_row,
    dpo_messages_row,
    dpo_row,
    parse_messages,
    sft_messages_row,
    sharegpt_row,
    with_kept,
)
from datarefinery.records import Record

DEFAULT = ExportMapping()
CHAT = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Capital of France?"},
    {"role": "assistant", "content": "Paris."},
]


def rec(**fields: object) -> Record:
    return Record(id="r1", fields=dict(fields))


def test_sft_messages_from_instruction_input_output() -> None:
    record = rec(instruction="Sort the numbers.", input="7, 2", output="2, 7")
    assert sft_messages_row(record, DEFAULT) == {
        "messages": [
            {"role": "user", "content": "Sort the numbers.\n\n7, 2"},
            {"role": "assistant", "content": "2, 7"},
        ]
    }


def test_defaults_take_the_first_present_name() -> None:
    record = rec(question="Why?", answer="Because.", label="x")
    assert sft_messages_row(record, DEFAULT)["messages"][1]["content"] == "Because."
    record = rec(prompt="P", instruction="I", response="R", output="O")
    assert alpaca_row(record, DEFAULT) == {"instruction": "P", "input": "", "output": "R"}


def test_messages_field_wins_and_json_text_is_accepted() -> None:
    record = rec(messages=json.dumps(CHAT), prompt="ignored", response="ignored")
    assert sft_messages_row(record, DEFAULT) == {"messages": CHAT}
    chat = rec(dialogue=CHAT)
    assert sft_messages_row(chat, ExportMapping(messages="dialogue")) == {"messages": CHAT}


def test_explicit_prompt_field_beats_a_messages_field() -> None:
    record = rec(messages=CHAT, q="Q?", a="A.")
    row = sft_messages_row(record, ExportMapping(prompt="q", response="a"))
    assert row == {
        "messages": [{"role": "user", "content": "Q?"}, {"role": "assistant", "content": "A."}]
    }


def test_system_field_is_written_only_when_named() -> None:
    record = rec(prompt="Hi", response="Hello", sys="Be kind.")
    assert len(sft_messages_row(record, DEFAULT)["messages"]) == 2
    row = sft_messages_row(record, ExportMapping(system="sys"))
    assert row["messages"][0] == {"role": "system", "content": "Be kind."}
    assert alpaca_row(record, ExportMapping(system="sys"))["system"] == "Be kind."


def test_sharegpt_roles() -> None:
    assert sharegpt_row(rec(messages=CHAT), DEFAULT) == {
        "conversations": [
            {"from": "system", "value": "Be brief."},
            {"from": "human", "value": "Capital of France?"},
            {"from": "gpt", "value": "Paris."},
        ]
    }


def test_alpaca_from_a_single_turn_chat_and_refused_for_several_turns() -> None:
    assert alpaca_row(rec(messages=CHAT), DEFAULT) == {
        "instruction": "Capital of France?",
        "input": "",
        "output": "Paris.",
        "system": "Be brief.",
    }
    long_chat = [
        *CHAT,
        {"role": "user", "content": "And Spain?"},
        {"role": "assistant", "content": "Madrid."},
    ]
    with pytest.raises(MappingProblem, match=r"does not fit Alpaca.*sft-messages or sharegpt"):
        alpaca_row(rec(messages=long_chat), DEFAULT)


def test_dpo_standard_and_conversational() -> None:
    record = rec(prompt="2+2?", chosen="4", rejected="5", margin=3.0)
    assert dpo_row(record, DEFAULT) == {"prompt": "2+2?", "chosen": "4", "rejected": "5"}
    assert dpo_messages_row(record, ExportMapping()) == {
        "prompt": [{"role": "user", "content": "2+2?"}],
        "chosen": [{"role": "assistant", "content": "4"}],
        "rejected": [{"role": "assistant", "content": "5"}],
    }
    record = rec(prompt="2+2?", chosen="4", rejected="5", sys="Answer in digits.")
    row = dpo_messages_row(record, ExportMapping(system="sys"))
    assert row["prompt"][0] == {"role": "system", "content": "Answer in digits."}


def test_dpo_with_message_fields() -> None:
    prompt = CHAT[:2]
    record = rec(
        prompt=prompt,
        chosen=[CHAT[2]],
        rejected=json.dumps([{"role": "assistant", "content": "Rome."}]),
    )
    row = dpo_messages_row(record, DEFAULT)
    assert row["prompt"] == prompt and row["rejected"][0]["content"] == "Rome."
    with pytest.raises(MappingProblem, match="holds messages: use --format dpo-messages"):
        dpo_row(record, DEFAULT)
    with pytest.raises(MappingProblem, match="no system: use --format dpo-messages"):
        dpo_row(rec(prompt="p", chosen="c", rejected="r", s="x"), ExportMapping(system="s"))


def test_text_that_starts_like_json_stays_text() -> None:
    record = rec(prompt="[{not json", chosen="a", rejected="b")
    assert dpo_messages_row(record, DEFAULT)["prompt"][0]["content"] == "[{not json"


@pytest.mark.parametrize(
    ("record", "mapping", "field", "message"),
    [
        (
            rec(text="t", label="x"),
            DEFAULT,
            "prompt",
            "no prompt field \\(looked for 'prompt', 'instruction', 'question'; it has: label, "
            "text\\): set --prompt-field",
        ),
        (rec(prompt="p"), DEFAULT, "response", "no response field .*set --response-field"),
        (rec(prompt="p", out="o"), ExportMapping(response="answer"), "answer", "no field 'answer'"),
        (rec(prompt="p", response="  "), DEFAULT, "response", "the response is empty"),
        (rec(prompt="p", response=None), DEFAULT, "response", "the response must be text"),
        (rec(prompt="p", chosen="c"), DEFAULT, "rejected", "set --rejected-field"),
    ],
)
def test_missing_or_empty_parts_name_the_field_and_the_option(
    record: Record, mapping: ExportMapping, field: str, message: str
) -> None:
    shape = dpo_row if "chosen" in record.fields else sft_messages_row
    with pytest.raises(MappingProblem, match=message) as caught:
        shape(record, mapping)
    assert caught.value.field == field


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("not json", "not a JSON list of messages"),
        ([], "non-empty list"),
        (["hi"], "message 1 is not a {role, content} object"),
        ([{"role": "bot", "content": "x"}], "message 1: role 'bot' is not one of"),
        ([{"role": "user", "content": 3}], "message 1: content must be text"),
    ],
)
def test_bad_messages(value: object, message: str) -> None:
    with pytest.raises(MappingProblem) as caught:
        parse_messages(value, "messages")
    assert message in caught.value.message


def test_a_chat_without_an_assistant_turn_is_refused() -> None:
    with pytest.raises(MappingProblem, match="no assistant message"):
        sft_messages_row(rec(messages=CHAT[:2]), DEFAULT)


def test_keep_copies_fields_scores_and_the_id() -> None:
    record = Record(
        id="r9",
        fields={"prompt": "p", "chosen": "c", "rejected": "r", "margin": 2},
        scores={"judge": 4},
    )
    mapping = ExportMapping(keep=("id", "margin", "judge"))
    row = with_kept(dpo_row(record, mapping), record, mapping)
    assert row == {
        "prompt": "p",
        "chosen": "c",
        "rejected": "r",
        "id": "r9",
        "margin": 2,
        "judge": 4,
    }
    with pytest.raises(MappingProblem, match="would overwrite"):
        with_kept({"prompt": "p"}, record, ExportMapping(keep=("prompt",)))
    with pytest.raises(MappingProblem, match="no field or score 'nope'"):
        with_kept({}, record, ExportMapping(keep=("nope",)))


def test_mapping_refuses_unknown_parts() -> None:
    with pytest.raises(ValueError, match="promt"):
        ExportMapping(promt="q")  # type: ignore[call-arg]
