import pytest

from datarefinery.llm.base import Message, Request, SamplingParams, utf8_prompt_bound
from datarefinery.llm.cache import request_key


def test_a_raw_request_is_keyed_by_its_prompt_and_chat_keys_are_unchanged() -> None:
    params = SamplingParams(max_tokens=8)
    chat = Request(messages=(Message("user", "hi"),), params=params, seed=1)
    assert set(chat.key_material()) == {"messages", "params", "schema", "seed"}
    one = Request.raw("<|im_start|>user\n", params, seed=1)
    two = Request.raw("<|im_start|>user\nx", params, seed=1)
    keys = {request_key("k", "m", r) for r in (chat, one, two)}
    assert len(keys) == 3
    assert one.prompt_bytes() == len(b"<|im_start|>user\n")
    assert utf8_prompt_bound(one) >= one.prompt_bytes()


def test_a_request_has_messages_or_a_prompt_not_both() -> None:
    with pytest.raises(ValueError, match="not both"):
        Request(messages=(Message("user", "hi"),), prompt="raw")
