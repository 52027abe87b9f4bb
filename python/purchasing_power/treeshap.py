"""Exact path-dependent TreeSHAP of a LightGBM model, compiled with numba.

LightGBM's ``predict(pred_contrib=True)`` runs the recursive TreeSHAP algorithm once per
row and tree, ``O(leaves x depth^2)`` each time: on a 1,500-tree model that is about
8 ms a row on two threads, and it was the slowest stage of a build (``bench/``). This
module computes the same values (equal to LightGBM's to floating-point rounding,
tested) by another route, the one of Fast TreeSHAP v2 (Yang, 2021).

For one leaf with value ``v`` whose path splits on the unique features ``P`` (``d`` of
them), path-dependent TreeSHAP plays the game ``g(S) = v * prod_{k in P} (z_k if k in S
else r_k)``, where ``z_k`` is 1 when the row takes the path's side at every split on
``k`` and ``r_k`` is the product of the cover fractions of those splits. Its Shapley
values depend on the row only through the set ``Z`` of path features with ``z_k = 1``:

    phi_j(Z) = v * (1 - r_j) * G(Z - {j}) * R(P - Z)     if j in Z
    phi_j(Z) = -v * G(Z) * R(P - Z)                      if j not in Z

with ``R(A)`` the product of ``r_k`` over ``A`` and ``G(A) = sum_{S subset of A}
|S|! (d - |S| - 1)! / d! * R(A - S)``. So each leaf gets a table over its ``2^d``
patterns, built once per model, and a row costs one pattern and one table lookup per
leaf and path feature (a leaf with many path features keeps ``G`` and ``R`` instead,
``2 x 2^d`` values rather than ``d x 2^d``, and looks up ``G(Z - {j})`` per feature). A
leaf with more path features than ``TABLE_FEATURES`` keeps its cover ratios only, and
``G`` and ``R`` are worked out for each pattern the rows bring: ``G(A)`` is the weighted
sum of the coefficients of ``prod_{k in A} (t + r_k)``, and ``G(A - {j})`` those of the
same polynomial divided by ``(t + r_j)``, ``O(d^2)`` in all. A tree whose paths split on
more than ``MAX_PATH_FEATURES`` features (a pattern is the bits of one 64-bit integer)
is left to LightGBM.

The tables are evaluated by one compiled kernel (``_kernel``). Rows are cut into one
block per thread; within a block, each tree first records every row's decision at each
of its splits as bits of a key, then groups the rows by key (rows that take the same
side at every split get the same values from the tree: on the medium bench shop, a
fifth of the rows are distinct per tree), evaluates the leaves once per group, leaf by
leaf so that a leaf's table stays in cache, and adds each group's values to its rows.
Every row's values are added in the same order whatever the blocks and groups, so the
result does not depend on the number of threads.

Splits are read through ``export``'s parser, so a row goes left here exactly when it
goes left in LightGBM and in the exported ONNX graphs (NaN and zero-as-missing rules).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import cast

import lightgbm as lgb
import numba
import numpy as np

from purchasing_power.export.parse import _K_ZERO, _Ensemble, _Leaf, _parse_booster, _Split, _Tree

# A leaf with up to FULL_TABLE_FEATURES path features keeps the full table, 2^d x d
# values (16 KB at 8); one with up to TABLE_FEATURES keeps G and R, 2 x 2^d values (1 MB
# at 16), and pays a few more steps per row; one with more keeps its d cover ratios and
# works G and R out per pattern, O(d^2). On the large bench model 9 of 57,722 leaves had
# more than 16 (up to 18); their 3 trees, left to LightGBM before, took 11.3 s of 97.0 s.
# Beyond MAX_PATH_FEATURES the tree is left to LightGBM.
FULL_TABLE_FEATURES = 8
TABLE_FEATURES = 16
MAX_PATH_FEATURES = 62
# how a leaf keeps its values (_Tables.leaf_kind)
_FULL, _FACTORED, _COMPUTED = 0, 1, 2


@numba.njit(cache=True)
def _weights(d: int) -> np.ndarray:
    """``|S|! (d - |S| - 1)! / d!`` for ``|S| = 0..d - 1``: the Shapley weight of a
    coalition of ``|S|`` of a leaf's ``d`` path features."""
    weights = np.zeros(d)
    for s in range(d):
        weights[s] = math.gamma(s + 1) * math.gamma(d - s) / math.gamma(d + 1)
    return weights


