r"""Render the *pre-query* of a chat template: everything a model sees before a user's words.

Magpie (arXiv 2406.08464) gives an aligned model only this prefix (for ChatML
``<|im_start|>system\n...<|im_end|>\n<|im_start|>user\n``) and lets it write the user's turn.
Templates only know how to render whole turns, so the prefix is found by rendering a conversation
whose user turn is a marker and cutting the text where the marker starts; what follows the marker
up to the end of its line is the end-of-turn text the completion must stop at.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NoReturn

from jinja2 import TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from datarefinery.errors import ConfigError
from datarefinery.llm.base import ChatTemplate

# Letters only: templates may trim, strip or escape a message's content.
_MARKER = "MagpieUserTurnMarkerQzx"
# The markup of common templates: <|im_start|>, <|eot_id|>, <start_of_turn>, </s>, [INST] ...
_MARKUP = re.compile(r"<\|[^|<>\s]{1,40}\|>|</?[a-z_]{1,30}>|\[/?[A-Z_]{2,20}\]")


@dataclass(frozen=True, slots=True)
class PreQuery:
    """``prompt`` is the text to complete; ``stop`` the template's end of a user turn (``""`` when
    it has none); ``markup`` the template's special texts, which a written instruction must not
    contain.
    """

    prompt: str
    stop: str
    markup: tuple[str, ...]


def _raise(message: str) -> NoReturn:
    raise TemplateError(message)


def _strftime_now(fmt: str) -> str:
    return datetime.now().strftime(fmt)


def render_turns(chat: ChatTemplate, messages: list[dict[str, str]]) -> str:
    """The template rendered for ``messages`` without the assistant's generation prompt."""
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    env.globals.update(raise_exception=_raise, strftime_now=_strftime_now)
    variables: dict[str, Any] = {
        "messages": messages,
        "add_generation_prompt": False,
        "bos_token": chat.bos_token,
        "eos_token": chat.eos_token,
    }
    return env.from_string(chat.template).render(**variables)


def render_pre_query(chat: ChatTemplate, system_prompt: str | None = None) -> PreQuery:
    """The pre-query of ``chat`` with ``system_prompt`` as the system turn (``None``: whatever the
    template does without one, often a default system prompt).
    """
    messages = [{"role": "system", "content": system_prompt}] if system_prompt else []
    messages.append({"role": "user", "content": _MARKER})
    try:
        rendered = render_turns(chat, messages)
    except TemplateError as exc:
        where = " after a system turn" if system_prompt else ""
        raise ConfigError(
            f"the chat template could not render a user turn{where}: {exc}; give the model's "
            "own template as chat_template (or drop system_prompt if the template has no system "
            "role)"
        ) from None
    cut = rendered.find(_MARKER)
    if cut < 0:
        raise ConfigError(
            "the chat template does not show a user message's content where it renders the user "
            "turn; give the model's own template as chat_template"
        )
    prompt = rendered[:cut]
    after = rendered[cut + len(_MARKER) :].strip()
    stop = after.splitlines()[0].strip() if after else ""
    markup = tuple(dict.fromkeys(_MARKUP.findall(prompt + stop + chat.bos_token + chat.eos_token)))
    return PreQuery(prompt=prompt, stop=stop, markup=tuple(m for m in markup if m))
