"""What a run reports its progress to (the CLI's progress bar implements it)."""

from __future__ import annotations

from typing import Protocol

from datarefinery.llm.engine import EngineStats


class ProgressSink(Protocol):
    """Told when a step starts and finishes and, in between, how many records went in and were
    kept or rejected. ``bind_engine`` hands over the run's engine counters (tokens, calls), which
    change as the run goes.
    """

    def bind_engine(self, stats: EngineStats | None) -> None: ...

    def step_started(self, name: str, total_in: int | None) -> None: ...

    def advance(self, records_in: int, kept: int, rejected: int) -> None: ...

    def step_finished(self, name: str) -> None: ...


class NullProgress:
    """Reports nowhere."""

    def bind_engine(self, stats: EngineStats | None) -> None:
        pass

    def step_started(self, name: str, total_in: int | None) -> None:
        pass

    def advance(self, records_in: int, kept: int, rejected: int) -> None:
        pass

    def step_finished(self, name: str) -> None:
        pass
