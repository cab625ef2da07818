import pytest
from pydantic import BaseModel, Field

from datarefinery.llm.structured import ParseFailure, extract_json, parse_reply, strip_wrappers


class Review(BaseModel):
    text: str = Field(max_length=20)
    label: str


def test_strips_think_blocks_and_fences() -> None:
    raw = '<think>the user wants JSON</think>\n```json\n{"text": "ok", "label": "positive"}\n```'
    assert strip_wrappers(raw) == '{"text": "ok", "label": "positive"}'


def test_unclosed_think_prefix_is_dropped() -> None:
    assert extract_json('reasoning... </think> {"a": 1}') == {"a": 1}


def test_json_inside_chatter_is_found() -> None:
    assert extract_json('Sure! Here it is: {"a": [1, 2]} Hope it helps.') == {"a": [1, 2]}


@pytest.mark.parametrize("text", ["", "   ", "no json here", '{"a": 1'])
def test_missing_json_is_a_value_error(text: str) -> None:
    with pytest.raises(ValueError):
        extract_json(text)


def test_parse_reply_validates_schema() -> None:
    good = parse_reply('{"text": "fine", "label": "positive"}', Review)
    assert isinstance(good, Review)
    too_long = parse_reply('{"text": "' + "x" * 30 + '", "label": "p"}', Review)
    assert isinstance(too_long, ParseFailure)
    assert too_long.reason == "schema"
    assert "text" in too_long.message
    broken = parse_reply("{oops", Review)
    assert isinstance(broken, ParseFailure)
    assert broken.reason == "invalid_json"


def test_the_decoding_schema_drops_only_string_bounds_llama_cpp_would_refuse() -> None:
    from datarefinery.llm.structured import decodable_schema

    schema = {
        "type": "object",
        "properties": {
            "text": {"type": "string", "minLength": 1, "maxLength": 3000},
            "label": {"type": "string", "maxLength": 64},
            "items": {"type": "array", "items": {"type": "string", "maxLength": 900}},
        },
    }
    loosened = decodable_schema(schema)
    assert loosened["properties"]["text"] == {"type": "string", "minLength": 1}
    assert loosened["properties"]["label"] == {"type": "string", "maxLength": 64}
    assert loosened["properties"]["items"]["items"] == {"type": "string"}
    assert schema["properties"]["text"]["maxLength"] == 3000  # the caller's schema is untouched


def test_raw_line_breaks_inside_a_string_are_repaired_not_rejected() -> None:
    reply = '{"reasoning": "1. 3 * 12 = 36\n2. 36 - 5 = 31\tso", "result": "31"}'
    expected = {"reasoning": "1. 3 * 12 = 36\n2. 36 - 5 = 31\tso", "result": "31"}
    assert extract_json(reply) == expected
    with pytest.raises(ValueError, match="not valid JSON"):
        extract_json('{"reasoning": "unterminated\n')
