import time
from pathlib import Path

from datarefinery.records import Provenance, Record
from datarefinery.review.load import Shown, load_run
from datarefinery.review.queue import ReviewQueue, certainty
from tests.support.review import demo_records, write_run


def _shown(id: str, status: str = "kept", **scores: object) -> Shown:
    record = Record(id, {"text": id, "label": "positive"}, Provenance(step="input"), dict(scores))
    return Shown(record, status, "label")  # type: ignore[arg-type]


def test_certainty_is_the_lowest_confidence_like_score_on_0_to_1() -> None:
    scores = {"label_agreement": 0.8, "consistency_confidence": 0.7, "judge": 2.0, "x": 0.1}
    assert certainty(scores, {"judge"}) == (0.25, "judge")  # (2 - 1) / 4
    assert certainty(scores, set()) == (0.7, "consistency_confidence")
    assert certainty({"judge_reason": "fine", "x": 0.1}, {"judge"}) == (None, "")


def test_routed_first_then_refinement_outcomes_then_least_certain() -> None:
    shown = [
        _shown("sure", label_agreement=1.0),
        _shown("none"),
        _shown("unsure", label_agreement=0.4),
        _shown("patched", label_agreement=0.9, refine_outcome="rewritten_patched"),
        _shown("routed", "routed", label_agreement=0.6),
        _shown("middling", label_agreement=0.6),
    ]
    order = [e.id for e in ReviewQueue(shown).entries]
    assert order == ["routed", "patched", "unsure", "middling", "sure", "none"]


def test_sort_by_a_named_score_ascending_records_without_it_last() -> None:
    shown = [_shown("a", other=3), _shown("b"), _shown("c", other=1), _shown("d", "routed")]
    assert [e.id for e in ReviewQueue(shown, sort_by="other").entries] == ["c", "a", "b", "d"]


def test_filters_combine_and_count(tmp_path: Path) -> None:
    queue = ReviewQueue(load_run(write_run(tmp_path / "run", demo_records(100))).records)
    assert queue.count({}) == 100
    assert queue.count({"status": "routed"}) == 10
    assert queue.count({"label": "positive"}) == 50
    both = queue.matching({"status": "routed", "label": "negative"})
    assert len(both) == 10  # every routed record (i % 10 == 3) is odd: negative
    assert queue.count({"label": "neutral"}) == 0
    assert dict(queue.values("status")) == {"kept": 90, "routed": 10}


def test_paging_clamps_and_keeps_queue_order(tmp_path: Path) -> None:
    queue = ReviewQueue(load_run(write_run(tmp_path / "run", demo_records(120))).records)
    first = queue.page({}, 1, 50)
    assert (first.total, first.pages, len(first.entries)) == (120, 3, 50)
    assert all(e.shown.status == "routed" for e in first.entries[:12])
    last = queue.page({}, 99, 50)
    assert (last.number, len(last.entries)) == (3, 20)
    assert queue.page({"status": "routed"}, 1, 50).total == 12


def _time_pages(queue: ReviewQueue, filters: dict[str, str]) -> float:
    queue.page(filters, 1)  # a filtered view is built once, then cached
    started = time.perf_counter()
    for number in (1, 7, 400, 2000):
        queue.page(filters, number)
    return (time.perf_counter() - started) / 4


def test_a_page_of_100000_records_costs_what_a_page_of_1000_does() -> None:
    shown = [Shown(r, "kept", "label") for r in demo_records(100_000)]
    big, small = ReviewQueue(shown), ReviewQueue(shown[:1000])
    for filters in ({}, {"label": "negative", "status": "kept"}):
        big_time, small_time = _time_pages(big, filters), _time_pages(small, filters)
        # Slicing: both well under a millisecond; the bound leaves room for a busy machine.
        assert big_time < 0.005, (filters, big_time)
        assert big_time < 20 * small_time + 0.001, (filters, big_time, small_time)
