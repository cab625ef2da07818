"""Kappa, its interval, the Wilson interval and the threshold scan, checked against arithmetic
done by hand."""

import pytest

from datarefinery.evaluate.agreement import (
    balanced_accuracy,
    best_threshold,
    cohen_kappa,
    kappa_interval,
    keep_pairs,
    wilson_interval,
)


def table(pp: int, pn: int, np_: int, nn: int) -> list[tuple[str, str]]:
    """(person, model) pairs from a 2x2 table: pn = person pos / model neg, and so on."""
    return (
        [("pos", "pos")] * pp
        + [("pos", "neg")] * pn
        + [("neg", "pos")] * np_
        + [("neg", "neg")] * nn
    )


def test_kappa_of_a_small_table_by_hand() -> None:
    #                 model pos  model neg
    #   person pos        4          1        5
    #   person neg        2          3        5
    #                     6          4       10
    # p_o = (4 + 3) / 10 = 0.7
    # p_e = (5 * 6 + 5 * 4) / 10**2 = 0.5
    # kappa = (0.7 - 0.5) / (1 - 0.5) = 0.4
    assert cohen_kappa(table(4, 1, 2, 3)) == pytest.approx(0.4)


def test_kappa_of_three_labels_by_hand() -> None:
    # person a,a,a,b,b,c ; model a,a,b,b,b,c: p_o = 5/6
    # person shares a 3, b 2, c 1; model a 2, b 3, c 1: p_e = (3*2 + 2*3 + 1*1) / 36 = 13/36
    # kappa = (30/36 - 13/36) / (23/36) = 17/23
    pairs = [("a", "a"), ("a", "a"), ("a", "b"), ("b", "b"), ("b", "b"), ("c", "c")]
    assert cohen_kappa(pairs) == pytest.approx(17 / 23)


def test_kappa_is_undefined_when_everyone_says_one_thing() -> None:
    assert cohen_kappa([("pos", "pos")] * 5) is None
    assert cohen_kappa([]) is None
    assert cohen_kappa(table(5, 0, 0, 5)) == pytest.approx(1.0)
    assert cohen_kappa(table(0, 5, 5, 0)) == pytest.approx(-1.0)


def test_the_bootstrap_interval_is_sane() -> None:
    small = table(4, 1, 2, 3)
    low, high = kappa_interval(small) or (None, None)
    assert low is not None and high is not None
    assert -1.0 <= low < 0.4 < high <= 1.0
    assert kappa_interval(small) == (low, high)  # seeded: the same every time
    # Four times the records in the same proportions: same kappa, a narrower interval.
    big_low, big_high = kappa_interval(table(16, 4, 8, 12)) or (None, None)
    assert big_low is not None and big_high is not None
    assert big_low < 0.4 < big_high and big_high - big_low < high - low
    assert kappa_interval([]) is None


def test_wilson_interval() -> None:
    # 8 of 10: centre (0.8 + z^2/20) / (1 + z^2/10), half-width from the score interval
    low, high = wilson_interval(8, 10) or (0.0, 0.0)
    assert low == pytest.approx(0.4902, abs=1e-4) and high == pytest.approx(0.9433, abs=1e-4)
    assert wilson_interval(0, 20) == (0.0, pytest.approx(0.1611, abs=1e-4))
    assert wilson_interval(3, 0) is None


# (judge score, the person kept it)
SCORED = [
    (5, True),
    (5, True),
    (4, True),
    (4, True),
    (4, False),
    (3, False),
    (3, False),
    (2, False),
    (2, False),
    (1, False),
]


def test_the_best_threshold_by_hand() -> None:
    # Person keeps 4, drops 6. The judge keeps score >= t:
    #   t=5: kk 2, person keep / judge drop 2, dd 6: p_o .8, p_e (4*2 + 6*8)/100 = .56 -> .545
    #   t=4: kk 4, person drop / judge keep 1, dd 5: p_o .9, p_e (4*5 + 6*5)/100 = .5 -> .8
    #   t=3: kk 4, dk 3, dd 3: p_o .7, p_e (4*7 + 6*3)/100 = .46 -> .444
    #   t=2: kk 4, dk 5, dd 1: p_o .5, p_e (4*9 + 6*1)/100 = .42 -> .138
    #   t=1: the judge keeps everything -> 0
    assert cohen_kappa(keep_pairs(SCORED, 3)) == pytest.approx(0.24 / 0.54)
    fit = best_threshold(SCORED)
    assert fit is not None and fit.threshold == 4 and fit.kappa == pytest.approx(0.8)
    # recall on kept 4/4, on dropped 5/6
    assert fit.balanced_accuracy == pytest.approx((1 + 5 / 6) / 2)


def test_equal_kappas_choose_the_lower_threshold() -> None:
    # With (3, True): t=3 and t=4 both give kappa 0.6; the lower keeps more records.
    scored = [*SCORED[:5], (3, True), *SCORED[6:]]
    fit = best_threshold(scored)
    assert fit is not None and fit.threshold == 3 and fit.kappa == pytest.approx(0.6)
    assert cohen_kappa(keep_pairs(scored, 4)) == pytest.approx(0.6)


def test_no_threshold_when_the_person_decided_one_way_only() -> None:
    assert best_threshold([(5, True), (3, True)]) is None
    assert balanced_accuracy([("keep", "keep"), ("keep", "drop")], "keep") is None
