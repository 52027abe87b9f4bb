"""A model's ONNX files: the hurdle graph that combines both heads."""

from __future__ import annotations

import numpy as np

from model_examples import trained
from purchasing_power.export import booster_to_onnx
from purchasing_power.model_graphs import hurdle_graph
from purchasing_power.scoring import (
    make_session,
    predict,
)
from purchasing_power.train import LIGHTGBM_TWEEDIE


def test_the_hurdle_graph_multiplies_the_two_heads() -> None:
    result = trained()
    features = result.validation_features
    for graph in ("tree_ensemble", "tensor"):
        purchase = booster_to_onnx(result.heads.purchase, graph=graph)
        conditional = booster_to_onnx(result.heads.spend_given_purchase, graph=graph)
        combined = hurdle_graph(purchase, conditional)
        session = make_session(combined.SerializeToString())
        probability = predict(make_session(purchase.SerializeToString()), features)
        given = predict(make_session(conditional.SerializeToString()), features)
        assert np.array_equal(predict(session, features), probability * given)
        assert [output.name for output in combined.graph.output] == [
            "prediction", "purchase_probability", "spend_given_purchase",
        ]  # fmt: skip
    assert {opset.domain for opset in combined.opset_import} == {""}  # tensor: no ai.onnx.ml


def test_the_direct_graph_is_the_spend_head_with_the_probability_beside_it() -> None:
    result = trained(candidate=LIGHTGBM_TWEEDIE)
    features = result.validation_features
    purchase = booster_to_onnx(result.heads.purchase, graph="tree_ensemble")
    spend = booster_to_onnx(result.heads.spend_given_purchase, graph="tree_ensemble")
    combined = hurdle_graph(purchase, spend, combination="direct")
    session = make_session(combined.SerializeToString())
    assert np.array_equal(
        predict(session, features), predict(make_session(spend.SerializeToString()), features)
    )
    assert [output.name for output in combined.graph.output] == [
        "prediction", "purchase_probability",
    ]  # fmt: skip
