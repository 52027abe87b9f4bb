import numpy as np

from purchasing_power.scoring import power_index


def test_power_index_maps_through_the_frozen_reference() -> None:
    reference = np.quantile(np.arange(101.0), np.linspace(0, 1, 101))
    index = power_index(np.array([-5.0, 0.0, 25.0, 50.0, 100.0, 1e9]), reference)
    np.testing.assert_allclose(index, [0.0, 0.0, 25.0, 50.0, 100.0, 100.0])


def test_power_index_is_monotone_and_puts_ties_in_the_middle() -> None:
    reference = np.array([0.0, 0.0, 0.0, 0.0, 10.0])  # most users predicted alike
    index = power_index(np.array([0.0, 5.0, 10.0]), reference)
    assert index[0] == 37.5  # the middle of the 0-75 percentiles that share 0.0
    assert index[0] < index[1] < index[2] == 100.0


def test_power_index_of_one_user_does_not_depend_on_the_others() -> None:
    reference = np.sort(np.random.default_rng(1).gamma(0.8, 50, 101))
    alone = power_index(np.array([42.0]), reference)
    crowd = power_index(np.array([1.0, 42.0, 900.0]), reference)
    assert alone[0] == crowd[1]
