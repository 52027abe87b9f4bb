"""``graph="tree_ensemble"``: one ``ai.onnx.ml`` (opset 5) ``TreeEnsemble`` node with
double thresholds and leaf weights (onnxruntime runs it on the CPU execution provider
only), then the objective's output transform."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import numpy_helper

from purchasing_power.export.graph_builder import (
    _finish_model,
    _GraphBuilder,
    _zero_as_missing_base,
)
from purchasing_power.export.parse import (
    _Ensemble,
    _Leaf,
    _Split,
)


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
