"""Booster -> normalised ensemble: ``booster.dump_model()`` read into trees of
``_Split`` and ``_Leaf`` nodes whose thresholds already carry LightGBM's decision
semantics (``purchasing_power.export``'s docstring lists them), and the objective's
output transform. Both graph builders (and the TreeSHAP reasons) start from it."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

if TYPE_CHECKING:
    import lightgbm

# LightGBM's kZeroThreshold: ``const double kZeroThreshold = 1e-35f;``
_K_ZERO = float(np.float32(1e-35))
_BELOW_NEG_K_ZERO = float(np.nextafter(-_K_ZERO, -np.inf))
# booster.dump_model() clips thresholds through Common::AvoidInf to +-1e300.
_DUMP_CLIP = 1e300
_IDENTITY_OBJECTIVES = frozenset(
    {
        "regression",
        "regression_l2",
        "l2",
        "mse",
        "mean_squared_error",
        "regression_l1",
        "l1",
        "mae",
        "mean_absolute_error",
        "huber",
        "fair",
        "quantile",
        "mape",
        "mean_absolute_percentage_error",
        "lambdarank",
        "rank_xendcg",
    }
)
_EXP_OBJECTIVES = frozenset({"poisson", "gamma", "tweedie"})
_MULTICLASS_MESSAGE = "multiclass models (several trees per iteration) are not supported"
_XENTLAMBDA_MESSAGE = "objective 'cross_entropy_lambda' (output log1p(exp(raw))) is not supported"
_UNSUPPORTED_OBJECTIVES = {
    **dict.fromkeys(
        ("multiclass", "softmax", "multiclassova", "multiclass_ova", "ova", "ovr"),
        _MULTICLASS_MESSAGE,
    ),
    **dict.fromkeys(("cross_entropy_lambda", "xentlambda"), _XENTLAMBDA_MESSAGE),
}


@dataclass(frozen=True)
class _Split:
    """A split with uniform semantics: left iff ``x <= threshold`` or (NaN and nan_left).

    ``column`` indexes the "base" input: the ``F`` features followed by the
    zero-as-missing columns (``_Ensemble.zero_columns``).
    """

    column: int
    threshold: float
    nan_left: bool
    left: int
    right: int
    count: float = 0.0  # training rows that reached the node (TreeSHAP's cover)


@dataclass(frozen=True)
class _Leaf:
    value: float
    count: float = 0.0


@dataclass(frozen=True)
class _Tree:
    """Nodes in depth-first order; node 0 is the root."""

    nodes: tuple[_Split | _Leaf, ...]
    depth: int


@dataclass(frozen=True)
class _Transform:
    kind: Literal["identity", "sigmoid", "exp", "signed_square"]
    sigmoid: float = 1.0


@dataclass(frozen=True)
class _Ensemble:
    num_features: int
    zero_columns: tuple[int, ...]  # source feature of each zero-as-missing column
    trees: tuple[_Tree, ...]
    average_divisor: int | None
    transform: _Transform
    objective: str


def _parse_booster(booster: lightgbm.Booster) -> _Ensemble:
    dump: Mapping[str, Any] = booster.dump_model()
    num_features = int(booster.num_feature())
    objective = dump.get("objective")
    objective_str = "" if objective is None else str(objective)

    if int(dump.get("num_class", 1)) != 1 or int(dump.get("num_tree_per_iteration", 1)) != 1:
        raise ValueError(
            f"{_MULTICLASS_MESSAGE}: num_class={dump.get('num_class')}, "
            f"num_tree_per_iteration={dump.get('num_tree_per_iteration')}"
        )
    if booster.params.get("linear_tree") in (True, 1, "true", "True", "1"):
        raise ValueError("linear trees (linear_tree=True) are not supported")
    transform = _parse_objective(objective_str, booster)

    tree_infos: Sequence[Mapping[str, Any]] = dump.get("tree_info", [])
    if not tree_infos:
        raise ValueError("the booster has no trees to export")

    zero_columns: dict[int, int] = {}  # feature -> base column
    exact_thresholds: list[list[float]] | None = None
    trees: list[_Tree] = []
    for tree_pos, info in enumerate(tree_infos):
        if int(info.get("num_cat", 0)) > 0:
            raise ValueError(
                f"categorical splits are not supported (tree {tree_pos} has "
                f"{info.get('num_cat')} categorical splits)"
            )
        if info.get("is_linear"):
            raise ValueError("linear trees (linear_tree=True) are not supported")
        structure = info["tree_structure"]
        if any(
            isinstance(node, Mapping) and ("leaf_coeff" in node or "leaf_const" in node)
            for node in _iter_dump_nodes(structure)
        ):
            raise ValueError("linear trees (linear_tree=True) are not supported")
        if any(
            isinstance(node, Mapping)
            and "split_index" in node
            and abs(float(node["threshold"])) >= _DUMP_CLIP
            for node in _iter_dump_nodes(structure)
        ):
            if exact_thresholds is None:
                exact_thresholds = _model_string_thresholds(booster)
            thresholds = exact_thresholds[tree_pos]
        else:
            thresholds = None
        trees.append(_convert_tree(structure, num_features, zero_columns, thresholds, tree_pos))

    average_divisor = len(trees) if bool(dump.get("average_output", False)) else None
    ordered_zero = tuple(sorted(zero_columns, key=zero_columns.__getitem__))
    return _Ensemble(
        num_features=num_features,
        zero_columns=ordered_zero,
        trees=tuple(trees),
        average_divisor=average_divisor,
        transform=transform,
        objective=objective_str,
    )


def _iter_dump_nodes(structure: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    stack = [structure]
    while stack:
        node = stack.pop()
        yield node
        if "split_index" in node:
            stack.append(node["left_child"])
            stack.append(node["right_child"])


def _model_string_thresholds(booster: lightgbm.Booster) -> list[list[float]]:
    """Exact (unclipped) thresholds per tree, indexed by ``split_index``."""
    result: list[list[float]] = []
    for line in booster.model_to_string().splitlines():
        if line.startswith("Tree="):
            result.append([])
        elif line.startswith("threshold=") and result:
            result[-1] = [float(tok) for tok in line[len("threshold=") :].split()]
    return result


def _convert_tree(
    structure: Mapping[str, Any],
    num_features: int,
    zero_columns: dict[int, int],
    exact_thresholds: Sequence[float] | None,
    tree_pos: int,
) -> _Tree:
    nodes: list[_Split | _Leaf | None] = []
    # (dump node, slot in `nodes`, depth of that node)
    stack: list[tuple[Mapping[str, Any], int, int]] = [(structure, 0, 0)]
    nodes.append(None)
    depth = 0
    while stack:
        node, slot, level = stack.pop()
        if "split_index" not in node:
            if "leaf_value" not in node:
                raise ValueError(f"tree {tree_pos}: malformed node without leaf_value")
            nodes[slot] = _Leaf(float(node["leaf_value"]), float(node.get("leaf_count", 0)))
            depth = max(depth, level)
            continue
        if node.get("decision_type", "<=") != "<=":
            raise ValueError(
                f"categorical splits are not supported (tree {tree_pos} has decision_type "
                f"{node.get('decision_type')!r})"
            )
        feature = int(node["split_feature"])
        if not 0 <= feature < num_features:
            raise ValueError(f"tree {tree_pos}: split feature {feature} out of range")
        threshold = float(node["threshold"])
        if exact_thresholds is not None:
            threshold = float(exact_thresholds[int(node["split_index"])])
        column, norm_threshold, nan_left = _normalize_split(
            feature,
            threshold,
            str(node.get("missing_type", "None")),
            bool(node.get("default_left", True)),
            num_features,
            zero_columns,
            tree_pos,
        )
        left_slot = len(nodes)
        right_slot = left_slot + 1
        nodes.extend([None, None])
        nodes[slot] = _Split(
            column,
            norm_threshold,
            nan_left,
            left_slot,
            right_slot,
            float(node.get("internal_count", 0)),
        )
        stack.append((node["right_child"], right_slot, level + 1))
        stack.append((node["left_child"], left_slot, level + 1))
    done = tuple(n for n in nodes if n is not None)
    if len(done) != len(nodes):
        raise ValueError(f"tree {tree_pos}: malformed tree structure")
    return _Tree(nodes=done, depth=depth)


def _move_off_zero(threshold: float) -> float:
    """Threshold ``t'`` with ``x <= t'`` iff ``zeroed(x) <= threshold`` for every non-NaN x.

    ``zeroed`` is LightGBM's input filter, which reads ``|x| <= kZeroThreshold`` as 0.0.
    """
    if -_K_ZERO <= threshold < 0.0:
        return _BELOW_NEG_K_ZERO
    if 0.0 <= threshold < _K_ZERO:
        return _K_ZERO
    return threshold


def _normalize_split(
    feature: int,
    threshold: float,
    missing_type: str,
    default_left: bool,
    num_features: int,
    zero_columns: dict[int, int],
    tree_pos: int,
) -> tuple[int, float, bool]:
    """Map one LightGBM numerical split onto ``(column, threshold, nan_left)``."""
    if math.isnan(threshold):
        raise ValueError(f"tree {tree_pos}: NaN split threshold")
    if missing_type == "None":
        # NaN is read as 0.0, which then goes wherever 0.0 goes.
        return feature, _move_off_zero(threshold), threshold >= 0.0
    if missing_type == "NaN":
        return feature, _move_off_zero(threshold), default_left
    if missing_type == "Zero":
        # NaN and |x| <= kZeroThreshold both take the default side.
        if default_left and threshold >= -_K_ZERO:
            return feature, max(threshold, _K_ZERO), True
        if not default_left and threshold < _K_ZERO:
            return feature, min(threshold, _BELOW_NEG_K_ZERO), False
        column = zero_columns.setdefault(feature, num_features + len(zero_columns))
        return column, threshold, default_left
    raise ValueError(f"tree {tree_pos}: unknown missing_type {missing_type!r}")


def _parse_objective(objective: str, booster: lightgbm.Booster) -> _Transform:
    tokens = objective.split()
    if not tokens:  # custom objective: predict() returns the raw score
        return _Transform("identity")
    name = tokens[0]
    options = dict(tok.split(":", 1) for tok in tokens[1:] if ":" in tok)
    flags = {tok for tok in tokens[1:] if ":" not in tok}
    if name in _UNSUPPORTED_OBJECTIVES:
        raise ValueError(_UNSUPPORTED_OBJECTIVES[name])
    if name in ("binary", "cross_entropy", "xentropy"):
        if "sqrt" in flags:
            raise ValueError(f"objective {objective!r} with sqrt transform is not supported")
        if name != "binary":
            return _Transform("sigmoid", 1.0)
        return _Transform("sigmoid", _resolve_sigmoid(booster, float(options.get("sigmoid", 1))))
    if name in _EXP_OBJECTIVES:
        if "sqrt" in flags:
            raise ValueError(f"objective {objective!r} with sqrt transform is not supported")
        return _Transform("exp")
    if name in _IDENTITY_OBJECTIVES:
        return _Transform("signed_square" if "sqrt" in flags else "identity")
    raise ValueError(f"objective {objective!r} is not supported")


def _resolve_sigmoid(booster: lightgbm.Booster, parsed: float) -> float:
    """Pick the sigmoid slope ``booster.predict`` really uses.

    The objective string prints ``sigmoid`` with 6 significant digits, which is what a
    booster loaded from a model string predicts with; a booster still holding its
    training objective (``keep_training_booster=True``) uses the full-precision
    parameter. When the two differ, the candidate reproducing ``booster.predict`` on a
    few probe rows wins.
    """
    candidates = [parsed]
    param = booster.params.get("sigmoid")
    if param is not None:
        try:
            value = float(param)
        except (TypeError, ValueError):
            value = parsed
        if value != parsed and math.isfinite(value) and value > 0:
            candidates.append(value)
    if len(candidates) == 1:
        return parsed
    rng = np.random.default_rng(0)
    probe = rng.normal(scale=3.0, size=(64, booster.num_feature()))
    raw = np.asarray(booster.predict(probe, raw_score=True), dtype=np.float64)
    prob = np.asarray(booster.predict(probe), dtype=np.float64)
    errors = [float(np.max(np.abs(1.0 / (1.0 + np.exp(-c * raw)) - prob))) for c in candidates]
    return candidates[int(np.argmin(errors))]