@numba.njit(cache=True)
def _leaf_values(value: float, ratios: np.ndarray, full: bool) -> tuple[np.ndarray, np.ndarray]:
    """``v (1 - r_k)`` for each path feature, and the leaf's values: when ``full``, the
    table ``[d, 2^d]`` (raveled) of ``phi_k = R(P - Z) x (v (1 - r_k) G(Z - {k}) if k in Z
    else -v G(Z))`` over every pattern ``Z`` (bit ``k``: path feature ``k`` is in ``Z``);
    else ``G(Z)`` then ``R(P - Z)``."""
    d = len(ratios)
    size = 1 << d
    weights = np.append(_weights(d), 0.0)  # and 0 for |S| = d
    # Built by doubling: the patterns with bit k set follow those without, as in binary.
    # poly: coefficients of prod_{k in Z} (t + r_k), whose [t^s] is the sum over S
    # subset of Z with |S| = s of R(Z - S).
    poly = np.zeros((size, d + 1))
    poly[0, 0] = 1.0
    outside = np.ones(size)
    half = 1
    for k in range(d):
        ratio = ratios[k]
        for p in range(half):
            poly[half + p, 0] = poly[p, 0] * ratio
            for s in range(1, d + 1):
                poly[half + p, s] = poly[p, s] * ratio + poly[p, s - 1]
            outside[half + p] = outside[p]
            outside[p] *= ratio
        half *= 2
    g = np.zeros(size)
    for p in range(size):
        for s in range(d + 1):
            g[p] += poly[p, s] * weights[s]
    present = value * (1.0 - ratios)
    if not full:
        return present, np.concatenate((g, outside))
    table = np.empty((d, size))
    for k in range(d):
        bit = 1 << k
        for p in range(size):
            if p & bit:
                table[k, p] = present[k] * g[p ^ bit] * outside[p]
            else:
                table[k, p] = -value * g[p] * outside[p]
    return present, table.ravel()


def _starts() -> list[int]:
    return [0]


