"""Parity tests for the LightGBM -> ONNX export (both graph kinds) against booster.predict."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import lightgbm as lgb
import numpy as np
import onnx
import onnxruntime as ort
import pytest

from purchasing_power.export import (
    INPUT_NAME,
    OUTPUT_NAME,
    RAW_OUTPUT_NAME,
    GraphKind,
    ParityReport,
    booster_to_onnx,
    check_parity,
)
from purchasing_power.export.parse import _parse_booster

GRAPHS: tuple[GraphKind, ...] = ("tree_ensemble", "tensor")
PROB_ABS_TOL = 1e-12
SPEND_REL_TOL = 1e-12
K_ZERO = float(np.float32(1e-35))  # LightGBM kZeroThreshold

BASE_PARAMS: dict[str, Any] = {
    "verbose": -1,
    "deterministic": True,
    "force_row_wise": True,
    "num_threads": 2,
    "seed": 7,
}


def _train(params: Mapping[str, Any], x: np.ndarray, y: np.ndarray, rounds: int) -> lgb.Booster:
    return lgb.train({**BASE_PARAMS, **params}, lgb.Dataset(x, y), num_boost_round=rounds)


def _features(rng: np.random.Generator, n: int, f: int, nan_rate: float = 0.0) -> np.ndarray:
    x = rng.normal(size=(n, f))
    x[:, 1] = rng.exponential(scale=50.0, size=n)  # skewed, spend-like
    x[:, 2] = rng.integers(0, 5, size=n)  # small integer counts (many exact ties)
    if nan_rate:
        x[rng.random((n, f)) < nan_rate] = np.nan
    return x


def _spend(rng: np.random.Generator, x: np.ndarray) -> np.ndarray:
    z = np.nan_to_num(x)
    mean = np.exp(0.5 * z[:, 0] + 0.01 * z[:, 1] - 0.2 * z[:, 2] + 0.3 * z[:, 3])
    return np.where(rng.random(len(x)) < 0.4, 0.0, rng.gamma(2.0, mean))


def _label(rng: np.random.Generator, x: np.ndarray) -> np.ndarray:
    z = np.nan_to_num(x)
    logit = z[:, 0] - 0.02 * z[:, 1] + 0.5 * z[:, 2] - 1.0
    return (rng.random(len(x)) < 1 / (1 + np.exp(-logit))).astype(np.float64)


def _run(model: onnx.ModelProto, x: np.ndarray) -> dict[str, np.ndarray]:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = ort.InferenceSession(
        model.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )
    names = [o.name for o in session.get_outputs()]
    values = session.run(names, {INPUT_NAME: np.ascontiguousarray(x, dtype=np.float64)})
    return dict(zip(names, values, strict=True))


def _dump_splits(booster: lgb.Booster) -> Iterator[Mapping[str, Any]]:
    for info in booster.dump_model()["tree_info"]:
        stack = [info["tree_structure"]]
        while stack:
            node = stack.pop()
            if "split_index" in node:
                yield node
                stack.extend([node["left_child"], node["right_child"]])


def _assert_prob_parity(booster: lgb.Booster, x: np.ndarray) -> None:
    for graph in GRAPHS:
        report = check_parity(booster, booster_to_onnx(booster, graph=graph), x)
        assert report.rows == len(x)
        assert report.max_abs_diff <= PROB_ABS_TOL, (graph, report)


def _assert_spend_parity(booster: lgb.Booster, x: np.ndarray) -> None:
    for graph in GRAPHS:
        report = check_parity(booster, booster_to_onnx(booster, graph=graph), x)
        assert report.rows == len(x)
        assert report.max_rel_diff <= SPEND_REL_TOL, (graph, report)


def _threshold_rows(booster: lgb.Booster, base: np.ndarray) -> np.ndarray:
    """Rows whose split feature sits exactly on, just below and just above each threshold."""
    rows = []
    for i, node in enumerate(_dump_splits(booster)):
        t = float(node["threshold"])
        for value in (t, np.nextafter(t, -np.inf), np.nextafter(t, np.inf)):
            row = base[i % len(base)].copy()
            row[int(node["split_feature"])] = value
            rows.append(row)
    return np.asarray(rows)


def _special_rows(base: np.ndarray) -> np.ndarray:
    """Every feature in turn set to zeros, tiny, huge, infinite and NaN values."""
    specials = [
        0.0,
        -0.0,
        K_ZERO,
        -K_ZERO,
        float(np.nextafter(K_ZERO, np.inf)),
        float(np.nextafter(-K_ZERO, -np.inf)),
        5e-36,
        -5e-36,
        5e-324,
        -5e-324,
        1e-300,
        -1e-300,
        1e300,
        -1e300,
        np.finfo(np.float64).max,
        -np.finfo(np.float64).max,
        np.inf,
        -np.inf,
        np.nan,
    ]
    rows = []
    for j in range(base.shape[1]):
        for k, value in enumerate(specials):
            row = base[(j + k) % len(base)].copy()
            row[j] = value
            rows.append(row)
    rows.append(np.full(base.shape[1], np.nan))
    rows.append(np.zeros(base.shape[1]))
    return np.asarray(rows)


# --------------------------------------------------------------------------------------
# Models shared by several tests
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def data() -> np.ndarray:
    rng = np.random.default_rng(20240601)
    x = _features(rng, 3000, 8, nan_rate=0.05)
    x[:, 7] = 3.25  # constant: never split on
    return x


@pytest.fixture(scope="module")
def binary_model(data: np.ndarray) -> lgb.Booster:
    rng = np.random.default_rng(1)
    return _train({"objective": "binary", "num_leaves": 15}, data, _label(rng, data), 40)


@pytest.fixture(scope="module")
def tweedie_model(data: np.ndarray) -> lgb.Booster:
    rng = np.random.default_rng(2)
    params = {"objective": "tweedie", "tweedie_variance_power": 1.3, "num_leaves": 15}
    return _train(params, data, _spend(rng, data), 40)


@pytest.fixture(scope="module")
def regression_model(data: np.ndarray) -> lgb.Booster:
    rng = np.random.default_rng(3)
    y = np.log1p(_spend(rng, data))
    return _train({"objective": "regression", "num_leaves": 15}, data, y, 40)


# --------------------------------------------------------------------------------------
# Interface
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("graph", GRAPHS)
def test_model_signature_and_checker(binary_model: lgb.Booster, graph: GraphKind) -> None:
    model = booster_to_onnx(binary_model, graph=graph)
    onnx.checker.check_model(model, full_check=True)
    (inp,) = model.graph.input
    assert inp.name == INPUT_NAME
    assert inp.type.tensor_type.elem_type == onnx.TensorProto.DOUBLE
    dims = inp.type.tensor_type.shape.dim
    assert len(dims) == 2
    assert dims[1].dim_value == binary_model.num_feature()
    outputs = {o.name: o for o in model.graph.output}
    assert set(outputs) == {OUTPUT_NAME, RAW_OUTPUT_NAME}
    for out in outputs.values():
        assert out.type.tensor_type.elem_type == onnx.TensorProto.DOUBLE
        assert len(out.type.tensor_type.shape.dim) == 1


def test_tree_ensemble_graph_uses_ml_opset5(binary_model: lgb.Booster) -> None:
    model = booster_to_onnx(binary_model, graph="tree_ensemble")
    opsets = {o.domain: o.version for o in model.opset_import}
    assert opsets["ai.onnx.ml"] == 5
    (tree_node,) = [n for n in model.graph.node if n.domain == "ai.onnx.ml"]
    assert tree_node.op_type == "TreeEnsemble"
    attrs = {a.name: a for a in tree_node.attribute}
    assert attrs["nodes_splits"].t.data_type == onnx.TensorProto.DOUBLE
    assert attrs["leaf_weights"].t.data_type == onnx.TensorProto.DOUBLE
    assert set(onnx.numpy_helper.to_array(attrs["nodes_modes"].t).tolist()) == {0}  # BRANCH_LEQ


def test_tensor_graph_has_no_ml_ops(tweedie_model: lgb.Booster) -> None:
    model = booster_to_onnx(tweedie_model, graph="tensor")
    assert all(node.domain in ("", "ai.onnx") for node in model.graph.node)
    assert {o.domain for o in model.opset_import} <= {"", "ai.onnx"}
    op_types = {node.op_type for node in model.graph.node}
    assert {"GatherElements", "LessOrEqual", "Cast", "ReduceSum"} <= op_types
    assert "MatMul" not in op_types
    assert "Gemm" not in op_types


def test_unknown_graph_kind_is_rejected(binary_model: lgb.Booster) -> None:
    with pytest.raises(ValueError, match="graph must be"):
        booster_to_onnx(binary_model, graph="dense")  # type: ignore[arg-type]


def test_raw_score_output_matches(tweedie_model: lgb.Booster, data: np.ndarray) -> None:
    expected = tweedie_model.predict(data, raw_score=True)
    for graph in GRAPHS:
        out = _run(booster_to_onnx(tweedie_model, graph=graph), data)
        np.testing.assert_allclose(out[RAW_OUTPUT_NAME], expected, rtol=0, atol=1e-12)
        np.testing.assert_allclose(out[OUTPUT_NAME], np.exp(out[RAW_OUTPUT_NAME]), rtol=1e-15)


def test_empty_input(tweedie_model: lgb.Booster, data: np.ndarray) -> None:
    for graph in GRAPHS:
        model = booster_to_onnx(tweedie_model, graph=graph)
        out = _run(model, data[:0])
        assert out[OUTPUT_NAME].shape == (0,)
        assert out[RAW_OUTPUT_NAME].shape == (0,)
        assert check_parity(tweedie_model, model, data[:0]) == ParityReport(0, 0.0, 0.0)


# --------------------------------------------------------------------------------------
# Parity on the three objectives
# --------------------------------------------------------------------------------------


def test_binary_parity(binary_model: lgb.Booster, data: np.ndarray) -> None:
    _assert_prob_parity(binary_model, data)


def test_tweedie_parity(tweedie_model: lgb.Booster, data: np.ndarray) -> None:
    _assert_spend_parity(tweedie_model, data)


def test_regression_parity(regression_model: lgb.Booster, data: np.ndarray) -> None:
    expected = regression_model.predict(data)
    scale = float(np.max(np.abs(expected)))
    for graph in GRAPHS:
        report = check_parity(
            regression_model, booster_to_onnx(regression_model, graph=graph), data
        )
        assert report.max_abs_diff <= 1e-12 * scale, (graph, report)


def test_tweedie_300_trees_many_leaves() -> None:
    rng = np.random.default_rng(300)
    x = _features(rng, 4000, 12, nan_rate=0.02)
    params = {
        "objective": "tweedie",
        "num_leaves": 63,
        "min_data_in_leaf": 5,
        "learning_rate": 0.05,
    }
    booster = _train(params, x, _spend(rng, x), 300)
    assert booster.num_trees() == 300
    assert max(info["num_leaves"] for info in booster.dump_model()["tree_info"]) >= 60
    rows = np.vstack([x, _threshold_rows(booster, x)[::7]])
    _assert_spend_parity(booster, rows)


# --------------------------------------------------------------------------------------
# Edge cases of LightGBM's decision rule
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("model_name", ["binary_model", "tweedie_model", "regression_model"])
def test_values_exactly_at_thresholds(
    request: pytest.FixtureRequest, model_name: str, data: np.ndarray
) -> None:
    booster: lgb.Booster = request.getfixturevalue(model_name)
    rows = _threshold_rows(booster, data)
    assert len(rows) > 300
    # Exactly-at-threshold rows must go left: LightGBM's rule is `value <= threshold`.
    leaves_at = booster.predict(rows[0::3], pred_leaf=True)
    leaves_above = booster.predict(rows[2::3], pred_leaf=True)
    assert (leaves_at != leaves_above).any()
    expected = booster.predict(rows)
    scale = max(float(np.max(np.abs(expected))), 1.0)
    for graph in GRAPHS:
        report = check_parity(booster, booster_to_onnx(booster, graph=graph), rows)
        assert report.max_abs_diff <= 1e-12 * scale, (graph, report)
        assert report.max_rel_diff <= 1e-12 or model_name == "regression_model", report


def test_nan_missing_type_routes_by_default_left(
    binary_model: lgb.Booster, data: np.ndarray
) -> None:
    splits = list(_dump_splits(binary_model))
    assert {s["missing_type"] for s in splits} == {"NaN"}
    assert {s["default_left"] for s in splits} == {True, False}
    rng = np.random.default_rng(11)
    rows = data[:1000].copy()
    rows[rng.random(rows.shape) < 0.5] = np.nan
    _assert_prob_parity(binary_model, np.vstack([rows, _special_rows(data)]))


def test_missing_type_none_reads_nan_as_zero(data: np.ndarray) -> None:
    rng = np.random.default_rng(12)
    x = np.nan_to_num(data, nan=0.0)
    x[:, 0] = np.where(rng.random(len(x)) < 0.2, 0.0, x[:, 0])
    booster = _train(
        {"objective": "binary", "num_leaves": 15, "use_missing": False}, x, _label(rng, x), 30
    )
    splits = list(_dump_splits(booster))
    assert {s["missing_type"] for s in splits} == {"None"}
    # Thresholds at +-kZeroThreshold separate negatives / zero / positives.
    assert {K_ZERO, -K_ZERO} & {float(s["threshold"]) for s in splits}
    rows = x[:500].copy()
    rows[rng.random(rows.shape) < 0.3] = np.nan
    _assert_prob_parity(booster, np.vstack([rows, _special_rows(x), _threshold_rows(booster, x)]))


@pytest.mark.parametrize("objective", ["binary", "tweedie"])
def test_zero_as_missing(objective: str) -> None:
    rng = np.random.default_rng(13)
    x = _features(rng, 3000, 5, nan_rate=0.03)
    x[rng.random(len(x)) < 0.3, 0] = 0.0
    x[rng.random(len(x)) < 0.2, 3] = 0.0
    y = _label(rng, x) if objective == "binary" else _spend(rng, x)
    y = y + np.where(x[:, 0] == 0.0, 1.0, 0.0) * (objective == "tweedie")
    booster = _train({"objective": objective, "num_leaves": 15, "zero_as_missing": True}, x, y, 30)
    splits = list(_dump_splits(booster))
    assert {s["missing_type"] for s in splits} == {"Zero"}
    # Both encodings are exercised: plain `<=` nodes and nodes that need the
    # "|x| <= kZeroThreshold -> NaN" column (default side opposite to where zero compares).
    assert _parse_booster(booster).zero_columns
    assert any(s["default_left"] == (float(s["threshold"]) >= -K_ZERO) for s in splits)
    rows = np.vstack([x, _special_rows(x), _threshold_rows(booster, x)])
    if objective == "binary":
        _assert_prob_parity(booster, rows)
    else:
        _assert_spend_parity(booster, rows)


def test_tiny_values_are_read_as_zero(data: np.ndarray) -> None:
    """LightGBM drops |x| <= kZeroThreshold before prediction: -kZeroThreshold acts as 0."""
    rng = np.random.default_rng(14)
    x = np.nan_to_num(data[:, :4], nan=0.0)
    x[rng.random(len(x)) < 0.3, 0] = 0.0
    y = (x[:, 0] < 0).astype(np.float64) + 0.01 * rng.normal(size=len(x))
    booster = _train({"objective": "regression", "num_leaves": 4, "min_data_in_leaf": 5}, x, y, 1)
    assert -K_ZERO in {float(s["threshold"]) for s in _dump_splits(booster)}
    probe = np.zeros((3, 4))
    probe[:, 0] = [-K_ZERO, 0.0, float(np.nextafter(-K_ZERO, -np.inf))]
    pred = booster.predict(probe)
    assert pred[0] == pred[1] != pred[2]
    for graph in GRAPHS:
        out = _run(booster_to_onnx(booster, graph=graph), probe)
        np.testing.assert_array_equal(out[OUTPUT_NAME], pred)


def test_constant_feature_is_never_split(tweedie_model: lgb.Booster, data: np.ndarray) -> None:
    assert 7 not in {int(s["split_feature"]) for s in _dump_splits(tweedie_model)}
    rows = data[:500].copy()
    rows[:, 7] = np.linspace(-1e6, 1e6, len(rows))
    rows[::5, 7] = np.nan
    _assert_spend_parity(tweedie_model, rows)


def test_single_leaf_trees(data: np.ndarray) -> None:
    rng = np.random.default_rng(15)
    y = _spend(rng, data)
    constant = _train({"objective": "tweedie", "min_data_in_leaf": 10**6}, data, y, 5)
    assert [info["num_leaves"] for info in constant.dump_model()["tree_info"]] == [1]
    grown = lgb.train(
        {**BASE_PARAMS, "objective": "tweedie", "num_leaves": 7},
        lgb.Dataset(data, y),
        num_boost_round=10,
        init_model=constant,
    )
    num_leaves = [info["num_leaves"] for info in grown.dump_model()["tree_info"]]
    assert num_leaves[0] == 1
    assert min(num_leaves[1:]) > 1
    rows = np.vstack([data, _special_rows(data)])
    _assert_spend_parity(constant, rows)  # only a constant tree: depth-0 graphs
    _assert_spend_parity(grown, rows)


def test_extreme_inputs(
    tweedie_model: lgb.Booster, binary_model: lgb.Booster, data: np.ndarray
) -> None:
    rows = _special_rows(data)
    _assert_spend_parity(tweedie_model, rows)
    _assert_prob_parity(binary_model, rows)


def test_thresholds_clipped_in_dump_use_model_string() -> None:
    """dump_model() clips |threshold| >= 1e300; the exact value comes from the model string."""
    rng = np.random.default_rng(16)
    x = rng.normal(size=(2000, 3))
    x[:, 0] = np.where(rng.random(2000) < 0.5, 1e307 * (1 + rng.random(2000)), -1e307)
    y = (x[:, 0] > 1.5e307) + x[:, 1]
    booster = _train({"objective": "regression", "num_leaves": 8, "min_data_in_leaf": 5}, x, y, 3)
    assert 1e300 in {abs(float(s["threshold"])) for s in _dump_splits(booster)}
    rows = np.vstack([x, np.column_stack([np.full(5, 1.2e307), np.zeros((5, 2))])])
    expected = booster.predict(rows)
    for graph in GRAPHS:
        report = check_parity(booster, booster_to_onnx(booster, graph=graph), rows)
        assert report.max_abs_diff <= 1e-12 * float(np.max(np.abs(expected))), (graph, report)


# --------------------------------------------------------------------------------------
# Output transforms
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("keep_training_booster", [False, True])
def test_binary_sigmoid_parameter(data: np.ndarray, keep_training_booster: bool) -> None:
    rng = np.random.default_rng(17)
    booster = lgb.train(
        {**BASE_PARAMS, "objective": "binary", "sigmoid": 1 / 3, "num_leaves": 7},
        lgb.Dataset(data, _label(rng, data)),
        num_boost_round=10,
        keep_training_booster=keep_training_booster,
    )
    assert "sigmoid:0.333333" in booster.dump_model()["objective"]
    _assert_prob_parity(booster, data)


@pytest.mark.parametrize(
    ("params", "label"),
    [
        ({"objective": "poisson"}, "spend"),
        ({"objective": "gamma"}, "positive"),
        ({"objective": "huber"}, "spend"),
        ({"objective": "regression", "reg_sqrt": True}, "spend"),
        ({"objective": "quantile", "alpha": 0.8}, "spend"),
        ({"objective": "cross_entropy"}, "binary"),
        ({"boosting": "rf", "bagging_fraction": 0.5, "bagging_freq": 1}, "spend"),
        (
            {"objective": "tweedie", "boosting": "rf", "bagging_fraction": 0.5, "bagging_freq": 1},
            "spend",
        ),
    ],
)
def test_other_objectives(data: np.ndarray, params: dict[str, Any], label: str) -> None:
    rng = np.random.default_rng(18)
    spend = _spend(rng, data)
    y = {"spend": spend, "positive": spend + 1.0, "binary": _label(rng, data)}[label]
    booster = _train({"objective": "regression", "num_leaves": 7, **params}, data, y, 15)
    expected = booster.predict(data)
    expected_raw = booster.predict(data, raw_score=True)
    for graph in GRAPHS:
        model = booster_to_onnx(booster, graph=graph)
        report = check_parity(booster, model, data)
        assert report.max_abs_diff <= 1e-12 * max(float(np.max(np.abs(expected))), 1.0), report
        raw = _run(model, data)[RAW_OUTPUT_NAME]
        np.testing.assert_allclose(raw, expected_raw, rtol=1e-12, atol=1e-12)


def test_custom_objective_is_identity(data: np.ndarray) -> None:
    rng = np.random.default_rng(19)
    y = np.log1p(_spend(rng, data))

    def l2(preds: np.ndarray, train: lgb.Dataset) -> tuple[np.ndarray, np.ndarray]:
        return preds - train.get_label(), np.ones_like(preds)

    booster = _train({"objective": l2, "num_leaves": 7}, data, y, 10)
    for graph in GRAPHS:
        report = check_parity(booster, booster_to_onnx(booster, graph=graph), data)
        assert report.max_abs_diff <= 1e-12, report


# --------------------------------------------------------------------------------------
# Unsupported boosters
# --------------------------------------------------------------------------------------


def test_multiclass_is_rejected(data: np.ndarray) -> None:
    y = np.nan_to_num(data[:, 2]).astype(int) % 3
    booster = _train({"objective": "multiclass", "num_class": 3, "num_leaves": 4}, data, y, 2)
    with pytest.raises(ValueError, match="multiclass"):
        booster_to_onnx(booster)


def test_categorical_splits_are_rejected(data: np.ndarray) -> None:
    rng = np.random.default_rng(20)
    x = np.nan_to_num(data[:, :4]).copy()
    x[:, 2] = rng.integers(0, 6, size=len(x))
    y = np.isin(x[:, 2], [1, 4]).astype(np.float64) + 0.1 * rng.normal(size=len(x))
    booster = lgb.train(
        {**BASE_PARAMS, "objective": "regression", "num_leaves": 4, "min_data_per_group": 5},
        lgb.Dataset(x, y, categorical_feature=[2]),
        num_boost_round=3,
    )
    assert any(s["decision_type"] == "==" for s in _dump_splits(booster))
    with pytest.raises(ValueError, match="categorical"):
        booster_to_onnx(booster, graph="tensor")


def test_linear_trees_are_rejected(data: np.ndarray) -> None:
    rng = np.random.default_rng(21)
    x = np.nan_to_num(data[:, :4])
    booster = _train(
        {"objective": "regression", "linear_tree": True, "num_leaves": 4},
        x,
        x[:, 0] * 2 + rng.normal(size=len(x)),
        2,
    )
    with pytest.raises(ValueError, match="linear"):
        booster_to_onnx(booster)


def test_cross_entropy_lambda_is_rejected(data: np.ndarray) -> None:
    rng = np.random.default_rng(22)
    booster = _train(
        {"objective": "cross_entropy_lambda", "num_leaves": 4}, data, _label(rng, data), 2
    )
    with pytest.raises(ValueError, match="cross_entropy_lambda"):
        booster_to_onnx(booster)
