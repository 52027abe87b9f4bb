"""Export LightGBM boosters to ONNX graphs that reproduce ``booster.predict`` exactly.

Two graph kinds are produced from ``booster.dump_model()``:

``"tree_ensemble"``
    One ``ai.onnx.ml`` (opset 5) ``TreeEnsemble`` node with double thresholds and double
    leaf weights, followed by the objective's output transform built from standard ops.
    onnxruntime only implements ``ai.onnx.ml`` operators on the CPU execution provider;
    a CUDA session silently places this node on the CPU.

``"tensor"``
    Standard ``ai.onnx`` operators only (opset 21), for onnxruntime's CUDA execution
    provider. Trees are grouped by depth, and each group is packed into padded node
    tables. All rows walk the group's trees level by level: a ``[N, T]`` int32
    node-index tensor is advanced once per level (unrolled up to the group's deepest
    tree) by gathering each current node's input column and threshold, gathering the
    feature value from the input with ``GatherElements``, comparing with
    ``LessOrEqual`` and stepping to ``first_child + (comparison true)``, the two
    children of a split sitting side by side (``Gather``, ``Cast``, ``Add``). Leaves
    point to themselves and never compare true, so levels past a tree's depth are
    no-ops. The leaf values are gathered at the end, zero-padded to a multiple of 8
    columns (``Pad``: every row then starts 64-byte aligned, so onnxruntime's CPU
    ``ReduceSum`` adds each row in the same order wherever it sits in the batch), summed
    over each group's trees with ``ReduceSum``, then over groups. There is no dense
    ``[rows x trees x nodes]`` intermediate.

Both graphs take ``features``: ``tensor(double)[N, F]`` (``F = booster.num_feature()``,
columns in ``booster.feature_name()`` order, NaN = missing) and return
``prediction``: ``tensor(double)[N]`` (equal to ``booster.predict(X)``) and
``raw_score``: ``tensor(double)[N]`` (equal to ``booster.predict(X, raw_score=True)``).

LightGBM decision semantics reproduced (``Tree::NumericalDecision`` plus the prediction
input path of the C API):

* A value goes left when ``value <= threshold`` (``BRANCH_LEQ``; a value equal to the
  threshold goes left).
* Before any tree sees a row, LightGBM drops every value with ``|x| <= kZeroThreshold``
  (``1e-35f`` widened to double), i.e. it reads such values as exactly ``0.0``. Instead of
  rewriting the input, thresholds in ``[-kZeroThreshold, kZeroThreshold)`` are moved to
  the equivalent threshold on the raw value (LightGBM itself emits ``+-kZeroThreshold``
  as split thresholds around zero, so this case is common).
* ``missing_type == "None"``: NaN is read as ``0.0``, so NaN follows the side that
  ``0.0`` takes (``nodes_missing_value_tracks_true = threshold >= 0``).
* ``missing_type == "NaN"``: NaN follows ``default_left``; zero is an ordinary value.
* ``missing_type == "Zero"`` (``zero_as_missing``): NaN and every ``|x| <=
  kZeroThreshold`` follow ``default_left``. When the default side is also the side
  zero would take by comparison (after moving the threshold off the zero interval) the
  node is a plain ``<=`` node; otherwise the node reads an extra input column, built in
  the graph, in which ``|x| <= kZeroThreshold`` has been replaced by NaN.
* Single-leaf trees (``num_leaves == 1``) contribute their constant ``leaf_value``.
* ``average_output`` (random forest): the sum is divided by the number of iterations
  before the output transform, as ``GBDT::Predict`` does; ``raw_score`` stays the plain
  sum, as ``predict(raw_score=True)`` returns it.

Output transforms: ``binary`` -> ``1 / (1 + exp(-sigmoid * raw))`` (the ``sigmoid``
parameter is read from the objective string, or from ``booster.params`` when that is
what the booster predicts with), ``cross_entropy`` -> logistic, ``poisson`` / ``gamma`` /
``tweedie`` -> ``exp``, objectives trained with ``reg_sqrt`` -> ``sign(raw) * raw**2``,
the regression / ranking objectives and custom objectives -> identity.

Unsupported (``ValueError``): multiclass models (more than one tree per iteration),
categorical splits, linear trees, ``cross_entropy_lambda`` and unknown objectives.

CUDA kernel coverage of the tensor graph (checked against onnxruntime's
``docs/OperatorKernels.md``, section "Operators implemented by CUDAExecutionProvider",
for opset 21 and the types used here):

=================  ===========================  =====================================
op                 registered CUDA versions      types used here
=================  ===========================  =====================================
Shape              [21, 22]                      double input, int64 output
Concat             13+                           double
Expand             13+                           double
Gather             13+                           double, int32 data; int32/int64 indices
GatherElements     13+                           double data; int32 indices
LessOrEqual        16+                           double
Cast               19+                           bool -> int32
Where              16+                           double (bool is NOT registered)
Abs, Neg           13+                           double
ReduceSum          13+ (axes as input)           double
Exp                13+                           double
Mul, Add, Div      14+                           double; Add also int32
Identity           19+ / [14, 18]                double
Pad                ran on CUDA (H100, below)     double
=================  ===========================  =====================================

``Where`` on bool tensors has no CUDA kernel, so NaN routing is folded into the
comparison instead of being combined with a boolean ``Where``/``IsNaN``: a node whose
NaN goes left compares the negated value, ``-x <= -nextafter(t, +inf)``, with its
children swapped, so that ``NaN`` (for which every comparison is false) takes the
"false" child, laid out first, in every node. The negated columns are built once per
batch with ``Neg``.

Also observed on an H100 with onnxruntime-gpu 1.31.1 (session profile, provider of every
executed node, for the graph before depth groups): for tweedie / binary +
zero_as_missing / reg_sqrt / random-forest models every node of the tensor graph ran on
``CUDAExecutionProvider``; for the depth-grouped graph of a 300-tree tweedie model
(``bench/bench_gpu_scoring.py``) all 435 nodes did. A model made only of single-leaf
trees has no traversal: its constant is expanded to ``[N]`` from the input's ``Shape``,
which onnxruntime computes on the CPU by design (not profiled since the depth groups).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

if TYPE_CHECKING:
    import lightgbm

__all__ = [
    "INPUT_NAME",
    "MAX_PROBABILITY_ABSOLUTE_DIFF",
    "MAX_SPEND_RELATIVE_DIFF",
    "OUTPUT_NAME",
    "PROBABILITY_OUTPUT_NAME",
    "RAW_OUTPUT_NAME",
    "GraphKind",
    "ParityReport",
    "booster_to_onnx",
    "check_parity",
    "compare_predictions",
]

GraphKind = Literal["tree_ensemble", "tensor"]
# The parity gate (registration, recheck, and the tensor graph's check when it scores):
# an exported model must equal LightGBM within these bounds on every checked row.
MAX_SPEND_RELATIVE_DIFF = 1e-9
MAX_PROBABILITY_ABSOLUTE_DIFF = 1e-9

INPUT_NAME = "features"
OUTPUT_NAME = "prediction"
RAW_OUTPUT_NAME = "raw_score"
# The registry's hurdle graph (``spend.onnx``) outputs the purchase head's prediction
# under this name beside its own ``prediction``, the expected spend.
PROBABILITY_OUTPUT_NAME = "purchase_probability"

ONNX_OPSET = 21
ML_OPSET = 5
IR_VERSION = 10  # the IR version that goes with opset 21 (onnx 1.16)

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


# --------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ParityReport:
    """How far an exported model is from ``booster.predict`` on one feature matrix.

    Attributes:
        rows: number of rows compared.
        max_abs_diff: ``max |onnx - lgb|`` (0.0 for no rows; ``inf`` where exactly one of
            the two is NaN).
        max_rel_diff: ``max |onnx - lgb| / max(|lgb|, tiny)`` with ``tiny`` the smallest
            normal double.
    """

    rows: int
    max_abs_diff: float
    max_rel_diff: float


def booster_to_onnx(
    booster: lightgbm.Booster, *, graph: GraphKind = "tree_ensemble"
) -> onnx.ModelProto:
    """Convert a LightGBM booster into an ONNX model equal to ``booster.predict``.

    Args:
        booster: a trained (or loaded) single-output booster with numerical splits.
        graph: ``"tree_ensemble"`` for one ``ai.onnx.ml`` ``TreeEnsemble`` node (CPU
            execution provider), or ``"tensor"`` for a graph of standard operators only,
            runnable by the CUDA execution provider.

    Returns:
        A checked ``onnx.ModelProto`` with input ``features`` (``double[N, F]``) and
        outputs ``prediction`` and ``raw_score`` (``double[N]``).

    Raises:
        ValueError: for unsupported boosters (multiclass, categorical splits, linear
            trees, unsupported objectives, no trees) or an unknown ``graph``.
    """
    if graph not in ("tree_ensemble", "tensor"):
        raise ValueError(f"graph must be 'tree_ensemble' or 'tensor', not {graph!r}")
    ensemble = _parse_booster(booster)
    if graph == "tree_ensemble":
        model = _build_tree_ensemble_model(ensemble)
    else:
        model = _build_tensor_model(ensemble)
    onnx.checker.check_model(model, full_check=True)
    return model


def check_parity(
    booster: lightgbm.Booster, model: onnx.ModelProto, features: np.ndarray
) -> ParityReport:
    """Run ``model`` with onnxruntime's CPU execution provider and compare with LightGBM.

    Args:
        booster: the booster the model was exported from.
        model: the exported model (either graph kind).
        features: ``[N, F]`` feature matrix; it is converted to contiguous float64.

    Returns:
        The row count and the maximum absolute and relative differences between the
        model's ``prediction`` output and ``booster.predict(features)``.
    """
    import onnxruntime as ort

    x = np.ascontiguousarray(features, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"features must be a 2-D array, got shape {x.shape}")
    options = ort.SessionOptions()
    # Do not leave busy-waiting worker threads behind (they slow down LightGBM's OpenMP).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = ort.InferenceSession(
        model.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )
    (onnx_pred,) = session.run([OUTPUT_NAME], {INPUT_NAME: x})
    onnx_pred = np.asarray(onnx_pred, dtype=np.float64).reshape(-1)
    lgb_pred = np.asarray(booster.predict(x), dtype=np.float64).reshape(-1)
    return compare_predictions(lgb_pred, onnx_pred)


def compare_predictions(expected: np.ndarray, actual: np.ndarray) -> ParityReport:
    """The row count and the largest absolute and relative differences of ``actual``
    (ONNX) from ``expected`` (LightGBM), as in :class:`ParityReport`."""
    if actual.shape != expected.shape:
        raise ValueError(
            f"prediction shapes differ: onnx {actual.shape} vs lightgbm {expected.shape}"
        )
    if expected.size == 0:
        return ParityReport(rows=0, max_abs_diff=0.0, max_rel_diff=0.0)
    with np.errstate(invalid="ignore", over="ignore"):
        same = (actual == expected) | (np.isnan(actual) & np.isnan(expected))
        abs_diff = np.where(same, 0.0, np.abs(actual - expected))
        abs_diff = np.where(np.isnan(abs_diff), np.inf, abs_diff)
        denom = np.maximum(np.abs(expected), np.finfo(np.float64).tiny)
        rel_diff = np.where(same, 0.0, abs_diff / np.where(np.isnan(denom), 1.0, denom))
    return ParityReport(
        rows=int(expected.size),
        max_abs_diff=float(abs_diff.max()),
        max_rel_diff=float(rel_diff.max()),
    )


# --------------------------------------------------------------------------------------
# Booster -> normalised ensemble
# --------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------
# Graph building helpers
# --------------------------------------------------------------------------------------


class _GraphBuilder:
    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self._names: set[str] = set()

    def name(self, hint: str) -> str:
        candidate = hint
        i = 0
        while candidate in self._names:
            i += 1
            candidate = f"{hint}_{i}"
        self._names.add(candidate)
        return candidate

    def const(self, hint: str, array: np.ndarray) -> str:
        name = self.name(hint)
        self.initializers.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def op(
        self,
        op_type: str,
        inputs: Sequence[str],
        hint: str,
        *,
        output: str | None = None,
        domain: str = "",
        **attrs: Any,
    ) -> str:
        out = output if output is not None else self.name(hint)
        if output is not None:
            self._names.add(output)
        self.nodes.append(
            helper.make_node(
                op_type,
                list(inputs),
                [out],
                name=self.name(f"{op_type}_{hint}"),
                domain=domain,
                **attrs,
            )
        )
        return out


def _zero_as_missing_base(builder: _GraphBuilder, ensemble: _Ensemble) -> str:
    """Input followed by the zero-as-missing columns (``|x| <= kZeroThreshold`` -> NaN)."""
    if not ensemble.zero_columns:
        return INPUT_NAME
    cols = builder.const("zero_cols", np.asarray(ensemble.zero_columns, dtype=np.int64))
    selected = builder.op("Gather", [INPUT_NAME, cols], "zero_sel", axis=1)
    magnitude = builder.op("Abs", [selected], "zero_abs")
    k_zero = builder.const("k_zero", np.asarray(_K_ZERO, dtype=np.float64))
    is_zero = builder.op("LessOrEqual", [magnitude, k_zero], "zero_mask")
    nan = builder.const("nan", np.asarray(np.nan, dtype=np.float64))
    as_missing = builder.op("Where", [is_zero, nan, selected], "zero_as_nan")
    return builder.op("Concat", [INPUT_NAME, as_missing], "base_input", axis=1)


def _finish_model(
    builder: _GraphBuilder, ensemble: _Ensemble, raw_sum: str, graph_kind: GraphKind
) -> onnx.ModelProto:
    # LightGBM's raw score is the plain sum over trees, also for average_output models,
    # whose predict() divides by the number of iterations before the output transform.
    builder.op("Identity", [raw_sum], "raw", output=RAW_OUTPUT_NAME)
    raw = raw_sum
    if ensemble.average_divisor is not None:
        divisor = builder.const("iterations", np.asarray(ensemble.average_divisor, np.float64))
        raw = builder.op("Div", [raw_sum, divisor], "average")

    transform = ensemble.transform
    if transform.kind == "identity":
        builder.op("Identity", [raw], "prediction", output=OUTPUT_NAME)
    elif transform.kind == "exp":
        builder.op("Exp", [raw], "prediction", output=OUTPUT_NAME)
    elif transform.kind == "signed_square":
        magnitude = builder.op("Abs", [raw], "raw_abs")
        builder.op("Mul", [raw, magnitude], "prediction", output=OUTPUT_NAME)
    else:  # sigmoid: 1 / (1 + exp(-sigmoid * raw)), LightGBM's formula
        slope = builder.const("neg_sigmoid", np.asarray(-transform.sigmoid, np.float64))
        one = builder.const("one", np.asarray(1.0, np.float64))
        scaled = builder.op("Mul", [raw, slope], "scaled")
        expd = builder.op("Exp", [scaled], "exp")
        denom = builder.op("Add", [expd, one], "denom")
        builder.op("Div", [one, denom], "prediction", output=OUTPUT_NAME)

    graph = helper.make_graph(
        builder.nodes,
        f"lightgbm_{graph_kind}",
        [
            helper.make_tensor_value_info(
                INPUT_NAME, TensorProto.DOUBLE, ["N", ensemble.num_features]
            )
        ],
        [
            helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.DOUBLE, ["N"]),
            helper.make_tensor_value_info(RAW_OUTPUT_NAME, TensorProto.DOUBLE, ["N"]),
        ],
        initializer=builder.initializers,
    )
    opsets = [helper.make_opsetid("", ONNX_OPSET)]
    if any(node.domain == "ai.onnx.ml" for node in builder.nodes):
        opsets.append(helper.make_opsetid("ai.onnx.ml", ML_OPSET))
    model = helper.make_model(
        graph,
        opset_imports=opsets,
        producer_name="purchasing_power.export",
        doc_string=(
            f"LightGBM booster ({ensemble.objective or 'custom objective'}, "
            f"{len(ensemble.trees)} trees) exported as a {graph_kind} graph"
        ),
    )
    model.ir_version = IR_VERSION
    helper.set_model_props(
        model,
        {
            "graph_kind": graph_kind,
            "lightgbm_objective": ensemble.objective,
            "num_trees": str(len(ensemble.trees)),
            "output_transform": transform.kind,
        },
    )
    return model


# --------------------------------------------------------------------------------------
# graph="tree_ensemble"
# --------------------------------------------------------------------------------------


def _build_tree_ensemble_model(ensemble: _Ensemble) -> onnx.ModelProto:
    featureids: list[int] = []
    splits: list[float] = []
    truenodeids: list[int] = []
    falsenodeids: list[int] = []
    trueleafs: list[int] = []
    falseleafs: list[int] = []
    missing_tracks_true: list[int] = []
    leaf_weights: list[float] = []
    tree_roots: list[int] = []

    for tree in ensemble.trees:
        tree_roots.append(len(featureids))
        root = tree.nodes[0]
        if isinstance(root, _Leaf):
            # A single entry whose two branches reference the same leaf (see the spec).
            featureids.append(0)
            splits.append(0.0)
            truenodeids.append(len(leaf_weights))
            falsenodeids.append(len(leaf_weights))
            trueleafs.append(1)
            falseleafs.append(1)
            missing_tracks_true.append(0)
            leaf_weights.append(root.value)
            continue
        # Global position of each local split node / leaf.
        node_pos: dict[int, int] = {}
        leaf_pos: dict[int, int] = {}
        base = len(featureids)
        for local, node in enumerate(tree.nodes):
            if isinstance(node, _Split):
                node_pos[local] = base + len(node_pos)
        for local, node in enumerate(tree.nodes):
            if isinstance(node, _Leaf):
                leaf_pos[local] = len(leaf_weights)
                leaf_weights.append(node.value)
        for node in tree.nodes:
            if not isinstance(node, _Split):
                continue
            featureids.append(node.column)
            splits.append(node.threshold)
            missing_tracks_true.append(int(node.nan_left))
            for child, ids, leafs in (
                (node.left, truenodeids, trueleafs),
                (node.right, falsenodeids, falseleafs),
            ):
                if child in leaf_pos:
                    ids.append(leaf_pos[child])
                    leafs.append(1)
                else:
                    ids.append(node_pos[child])
                    leafs.append(0)

    builder = _GraphBuilder()
    base_input = _zero_as_missing_base(builder, ensemble)
    scores = builder.op(
        "TreeEnsemble",
        [base_input],
        "tree_ensemble",
        domain="ai.onnx.ml",
        aggregate_function=1,  # SUM
        post_transform=0,  # NONE
        n_targets=1,
        tree_roots=tree_roots,
        nodes_featureids=featureids,
        nodes_splits=numpy_helper.from_array(np.asarray(splits, dtype=np.float64)),
        nodes_modes=numpy_helper.from_array(np.zeros(len(featureids), dtype=np.uint8)),
        nodes_truenodeids=truenodeids,
        nodes_falsenodeids=falsenodeids,
        nodes_trueleafs=trueleafs,
        nodes_falseleafs=falseleafs,
        nodes_missing_value_tracks_true=missing_tracks_true,
        leaf_targetids=[0] * len(leaf_weights),
        leaf_weights=numpy_helper.from_array(np.asarray(leaf_weights, dtype=np.float64)),
    )
    axes = builder.const("axis1", np.asarray([1], dtype=np.int64))
    raw_sum = builder.op("Squeeze", [scores, axes], "raw_sum")
    return _finish_model(builder, ensemble, raw_sum, "tree_ensemble")


# --------------------------------------------------------------------------------------
# graph="tensor"
# --------------------------------------------------------------------------------------

# Each traversal level costs a fixed number of kernel launches whatever the number of
# trees it advances. Trees are grouped by depth so that no tree is advanced far past its
# own depth; merging two depth groups saves the launches of the shallower group's levels
# at the price of advancing its trees further. One level's launches are priced like
# advancing this many trees by one level. On an H100 (bench/README.md), a 300-tree,
# depth-20 (mean 13.5) model: no grouping 4.7M rows/s, exact depths (cost 0) 5.97M at
# runs of 1M rows but 4.5M at runs of 65k, cost 8 (4 groups) 5.97M and 5.0M.
_LEVEL_COST_IN_TREES = 8


@dataclass(frozen=True)
class _PackedGroup:
    """The trees of one depth group in padded node tables, flattened to ``[T * width]``.

    Global id = tree * width + slot. A row at node ``g`` moves to
    ``child[g] + (x[column[g]] <= threshold[g])``, where ``x`` is the input extended with
    the zero-as-missing and the negated columns: the two children of a split sit side by
    side, the side taken by NaN first, since NaN fails every comparison. Leaves and
    padding have threshold NaN and ``child[g] = g``, so rows stay once they reach them.
    """

    depth: int
    width: int
    trees: tuple[int, ...]  # positions in the ensemble, in order
    column: np.ndarray  # int32 [T * width]
    threshold: np.ndarray  # float64 [T * width]
    child: np.ndarray  # int32 [T * width]
    leaf_value: np.ndarray  # float64 [T * width]

    def roots(self) -> np.ndarray:
        return np.arange(len(self.trees), dtype=np.int64) * self.width


def _depth_groups(depths: Sequence[int]) -> list[list[int]]:
    """Tree positions grouped by depth (depth >= 1), minimising levels x trees + launches.

    A dynamic programme over the distinct depths in increasing order: each group takes a
    run of consecutive depths and costs ``(trees + _LEVEL_COST_IN_TREES) * max depth``.
    """
    distinct = sorted({d for d in depths if d > 0})
    counts = [sum(1 for d in depths if d == value) for value in distinct]
    best = [0.0] * (len(distinct) + 1)
    start = [0] * (len(distinct) + 1)
    for end in range(1, len(distinct) + 1):
        best[end] = math.inf
        for begin in range(end):
            trees = sum(counts[begin:end])
            cost = best[begin] + (trees + _LEVEL_COST_IN_TREES) * distinct[end - 1]
            if cost < best[end]:
                best[end], start[end] = cost, begin
    groups: list[list[int]] = []
    end = len(distinct)
    while end > 0:
        members = set(distinct[start[end] : end])
        groups.append([t for t, d in enumerate(depths) if d in members])
        end = start[end]
    return groups[::-1]


def _pack_group(
    ensemble: _Ensemble, trees: Sequence[int], negated: dict[int, int], base_width: int
) -> _PackedGroup:
    """Pack ``trees``; ``negated`` maps base columns to their negated column (grown here)."""
    width = max(len(ensemble.trees[t].nodes) for t in trees)
    size = len(trees) * width
    slots = np.arange(size, dtype=np.int64)
    column = np.zeros(size, dtype=np.int64)
    threshold = np.full(size, np.nan, dtype=np.float64)
    child = slots.copy()
    leaf_value = np.zeros(size, dtype=np.float64)

    for position, t in enumerate(trees):
        nodes = ensemble.trees[t].nodes
        offset = position * width
        slot_of = {0: 0}
        queue = [0]  # breadth first, so every split's children get two adjacent slots
        next_free = 1
        for local in queue:
            node = nodes[local]
            g = offset + slot_of[local]
            if isinstance(node, _Leaf):
                leaf_value[g] = node.value
                continue
            if not node.nan_left:
                # x <= t goes left; NaN fails and goes right.
                column[g], threshold[g] = node.column, node.threshold
                nan_side, compared_side = node.right, node.left
            elif node.threshold == np.inf:
                # Every value (and NaN) goes left: threshold NaN never compares true.
                nan_side, compared_side = node.left, node.right
            else:
                # x > t  <=>  -x <= -nextafter(t, +inf); NaN fails and goes left.
                column[g] = negated.setdefault(node.column, base_width + len(negated))
                threshold[g] = -float(np.nextafter(node.threshold, np.inf))
                nan_side, compared_side = node.left, node.right
            slot_of[nan_side], slot_of[compared_side] = next_free, next_free + 1
            child[g] = offset + next_free
            next_free += 2
            queue.extend([nan_side, compared_side])

    if size >= 2**31 - 1:
        raise ValueError(f"a depth group of {size} nodes does not fit int32 node indices")
    return _PackedGroup(
        depth=max(ensemble.trees[t].depth for t in trees),
        width=width,
        trees=tuple(trees),
        column=column.astype(np.int32),
        threshold=threshold,
        child=child.astype(np.int32),
        leaf_value=leaf_value,
    )


def _traverse_group(builder: _GraphBuilder, extended: str, group: _PackedGroup, name: str) -> str:
    """``[N]``: the sum over the group's trees of each row's leaf value."""
    roots = group.roots()
    # Level 0: every row is at the root, so root data comes straight from constants.
    root_cols = builder.const(f"{name}_root_column", group.column[roots])
    x = builder.op("Gather", [extended, root_cols], f"{name}_x0", axis=1)  # [N, T]
    root_thr = builder.const(f"{name}_root_threshold", group.threshold[roots])
    compared = builder.op("LessOrEqual", [x, root_thr], f"{name}_cmp0")
    step = builder.op("Cast", [compared], f"{name}_step0", to=TensorProto.INT32)
    root_child = builder.const(f"{name}_root_child", group.child[roots])
    node = builder.op("Add", [step, root_child], f"{name}_level1")
    if group.depth > 1:
        column = builder.const(f"{name}_column", group.column)
        threshold = builder.const(f"{name}_threshold", group.threshold)
        child = builder.const(f"{name}_child", group.child)
    for level in range(1, group.depth):
        col = builder.op("Gather", [column, node], f"{name}_col{level}")
        x = builder.op("GatherElements", [extended, col], f"{name}_x{level}", axis=1)
        thr = builder.op("Gather", [threshold, node], f"{name}_thr{level}")
        compared = builder.op("LessOrEqual", [x, thr], f"{name}_cmp{level}")
        first = builder.op("Gather", [child, node], f"{name}_child{level}")
        step = builder.op("Cast", [compared], f"{name}_step{level}", to=TensorProto.INT32)
        node = builder.op("Add", [first, step], f"{name}_level{level + 1}")
    leaf_value = builder.const(f"{name}_value", group.leaf_value)
    values = builder.op("Gather", [leaf_value, node], f"{name}_leaf_values")  # [N, T]
    # onnxruntime's CPU ReduceSum adds a row in an order that depends on where the row
    # starts in memory; zero columns up to a multiple of 8 (64 bytes) start every row
    # alike, so a row's sum does not depend on its position in the batch.
    width = len(group.trees)
    if width % 8:
        pads = builder.const(f"{name}_pads", np.asarray([0, 0, 0, 8 - width % 8], np.int64))
        values = builder.op("Pad", [values, pads], f"{name}_aligned_values")
    axes = builder.const(f"{name}_axis1", np.asarray([1], dtype=np.int64))
    return builder.op("ReduceSum", [values, axes], f"{name}_sum", keepdims=0)


def _build_tensor_model(ensemble: _Ensemble) -> onnx.ModelProto:
    builder = _GraphBuilder()
    base = _zero_as_missing_base(builder, ensemble)
    base_width = ensemble.num_features + len(ensemble.zero_columns)
    negated: dict[int, int] = {}
    depths = [tree.depth for tree in ensemble.trees]
    groups = [_pack_group(ensemble, trees, negated, base_width) for trees in _depth_groups(depths)]

    extended = base
    if negated:
        cols = builder.const("neg_cols", np.asarray(list(negated), dtype=np.int64))
        selected = builder.op("Gather", [base, cols], "neg_sel", axis=1)
        negation = builder.op("Neg", [selected], "neg")
        extended = builder.op("Concat", [base, negation], "extended_input", axis=1)

    raw_sum: str | None = None
    for number, group in enumerate(groups):
        part = _traverse_group(builder, extended, group, f"g{number}")
        raw_sum = part if raw_sum is None else builder.op("Add", [raw_sum, part], "raw_sum")
    constant_trees = [tree.nodes[0] for tree in ensemble.trees if tree.depth == 0]
    if constant_trees:
        total = 0.0
        for leaf in constant_trees:
            assert isinstance(leaf, _Leaf)
            total += leaf.value
        constant = builder.const("constant_trees", np.asarray(total, dtype=np.float64))
        if raw_sum is None:
            rows = builder.op("Shape", [INPUT_NAME], "rows", start=0, end=1)
            raw_sum = builder.op("Expand", [constant, rows], "raw_sum")
        else:
            raw_sum = builder.op("Add", [raw_sum, constant], "raw_sum")
    assert raw_sum is not None
    return _finish_model(builder, ensemble, raw_sum, "tensor")
