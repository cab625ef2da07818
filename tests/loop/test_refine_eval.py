from __future__ import annotations

from datarefinery.loop.refine_eval import sample_ids


def test_sample_is_seeded_and_complete_without_limit() -> None:
    ids = [str(i) for i in range(100)]
    assert sample_ids(ids, None, 0) == set(ids)
    assert sample_ids(ids, 10, 1) == sample_ids(ids, 10, 1) != sample_ids(ids, 10, 2)
    assert len(sample_ids(ids, 10, 1)) == 10
