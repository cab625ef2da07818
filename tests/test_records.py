from datarefinery.records import Provenance, Record, Rejected, stable_id


def test_record_round_trips_through_dict() -> None:
    record = Record(
        id="r1",
        fields={"text": "great film", "label": "positive"},
        provenance=Provenance(
            step="zero_shot",
            technique="zero_shot",
            model="llamacpp:x",
            template_hash="abc",
            parent_ids=["p0"],
            conditioning={"label": "positive"},
            source="synthetic",
        ),
        scores={"judge": 4, "reason": "fluent"},
    )
    assert Record.from_dict(record.to_dict()) == record
    rejected = Rejected(record, "judge", "low_score", "score 1 < 3")
    assert Rejected.from_dict(rejected.to_dict()) == rejected


def test_stable_id_is_deterministic_and_part_sensitive() -> None:
    assert stable_id("a", 1) == stable_id("a", 1)
    assert stable_id("a", 1) != stable_id("a", 2)
    # The separator keeps ("ab", "c") and ("a", "bc") apart.
    assert stable_id("ab", "c") != stable_id("a", "bc")
    assert len(stable_id("x")) == 16
