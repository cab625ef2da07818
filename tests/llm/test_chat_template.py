import pytest

from datarefinery.errors import ConfigError
from datarefinery.llm.base import ChatTemplate
from datarefinery.llm.chat_template import render_pre_query
from datarefinery.llm.scripted import CHATML

# SmolLM2-Instruct's template (ChatML with a default system prompt), as in its GGUF.
SMOLLM2 = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging "
    "Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + "
    "message['content'] + '<|im_end|>' + '\n'}}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

# Llama 3 Instruct's template (header markup, content trimmed, BOS written by the template).
LLAMA3 = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}"
    "{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'"
    " + message['content'] | trim + '<|eot_id|>' %}"
    "{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}"
    "{{ content }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}"
    "{% endif %}"
)


def test_chatml_pre_query_with_a_system_prompt() -> None:
    pre = render_pre_query(ChatTemplate(CHATML), "Answer questions about cooking.")
    assert pre.prompt == (
        "<|im_start|>system\nAnswer questions about cooking.<|im_end|>\n<|im_start|>user\n"
    )
    assert pre.stop == "<|im_end|>"
    assert set(pre.markup) == {"<|im_start|>", "<|im_end|>"}


def test_a_template_default_system_prompt_stays_when_none_is_given() -> None:
    pre = render_pre_query(ChatTemplate(SMOLLM2))
    assert pre.prompt == (
        "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging "
        "Face<|im_end|>\n<|im_start|>user\n"
    )
    assert pre.stop == "<|im_end|>"


def test_llama3_pre_query_has_bos_headers_and_stops_at_eot() -> None:
    chat = ChatTemplate(LLAMA3, bos_token="<|begin_of_text|>", eos_token="<|eot_id|>")
    pre = render_pre_query(chat, "You write math problems.")
    assert pre.prompt == (
        "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n"
        "You write math problems.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\n"
    )
    assert pre.stop == "<|eot_id|>"
    assert "<|start_header_id|>" in pre.markup and "<|begin_of_text|>" in pre.markup
    bare = render_pre_query(chat)
    assert bare.prompt == "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n"


def test_a_template_that_refuses_the_conversation_is_a_config_error() -> None:
    strict = (
        "{% for m in messages %}{% if m['role'] == 'system' %}"
        "{{ raise_exception('System role not supported') }}{% endif %}"
        "[INST] {{ m['content'] }} [/INST]{% endfor %}"
    )
    with pytest.raises(ConfigError, match=r"System role not supported.*system_prompt"):
        render_pre_query(ChatTemplate(strict), "be brief")
    pre = render_pre_query(ChatTemplate(strict))
    assert (pre.prompt, pre.stop) == ("[INST] ", "[/INST]")


def test_a_template_that_drops_the_content_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="chat_template"):
        render_pre_query(ChatTemplate("{% for m in messages %}<{{ m['role'] }}>{% endfor %}"))