@dataclass
class _Tables:
    """Every tree's leaf tables as flat arrays, the form ``_kernel`` reads. Per tree,
    where its splits (``tree_node``), features (``tree_feature``) and leaves
    (``tree_leaf``) end; per leaf, where its path's splits (``leaf_split``) and path
    features (``leaf_slot``: their positions among the tree's features) end, and where
    its values start (by ``leaf_kind``: the full table ``[d, 2^d]``; ``G`` then ``R``,
    ``2 x 2^d``; or the cover ratios ``r_k`` then the weights ``|S|! (d - |S| - 1)! / d!``,
    ``2 x d``), with ``present``, ``v (1 - r_k)``, and the leaf's value."""

    tree_node: list[int] = field(default_factory=_starts)
    node_column: list[int] = field(default_factory=list)
    node_threshold: list[float] = field(default_factory=list)
    node_nan_left: list[bool] = field(default_factory=list)
    tree_feature: list[int] = field(default_factory=_starts)
    features: list[int] = field(default_factory=list)
    tree_leaf: list[int] = field(default_factory=_starts)
    leaf_split: list[int] = field(default_factory=_starts)
    split_node: list[int] = field(default_factory=list)
    split_left: list[bool] = field(default_factory=list)
    split_slot: list[int] = field(default_factory=list)
    leaf_slot: list[int] = field(default_factory=_starts)
    slots: list[int] = field(default_factory=list)
    present: list[float] = field(default_factory=list)
    leaf_kind: list[int] = field(default_factory=list)
    leaf_value: list[float] = field(default_factory=list)
    leaf_values_at: list[int] = field(default_factory=list)
    values: list[np.ndarray] = field(default_factory=list)
    size: int = 0
    factored_leaves: int = 0
    computed_leaves: int = 0
    max_path_features: int = 0

    def add(self, tree: _Tree, ensemble: _Ensemble) -> bool:
        """Add a tree's tables; ``False`` (nothing added) when a path has too many features."""
        internal = [i for i, node in enumerate(tree.nodes) if isinstance(node, _Split)]
        splits = [node for node in tree.nodes if isinstance(node, _Split)]
        position = {node: i for i, node in enumerate(internal)}
        num_features = ensemble.num_features

        def feature_of(column: int) -> int:
            return column if column < num_features else ensemble.zero_columns[column - num_features]

        used = sorted({feature_of(split.column) for split in splits})
        local = {feature: i for i, feature in enumerate(used)}
        leaves: list[tuple[float, list[tuple[int, bool, int, float]], list[int], np.ndarray]] = []
        # (node, path so far as (internal position, goes left, feature, cover fraction))
        stack: list[tuple[int, list[tuple[int, bool, int, float]]]] = [(0, [])]
        while stack:
            index, path = stack.pop()
            node = tree.nodes[index]
            if isinstance(node, _Split):
                if node.count <= 0:
                    raise ValueError(
                        "TreeSHAP needs the training rows that reached each split "
                        "(internal_count in LightGBM's model dump); a split has none"
                    )
                for child, left in ((node.left, True), (node.right, False)):
                    fraction = tree.nodes[child].count / node.count
                    stack.append(
                        (child, [*path, (position[index], left, feature_of(node.column), fraction)])
                    )
                continue
            assert isinstance(node, _Leaf)
            features: list[int] = []
            ratios: list[float] = []
            for _, _, feature, fraction in path:
                if feature in features:
                    ratios[features.index(feature)] *= fraction
                else:
                    features.append(feature)
                    ratios.append(fraction)
            if len(features) > MAX_PATH_FEATURES:
                return False
            leaves.append((node.value, path, features, np.asarray(ratios)))
        self.node_column.extend(s.column for s in splits)
        self.node_threshold.extend(s.threshold for s in splits)
        self.node_nan_left.extend(s.nan_left for s in splits)
        self.tree_node.append(len(self.node_column))
        self.features.extend(used)
        self.tree_feature.append(len(self.features))
        for value, leaf_path, leaf_features, leaf_ratios in leaves:
            d = len(leaf_features)
            kind = _FULL if d <= FULL_TABLE_FEATURES else _FACTORED
            if d > TABLE_FEATURES:
                kind = _COMPUTED
                present: np.ndarray = value * (1.0 - leaf_ratios)
                table = np.concatenate((leaf_ratios, _weights(d)))
            else:
                present, table = _leaf_values(value, leaf_ratios, kind == _FULL)
            self.split_node.extend(step[0] for step in leaf_path)
            self.split_left.extend(step[1] for step in leaf_path)
            self.split_slot.extend(leaf_features.index(step[2]) for step in leaf_path)
            self.leaf_split.append(len(self.split_node))
            self.slots.extend(local[feature] for feature in leaf_features)
            self.present.extend(present)
            self.leaf_slot.append(len(self.slots))
            self.leaf_kind.append(kind)
            self.leaf_value.append(value)
            self.leaf_values_at.append(self.size)
            self.values.append(table)
            self.size += len(table)
            self.factored_leaves += kind == _FACTORED
            self.computed_leaves += kind == _COMPUTED
            self.max_path_features = max(self.max_path_features, len(leaf_features))
        self.tree_leaf.append(len(self.leaf_value))
        return True

    def arrays(self) -> tuple[np.ndarray, ...]:
        """The arguments of ``_kernel`` after the rows."""

        def ints(values: list[int]) -> np.ndarray:
            return np.asarray(values, dtype=np.int64)

        return (
            ints(self.tree_node),
            ints(self.node_column),
            np.asarray(self.node_threshold, dtype=np.float64),
            np.asarray(self.node_nan_left, dtype=np.bool_),
            ints(self.tree_feature),
            ints(self.features),
            ints(self.tree_leaf),
            ints(self.leaf_split),
            ints(self.split_node),
            np.asarray(self.split_left, dtype=np.bool_),
            ints(self.split_slot),
            ints(self.leaf_slot),
            ints(self.slots),
            np.asarray(self.present, dtype=np.float64),
            np.asarray(self.leaf_kind, dtype=np.int8),
            np.asarray(self.leaf_value, dtype=np.float64),
            ints(self.leaf_values_at),
            np.concatenate(self.values) if self.values else np.zeros(0),
        )


_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


