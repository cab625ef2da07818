"""What the batched llama.cpp decoder evaluates for a request: the GGUF's chat template rendered
with the request's messages (or its raw prompt), tokenized by the model's own tokenizer, and the
stop strings that end its reply.
"""

from __future__ import annotations

from typing import Any

from llama_cpp import Llama
from llama_cpp.llama_chat_format import Jinja2ChatFormatter

from datarefinery.errors import FatalBackendError
from datarefinery.llm.base import ChatTemplate, Request


def chat_formatter(llama: Llama) -> tuple[Jinja2ChatFormatter, ChatTemplate]:
    template = llama.metadata.get("tokenizer.chat_template")
    if not template:
        raise FatalBackendError(
            "the GGUF file has no chat template (tokenizer.chat_template); use an instruct model"
        )
    eos = llama.token_eos()
    bos = llama.token_bos()
    chat = ChatTemplate(
        template=template,
        eos_token=llama._model.token_get_text(eos) if eos != -1 else "",
        bos_token=llama._model.token_get_text(bos) if bos != -1 else "",
    )
    formatter = Jinja2ChatFormatter(
        template=template,
        eos_token=chat.eos_token,
        bos_token=chat.bos_token,
        stop_token_ids=[eos],
    )
    return formatter, chat


def prompt_tokens(
    llama: Llama, formatter: Jinja2ChatFormatter, request: Request
) -> tuple[list[int], tuple[str, ...]]:
    if request.prompt is not None:
        # Raw text, evaluated as given: like a rendered template (which writes its own BOS where
        # the model wants one), nothing is added; generation ends at an end-of-generation token
        # or a stop string.
        raw = llama.tokenize(request.prompt.encode("utf-8"), add_bos=False, special=True)
        return raw, tuple(s for s in request.params.stop if s)
    messages: Any = [{"role": m.role, "content": m.content} for m in request.messages]
    formatted = formatter(messages=messages)
    tokens = llama.tokenize(
        formatted.prompt.encode("utf-8"), add_bos=not formatted.added_special, special=True
    )
    stop = list(request.params.stop)
    if formatted.stop:
        stop += [formatted.stop] if isinstance(formatted.stop, str) else list(formatted.stop)
    return tokens, tuple(s for s in stop if s)
