import pytest

from datarefinery.evaluate.utility import macro_f1, utility
from datarefinery.records import Record


def test_macro_f1_hand_checked() -> None:
    gold = ["a", "a", "b", "b"]
    predicted = ["a", "b", "b", "b"]
    # a: tp 1 fp 0 fn 1 -> 2/3; b: tp 2 fp 1 fn 0 -> 4/5; mean 11/15
    assert macro_f1(gold, predicted) == pytest.approx((2 / 3 + 4 / 5) / 2)
    assert macro_f1(["a"], ["a"]) == 1.0


def rows(prefix: str, n: int) -> list[Record]:
    return [
        Record(f"{prefix}{i}", {"text": f"{w} film {i}", "label": label})
        for i in range(n)
        for w, label in (("great", "pos"), ("awful", "neg"))
    ]


def test_utility_trains_on_the_dataset_and_on_the_real_reference() -> None:
    result = utility(
        rows("d", 5),
        rows("t", 4),
        text_fields=["text"],
        real_train=rows("r", 5),
        kinds=("tfidf-lr",),
    )
    entry = result["tfidf-lr"]
    assert entry["dataset"]["accuracy"] == 1.0 and entry["dataset"]["test_size"] == 8
    assert entry["real_reference"]["macro_f1"] == 1.0
    one_label = [r for r in rows("d", 3) if r.fields["label"] == "pos"]
    failed = utility(one_label, rows("t", 2), text_fields=["text"], kinds=("tfidf-lr",))
    assert "fewer than two labels" in failed["tfidf-lr"]["dataset"]["error"]
