"""Exact path-dependent TreeSHAP of a LightGBM model, vectorized over rows.

LightGBM's ``predict(pred_contrib=True)`` runs the recursive TreeSHAP algorithm once per
row and tree, ``O(leaves x depth^2)`` each time: on a 1,500-tree model that is about
8 ms a row on two threads, and it was the slowest stage of a build (``bench/``). This
module computes the same values (equal to LightGBM's to floating-point rounding,
tested) by another route, the one of Fast TreeSHAP v2 (Yang, 2021). On the demo shop
``ml_reasons`` took 66 s with ``pred_contrib`` on two threads, 14 s with this on one:

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
leaf (a leaf with many path features keeps ``G`` and ``R`` instead, ``2 x 2^d`` values
rather than ``d x 2^d``, and looks up ``G(Z - {j})`` per feature). Rows that take the
same side at every split of a tree get the same values from it, so each tree is
evaluated once per distinct set of decisions in a batch (on the demo shop, some 30% of
the rows). A tree whose paths split on more than ``MAX_PATH_FEATURES`` features is
left to LightGBM for that tree.

Splits are read through ``export``'s parser, so a row goes left here exactly when it
goes left in LightGBM and in the exported ONNX graphs (NaN and zero-as-missing rules).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import lightgbm as lgb
import numpy as np

from purchasing_power.export import _K_ZERO, _Ensemble, _Leaf, _parse_booster, _Split, _Tree

# A leaf with up to this many path features keeps the full table, 2^d x d values (16
# KB at 8); one with more keeps G and R, 2 x 2^d values, and pays a few more steps
# per row. Beyond MAX_PATH_FEATURES (2 MB at 16) the tree is left to LightGBM.
FULL_TABLE_FEATURES = 8
MAX_PATH_FEATURES = 16


@dataclass(frozen=True)
class _LeafTable:
    slots: np.ndarray  # [d] the path features (positions in the tree's features), by bit
    nodes: np.ndarray  # [splits] internal-node positions of the path's splits
    goes_left: np.ndarray  # [splits] the side the path takes at each split
    groups: np.ndarray | None  # [d, splits] 1 where a split is on the feature, if one repeats
    group_sizes: np.ndarray  # [d] splits on each feature
    weights: np.ndarray  # [d] 2^k, float: a pattern is weights @ z
    # one of the two: the values of every pattern [d, 2^d] for small d, else their factors
    table: np.ndarray | None
    factors: _LeafFactors | None


@dataclass(frozen=True)
class _LeafFactors:
    """What a leaf's values are made of: ``phi_k = R(P - Z) x (v (1 - r_k) G(Z - {k})
    if k in Z else -v G(Z))``."""

    value: float  # v
    present: np.ndarray  # [d] v (1 - r_k)
    g: np.ndarray  # [2^d] G(Z)
    outside: np.ndarray  # [2^d] R(P - Z)

    def values(self, pattern: np.ndarray, in_z: np.ndarray) -> np.ndarray:
        """``[d, n]`` values of ``n`` rows with these patterns; ``in_z``: ``[d, n]``."""
        outside = self.outside.take(pattern)
        absent = -self.value * self.g.take(pattern) * outside
        bits = (1 << np.arange(len(self.present)))[:, None]
        present = self.present[:, None] * self.g.take(pattern ^ bits) * outside
        return np.where(in_z, present, absent)


@dataclass(frozen=True)
class _TreeTables:
    columns: np.ndarray  # [internal] base-input column of each split
    thresholds: np.ndarray
    nan_left: np.ndarray
    node_weights: np.ndarray  # [internal] 2^i, float: a row's decisions are node_weights @ left
    features: np.ndarray  # model features the tree splits on
    leaves: tuple[_LeafTable, ...]


def _shapley_weights(d: int) -> np.ndarray:
    """``|S|! (d - |S| - 1)! / d!`` for ``|S| = 0..d`` (0 for ``|S| = d``)."""
    weights = np.zeros(d + 1)
    for size in range(d):
        weights[size] = math.factorial(size) * math.factorial(d - size - 1) / math.factorial(d)
    return weights


def _leaf_factors(value: float, ratios: np.ndarray) -> _LeafFactors:
    """``G(Z)`` and ``R(P - Z)`` for every pattern ``Z`` of a leaf's path features (bit
    ``k`` of a pattern: path feature ``k`` is in ``Z``)."""
    d = len(ratios)
    # Built by doubling: the patterns with bit k set follow those without, as in binary.
    # poly: coefficients of prod_{k in Z} (t + r_k), whose [t^s] is the sum over S
    # subset of Z with |S| = s of R(Z - S).
    poly = np.zeros((1, d + 1))
    poly[0, 0] = 1.0
    outside = np.ones(1)
    for ratio in ratios:
        with_k = poly * ratio
        with_k[:, 1:] += poly[:, :-1]
        poly = np.vstack([poly, with_k])
        outside = np.concatenate([outside * ratio, outside])
    return _LeafFactors(value, value * (1.0 - ratios), poly @ _shapley_weights(d), outside)


def _full_table(factors: _LeafFactors) -> np.ndarray:
    """The values ``[d, 2^d]`` of every pattern."""
    d = len(factors.present)
    patterns = np.arange(1 << d)
    in_z = (patterns[None, :] >> np.arange(d)[:, None]) & 1 == 1
    return factors.values(patterns, in_z)


def _tree_tables(tree: _Tree, ensemble: _Ensemble) -> _TreeTables | None:
    """Tables of every leaf of a tree; ``None`` when a path has too many features."""
    internal = [i for i, node in enumerate(tree.nodes) if isinstance(node, _Split)]
    position = {node: i for i, node in enumerate(internal)}
    num_features = ensemble.num_features

    def feature_of(column: int) -> int:
        return column if column < num_features else ensemble.zero_columns[column - num_features]

    # model feature -> its position among the tree's features
    used = {feature_of(node.column) for node in tree.nodes if isinstance(node, _Split)}
    local = {feature: i for i, feature in enumerate(sorted(used))}
    leaves: list[_LeafTable] = []
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
                step = (position[index], left, feature_of(node.column), fraction)
                stack.append((child, [*path, step]))
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
            return None
        slots = np.asarray([features.index(step[2]) for step in path])
        groups = (slots[None, :] == np.arange(len(features))[:, None]).astype(np.float64)
        factors = _leaf_factors(node.value, np.asarray(ratios))
        small = len(features) <= FULL_TABLE_FEATURES
        leaves.append(
            _LeafTable(
                slots=np.asarray([local[feature] for feature in features], dtype=np.intp),
                nodes=np.asarray([step[0] for step in path], dtype=np.intp),
                goes_left=np.asarray([step[1] for step in path], dtype=bool),
                groups=None if len(slots) == len(features) else groups,
                group_sizes=groups.sum(axis=1),
                weights=np.exp2(np.arange(len(features))),
                table=_full_table(factors) if small else None,
                factors=None if small else factors,
            )
        )
    splits = [tree.nodes[i] for i in internal]
    return _TreeTables(
        columns=np.asarray([s.column for s in splits], dtype=np.intp),
        thresholds=np.asarray([s.threshold for s in splits]),
        nan_left=np.asarray([s.nan_left for s in splits], dtype=bool),
        node_weights=np.exp2(np.arange(len(splits))),
        features=np.asarray(sorted(used), dtype=np.intp),
        leaves=tuple(leaves),
    )


def _decision_keys(left: np.ndarray, node_weights: np.ndarray) -> np.ndarray:
    """One comparable key per row (column of ``left``) for its decisions at every split."""
    if len(node_weights) <= 52:  # exact as a float64 integer
        return node_weights @ left
    packed = np.ascontiguousarray(np.packbits(left, axis=0).T)
    return packed.view(np.dtype((np.void, packed.shape[1]))).ravel()


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
        self._tables: list[_TreeTables | None] = []
        self._left_to_lightgbm: list[int] = []
        for position, tree in enumerate(self._ensemble.trees):
            if isinstance(tree.nodes[0], _Leaf):  # a constant: only the expected value
                self._tables.append(None)
                continue
            tables = _tree_tables(tree, self._ensemble)
            self._tables.append(tables)
            if tables is None:
                self._left_to_lightgbm.append(position)
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
        raw score. The tables run on one thread (numpy's small per-leaf steps hold the
        GIL: two threads were no faster); ``num_threads`` goes to LightGBM for the trees
        left to it."""
        features = np.ascontiguousarray(features, dtype=np.float64)
        num_features = features.shape[1]
        if num_features != self._ensemble.num_features:
            raise ValueError(
                f"the model has {self._ensemble.num_features} features, the input {num_features}"
            )
        phi = self._tables_part(features).T
        for tree in self._left_to_lightgbm:
            part = self._booster.predict(
                features,
                start_iteration=tree,
                num_iteration=1,
                pred_contrib=True,
                num_threads=num_threads,
            )
            phi[:, :num_features] += part[:, :num_features]
        return np.ascontiguousarray(phi)

    def _tables_part(self, features: np.ndarray) -> np.ndarray:
        """Contributions ``[F + 1, n]`` of the trees with tables (column-major: each leaf
        adds into a few whole rows)."""
        num_features = self._ensemble.num_features
        base = np.ascontiguousarray(self._base(features).T)  # [columns, n]
        phi = np.zeros((num_features + 1, len(features)))
        phi[num_features] = self._expected
        for tables in self._tables:
            if tables is None:
                continue
            values = base[tables.columns]
            left = (values <= tables.thresholds[:, None]) | (
                np.isnan(values) & tables.nan_left[:, None]
            )
            # A tree's contributions to a row depend only on the row's decision at each
            # of its splits: compute them once per distinct set of decisions.
            _, first, inverse = np.unique(
                _decision_keys(left, tables.node_weights), return_index=True, return_inverse=True
            )
            left = left[:, first]
            part = np.zeros((len(tables.features), len(first)))
            for leaf in tables.leaves:
                on_path = left[leaf.nodes] == leaf.goes_left[:, None]  # [splits, distinct]
                if leaf.groups is not None:  # a feature split on more than once
                    on_path = leaf.groups @ on_path == leaf.group_sizes[:, None]
                pattern = (leaf.weights @ on_path).astype(np.intp)
                if leaf.factors is not None:
                    part[leaf.slots] += leaf.factors.values(pattern, on_path)
                else:
                    for k, slot in enumerate(leaf.slots):
                        part[slot] += leaf.table[k].take(pattern)
            for slot, feature in enumerate(tables.features):
                phi[feature] += part[slot].take(inverse)
        return phi
