"""A datarefinery error raised where a shard ran (a Ray actor, a worker process), carried back to
the process that commits: as (kind, message, HTTP status, retry-after), rebuilt there, because
exception objects do not all survive pickling.
"""

from __future__ import annotations

from datarefinery.errors import (
    BackendError,
    BudgetExceededError,
    DatarefineryError,
    FatalBackendError,
    RequestRejectedError,
    RetryableBackendError,
    UsageError,
)

# The kinds keep the families apart, and within backend errors, retryable from fatal; most
# specific first.
_KINDS: tuple[tuple[str, type[DatarefineryError]], ...] = (
    ("budget", BudgetExceededError),
    ("rejected", RequestRejectedError),
    ("fatal", FatalBackendError),
    ("retryable", RetryableBackendError),
    ("backend", BackendError),
)
Failure = tuple[str, str, int | None, float | None]


def describe_failure(exc: DatarefineryError) -> Failure:
    kind = next((name for name, cls in _KINDS if isinstance(exc, cls)), "usage")
    status = exc.status if isinstance(exc, BackendError) else None
    retry_after = exc.retry_after if isinstance(exc, RetryableBackendError) else None
    return kind, str(exc), status, retry_after


def rebuild_failure(
    kind: str, message: str, status: int | None, retry_after: float | None
) -> DatarefineryError:
    if kind == "budget":
        return BudgetExceededError(message)
    if kind == "retryable":
        return RetryableBackendError(message, status=status, retry_after=retry_after)
    backend = {"rejected": RequestRejectedError, "fatal": FatalBackendError}
    if kind in backend or kind == "backend":
        return backend.get(kind, BackendError)(message, status=status)
    return UsageError(message)
