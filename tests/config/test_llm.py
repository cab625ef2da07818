from pathlib import Path

import pytest

from datarefinery.config import LlamaCppConfig, OpenAIConfig, load_spec, spec_from_dict
from datarefinery.config.llm import llm_identity
from datarefinery.errors import ConfigError
from datarefinery.llm.factory import make_backend
from datarefinery.llm.llamacpp import LlamaCppBackend
from datarefinery.loop.spec import load_s3_spec
from tests.support.specs import sentiment_spec

EXAMPLES = Path(__file__).parent.parent.parent / "examples"
SERVER = {"backend": "openai", "base_url": "http://h/v1", "model": "m"}


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(text)
    return path


def test_the_backend_chooses_the_block() -> None:
    assert isinstance(spec_from_dict(sentiment_spec()).spec.llm, LlamaCppConfig)
    server = spec_from_dict(sentiment_spec(**SERVER, dialect="vllm")).spec.llm
    assert isinstance(server, OpenAIConfig)
    assert server.dialect == "vllm"


def test_an_option_of_the_other_backend_names_field_line_and_backend(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "name: x\nllm:\n  backend: openai\n  base_url: http://h/v1\n  model: m\n  n_ctx: 4096\n"
        "steps:\n  - zero_shot: {}\n",
    )
    with pytest.raises(ConfigError) as info:
        load_spec(path)
    message = str(info.value)
    assert f"{path}, line 6, field llm.n_ctx: an option of backend llamacpp" in message
    assert "this block is backend openai" in message


def test_a_server_option_on_the_embedded_backend_is_an_error() -> None:
    with pytest.raises(ConfigError, match=r"field llm\.dialect: an option of backend openai"):
        spec_from_dict(sentiment_spec(dialect="vllm"))


def test_an_unknown_backend_is_reported_at_its_key(tmp_path: Path) -> None:
    path = write(tmp_path, "name: x\nllm:\n  backend: vllm\nsteps:\n  - zero_shot: {}\n")
    with pytest.raises(ConfigError, match=r"line 3, field llm\.backend: Input should be"):
        load_spec(path)


def test_the_server_block_says_what_it_needs() -> None:
    with pytest.raises(ConfigError, match=r"field llm\.base_url: backend 'openai' needs base_url"):
        spec_from_dict(sentiment_spec(backend="openai", model="m"))
    with pytest.raises(ConfigError, match=r"needs model: the model name the server serves"):
        spec_from_dict(sentiment_spec(backend="openai", base_url="http://h/v1"))
    with pytest.raises(ConfigError, match=r"needs model"):
        spec_from_dict(sentiment_spec(backend="openai", base_url="http://h/v1", model="default"))


def test_a_section_that_is_not_a_mapping_is_an_error() -> None:
    spec = sentiment_spec()
    spec["llm"] = 3
    with pytest.raises(ConfigError, match="field llm: the llm section is a mapping of options"):
        spec_from_dict(spec)


# Computed with the one flat LLMConfig of before the split into backend blocks: run directories
# made then resume only if these stay the same.
@pytest.mark.parametrize(
    ("llm", "expected"),
    [
        ({}, "36da09b51adaec0c"),
        ({"n_ctx": 4096, "parallel": 8, "n_threads": 2, "model": "x.gguf"}, "015187b62e4046a4"),
        (SERVER, "de63650612ef72b8"),
        ({**SERVER, "api_key_env": "K", "dialect": "vllm", "temperature": 0.3}, "30133580fda34eaa"),
    ],
)
def test_spec_hash_is_the_one_of_earlier_versions(llm: dict[str, object], expected: str) -> None:
    assert spec_from_dict(sentiment_spec(**llm)).spec.spec_hash() == expected


def test_example_spec_hashes_are_the_ones_of_earlier_versions() -> None:
    assert load_spec(EXAMPLES / "sentiment.yaml").spec.spec_hash() == "c40492218afc30a5"
    assert load_s3_spec(EXAMPLES / "s3_imdb.yaml").spec.spec_hash() == "d0140dcc64cfbf6e"


def test_drafts_and_prefix_reuse_are_on_by_default_and_validated(tmp_path: Path) -> None:
    llm = spec_from_dict(sentiment_spec()).spec.llm
    assert isinstance(llm, LlamaCppConfig)
    assert (llm.draft.kind, llm.draft.max_tokens, llm.prefix_reuse) == ("prompt_lookup", 8, True)
    off = spec_from_dict(sentiment_spec(draft={"kind": "off"}, prefix_reuse=False)).spec.llm
    assert isinstance(off, LlamaCppConfig) and off.draft.kind == "off" and not off.prefix_reuse
    path = write(
        tmp_path,
        "name: x\nllm:\n  draft:\n    kind: prompt_lookup\n    max_tokens: 0\n"
        "steps:\n  - zero_shot: {}\n",
    )
    with pytest.raises(ConfigError, match=r"line 5, field llm\.draft\.max_tokens"):
        load_spec(path)
    with pytest.raises(ConfigError, match=r"field llm\.draft\.kind"):
        spec_from_dict(sentiment_spec(draft={"kind": "ngram"}))
    with pytest.raises(ConfigError, match=r"field llm\.draft: an option of backend llamacpp"):
        spec_from_dict(sentiment_spec(**SERVER, draft={"kind": "off"}))


def test_drafts_and_prefix_reuse_leave_the_spec_identity_alone() -> None:
    # They change how fast replies come, not what they are: a run resumes with them changed.
    plain = spec_from_dict(sentiment_spec()).spec.llm
    changed = spec_from_dict(sentiment_spec(draft={"kind": "off"}, prefix_reuse=False)).spec.llm
    assert llm_identity(plain) == llm_identity(changed)
    assert "draft" not in llm_identity(plain)


def test_batch_invariance_is_on_by_default_reaches_the_backend_and_is_execution_only() -> None:
    plain = spec_from_dict(sentiment_spec()).spec.llm
    fast = spec_from_dict(sentiment_spec(batch_invariant=False)).spec.llm
    assert isinstance(plain, LlamaCppConfig) and plain.batch_invariant
    assert isinstance(fast, LlamaCppConfig) and not fast.batch_invariant
    backends = make_backend(plain), make_backend(fast)
    assert all(isinstance(b, LlamaCppBackend) for b in backends)
    assert [b.batch_invariant for b in backends] == [True, False]  # type: ignore[attr-defined]
    assert llm_identity(plain) == llm_identity(fast)
    with pytest.raises(
        ConfigError, match=r"field llm\.batch_invariant: an option of backend llamacpp"
    ):
        spec_from_dict(sentiment_spec(**SERVER, batch_invariant=True))
