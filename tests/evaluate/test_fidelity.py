import numpy as np
import pytest

from datarefinery.evaluate.fidelity import classifier_auc, frechet_distance, mmd_rbf


def gaussian(loc: float, n: int = 300, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(loc=loc, size=(n, 6)).astype(np.float32)


def test_mmd_hand_checked_on_two_points_each() -> None:
    # x = {0, 0}, y = {1, 1} in 1-D, sigma = 1: k(x,x') = 1, k(y,y') = 1, k(x,y) = e^-0.5
    x = np.zeros((2, 1), dtype=np.float32)
    y = np.ones((2, 1), dtype=np.float32)
    assert mmd_rbf(x, y, bandwidth=1.0) == pytest.approx(2 - 2 * np.exp(-0.5))


def test_frechet_hand_checked_and_identical_moments() -> None:
    a = np.array([[0.0, 0.0], [2.0, 0.0], [0.0, 2.0], [2.0, 2.0]])
    # same covariance, means 3 apart on each axis: distance = 3^2 + 3^2
    assert frechet_distance(a, a + 3) == pytest.approx(18.0, abs=1e-6)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)


def test_same_distribution_is_near_ideal_and_a_shift_is_not() -> None:
    same_a, same_b, shifted = gaussian(0, seed=1), gaussian(0, seed=2), gaussian(1.0, seed=3)
    assert abs(mmd_rbf(same_a, same_b)) < 0.01 < mmd_rbf(same_a, shifted)
    assert 0.4 < classifier_auc(same_a, same_b) < 0.6
    assert classifier_auc(same_a, shifted) > 0.9
