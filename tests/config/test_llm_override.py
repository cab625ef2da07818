from pathlib import Path

import pytest

from datarefinery.config import (
    LlamaCppConfig,
    OpenAIConfig,
    load_llm_file,
    merge_llm,
    override_llm,
    shortcut_layer,
    spec_from_dict,
    validate_llm,
)
from datarefinery.errors import ConfigError, UsageError
from tests.support.specs import sentiment_spec

SERVER = {"backend": "openai", "base_url": "http://h/v1", "model": "served"}


def test_a_layer_replaces_the_fields_it_names_and_keeps_the_rest() -> None:
    base = {"model": "default", "temperature": 0.2, "n_ctx": 4096}
    assert merge_llm(base, {"model": "m.gguf"}, None, {}) == {**base, "model": "m.gguf"}


def test_changing_the_backend_drops_the_old_backends_fields_and_model() -> None:
    base = {"model": "x.gguf", "temperature": 0.2, "n_ctx": 4096, "parallel": 2}
    merged = merge_llm(base, SERVER)
    assert merged == {**SERVER, "temperature": 0.2}
    back = merge_llm(merged | {"api_key_env": "K"}, {"backend": "llamacpp"})
    assert back == {"backend": "llamacpp", "temperature": 0.2}


def test_a_config_object_overrides_only_what_it_was_given() -> None:
    override = OpenAIConfig(backend="openai", model="served", base_url="http://h/v1")
    merged = merge_llm({"temperature": 0.2, "max_tokens": 99}, override)
    assert merged == {**SERVER, "temperature": 0.2, "max_tokens": 99}


def test_override_llm_validates_the_result() -> None:
    base = LlamaCppConfig(temperature=0.3, n_ctx=4096)
    chosen = override_llm(base, SERVER)
    assert isinstance(chosen, OpenAIConfig) and chosen.temperature == 0.3
    assert override_llm(base, None) is base
    with pytest.raises(ConfigError, match=r"field llm.temperature"):
        override_llm(base, {"temperature": 9})


def test_the_override_is_part_of_the_spec_hash() -> None:
    loaded = spec_from_dict(sentiment_spec())
    assert loaded.with_llm(None) is loaded
    assert loaded.with_llm({"n_threads": 1}).spec.spec_hash() == loaded.spec.spec_hash()
    assert loaded.with_llm({"model": "x.gguf"}).spec.spec_hash() != loaded.spec.spec_hash()


@pytest.mark.parametrize(
    ("current", "options", "layer"),
    [
        ({}, {"model": "default"}, {"backend": "llamacpp", "model": "default"}),
        (SERVER, {"model": "/m/q.GGUF"}, {"backend": "llamacpp", "model": "/m/q.GGUF"}),
        (
            {},
            {"base_url": "http://s/v1", "model": "q"},
            {**SERVER, "base_url": "http://s/v1", "model": "q"},
        ),
        # A server in the file: a bare name is the name it serves, --base-url keeps its model.
        (SERVER, {"model": "other"}, {"model": "other"}),
        (SERVER, {"base_url": "http://s/v1"}, {"backend": "openai", "base_url": "http://s/v1"}),
        ({}, {"threads": 1, "n_ctx": 8192}, {"n_threads": 1, "n_ctx": 8192}),
        ({"concurrency": 8}, {"parallel": 2}, {"parallel": 2, "concurrency": 8}),
        ({}, {"parallel": 6}, {"parallel": 6, "concurrency": 12}),
        (SERVER, {"parallel": 16, "api_key_env": "K"}, {"concurrency": 16, "api_key_env": "K"}),
    ],
)
def test_shortcuts(current: dict, options: dict, layer: dict) -> None:  # type: ignore[type-arg]
    assert shortcut_layer(current, **options) == layer


@pytest.mark.parametrize(
    ("current", "options", "message"),
    [
        ({}, {"base_url": "http://s/v1"}, "--base-url needs --model NAME"),
        ({}, {"model": "qwen"}, "a model served by name needs --base-url URL"),
        ({}, {"base_url": "http://s/v1", "model": "q", "threads": 2}, "--threads sets the embed"),
        (SERVER, {"n_ctx": 4096}, "--n-ctx sets the embedded model"),
        ({}, {"api_key_env": "K"}, "--api-key-env names the key of a server: add --base-url"),
    ],
)
def test_shortcuts_that_do_not_fit_say_how_to_fix_them(
    current: dict,  # type: ignore[type-arg]
    options: dict,  # type: ignore[type-arg]
    message: str,
) -> None:
    with pytest.raises(UsageError, match=message):
        shortcut_layer(current, **options)


def test_an_llm_file_is_read_with_its_lines(tmp_path: Path) -> None:
    path = tmp_path / "server.yaml"
    path.write_text("llm:\n  backend: openai\n  model: q\n  base_url: http://s/v1\n")
    block, lines = load_llm_file(path)
    assert block == {"backend": "openai", "model": "q", "base_url": "http://s/v1"}
    assert lines[("llm", "model")] == 3


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name: x\nllm:\n  model: m\n", r"llm.yaml, line 1, field name: an --llm file holds only"),
        ("llm: qwen\n", r"llm.yaml, line 1, field llm: the llm section is a mapping"),
        ("model: m\n", r"llm.yaml, line 1, field model: an --llm file holds only"),
        ("llm:\n", r"llm.yaml: no llm: block"),
        ("- llm\n", r"llm.yaml: an --llm file is a mapping with one key"),
    ],
)
def test_a_bad_llm_file_names_file_line_and_field(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "llm.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_llm_file(path)


def test_validation_errors_point_into_the_file(tmp_path: Path) -> None:
    path = tmp_path / "llm.yaml"
    path.write_text("llm:\n  model: m.gguf\n  n_ctx: 4096\n  temprature: 0.1\n")
    block, lines = load_llm_file(path)
    with pytest.raises(ConfigError, match=r"llm.yaml, line 4, field llm.temprature: unknown"):
        validate_llm(block, str(path), lines)
    server = {**block, "backend": "openai", "base_url": "http://s/v1"}
    server.pop("temprature")
    with pytest.raises(
        ConfigError, match=r"line 3, field llm.n_ctx: an option of backend llamacpp"
    ):
        validate_llm(server, str(path), lines)
