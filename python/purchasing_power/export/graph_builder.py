"""What both graph kinds share: a builder of uniquely named nodes and initializers,
the zero-as-missing input columns, and the output transform that ends each graph."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from purchasing_power.export.names import (
    INPUT_NAME,
    IR_VERSION,
    ML_OPSET,
    ONNX_OPSET,
    OUTPUT_NAME,
    RAW_OUTPUT_NAME,
    GraphKind,
)
from purchasing_power.export.parse import (
    _K_ZERO,
    _Ensemble,
)


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
