"""The review decisions store: one row per decision, newest in force, safe across processes."""

import multiprocessing
from pathlib import Path

import pytest

from datarefinery.decisions import Decision, DecisionStore
from datarefinery.errors import ConfigError


def test_the_newest_decision_is_in_force_and_history_is_kept(tmp_path: Path) -> None:
    store = DecisionStore.of_run(tmp_path)
    store.record(Decision("r1", "accept", by="ana", at="2026-12-02T10:00:00+00:00"))
    store.record(
        Decision("r1", "correct", by="bo", label="negative", at="2026-12-02T10:05:00+00:00")
    )
    store.record(Decision("r2", "reject", by="ana", reason="off topic"))
    latest = DecisionStore.of_run(tmp_path).latest()  # a fresh handle: what a restart sees
    assert latest["r1"].action == "correct" and latest["r1"].label == "negative"
    assert latest["r1"].by == "bo"
    assert latest["r2"].provenance()["reason"] == "off topic"
    assert [d.by for d in store.history("r1")] == ["ana", "bo"]


def test_edits_keep_their_fields(tmp_path: Path) -> None:
    store = DecisionStore.of_run(tmp_path)
    store.record(Decision("r1", "edit", by="ana", fields={"text": "fixed ünïcode"}))
    assert store.latest()["r1"].fields == {"text": "fixed ünïcode"}


def test_the_digest_changes_when_a_decision_changes(tmp_path: Path) -> None:
    store = DecisionStore.of_run(tmp_path)
    empty = store.digest()
    store.record(Decision("r1", "accept", by="ana", at="t1"))
    first = store.digest()
    assert first != empty
    assert store.digest(["r2"]) == empty  # only the named records count
    store.record(Decision("r1", "reject", by="ana", reason="dup", at="t2"))
    assert store.digest() != first


def test_a_bulk_action_is_one_transaction(tmp_path: Path) -> None:
    store = DecisionStore.of_run(tmp_path)
    n = store.record_many(Decision(f"r{i}", "accept", by="ana") for i in range(500))
    assert n == 500 and len(store.latest()) == 500


def test_reading_a_run_without_decisions_creates_nothing(tmp_path: Path) -> None:
    assert DecisionStore.of_run(tmp_path).latest() == {}
    assert not (tmp_path / "review").exists()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"action": "maybe"}, "unknown review action"),
        ({"action": "accept", "by": " "}, "reviewer's name"),
        ({"action": "correct"}, "corrected label"),
        ({"action": "edit"}, "fields it changes"),
    ],
)
def test_bad_decisions_say_what_is_missing(kwargs: dict, message: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(ConfigError, match=message):
        Decision("r1", **{"by": "ana", **kwargs})


def _write(path: str, start: int) -> None:
    store = DecisionStore(Path(path))
    for i in range(start, start + 50):
        store.record(Decision(f"r{i}", "accept", by=f"p{start}"))


def test_two_processes_write_at_once_without_losing_a_decision(tmp_path: Path) -> None:
    path = str(tmp_path / "review" / "decisions.sqlite")
    procs = [multiprocessing.Process(target=_write, args=(path, s)) for s in (0, 50)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert len(DecisionStore(Path(path)).latest()) == 100
