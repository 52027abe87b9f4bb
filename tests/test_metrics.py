import numpy as np
import pytest

from purchasing_power import metrics


def test_auc_counts_ties_as_half() -> None:
    labels = np.array([0, 0, 1, 1])
    assert metrics.roc_auc(labels, np.array([0.1, 0.4, 0.35, 0.8])) == pytest.approx(0.75)
    assert metrics.roc_auc(labels, np.array([1.0, 1.0, 1.0, 1.0])) == pytest.approx(0.5)
    assert metrics.roc_auc(labels, np.array([0.9, 0.8, 0.2, 0.1])) == pytest.approx(0.0)
    assert np.isnan(metrics.roc_auc(np.array([1, 1]), np.array([0.2, 0.3])))


def test_normalized_gini_is_one_for_a_perfect_order_and_zero_for_a_constant() -> None:
    actual = np.array([0.0, 0.0, 5.0, 1.0, 20.0, 0.0])
    assert metrics.normalized_gini(actual, actual) == pytest.approx(1.0)
    assert metrics.normalized_gini(actual, actual * 3 + 1) == pytest.approx(1.0)
    assert metrics.normalized_gini(actual, -actual) < 0
    # a constant prediction earns nothing, whatever order the rows come in
    assert metrics.normalized_gini(actual, np.zeros(6)) <= 0


def test_normalized_gini_of_random_scores_is_near_zero() -> None:
    rng = np.random.default_rng(0)
    actual = rng.gamma(0.5, 100, size=20_000)
    assert abs(metrics.normalized_gini(actual, rng.random(20_000))) < 0.03


def test_top_decile_capture_and_bias() -> None:
    actual = np.array([10.0] + [0.0] * 9)
    assert metrics.top_decile_capture(actual, np.arange(10)[::-1]) == pytest.approx(1.0)
    assert metrics.top_decile_capture(actual, np.arange(10)) == pytest.approx(0.0)
    assert metrics.total_bias_percent(np.array([10.0, 10.0]), np.array([11.0, 11.0])) == (
        pytest.approx(10.0)
    )


def test_log_loss_only_for_probabilities() -> None:
    scored = metrics.probability_metrics(np.array([0, 1]), np.array([0.2, 0.9]))
    assert scored["log_loss"] == pytest.approx(-(np.log(0.8) + np.log(0.9)) / 2)
    assert "log_loss" not in metrics.probability_metrics(np.array([0, 1]), np.array([0.0, 7.0]))


def test_decile_calibration_groups_rows_by_prediction() -> None:
    predicted = np.arange(20, dtype=float)[::-1]  # row i predicted 19 - i
    actual = predicted * 2
    groups = metrics.decile_calibration(actual, predicted)
    assert [group for group, *_ in groups] == list(range(1, 11))
    assert [rows for _, rows, _, _ in groups] == [2] * 10
    assert groups[0][2:] == (0.5, 1.0)  # the two lowest predictions, 0 and 1
    assert groups[-1][2:] == (18.5, 37.0)


def test_gain_curve_runs_from_nothing_to_everything() -> None:
    actual = np.array([0.0, 0.0, 10.0, 30.0])
    perfect = metrics.gain_curve(actual, actual, points=5)
    assert perfect.tolist() == [0.0, 0.75, 1.0, 1.0, 1.0]
    # ties earn no credit: a constant prediction ranks the lowest actual first
    assert metrics.gain_curve(actual, np.zeros(4), points=5).tolist() == [0.0, 0.0, 0.0, 0.25, 1.0]
