"""Measure what chat templates add to a prompt, for the byte bound in ``llm/base.py``.

Three measurements, printed as tables:

1. llama-cpp-python's built-in chat formats, rendered with empty messages: special tokens
   (``<|...|>``, ``<start_of_turn>``, ``<s>``...) counted as one token each and every other byte
   as one token, which is what a byte-level tokenizer can cost at most.
2. The GGUF's own template (default: the embedded SmolLM2), tokenized with the model's tokenizer.
3. With ``--base-url``, an OpenAI-compatible server's reported ``prompt_tokens`` for the same
   conversations, empty and with non-English text, emoji and code, next to the bound.

Run: ``python scripts/template_overhead.py [--model PATH.gguf] [--base-url URL --model-name NAME]``.
"""

from __future__ import annotations

import argparse
import re
from typing import Any

import httpx
from llama_cpp import Llama
from llama_cpp import llama_chat_format as formats

from datarefinery.llm.base import (
    MESSAGE_OVERHEAD_TOKENS,
    REQUEST_OVERHEAD_TOKENS,
    Message,
    Request,
    utf8_prompt_bound,
)
from datarefinery.llm.models import resolve_model_path

FORMATS = ("chatml", "qwen", "llama-3", "llama-2", "gemma", "mistral-instruct", "zephyr")
SPECIAL = re.compile(r"<\|[^|<>]{1,40}\|>|<start_of_turn>|<end_of_turn>|<s>|</s>")
# Llama 3.1's template opens every conversation with this dated preamble (not in llama-cpp-python's
# formats, so its text is counted here on its own: it goes inside a system header like (1)'s).
LLAMA31_PREAMBLE = "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n"
SAMPLES = (
    "Ünïcödé façade: 東京都は日本の首都です。Москва — столица России.",
    "🙂🚀👩‍👩‍👧‍👦🇫🇮 emoji everywhere 🎉🎉🎉",
    'def f(x: int) -> dict[str, list[int]]:\n    return {"a": [x, x ** 2]}  # code\n',
)


def conversation(n: int, *, system: bool, content: str = "") -> list[Message]:
    """``n`` messages alternating user / assistant and ending with a user turn."""
    messages = [Message("system", content)] if system else []
    roles = ["user" if (n - i) % 2 == 1 else "assistant" for i in range(n)]
    return messages + [Message(role, content) for role in roles]  # type: ignore[arg-type]


def as_dicts(messages: list[Message]) -> Any:
    return [{"role": m.role, "content": m.content} for m in messages]


def byte_cost(prompt: str) -> int:
    specials = SPECIAL.findall(prompt)
    rest = SPECIAL.sub("", prompt)
    return len(specials) + len(rest.encode("utf-8"))


def builtin_formats() -> None:
    print("(1) llama-cpp-python formats, empty messages, specials = 1, other bytes = 1 each")
    print("n: messages besides the system one; margin: the least room left under the bound")
    print(
        f"{'format':18} {'system':>6} "
        + " ".join(f"n={n:<4}" for n in range(1, 7))
        + f" {'margin':>6}"
    )
    for name in FORMATS:
        for system in (False, True):
            costs, margin = [], None
            for n in range(1, 7):
                messages = conversation(n, system=system)
                cost = byte_cost(_render_builtin(name, as_dicts(messages)))
                room = utf8_prompt_bound(Request(messages=tuple(messages))) - cost
                margin = room if margin is None else min(margin, room)
                costs.append(cost)
            print(
                f"{name:18} {system!s:>6} " + " ".join(f"{c:<6}" for c in costs) + f" {margin:>6}"
            )
    print(f"Llama 3.1 dated preamble text: {len(LLAMA31_PREAMBLE.encode())} bytes")


def _render_builtin(name: str, messages: Any) -> str:
    registered = {
        "chatml": formats.format_chatml,
        "qwen": formats.format_qwen,
        "llama-3": formats.format_llama3,
        "llama-2": formats.format_llama2,
        "gemma": formats.format_gemma,
        "mistral-instruct": formats.format_mistral_instruct,
        "zephyr": formats.format_zephyr,
    }
    return str(registered[name](messages=messages).prompt)


def gguf_template(model: str) -> Llama:
    llama = Llama(model_path=str(resolve_model_path(model)), n_ctx=64, verbose=False)
    template = llama.metadata["tokenizer.chat_template"]
    eos, bos = llama.token_eos(), llama.token_bos()
    formatter = formats.Jinja2ChatFormatter(
        template=template,
        eos_token=llama._model.token_get_text(eos) if eos != -1 else "",
        bos_token=llama._model.token_get_text(bos) if bos != -1 else "",
        stop_token_ids=[eos],
    )
    print(f"\n(2) the GGUF's template ({model}), tokens by its tokenizer, minus content bytes")
    print(f"{'content':10} {'system':>6} " + " ".join(f"n={n:<4}" for n in range(1, 7)))
    for label, content in (("empty", ""), *((f"sample{i}", s) for i, s in enumerate(SAMPLES))):
        for system in (False, True):
            row = []
            for n in range(1, 7):
                messages = conversation(n, system=system, content=content)
                rendered = formatter(messages=as_dicts(messages))
                tokens = llama.tokenize(
                    rendered.prompt.encode("utf-8"),
                    add_bos=not rendered.added_special,
                    special=True,
                )
                request = Request(messages=tuple(messages))
                assert len(tokens) <= utf8_prompt_bound(request), (label, n, system)
                row.append(len(tokens) - request.prompt_bytes())
            print(f"{label:10} {system!s:>6} " + " ".join(f"{c:<6}" for c in row))
    return llama


def server(base_url: str, model_name: str) -> None:
    print(f"\n(3) prompt_tokens reported by {base_url}, and the bound")
    print(f"{'content':10} {'system':>6} {'n':>2} {'reported':>8} {'bound':>6} {'bytes':>6}")
    with httpx.Client(base_url=base_url, timeout=120) as client:
        for label, content in (("empty", ""), *((f"sample{i}", s) for i, s in enumerate(SAMPLES))):
            for system in (False, True):
                for n in (1, 2, 3, 5):
                    messages = conversation(n, system=system, content=content)
                    body = {"model": model_name, "messages": as_dicts(messages), "max_tokens": 1}
                    reply = client.post("/chat/completions", json=body)
                    reply.raise_for_status()
                    reported = int(reply.json()["usage"]["prompt_tokens"])
                    request = Request(messages=tuple(messages))
                    bound = utf8_prompt_bound(request)
                    print(
                        f"{label:10} {system!s:>6} {n:>2} {reported:>8} {bound:>6} "
                        f"{request.prompt_bytes():>6}" + ("  OVER" if reported > bound else "")
                    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default", help="GGUF path, or 'default'")
    parser.add_argument(
        "--base-url", help="an OpenAI-compatible server, e.g. http://127.0.0.1:8080/v1"
    )
    parser.add_argument("--model-name", default="default", help="the model name to ask it for")
    args = parser.parse_args()
    print(f"allowances: {MESSAGE_OVERHEAD_TOKENS} a message, {REQUEST_OVERHEAD_TOKENS} a request\n")
    builtin_formats()
    gguf_template(args.model).close()
    if args.base_url:
        server(args.base_url, args.model_name)


if __name__ == "__main__":
    main()
