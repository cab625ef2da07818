"""Every exception datarefinery raises, in one place.

The hierarchy has three families, and code that catches errors should catch a family, not a leaf::

    DatarefineryError
    ├── UsageError                 the user can fix it; the message says how
    │   ├── ConfigError            a spec or option is invalid (file, line, field)
    │   ├── InputFileError         an input data file is unreadable or malformed (file, line, field)
    │   ├── ModelNotFoundError     a model file or package is missing
    │   ├── MissingDependencyError an optional extra is not installed (carries the pip hint)
    │   └── RunDirError            the output directory holds a different run
    ├── BackendError               a model call failed
    │   ├── RetryableBackendError  429 / 5xx / timeout / connection error (status, retry_after)
    │   └── FatalBackendError      anything a retry cannot fix (auth, unknown model, ...)
    │       └── RequestRejectedError   the backend refused this one request (too long, invalid);
    │                                  the step rejects the record and the run goes on
    ├── BudgetExceededError        the hard token or cost budget would be overrun; the run
    │                              stops cleanly
    └── WaitingForReview           a ``review`` step has records no person has decided yet; the
                                   run stops cleanly with status ``waiting_for_review``

Records that fail a step are not exceptions: they travel as data (``records.Rejected``) and end up
in ``rejected.jsonl`` with the step and the reason.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from datarefinery.usage import Usage


class DatarefineryError(Exception):
    """Base class of every datarefinery exception."""


class UsageError(DatarefineryError):
    """Something the user can fix; the message says what and how."""


class ConfigError(UsageError):
    """An invalid spec or option. ``where`` names the file, line and field when known."""

    def __init__(self, message: str, *, where: str | None = None) -> None:
        self.where = where
        super().__init__(f"{where}: {message}" if where else message)


class InputFileError(UsageError):
    """A data file that cannot be read as records."""

    def __init__(
        self,
        path: str,
        message: str,
        *,
        line: int | None = None,
        field: str | None = None,
    ) -> None:
        self.path = path
        self.line = line
        self.field = field
        where = path if line is None else f"{path}, line {line}"
        if field is not None:
            where += f", field {field!r}"
        super().__init__(f"{where}: {message}")


class ModelNotFoundError(UsageError):
    """A model file or model package is missing."""


class MissingDependencyError(UsageError):
    """An optional dependency is not installed."""

    def __init__(self, what: str, extra: str, *, also: str = "") -> None:
        self.extra = extra
        message = f"{what} needs an optional dependency: pip install 'datarefinery[{extra}]'"
        super().__init__(f"{message}. {also}" if also else message)


class RunDirError(UsageError):
    """The output directory belongs to another run (or is not a run directory)."""


class BackendError(DatarefineryError):
    """A model call failed. ``status`` is the HTTP status when there was one; ``usage`` the tokens
    the call cost when the backend knows them (without it the budget books the call's whole
    reservation).
    """

    def __init__(
        self, message: str, *, status: int | None = None, usage: Usage | None = None
    ) -> None:
        self.status = status
        self.usage = usage
        super().__init__(message)


class RetryableBackendError(BackendError):
    """A failure that may pass: rate limiting, server errors, timeouts, dropped connections."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
        usage: Usage | None = None,
    ) -> None:
        self.retry_after = retry_after
        super().__init__(message, status=status, usage=usage)


class FatalBackendError(BackendError):
    """A failure a retry cannot fix (authentication, unknown model); it stops the run."""


class RequestRejectedError(FatalBackendError):
    """The backend refused this particular request (prompt too long, invalid parameters).

    Steps turn it into a rejected record; other requests are unaffected.
    """


class BudgetExceededError(DatarefineryError):
    """The next call would overrun the run's hard token or cost budget."""


class WaitingForReview(DatarefineryError):
    """A ``review`` step's input holds ``waiting`` records that need people's decisions first."""

    def __init__(self, message: str, *, step: str, waiting: int) -> None:
        self.step = step
        self.waiting = waiting
        super().__init__(message)