@numba.njit(parallel=True, cache=True)
def _kernel(
    base: np.ndarray,  # [columns, n] the base input, column-major
    phi: np.ndarray,  # [F + 1, n] added to
    blocks: int,
    tree_node: np.ndarray,
    node_column: np.ndarray,
    node_threshold: np.ndarray,
    node_nan_left: np.ndarray,
    tree_feature: np.ndarray,
    features: np.ndarray,
    tree_leaf: np.ndarray,
    leaf_split: np.ndarray,
    split_node: np.ndarray,
    split_left: np.ndarray,
    split_slot: np.ndarray,
    leaf_slot: np.ndarray,
    slots: np.ndarray,
    present: np.ndarray,
    leaf_kind: np.ndarray,
    leaf_value: np.ndarray,
    leaf_values_at: np.ndarray,
    values: np.ndarray,
) -> None:
    n = base.shape[1]
    trees = len(tree_node) - 1
    most_nodes, most_features, most_path = 1, 1, 1
    for t in range(trees):
        most_nodes = max(most_nodes, tree_node[t + 1] - tree_node[t])
        most_features = max(most_features, tree_feature[t + 1] - tree_feature[t])
    for leaf in range(len(leaf_kind)):
        most_path = max(most_path, leaf_slot[leaf + 1] - leaf_slot[leaf])
    most_words = (most_nodes + 63) // 64
    block = (n + blocks - 1) // blocks
    for b in numba.prange(blocks):
        lo = b * block
        m = min(n, lo + block) - lo
        if m <= 0:
            continue
        keys = np.empty((most_words, m), dtype=np.uint64)  # bit j: the row goes left at split j
        group = np.empty(m, dtype=np.int64)  # each row's group
        first = np.empty(m, dtype=np.int64)  # each group's first row
        left = np.empty((most_nodes, m), dtype=np.bool_)  # each group's decisions
        pattern = np.empty(m, dtype=np.int64)
        part = np.empty((most_features, m))  # each group's values
        poly = np.empty(most_path + 1)  # a computed leaf's polynomial over the pattern
        less = np.empty(most_path + 1)  # the same divided by one of its factors
        slots_size = 1
        while slots_size < 2 * m:
            slots_size *= 2
        hashed = np.empty(slots_size, dtype=np.int64)
        for t in range(trees):
            node0 = tree_node[t]
            nodes = tree_node[t + 1] - node0
            words = (nodes + 63) // 64
            # decide: bit j of a row's key is set when the row goes left at split j
            keys[:words] = 0
            for j in range(nodes):
                column = node_column[node0 + j]
                threshold = node_threshold[node0 + j]
                nan_left = node_nan_left[node0 + j]
                bit = np.uint64(1) << np.uint64(j & 63)
                word = j >> 6
                for i in range(m):
                    x = base[column, lo + i]
                    if x <= threshold or (nan_left and np.isnan(x)):
                        keys[word, i] |= bit
            # group the rows by key (open addressing on a hash of the key)
            hashed[:] = -1
            groups = 0
            for i in range(m):
                h = np.uint64(0)
                for w in range(words):
                    h = (h ^ keys[w, i]) * _GOLDEN
                    h ^= h >> np.uint64(29)
                at = np.int64(h & np.uint64(slots_size - 1))
                while True:
                    g = hashed[at]
                    if g < 0:
                        hashed[at] = groups
                        first[groups] = i
                        group[i] = groups
                        groups += 1
                        break
                    same = True
                    for w in range(words):
                        if keys[w, first[g]] != keys[w, i]:
                            same = False
                            break
                    if same:
                        group[i] = g
                        break
                    at = (at + 1) & (slots_size - 1)
            # each group's decisions, then its values, leaf by leaf (a leaf's table stays in
            # cache); a group's pattern: bit k set when it takes the path's side at every
            # split on the leaf's path feature k
            for j in range(nodes):
                word = j >> 6
                shift = np.uint64(j & 63)
                for g in range(groups):
                    left[j, g] = (keys[word, first[g]] >> shift) & np.uint64(1) == np.uint64(1)
            tree_features = tree_feature[t + 1] - tree_feature[t]
            part[:tree_features, :groups] = 0.0
            for leaf in range(tree_leaf[t], tree_leaf[t + 1]):
                slot0 = leaf_slot[leaf]
                d = leaf_slot[leaf + 1] - slot0
                size = 1 << d
                for g in range(groups):
                    pattern[g] = size - 1
                for s in range(leaf_split[leaf], leaf_split[leaf + 1]):
                    node = split_node[s]
                    goes_left = split_left[s]
                    clear = ~(1 << split_slot[s])
                    for g in range(groups):
                        if left[node, g] != goes_left:
                            pattern[g] &= clear
                at = leaf_values_at[leaf]
                value = leaf_value[leaf]
                if leaf_kind[leaf] == _FULL:  # the full table
                    for k in range(d):
                        row = slots[slot0 + k]
                        table = at + k * size
                        for g in range(groups):
                            part[row, g] += values[table + pattern[g]]
                elif leaf_kind[leaf] == _COMPUTED:  # ratios, then weights: G and R worked out
                    for g in range(groups):
                        p = pattern[g]
                        # prod over the pattern of (t + r_k), and R over the rest
                        poly[0] = 1.0
                        degree = 0
                        outside = 1.0
                        for k in range(d):
                            ratio = values[at + k]
                            if p & (1 << k):
                                poly[degree + 1] = poly[degree]
                                for s in range(degree, 0, -1):
                                    poly[s] = poly[s] * ratio + poly[s - 1]
                                poly[0] *= ratio
                                degree += 1
                            else:
                                outside *= ratio
                        g_all = 0.0  # G(Z), needed where some path feature is not in Z
                        for s in range(min(degree + 1, d)):
                            g_all += poly[s] * values[at + d + s]
                        for k in range(d):
                            row = slots[slot0 + k]
                            if p & (1 << k):
                                # divided by (t + r_k), from the top: stable for r_k <= 1
                                ratio = values[at + k]
                                less[degree - 1] = poly[degree]
                                for s in range(degree - 1, 0, -1):
                                    less[s - 1] = poly[s] - ratio * less[s]
                                g_less = 0.0
                                for s in range(degree):
                                    g_less += less[s] * values[at + d + s]
                                part[row, g] += present[slot0 + k] * g_less * outside
                            else:
                                part[row, g] += -value * g_all * outside
                else:  # G, then R
                    for k in range(d):
                        row = slots[slot0 + k]
                        k_bit = 1 << k
                        with_k = present[slot0 + k]
                        for g in range(groups):
                            p = pattern[g]
                            outside = values[at + size + p]
                            if p & k_bit:
                                part[row, g] += with_k * values[at + (p ^ k_bit)] * outside
                            else:
                                part[row, g] += -value * values[at + p] * outside
            # add each group's values to its rows
            for f in range(tree_features):
                row = features[tree_feature[t] + f]
                for i in range(m):
                    phi[row, lo + i] += part[f, group[i]]


