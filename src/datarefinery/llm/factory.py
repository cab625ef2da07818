"""Build the backend, response cache, admission control and engine a spec asks for."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TypeVar

from datarefinery.config import LLMConfig
from datarefinery.llm.base import Backend, Usage
from datarefinery.llm.cache import ResponseCache, ResponseStore
from datarefinery.llm.engine import Engine
from datarefinery.llm.limits import AdmissionControl, Budget, Limits, Pricing


def make_backend(config: LLMConfig) -> Backend:
    if config.backend == "openai":
        from datarefinery.llm.openai_compat import OpenAICompatBackend

        assert config.base_url is not None  # checked by LLMConfig
        return OpenAICompatBackend(
            base_url=config.base_url,
            model=config.model,
            api_key_env=config.api_key_env,
            dialect=config.dialect,
        )
    from datarefinery.llm.llamacpp import LlamaCppBackend

    return LlamaCppBackend(
        config.model,
        n_ctx=config.n_ctx,
        n_threads=config.n_threads,
        parallel=config.parallel,
        draft_tokens=config.draft.max_tokens if config.draft.kind == "prompt_lookup" else 0,
        prefix_reuse=config.prefix_reuse,
        batch_invariant=config.batch_invariant,
    )


def require_installed(configs: Iterable[LLMConfig]) -> None:
    """Raise ``MissingDependencyError`` when a block's backend is not installed (the embedded one
    is an extra), so a run stops before it opens its directory rather than at its first call.
    """
    for config in configs:
        if config.backend == "llamacpp":
            from datarefinery.llm.llamacpp import require_embedded

            require_embedded(config.model)


def make_cache(config: LLMConfig, default_path: Path | None) -> ResponseCache | None:
    """The response cache at ``llm.cache_path``, else at ``default_path`` (the run directory's);
    ``None`` when caching is off or there is nowhere to keep it.
    """
    if not config.cache:
        return None
    path = Path(config.cache_path) if config.cache_path else default_path
    return ResponseCache(path) if path is not None else None


def make_limits(config: LLMConfig, spent: Usage | None = None) -> Limits:
    """The budget and rate limits of ``config``; ``spent`` is what earlier sessions of the run
    already used, so the budget holds across resumes.
    """
    budget = Budget(
        max_tokens=config.budget.max_tokens,
        max_cost_usd=config.budget.max_cost_usd,
        pricing=Pricing(config.pricing.input_per_mtok, config.pricing.output_per_mtok),
        spent=spent,
    )
    return Limits(
        budget,
        requests_per_minute=config.requests_per_minute,
        tokens_per_minute=config.tokens_per_minute,
    )


E = TypeVar("E", bound=Engine)


def make_engine(
    config: LLMConfig,
    backend: Backend,
    cache: ResponseStore | None,
    admission: AdmissionControl,
    engine_class: type[E] = Engine,  # type: ignore[assignment]
) -> E:
    """An engine with ``config``'s retries, timeout and concurrency over the given parts
    (``engine_class``: an ``Engine`` subclass, e.g. one that records its calls).
    """
    return engine_class(
        backend,
        cache,
        admission,
        concurrency=config.concurrency,
        max_retries=config.max_retries,
        timeout_s=config.timeout_s,
    )
