"""Routing uncertain records to people instead of rejecting them (the ``route`` option).

``label``, ``judge`` and ``consistency`` share one option shape:

- ``route: false`` (default): nothing is routed; the step rejects as it always did.
- ``route: true``: a record the step would reject as uncertain (``low_agreement``, ``low_score``,
  ``label_disagrees`` / ``answer_mismatch``) is kept instead, marked for review.
- ``route: {below: X}`` / ``route: {above: X}``: a record whose score (the one the step already
  thresholds: label agreement, the judge's mean, the re-labeling agreement or the classifier's
  confidence) is below / above X is kept and marked, even when the step would have rejected it.

A routed record carries ``scores["route"]`` (the step's name) and ``scores["route_reason"]`` (why,
e.g. ``label_agreement 0.50 < 0.67``); a later ``review`` step waits for people's decisions on it.
Failures that are not uncertainty (no valid answer at all) are still rejected.
"""

from __future__ import annotations

from pydantic import Field, model_validator

from datarefinery.records import Record, Rejected
from datarefinery.steps.base import StepConfig


class RouteRule(StepConfig):
    """Route records whose score is below or above a threshold."""

    below: float | None = Field(default=None, description="route a score below this")
    above: float | None = Field(default=None, description="route a score above this")

    @model_validator(mode="after")
    def _one_side(self) -> RouteRule:
        if (self.below is None) == (self.above is None):
            raise ValueError("route takes one threshold: {below: X} or {above: X}")
        return self


Route = bool | RouteRule


ROUTE_HELP = (
    "send uncertain records to review instead of rejecting them: true (what would be rejected "
    "as uncertain), {below: X} or {above: X} (on the step's score)"
)


def threshold_reason(route: Route, score_name: str, value: float | None) -> str | None:
    """Why a record with ``value`` is routed by a threshold rule (``None``: it is not)."""
    if not isinstance(route, RouteRule) or value is None:
        return None
    if route.below is not None and value < route.below:
        return f"{score_name} {value:.2f} < {route.below:g}"
    if route.above is not None and value > route.above:
        return f"{score_name} {value:.2f} > {route.above:g}"
    return None


def routed(record: Record, step: str, reason: str) -> Record:
    """``record`` marked for review by ``step``. A record an earlier step routed keeps that
    step's reason too, so the reviewer sees every doubt.
    """
    scores = dict(record.scores)
    earlier = scores.get("route_reason")
    if scores.get("route") not in (None, step) and earlier:
        reason = f"{earlier}; {reason}"
    scores["route"] = step
    scores["route_reason"] = reason
    return Record(record.id, record.fields, record.provenance, scores)


def route_or_reject(
    route: Route, rejection: Rejected, score_name: str, value: float | None
) -> Record | Rejected:
    """What becomes of a record the step would reject as uncertain: routed when the option says
    so (``true``, or its threshold matches ``value``), else the rejection itself.
    """
    reason = threshold_reason(route, score_name, value)
    if reason is None and route is True:
        reason = f"{rejection.reason}: {rejection.detail}"[:200]
    if reason is None:
        return rejection
    return routed(rejection.record, rejection.step, reason)


def route_kept(
    route: Route, record: Record, step: str, score_name: str, value: float | None
) -> Record:
    """A record the step keeps: routed as well when a threshold rule matches its score."""
    reason = threshold_reason(route, score_name, value)
    return record if reason is None else routed(record, step, reason)
