"""The ``llm:`` section: which model answers and how calls are made, one block per backend.

``LLMConfig`` is a union discriminated by ``backend``: ``llamacpp`` (the default; the embedded
model, with ``n_ctx``, ``parallel``, ``n_threads``) or ``openai`` (any OpenAI-compatible server,
with ``base_url``, ``api_key_env``, ``dialect``). What both have (sampling defaults, concurrency,
rate limits, retries, budget, cache) is in ``LLMSettings``. An option of the other backend is an
error that says which backend it belongs to.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    ValidatorFunctionWrapHandler,
    WrapValidator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from datarefinery.config.loading import StrictModel

Backend = Literal["llamacpp", "openai"]
Dialect = Literal["auto", "llamacpp", "openai", "vllm", "none"]


class BudgetConfig(StrictModel):
    max_tokens: int | None = Field(default=None, ge=1)
    max_cost_usd: float | None = Field(default=None, gt=0)


class PricingConfig(StrictModel):
    input_per_mtok: float = Field(default=0.0, ge=0)
    output_per_mtok: float = Field(default=0.0, ge=0)


class LLMSettings(StrictModel):
    """What every backend's block has. Sampling values are defaults that steps may override."""

    model: str = "default"
    temperature: float = Field(default=0.8, ge=0, le=2)
    top_p: float = Field(default=0.95, gt=0, le=1)
    max_tokens: int = Field(default=256, ge=1)
    frequency_penalty: float = 0.0
    presence_penalty: float = 0.0
    concurrency: int = Field(default=4, ge=1, le=1024)
    requests_per_minute: float | None = Field(default=None, gt=0)
    tokens_per_minute: float | None = Field(default=None, gt=0)
    max_retries: int = Field(default=6, ge=0, le=50)
    timeout_s: float | None = Field(default=300.0, gt=0)
    budget: BudgetConfig = Field(default_factory=BudgetConfig)
    pricing: PricingConfig = Field(default_factory=PricingConfig)
    cache: bool = True
    cache_path: str | None = None


class DraftConfig(StrictModel):
    """Speculative decoding of the embedded model: ``prompt_lookup`` drafts up to ``max_tokens``
    tokens per step from the request's own prompt (what a rewrite copies), checked in the same
    batch; ``off`` decodes one token per step. Replies are the same either way.
    """

    kind: Literal["prompt_lookup", "off"] = "prompt_lookup"
    max_tokens: int = Field(default=8, ge=1, le=32)


class LlamaCppConfig(LLMSettings):
    """The embedded llama.cpp model: ``model`` is ``default`` (the packaged SmolLM2) or a GGUF
    file path.
    """

    backend: Literal["llamacpp"] = "llamacpp"
    n_ctx: int = Field(default=2048, ge=256, description="context per sequence (llamacpp)")
    n_threads: int | None = Field(default=None, ge=1)
    parallel: int = Field(
        default=4, ge=1, le=64, description="sequences decoded together in one batch (llamacpp)"
    )
    draft: DraftConfig = Field(default_factory=DraftConfig)
    prefix_reuse: bool = Field(
        default=True, description="copy a prompt prefix shared with a running sequence (llamacpp)"
    )
    batch_invariant: bool = Field(
        default=True,
        description="keep llama.cpp's kernels whose rounding depends on the batch from changing "
        "a reply, so that a reply never depends on what else is in its batch (llamacpp); false "
        "lets it repack Q4_0 / Q4_K / IQ4_NL weights and batch K-quant rows freely, faster for "
        "those types",
    )


class OpenAIConfig(LLMSettings):
    """An OpenAI-compatible server: ``model`` is the name the server serves; ``api_key_env`` names
    the environment variable holding the key (the key itself never enters a spec).
    """

    backend: Literal["openai"]
    model: str
    base_url: str
    api_key_env: str | None = None
    dialect: Dialect = "auto"

    @model_validator(mode="after")
    def _named_model(self) -> OpenAIConfig:
        if self.model == "default":
            raise ValueError(_NEEDS["model"])
        return self


# What a missing option of the openai block should say: what to write, not just "field required".
_NEEDS = {
    "base_url": "backend 'openai' needs base_url (e.g. http://127.0.0.1:8000/v1)",
    "model": "backend 'openai' needs model: the model name the server serves",
}