def _expected_value(tree: _Tree) -> float:
    root = tree.nodes[0]
    if isinstance(root, _Leaf):
        return root.value
    return sum(node.value * node.count for node in tree.nodes if isinstance(node, _Leaf)) / (
        root.count
    )


class TreeShap:
    """TreeSHAP values of one booster: ``contributions(X)`` is LightGBM's
    ``predict(X, pred_contrib=True)``, ``[N, F + 1]`` with the expected raw score last."""

    def __init__(self, booster: lgb.Booster) -> None:
        self._booster = booster
        self._ensemble = _parse_booster(booster)
        tables = _Tables()
        self._left_to_lightgbm: list[int] = []
        for position, tree in enumerate(self._ensemble.trees):
            if isinstance(tree.nodes[0], _Leaf):  # a constant: only the expected value
                continue
            if not tables.add(tree, self._ensemble):
                self._left_to_lightgbm.append(position)
        self._arrays = tables.arrays()  # the lists go: only the arrays are kept
        self._trees_with_tables = len(tables.tree_leaf) - 1
        self.factored_leaves = tables.factored_leaves  # leaves that keep G and R
        self.computed_leaves = tables.computed_leaves  # leaves that work them out
        self.max_path_features = tables.max_path_features
        self._expected = float(sum(_expected_value(tree) for tree in self._ensemble.trees))

    @property
    def trees_left_to_lightgbm(self) -> int:
        return len(self._left_to_lightgbm)

    def _base(self, features: np.ndarray) -> np.ndarray:
        if not self._ensemble.zero_columns:
            return features
        zeros = features[:, list(self._ensemble.zero_columns)]
        zeros = np.where(np.abs(zeros) <= _K_ZERO, np.nan, zeros)
        return np.hstack([features, zeros])

    def contributions(self, features: np.ndarray, *, num_threads: int = 1) -> np.ndarray:
        """``[N, F + 1]``: each feature's contribution to the raw score, then the expected
        raw score, on ``num_threads`` threads (the kernel's, and LightGBM's for the trees
        left to it). The values do not depend on the number of threads."""
        features = np.asarray(features, dtype=np.float64)
        num_features = features.shape[1]
        if num_features != self._ensemble.num_features:
            raise ValueError(
                f"the model has {self._ensemble.num_features} features, the input {num_features}"
            )
        # numba.config sets its settings at run time from the environment
        most = numba.config.NUMBA_NUM_THREADS  # type: ignore[attr-defined]
        threads = max(1, min(num_threads, most))
        base = np.ascontiguousarray(self._base(features).T)
        phi = np.zeros((num_features + 1, len(features)))
        phi[num_features] = self._expected
        if len(features) and self._trees_with_tables:
            previous = numba.get_num_threads()
            numba.set_num_threads(threads)
            try:
                _kernel(base, phi, threads, *self._arrays)
            finally:
                numba.set_num_threads(previous)
        phi = np.ascontiguousarray(phi.T)
        for tree in self._left_to_lightgbm:
            part = cast(
                np.ndarray,
                self._booster.predict(
                    features,
                    start_iteration=tree,
                    num_iteration=1,
                    pred_contrib=True,
                    num_threads=num_threads,
                ),
            )
            phi[:, :num_features] += part[:, :num_features]
        return phi
