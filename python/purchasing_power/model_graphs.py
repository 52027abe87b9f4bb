"""The ONNX files of a model: each head exported in each graph kind, and the spend file,
which combines both heads (``hurdle_graph``) so that it returns expected spend and the
purchase probability (``purchasing_power.registry`` lists the files)."""

from __future__ import annotations

import onnx
from onnx import helper

from purchasing_power.export import (
    INPUT_NAME,
    IR_VERSION,
    OUTPUT_NAME,
    PROBABILITY_OUTPUT_NAME,
    RAW_OUTPUT_NAME,
    GraphKind,
    booster_to_onnx,
)
from purchasing_power.train import HURDLE, Heads

GRAPHS: tuple[GraphKind, ...] = ("tree_ensemble", "tensor")


def _prefixed_nodes(
    graph: onnx.GraphProto, prefix: str
) -> tuple[list[onnx.NodeProto], list[onnx.TensorProto]]:
    def rename(name: str) -> str:
        return name if name in (INPUT_NAME, "") else prefix + name

    nodes: list[onnx.NodeProto] = []
    for node in graph.node:
        if list(node.output) == [RAW_OUTPUT_NAME]:
            continue  # the raw score output is not part of the combined graph
        renamed = onnx.NodeProto()
        renamed.CopyFrom(node)
        renamed.name = prefix + node.name
        del renamed.input[:]
        renamed.input.extend(rename(name) for name in node.input)
        del renamed.output[:]
        renamed.output.extend(rename(name) for name in node.output)
        nodes.append(renamed)
    initializers: list[onnx.TensorProto] = []
    for initializer in graph.initializer:
        renamed_init = onnx.TensorProto()
        renamed_init.CopyFrom(initializer)
        renamed_init.name = prefix + initializer.name
        initializers.append(renamed_init)
    return nodes, initializers


def hurdle_graph(
    purchase: onnx.ModelProto, spend_given_purchase: onnx.ModelProto, *, combination: str = HURDLE
) -> onnx.ModelProto:
    """One graph returning ``prediction`` and ``purchase_probability``: for the hurdle
    ``prediction = P x E[spend | purchase]`` (and the conditional spend as well), for the
    direct combination the spend head's own prediction."""
    p_nodes, p_inits = _prefixed_nodes(purchase.graph, "purchase/")
    s_nodes, s_inits = _prefixed_nodes(spend_given_purchase.graph, "spend_given_purchase/")
    probability, conditional = f"purchase/{OUTPUT_NAME}", f"spend_given_purchase/{OUTPUT_NAME}"
    names = [OUTPUT_NAME, PROBABILITY_OUTPUT_NAME]
    combined = [
        helper.make_node("Identity", [probability], [PROBABILITY_OUTPUT_NAME], name="probability")
    ]
    if combination == HURDLE:
        combined += [
            helper.make_node("Mul", [probability, conditional], [OUTPUT_NAME], name="hurdle"),
            helper.make_node(
                "Identity", [conditional], ["spend_given_purchase"], name="spend_given_purchase"
            ),
        ]
        names.append("spend_given_purchase")
        doc = "Expected spend over the horizon: P(purchase) x E[spend | purchase]"
    else:
        combined.append(helper.make_node("Identity", [conditional], [OUTPUT_NAME], name="spend"))
        doc = "Expected spend over the horizon: the spend head; P(purchase) beside it"
    nodes = [*p_nodes, *s_nodes, *combined]
    inputs = list(purchase.graph.input)
    outputs = [helper.make_tensor_value_info(n, onnx.TensorProto.DOUBLE, ["N"]) for n in names]
    graph = helper.make_graph(nodes, combination, inputs, outputs, initializer=p_inits + s_inits)
    opsets = {opset.domain: opset.version for opset in purchase.opset_import}
    opsets.update({opset.domain: opset.version for opset in spend_given_purchase.opset_import})
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid(domain, version) for domain, version in opsets.items()],
        # the producer it had when it lived in registry.py: the bytes, and so the model
        # versions named after them, stay the same
        producer_name="purchasing_power.registry",
        doc_string=doc,
    )
    model.ir_version = IR_VERSION
    props = {prop.key: prop.value for prop in purchase.metadata_props}
    helper.set_model_props(model, {"graph_kind": props.get("graph_kind", ""), "form": combination})
    onnx.checker.check_model(model, full_check=True)
    return model


def export_graphs(heads: Heads) -> dict[GraphKind, dict[str, bytes]]:
    """The serialized ONNX file of each head in each graph kind."""
    exported: dict[GraphKind, dict[str, bytes]] = {}
    for graph in GRAPHS:
        purchase = booster_to_onnx(heads.purchase, graph=graph)
        spend = booster_to_onnx(heads.spend_given_purchase, graph=graph)
        combined = hurdle_graph(purchase, spend, combination=heads.combination)
        exported[graph] = {
            "purchase": purchase.SerializeToString(),
            "spend": combined.SerializeToString(),
        }
    return exported
