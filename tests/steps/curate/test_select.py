import numpy as np
import pytest

from datarefinery.records import Record
from datarefinery.steps.curate.select import Select, SelectConfig, k_center_greedy, quotas
from tests.steps.curate.helpers import kept, rejected, run_step


def test_k_center_greedy_hand_checked() -> None:
    # points on a line: 0, 1, 2, 10; centroid 3.25 -> start at 2, then the farthest (10),
    # then the farthest from {2, 10} (0)
    vectors = np.array([[0.0], [1.0], [2.0], [10.0]], dtype=np.float32)
    chosen, gaps = k_center_greedy(vectors, 3)
    assert chosen == [2, 3, 0]
    assert gaps[1:] == [8.0, 2.0]


def test_quotas_proportional_equal_and_capped() -> None:
    assert quotas({"a": 6, "b": 2}, 4, "proportional") == {"a": 3, "b": 1}
    assert quotas({"a": 6, "b": 2}, 4, "equal") == {"a": 2, "b": 2}
    assert quotas({"a": 6, "b": 1}, 4, "equal") == {"a": 3, "b": 1}  # b cannot use its 2
    assert quotas({"a": 2, "b": 1}, 5, "equal") == {"a": 2, "b": 1}


@pytest.mark.slow
def test_select_keeps_diverse_records_per_label() -> None:
    texts = [
        ("A moving film with great acting.", "positive"),
        ("A moving film with great acting!", "positive"),
        ("The soundtrack was a joy from start to end.", "positive"),
        ("Boring plot and wooden acting.", "negative"),
        ("Boring plot, wooden acting.", "negative"),
        ("The cinema was cold and the seats broken.", "negative"),
    ]
    batch = [Record(f"r{i}", {"text": t, "label": lb}) for i, (t, lb) in enumerate(texts)]
    outputs = run_step(Select(SelectConfig(n=4)), batch)
    chosen = {r.id for r in kept(outputs)}
    assert len(chosen) == 4
    # one of each near-identical pair goes, the distinct record of each label stays
    assert {"r2", "r5"} <= chosen
    assert len(chosen & {"r0", "r1"}) == 1 and len(chosen & {"r3", "r4"}) == 1
    assert all(r.reason == "not_selected" for r in rejected(outputs))
