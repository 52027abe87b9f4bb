"""The compiled TreeSHAP equals LightGBM's ``pred_contrib`` on every kind of split."""

from __future__ import annotations

from typing import Any

import lightgbm as lgb
import numpy as np
import pytest

from purchasing_power import treeshap
from purchasing_power.treeshap import TreeShap


def _data(seed: int, rows: int = 3000, features: int = 6) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, features))
    x[:, 1] = rng.integers(0, 4, size=rows)  # few values: repeated splits, exact zeros
    x[rng.random(x.shape) < 0.1] = np.nan
    signal = np.nan_to_num(x[:, 0]) + 0.5 * np.nan_to_num(x[:, 1]) - np.isnan(x[:, 2])
    y = np.exp(0.5 * signal + rng.normal(scale=0.3, size=rows))
    return x, y


def _train(params: dict[str, Any], x: np.ndarray, y: np.ndarray, rounds: int = 40) -> lgb.Booster:
    base = {"verbose": -1, "seed": 1, "deterministic": True, "num_threads": 1}
    return lgb.train({**base, **params}, lgb.Dataset(x, y), num_boost_round=rounds)


def _rows(booster: lgb.Booster, x: np.ndarray) -> np.ndarray:
    """The data, every split threshold and its neighbours, NaN, 0 and tiny values."""
    thresholds = [
        (node["split_feature"], node["threshold"])
        for tree in booster.dump_model()["tree_info"]
        for node in _splits(tree["tree_structure"])
    ]
    extra = np.repeat(x[:1], 3 * len(thresholds) + 3, axis=0)
    for i, (feature, threshold) in enumerate(thresholds):
        for j, value in enumerate((threshold, np.nextafter(threshold, np.inf), -threshold)):
            extra[3 * i + j, feature] = value
    extra[-3] = np.nan
    extra[-2] = 0.0
    extra[-1] = 1e-40
    return np.vstack([x, extra])


def _splits(node: dict[str, Any]):
    if "split_index" in node:
        yield node
        yield from _splits(node["left_child"])
        yield from _splits(node["right_child"])


def _assert_equal_to_lightgbm(booster: lgb.Booster, x: np.ndarray) -> TreeShap:
    rows = _rows(booster, x)
    shap = TreeShap(booster)
    expected = booster.predict(rows, pred_contrib=True)
    np.testing.assert_allclose(shap.contributions(rows), expected, rtol=0, atol=1e-10)
    return shap


@pytest.mark.parametrize(
    "params",
    [
        {"objective": "binary", "num_leaves": 31},
        {"objective": "tweedie", "num_leaves": 31, "min_data_in_leaf": 5},
        {"objective": "regression", "num_leaves": 63, "max_depth": 12},
        {"objective": "binary", "num_leaves": 15, "use_missing": False},
        {"objective": "tweedie", "num_leaves": 15, "zero_as_missing": True},
    ],
    ids=["binary", "tweedie", "deep", "nan-as-zero", "zero-as-missing"],
)
def test_contributions_equal_lightgbm(params: dict[str, Any]) -> None:
    x, y = _data(seed=3)
    label = (y > np.median(y)).astype(float) if params["objective"] == "binary" else y
    shap = _assert_equal_to_lightgbm(_train(params, x, label), x)
    assert shap.trees_left_to_lightgbm == 0


@pytest.mark.parametrize("objective", ["binary", "tweedie"])
@pytest.mark.parametrize("table_features", [16, 3], ids=["factors", "worked-out"])
def test_leaves_kept_as_factors_or_worked_out_give_the_same_values(
    objective: str, table_features: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    x, y = _data(seed=11, features=12)
    label = (y > np.median(y)).astype(float) if objective == "binary" else y
    booster = _train({"objective": objective, "num_leaves": 63, "min_data_in_leaf": 5}, x, label)
    monkeypatch.setattr(treeshap, "FULL_TABLE_FEATURES", 1)  # every leaf with 2+ features
    monkeypatch.setattr(treeshap, "TABLE_FEATURES", table_features)  # 3: those with 4+ worked out
    shap = _assert_equal_to_lightgbm(booster, x)
    assert shap.factored_leaves > 100
    assert shap.max_path_features >= 6
    assert (shap.computed_leaves > 100) if table_features < 12 else (shap.computed_leaves == 0)
    assert shap.trees_left_to_lightgbm == 0


def test_trees_with_long_paths_are_left_to_lightgbm(monkeypatch: pytest.MonkeyPatch) -> None:
    x, y = _data(seed=5)
    booster = _train({"objective": "regression", "num_leaves": 31}, x, y)
    monkeypatch.setattr(treeshap, "MAX_PATH_FEATURES", 3)
    shap = _assert_equal_to_lightgbm(booster, x)
    assert 0 < shap.trees_left_to_lightgbm < booster.num_trees()


def test_single_leaf_trees_only_move_the_expected_value() -> None:
    x, _ = _data(seed=7)
    booster = _train({"objective": "regression", "min_data_in_leaf": 10_000}, x, np.ones(len(x)))
    contributions = _assert_equal_to_lightgbm(booster, x).contributions(x)
    assert not contributions[:, :-1].any()


def test_the_input_width_must_match_the_model() -> None:
    x, y = _data(seed=9)
    shap = TreeShap(_train({"objective": "regression"}, x, y, rounds=3))
    with pytest.raises(ValueError, match="6 features, the input 5"):
        shap.contributions(x[:, :5])


def test_trees_of_more_than_64_splits_group_rows_by_every_split() -> None:
    """A row's decisions take two 64-bit words of key in a tree of 126 splits: rows that
    differ only at a split past the 64th must not share values."""
    x, y = _data(seed=13)
    booster = _train({"objective": "regression", "num_leaves": 127, "min_data_in_leaf": 5}, x, y)
    splits = [tree["num_leaves"] - 1 for tree in booster.dump_model()["tree_info"]]
    assert max(splits) > 64
    _assert_equal_to_lightgbm(booster, x)


def test_the_values_do_not_depend_on_the_threads() -> None:
    x, y = _data(seed=17)
    booster = _train({"objective": "tweedie", "num_leaves": 31}, x, y)
    shap = TreeShap(booster)
    rows = _rows(booster, x)
    one = shap.contributions(rows, num_threads=1)
    np.testing.assert_array_equal(shap.contributions(rows, num_threads=2), one)
    np.testing.assert_array_equal(shap.contributions(rows[::-1], num_threads=2), one[::-1])
    assert shap.contributions(rows[:0]).shape == (0, x.shape[1] + 1)
