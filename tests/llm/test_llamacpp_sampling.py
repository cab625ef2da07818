"""Grammar samplers on the real default model's vocabulary: long strings are accepted, and a
grammar llama.cpp refuses is an error that says why, with nothing dumped on the terminal.
"""

from __future__ import annotations

import json

import llama_cpp
import pytest
from llama_cpp import Llama

from datarefinery.errors import RequestRejectedError
from datarefinery.llm.llamacpp_sampling import GrammarSamplers
from datarefinery.llm.models import resolve_model_path

pytestmark = pytest.mark.slow


def _schema(max_length: int) -> dict[str, object]:
    text = {"type": "string", "minLength": 1, "maxLength": max_length}
    return {
        "type": "object",
        "properties": {"text": text},
        "required": ["text"],
        "additionalProperties": False,
    }


@pytest.fixture(scope="module")
def samplers() -> GrammarSamplers:
    llama = Llama(str(resolve_model_path("default")), vocab_only=True, verbose=False)
    samplers = GrammarSamplers(llama_cpp.llama_model_get_vocab(llama._model.model))
    samplers.llama = llama  # type: ignore[attr-defined]  # keeps the vocabulary alive
    return samplers


def test_a_long_max_length_builds_a_grammar_silently(
    samplers: GrammarSamplers, capfd: pytest.CaptureFixture[str]
) -> None:
    for max_length in (200, 3000, 20_000):
        sampler = samplers.clone_for(_schema(max_length))
        assert sampler
        llama_cpp.llama_sampler_free(sampler)
    assert capfd.readouterr().err == ""


def test_a_refused_grammar_says_why_and_dumps_nothing(
    samplers: GrammarSamplers, capfd: pytest.CaptureFixture[str]
) -> None:
    schema = _schema(3000)
    # What the converter made of maxLength before: llama.cpp refuses it.
    with pytest.raises(RequestRejectedError, match=r"repeated|repetition") as caught:
        samplers._build(json.dumps(schema), schema)
    assert "::=" not in str(caught.value)
    err = capfd.readouterr().err
    assert "::=" not in err and "parse: error" not in err