_BLOCKS: dict[str, type[LlamaCppConfig] | type[OpenAIConfig]] = {
    "llamacpp": LlamaCppConfig,
    "openai": OpenAIConfig,
}


class _BackendOnly(BaseModel):
    """The discriminator alone: an unknown backend is reported at ``llm.backend``."""

    backend: Backend = "llamacpp"


def _backend_of(value: Any) -> str | None:
    if isinstance(value, dict):
        return str(value.get("backend", "llamacpp"))
    return getattr(value, "backend", None)


def _validate_block(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    """Validate a mapping as its backend's block, so errors are located at ``llm.<field>`` (the
    tagged union itself would put the tag in the location); other values go to the union.
    """
    if not isinstance(value, dict):
        return handler(value)
    _BackendOnly.model_validate({"backend": value.get("backend", "llamacpp")})
    block = _BLOCKS[str(_backend_of(value))]
    try:
        return block.model_validate(value)
    except ValidationError as exc:
        raise _explained(exc, block) from None


def _explained(exc: ValidationError, block: type[BaseModel]) -> ValidationError:
    """``exc`` with better words for two mistakes: an option of the other backend (``n_ctx`` in an
    openai block is not a misspelling) and a missing openai option (say what to write).
    """
    details: list[InitErrorDetails] = []
    changed = False
    for error in exc.errors():
        loc, kind = error["loc"], error["type"]
        message = None
        if kind == "extra_forbidden" and len(loc) == 1:
            owner = _owner(str(loc[0]), block)
            if owner is not None:
                here = next(name for name, cls in _BLOCKS.items() if cls is block)
                message = (
                    f"an option of backend {owner}; this block is backend {here} "
                    "(remove it, or change the backend)"
                )
        elif kind == "missing" and len(loc) == 1 and block is OpenAIConfig:
            message = _NEEDS.get(str(loc[0]))
        if message is not None:
            changed = True
            custom = PydanticCustomError("llm_option", message)
            details.append({"type": custom, "loc": loc, "input": error["input"]})
        else:
            detail: InitErrorDetails = {"type": kind, "loc": loc, "input": error["input"]}
            if "ctx" in error:
                detail["ctx"] = error["ctx"]
            details.append(detail)
    return ValidationError.from_exception_data(exc.title, details) if changed else exc


def _owner(key: str, block: type[BaseModel]) -> str | None:
    """The backend whose block has option ``key`` when ``block`` does not."""
    if key in block.model_fields:
        return None
    return next((name for name, cls in _BLOCKS.items() if key in cls.model_fields), None)


LLMConfig = Annotated[
    Annotated[LlamaCppConfig, Tag("llamacpp")] | Annotated[OpenAIConfig, Tag("openai")],
    Discriminator(
        _backend_of,
        custom_error_type="llm_section",
        custom_error_message="the llm section is a mapping of options (backend:, model:, ...)",
    ),
    WrapValidator(_validate_block),
]
"""The ``llm:`` section: a ``LlamaCppConfig`` or an ``OpenAIConfig``, chosen by ``backend``."""


# Settings that change how a run is executed but not what it produces: they stay out of the spec
# hash, so a run can be resumed with more concurrency or a larger budget.
EXECUTION_ONLY_LLM_KEYS = frozenset(
    {
        "concurrency",
        "requests_per_minute",
        "tokens_per_minute",
        "max_retries",
        "timeout_s",
        "budget",
        "pricing",
        "cache",
        "cache_path",
        "n_threads",
        "parallel",
        "draft",
        "prefix_reuse",
        "batch_invariant",
    }
)

# The keys (with their defaults) that the one flat LLMConfig of earlier versions had and a block
# lacks: they go into the hash as before, so run directories made then still resume.
_FLAT_DEFAULTS: dict[str, Any] = {
    "base_url": None,
    "api_key_env": None,
    "dialect": "auto",
    "n_ctx": 2048,
}


def llm_identity(llm: LlamaCppConfig | OpenAIConfig) -> dict[str, Any]:
    """The part of an ``llm:`` section that decides what a run produces, for the spec hash."""
    dumped = {**_FLAT_DEFAULTS, **llm.model_dump(mode="json")}
    return {k: v for k, v in dumped.items() if k not in EXECUTION_ONLY_LLM_KEYS}
