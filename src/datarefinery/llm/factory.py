"""Build the backend and engine a spec asks for."""

from __future__ import annotations

from pathlib import Path

from datarefinery.config import LLMConfig
from datarefinery.llm.base import Backend, Usage
from datarefinery.llm.cache import ResponseCache
from datarefinery.llm.engine import Engine
from datarefinery.llm.limits import Budget, Pricing


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
        config.model, n_ctx=config.n_ctx, n_threads=config.n_threads, parallel=config.parallel
    )


def make_engine(
    config: LLMConfig,
    *,
    backend: Backend | None = None,
    cache_path: Path | None = None,
    spent: Usage | None = None,
    engine_class: type[Engine] = Engine,
) -> Engine:
    """An engine for ``config``; ``spent`` is what earlier sessions of the run already used, so the
    budget holds across resumes. ``engine_class`` lets an executor supply an engine whose cache and
    limits live elsewhere (the Ray executor's workers)."""
    cache = None
    if config.cache:
        path = Path(config.cache_path) if config.cache_path else cache_path
        if path is not None:
            cache = ResponseCache(path)
    budget = Budget(
        max_tokens=config.budget.max_tokens,
        max_cost_usd=config.budget.max_cost_usd,
        pricing=Pricing(config.pricing.input_per_mtok, config.pricing.output_per_mtok),
        spent=spent,
    )
    return engine_class(
        backend or make_backend(config),
        cache=cache,
        concurrency=config.concurrency,
        requests_per_minute=config.requests_per_minute,
        tokens_per_minute=config.tokens_per_minute,
        max_retries=config.max_retries,
        timeout_s=config.timeout_s,
        budget=budget,
    )
