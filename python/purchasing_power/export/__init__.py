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

from typing import TYPE_CHECKING

import onnx

from purchasing_power.export.compare import ParityReport, check_parity, compare_predictions
from purchasing_power.export.names import (
    INPUT_NAME,
    IR_VERSION,
    MAX_PROBABILITY_ABSOLUTE_DIFF,
    MAX_SPEND_RELATIVE_DIFF,
    OUTPUT_NAME,
    PROBABILITY_OUTPUT_NAME,
    RAW_OUTPUT_NAME,
    GraphKind,
)
from purchasing_power.export.parse import _parse_booster
from purchasing_power.export.tensor import _build_tensor_model
from purchasing_power.export.tree_ensemble import _build_tree_ensemble_model

if TYPE_CHECKING:
    import lightgbm

__all__ = [
    "INPUT_NAME",
    "IR_VERSION",
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
