"""``graph="tensor"``: standard ``ai.onnx`` operators only (opset 21), for
onnxruntime's CUDA execution provider; trees grouped by depth, each group packed into
padded node tables and walked level by level (``purchasing_power.export``'s docstring
has the layout and the CUDA kernel coverage)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import TensorProto

from purchasing_power.export.graph_builder import (
    _finish_model,
    _GraphBuilder,
    _zero_as_missing_base,
)
from purchasing_power.export.names import (
    INPUT_NAME,
)
from purchasing_power.export.parse import (
    _Ensemble,
    _Leaf,
)

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
