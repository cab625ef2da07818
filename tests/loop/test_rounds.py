"""The pieces of the shared round loop: merging a round's records, choosing its examples (the
loop itself is tested through ``loop.s3`` and ``loop.qa``)."""

from __future__ import annotations

from datarefinery.loop.rounds import choose_examples, merge
from datarefinery.records import Record


def record(id_: str, text: str, label: str) -> Record:
    return Record(id=id_, fields={"text": text, "label": label})


def test_merge_drops_repeats_ignoring_case_and_spacing() -> None:
    current = [record("a", "Great film", "positive")]
    new = [record("b", "great   FILM", "positive"), record("c", "new one", "negative")]
    merged, dropped = merge(current, new, ["text"])
    assert [r.id for r in merged] == ["a", "c"] and dropped == 1
    merged, dropped = merge(merged, [record("d", "new one", "negative")], ["text"])
    assert len(merged) == 2 and dropped == 1


def test_choose_examples_is_a_seeded_sample_in_order() -> None:
    pool = [record(str(i), str(i), "positive") for i in range(10)]
    first = choose_examples(pool, 4, seed=5)
    assert first == choose_examples(pool, 4, seed=5)
    assert len(first) == 4 and [int(r.id) for r in first] == sorted(int(r.id) for r in first)
    assert choose_examples(pool, None, seed=5) == pool
