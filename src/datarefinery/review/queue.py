"""The review queue: every shown record in uncertainty order, filtered and paged on the server.

The order (``refinery review --sort-by`` replaces it with one named score, ascending):

1. records a step routed to people (``scores["route"]``);
2. records a refinement step rewrote by patching or replaced (``rewritten_patched``,
   ``replaced`` in their scores or provenance);
3. everything else; within each group the least certain first, where a record's certainty is the
   lowest of its ``label_agreement``, any ``<step>_agreement`` or ``<step>_confidence`` (a
   consistency step's re-labeling agreement or classifier confidence) and its judge steps' mean
   scores scaled from 1-5 to 0-1. Records with none of these come last, in run order.

The queue is sorted once, when the page starts. Each filter facet is an index from value to
positions, so a filtered view costs one pass over its smallest facet, once: views are cached, and
a page is a slice of one.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from datarefinery.review.load import Shown

FACETS = ("status", "step", "label", "reason", "technique")
OUTCOMES = frozenset({"rewritten_patched", "replaced"})
_VIEWS_KEPT = 64


@dataclass(slots=True)
class Entry:
    shown: Shown
    position: int
    certainty: float | None
    certainty_from: str
    outcome: str | None

    @property
    def id(self) -> str:
        return self.shown.record.id

    def facet(self, name: str) -> str:
        shown = self.shown
        if name == "status":
            return shown.status
        if name == "step":
            return shown.step
        if name == "label":
            label = shown.record.fields.get("label")
            return "" if label is None else str(label)
        if name == "reason":
            return shown.reason
        return shown.record.provenance.technique


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        return None
    return float(value)


def certainty(scores: dict[str, Any], judge_steps: set[str]) -> tuple[float | None, str]:
    """The lowest of a record's confidence-like scores, each on 0-1, and which score it was."""
    candidates: list[tuple[float, str]] = []
    for key, value in scores.items():
        number = _number(value)
        if number is None:
            continue
        if key == "label_agreement" or key.endswith(("_agreement", "_confidence")):
            candidates.append((number, key))
        elif key in judge_steps:
            candidates.append((min(max((number - 1) / 4, 0.0), 1.0), key))
    if not candidates:
        return None, ""
    return min(candidates)


def outcome(shown: Shown) -> str | None:
    provenance = shown.record.provenance
    for value in (*shown.record.scores.values(), *provenance.conditioning.values()):
        if isinstance(value, str) and value in OUTCOMES:
            return value
    return None


@dataclass(frozen=True, slots=True)
class Page:
    entries: list[Entry]
    total: int
    number: int
    pages: int


class ReviewQueue:
    """Shown records in review order, with facet indexes and cached filtered views.

    ``filters`` map a facet name to the wanted value; absent or empty means any.
    """

    def __init__(
        self, shown: list[Shown], *, judge_steps: Collection[str] = (), sort_by: str | None = None
    ) -> None:
        entries = []
        for position, item in enumerate(shown):
            if sort_by:
                value = _number(item.record.scores.get(sort_by))
                sure, source = value, sort_by if value is not None else ""
            else:
                sure, source = certainty(item.record.scores, set(judge_steps))
            entries.append(Entry(item, position, sure, source, outcome(item)))
        key = _named_order if sort_by else _uncertainty_order
        self.entries: list[Entry] = sorted(entries, key=key)
        self.sort_by = sort_by
        self.by_id: dict[str, int] = {}
        for index, entry in enumerate(self.entries):
            self.by_id.setdefault(entry.id, index)
        self._facets: dict[str, dict[str, list[int]]] = {name: {} for name in FACETS}
        for index, entry in enumerate(self.entries):
            for name in FACETS:
                self._facets[name].setdefault(entry.facet(name), []).append(index)
        self._views: OrderedDict[tuple[tuple[str, str], ...], list[int]] = OrderedDict()

    def __len__(self) -> int:
        return len(self.entries)

    def values(self, name: str) -> list[tuple[str, int]]:
        """A facet's values with their counts, for the filter menus."""
        return sorted((value, len(at)) for value, at in self._facets[name].items() if value)

    def matching(self, filters: dict[str, str]) -> list[int]:
        """Positions in queue order of the entries every filter matches."""
        wanted = tuple(sorted((k, v) for k, v in filters.items() if k in FACETS and v))
        if not wanted:
            return list(range(len(self.entries)))
        view = self._views.get(wanted)
        if view is None:
            lists = [self._facets[name].get(value, []) for name, value in wanted]
            smallest = min(lists, key=len)
            view = [
                i
                for i in smallest
                if all(self.entries[i].facet(name) == value for name, value in wanted)
            ]
            self._views[wanted] = view
            if len(self._views) > _VIEWS_KEPT:
                self._views.popitem(last=False)
        self._views.move_to_end(wanted)
        return view

    def count(self, filters: dict[str, str]) -> int:
        return len(self.matching(filters))

    def page(self, filters: dict[str, str], number: int = 1, size: int = 50) -> Page:
        """Page ``number`` (from 1; clamped to the last) of the filtered queue."""
        wanted = tuple(sorted((k, v) for k, v in filters.items() if k in FACETS and v))
        total = len(self.entries) if not wanted else len(self.matching(filters))
        pages = max(1, -(-total // size))
        number = min(max(1, number), pages)
        start = (number - 1) * size
        if wanted:
            chosen = [self.entries[i] for i in self.matching(filters)[start : start + size]]
        else:
            chosen = self.entries[start : start + size]
        return Page(chosen, total, number, pages)


def _uncertainty_order(entry: Entry) -> tuple[int, float, int]:
    group = 0 if entry.shown.status == "routed" else 1 if entry.outcome else 2
    sure = math.inf if entry.certainty is None else entry.certainty
    return group, sure, entry.position


def _named_order(entry: Entry) -> tuple[int, float, int]:
    if entry.certainty is None:
        return 1, 0.0, entry.position
    return 0, entry.certainty, entry.position
