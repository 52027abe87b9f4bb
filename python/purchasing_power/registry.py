"""The model registry: ``artifacts/<model_version>/`` with ONNX files, LightGBM text
models, a JSON card and an HTML report. A model is exported, proven equal to
LightGBM, and only then written; nothing half-written is ever listed (the folder is
renamed into place, and a version registered again moved aside whole first). A
registration killed midway leaves a hidden staged folder, which the next build
removes (``remove_leftovers``; registrations to one folder take turns).

Files of a model version:

``purchase.onnx`` / ``spend.onnx``
    ``ai.onnx.ml`` TreeEnsemble graphs (double precision). ``spend.onnx`` is the whole
    model: both tree ensembles and how they combine, so that it returns expected spend
    (``P x E[spend | purchase]`` for a hurdle, the spend head's prediction for the
    direct combination) and the purchase probability; it is what CPU scoring runs.
    ``purchase.onnx`` is the purchase head alone.
``purchase.tensor.onnx`` / ``spend.tensor.onnx``
    The same models as standard-operator graphs, for onnxruntime's CUDA execution
    provider; they pass the same gate.
``purchase.lgb.txt`` / ``spend_given_purchase.lgb.txt``
    The LightGBM models (explanations read these).
``card.json``, ``report.html``

The parity gate, on every validation row, every scoring row and a set of edge cases
built from the model's own splits (values exactly at, just below and just above every
threshold; zero, signed zero, LightGBM's zero threshold, tiny, huge, infinite and
missing values in every feature): spend within a relative 1e-9 of LightGBM,
probability (``purchase.onnx``'s and the one ``spend.onnx`` outputs beside the spend)
within an absolute 1e-9, and no validation or scoring row in another
power tier than LightGBM's prediction would put it (rows sitting on a tier bound, whose
power index differs by at most 1e-9, are counted apart). Both graph kinds, both heads; the
figures go into the card.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import onnx
import pyarrow as pa
from onnx import helper

from purchasing_power import monitoring, report, staging
from purchasing_power.explain import feature_importance
from purchasing_power.export import (
    INPUT_NAME,
    IR_VERSION,
    MAX_PROBABILITY_ABSOLUTE_DIFF,
    MAX_SPEND_RELATIVE_DIFF,
    OUTPUT_NAME,
    PROBABILITY_OUTPUT_NAME,
    RAW_OUTPUT_NAME,
    GraphKind,
    ParityReport,
    booster_to_onnx,
    compare_predictions,
)
from purchasing_power.extension import Extension
from purchasing_power.features import FeatureSchema
from purchasing_power.scoring import (
    SCORING_OUTPUTS,
    Provider,
    Session,
    cuda_is_usable,
    has_outputs,
    make_session,
    power_index,
    predict,
    predict_outputs,
    tensor_graph,
)
from purchasing_power.train import HEADS as BOOSTER_HEADS
from purchasing_power.train import HURDLE, Heads, TrainingResult, TrainingSettings

HEADS = ("purchase", "spend")
# What the gate compares with LightGBM: each file's prediction, and the probability the
# spend graph outputs beside it (what scoring reads), each against the LightGBM head
# named here.
GATED_HEAD = {"purchase": "purchase", "spend": "spend", PROBABILITY_OUTPUT_NAME: "purchase"}
GRAPHS: tuple[GraphKind, ...] = ("tree_ensemble", "tensor")
GRAPH_SUFFIX = {"tree_ensemble": ".onnx", "tensor": ".tensor.onnx"}
MAX_INDEX_ABSOLUTE_DIFF = 1e-9  # power index moves this small are on a tier bound
REFERENCE_QUANTILES = 101
# A registration's staged folder (tempfile.mkdtemp's ".<model_version>-<8 characters>"):
# what a registration killed before its end leaves, and the next one removes.
STAGED = re.compile(r"\.pp-\d{8}-[0-9a-f]{12}-[a-z0-9_]{8}")
# The tensor graph scores only on CUDA. Where CUDA runs, it is gated there on every
# row, like the TreeEnsemble graph. Elsewhere it is gated on the CPU, where it runs some
# ten to twenty times slower than the TreeEnsemble, on every edge case but at most this
# many validation and scoring rows (the leading ones of each, half and half where both
# have enough): a row's traversal is the same gather/compare/add whatever the row, and
# the edge cases (every split threshold and its neighbours, NaN, zeros, extremes) are
# where graphs differ. On the demo shop the gate took 21.2 s of the 56.9 s of training
# and registration on all rows, 14.7 s of 46.4 s with this bound.
TENSOR_GATE_ROWS = 20_000
HISTOGRAM_BINS = 30
_K_ZERO = float(np.float32(1e-35))  # LightGBM's kZeroThreshold
_SPECIAL_VALUES = (
    0.0, -0.0, _K_ZERO, -_K_ZERO, float(np.nextafter(_K_ZERO, np.inf)),
    float(np.nextafter(-_K_ZERO, -np.inf)), 5e-36, -5e-36, 5e-324, -5e-324, 1e-300, -1e-300,
    1e300, -1e300, np.finfo(np.float64).max, -np.finfo(np.float64).max, np.inf, -np.inf, np.nan,
)  # fmt: skip
_PACKAGES = (
    "lightgbm", "onnx", "onnxruntime-gpu", "onnxruntime", "duckdb", "dbt-core", "numpy",
    "scipy", "optuna",
)  # fmt: skip


class ParityError(RuntimeError):
    """The ONNX export does not reproduce LightGBM within the gate."""


@dataclass(frozen=True)
class Proof:
    """What the parity gate found: the figures for the card, and the spend TreeEnsemble
    graph's outputs on every gated row, ``spend`` and ``probability``: what CPU scoring
    computes for those rows (a row's outputs do not depend on the rows beside it), so
    registration reads its reference quantiles and score summary from them."""

    figures: dict[str, dict[str, Any]]
    spend: np.ndarray
    probability: np.ndarray


@dataclass(frozen=True)
class RegisteredModel:
    model_version: str
    path: Path
    card: dict[str, Any]

    @property
    def status(self) -> str:
        return str(self.card["status"])


@dataclass(frozen=True)
class Tier:
    """One row of ``seeds/power_tiers.csv``."""

    tier: str
    min_power_index: float
    max_power_index: float

    @classmethod
    def from_table(cls, table: pa.Table) -> tuple[Tier, ...]:
        rows = table.sort_by("min_power_index").to_pylist()
        return tuple(
            cls(row["tier"], float(row["min_power_index"]), float(row["max_power_index"]))
            for row in rows
        )


def assign_tiers(index: np.ndarray, tiers: Sequence[Tier]) -> np.ndarray:
    """The tier holding each power index, as ``purchasing_power_scores`` assigns it
    (``[min, max)``, the top tier closed at 100); ``None`` where no tier holds it."""
    assigned = np.full(len(index), None, dtype=object)
    for tier in reversed(tiers):  # the first matching tier wins, as in the SQL join
        holds = (index >= tier.min_power_index) & (
            (index < tier.max_power_index) | (tier.max_power_index >= 100)
        )
        assigned[holds] = tier.tier
    return assigned


def _package_versions() -> dict[str, str]:
    versions = {}
    for package in _PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return versions


# --------------------------------------------------------------------------------------
# Graphs
# --------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------
# Parity
# --------------------------------------------------------------------------------------


def _splits(booster: lgb.Booster) -> set[tuple[int, float]]:
    found = set()
    for info in booster.dump_model()["tree_info"]:
        stack = [info["tree_structure"]]
        while stack:
            node = stack.pop()
            if "split_index" in node:
                found.add((int(node["split_feature"]), float(node["threshold"])))
                stack.extend([node["left_child"], node["right_child"]])
    return found


def _single_leaf_trees(booster: lgb.Booster) -> int:
    return sum(info["num_leaves"] == 1 for info in booster.dump_model()["tree_info"])


def edge_case_rows(heads: Heads, base: np.ndarray) -> np.ndarray:
    """Rows exactly at, just below and just above every split threshold of both heads,
    and every feature in turn set to each special value; other features from ``base``."""
    rows = []
    splits = sorted(_splits(heads.purchase) | _splits(heads.spend_given_purchase))
    for i, (feature, threshold) in enumerate(splits):
        for value in (threshold, np.nextafter(threshold, -np.inf), np.nextafter(threshold, np.inf)):
            row = base[i % len(base)].copy()
            row[feature] = value
            rows.append(row)
    for feature in range(base.shape[1]):
        for k, value in enumerate(_SPECIAL_VALUES):
            row = base[(feature + k) % len(base)].copy()
            row[feature] = value
            rows.append(row)
    return np.asarray(rows, dtype=np.float64).reshape(-1, base.shape[1])


def reference_quantiles(spend: np.ndarray) -> np.ndarray:
    """The frozen distribution the power index places predictions among."""
    result: np.ndarray = np.quantile(spend, np.linspace(0, 1, REFERENCE_QUANTILES))
    return result


def _reference(heads: Heads, features: np.ndarray) -> dict[str, np.ndarray]:
    if len(features) == 0:
        return {head: np.empty(0) for head in HEADS}
    probability, spend = heads.predict(features)
    return {"purchase": probability, "spend": spend}


def _gate_provider(graph: GraphKind) -> Provider:
    """Where a graph is gated: the tensor graph on CUDA where CUDA runs, else the CPU."""
    return "cuda" if graph == "tensor" and cuda_is_usable() else "cpu"


def _sessions(files: dict[str, bytes], graph: GraphKind, provider: Provider) -> dict[str, Session]:
    """A session per file of one graph kind; the spend graph must output what scoring
    reads from it."""
    sessions = {head: make_session(content, provider=provider) for head, content in files.items()}
    if not has_outputs(sessions["spend"], SCORING_OUTPUTS):
        raise ParityError(
            f"spend head, {graph} graph: the graph has no {PROBABILITY_OUTPUT_NAME!r} output "
            "(it is not the hurdle graph scoring reads)"
        )
    return sessions


def _onnx(sessions: dict[str, Session], features: np.ndarray) -> dict[str, np.ndarray]:
    """The predictions of each gated output (``GATED_HEAD``) of the files' sessions."""
    found = {}
    if "purchase" in sessions:
        found["purchase"] = predict(sessions["purchase"], features)
    found["spend"], found[PROBABILITY_OUTPUT_NAME] = predict_outputs(
        sessions["spend"], features, SCORING_OUTPUTS
    )
    return found


def _gate(output: str, graph: str, where: str, found: ParityReport) -> None:
    if output == "spend" and not found.max_rel_diff <= MAX_SPEND_RELATIVE_DIFF:
        raise ParityError(
            f"spend head, {graph} graph, {where}: ONNX differs from LightGBM by a relative "
            f"{found.max_rel_diff:.3g} (gate {MAX_SPEND_RELATIVE_DIFF:g}) over {found.rows} rows"
        )
    what = "purchase head" if output == "purchase" else f"spend head's {output} output"
    if output != "spend" and not found.max_abs_diff <= MAX_PROBABILITY_ABSOLUTE_DIFF:
        raise ParityError(
            f"{what}, {graph} graph, {where}: ONNX differs from LightGBM by "
            f"{found.max_abs_diff:.3g} (gate {MAX_PROBABILITY_ABSOLUTE_DIFF:g}) over "
            f"{found.rows} rows"
        )


def _gate_rows(
    graph: GraphKind, provider: Provider, rows: int, validation_rows: int
) -> tuple[np.ndarray | None, int]:
    """Positions of the rows a graph is gated on (``None``: all) and how many of them,
    first, are validation rows."""
    if graph != "tensor" or provider == "cuda" or rows <= TENSOR_GATE_ROWS:
        return None, validation_rows
    scoring_rows = rows - validation_rows
    validation = min(validation_rows, max(TENSOR_GATE_ROWS // 2, TENSOR_GATE_ROWS - scoring_rows))
    scoring = min(scoring_rows, TENSOR_GATE_ROWS - validation)
    chosen = np.concatenate([np.arange(validation), validation_rows + np.arange(scoring)])
    return chosen, validation


def prove_parity(
    heads: Heads,
    exported: dict[GraphKind, dict[str, bytes]],
    *,
    rows: np.ndarray,
    edge_cases: np.ndarray,
    validation_rows: int,
    tiers: Sequence[Tier],
    graphs: Sequence[GraphKind] = GRAPHS,
) -> Proof:
    """Run the gate for each of ``graphs`` (the TreeEnsemble graph among them) on
    ``rows`` (the first ``validation_rows`` of them validation rows, then scoring rows;
    the tensor graph on CUDA where CUDA runs, else on the CPU and at most
    ``TENSOR_GATE_ROWS`` of them) and ``edge_cases``; raise :class:`ParityError` on any
    miss, else return the figures for the card and the TreeEnsemble spend graph's
    outputs on ``rows``.

    Tiers are compared end to end: each engine places its predictions among the
    reference quantiles it computes on the validation rows, as scoring does. A
    row counts as changing tier when its power index moves by more than 1e-9; a row
    whose index sits on a tier bound (within 1e-9, e.g. exactly 50.0 in one engine
    and 49.99999999999999 in the other, which happens where a prediction equals a
    reference quantile) is counted apart as a boundary row: no export can keep a
    last-bit difference from crossing a bound the value sits on.
    """
    if not 0 < validation_rows <= len(rows):
        raise ValueError(f"validation_rows must be in 1..{len(rows)}, not {validation_rows}")
    if "tree_ensemble" not in graphs:
        raise ValueError(
            f"graphs must include 'tree_ensemble' (the graph CPU scoring runs): {graphs}"
        )
    expected = _reference(heads, rows)
    expected_edges = _reference(heads, edge_cases)
    figures: dict[str, dict[str, Any]] = {}
    outputs: dict[str, np.ndarray] = {}
    for graph in graphs:
        provider = _gate_provider(graph)
        chosen, validation = _gate_rows(graph, provider, len(rows), validation_rows)
        gated = rows if chosen is None else rows[chosen]
        wanted = expected if chosen is None else {h: expected[h][chosen] for h in HEADS}
        expected_index = power_index(
            wanted["spend"], reference_quantiles(wanted["spend"][:validation])
        )
        sessions = _sessions(exported[graph], graph, provider)
        ran_on = "/".join(sorted({session.provider for session in sessions.values()}))
        actual = _onnx(sessions, gated)
        if graph == "tree_ensemble":
            outputs = actual
        actual_edges = _onnx(sessions, edge_cases)
        own_reference = reference_quantiles(actual["spend"][:validation])
        index_now = power_index(actual["spend"], own_reference)
        moved = assign_tiers(index_now, tiers) != assign_tiers(expected_index, tiers)
        on_boundary = moved & (np.abs(index_now - expected_index) <= MAX_INDEX_ABSOLUTE_DIFF)
        changed = int(np.count_nonzero(moved & ~on_boundary))
        figures[graph] = {
            "validation_rows": validation,
            "execution_provider": ran_on,
            "tier_changes": changed,
            "tier_boundary_rows": int(np.count_nonzero(on_boundary)),
            "max_power_index_diff": float(np.max(np.abs(index_now - expected_index), initial=0)),
        }
        for output in actual:
            head = GATED_HEAD[output]
            found = compare_predictions(wanted[head], actual[output])
            at_edges = compare_predictions(expected_edges[head], actual_edges[output])
            _gate(output, graph, "validation and scoring rows", found)
            _gate(output, graph, "edge cases", at_edges)
            figures[graph][output] = {**asdict(found), "edge_cases": asdict(at_edges)}
        if changed:
            raise ParityError(
                f"{graph} graph: {changed} of {len(gated)} rows change tier between LightGBM "
                "and ONNX"
            )
    return Proof(figures, spend=outputs["spend"], probability=outputs[PROBABILITY_OUTPUT_NAME])


# --------------------------------------------------------------------------------------
# Registration
# --------------------------------------------------------------------------------------


def _spend_histogram(
    spend: np.ndarray, tiers: np.ndarray, tier_names: Sequence[str]
) -> dict[str, object]:
    logged = np.log10(np.maximum(spend, 1e-2))
    edges = np.linspace(np.floor(logged.min()), np.ceil(logged.max()) + 1e-9, HISTOGRAM_BINS + 1)
    return {
        "log10_edges": edges.tolist(),
        "counts": {
            name: np.histogram(logged[tiers == name], bins=edges)[0].tolist() for name in tier_names
        },
    }


def _score_summary(
    probability: np.ndarray, spend: np.ndarray, *, quantiles: np.ndarray, tiers: Sequence[Tier]
) -> dict[str, object]:
    assigned = assign_tiers(power_index(spend, quantiles), tiers)
    names = [tier.tier for tier in tiers]
    return {
        "rows": len(spend),
        "tiers": [
            {
                "tier": name,
                "users": int(np.count_nonzero(assigned == name)),
                "mean_predicted_spend": float(spend[assigned == name].mean())
                if np.any(assigned == name)
                else None,
                "mean_purchase_probability": float(probability[assigned == name].mean())
                if np.any(assigned == name)
                else None,
            }
            for name in names
        ],
        "spend_histogram": _spend_histogram(spend, assigned, names),
    }


FORMS = {
    "hurdle": "hurdle: spend = P(purchase) x E[spend | purchase]",
    "direct": "direct: spend = the spend head's prediction; P(purchase) beside it",
}


def judged_fields(result: TrainingResult) -> dict[str, Any]:
    """What a card says about the choice, whatever scores: the method and its status,
    every candidate and baseline per fold (``fold_metrics``) and their means
    (``metrics``), the folds, and the latest fold's calibration and gain curves."""
    return {
        "method": result.method,
        "status": result.status,
        "status_reasons": list(result.status_reasons),
        "best_candidate": result.best_candidate,
        "selection_scores": result.candidate_scores,
        "folds": [
            {"validation_cutoff": f.validation_cutoff, "training_cutoffs": list(f.training_cutoffs)}
            for f in result.folds
        ],
        "training_cutoffs": list(result.training_cutoffs),
        "validation_cutoff": result.validation_cutoff,
        "training_rows": result.training_rows,
        "validation_rows": result.validation_rows,
        "metrics": [
            {"method": e.method, "metric": e.metric, "value": e.value} for e in result.evaluations
        ],
        "fold_metrics": [
            {
                "validation_cutoff": e.validation_cutoff,
                "method": e.method,
                "metric": e.metric,
                "value": e.value,
            }
            for e in result.fold_evaluations
        ],
        "decile_calibration": [
            {
                "method": row.method,
                "decile": row.decile,
                "rows": row.rows,
                "mean_predicted_spend": row.mean_predicted_spend,
                "mean_actual_spend": row.mean_actual_spend,
            }
            for row in result.calibration
        ],
        "gain_curves": result.gain_curves,
        "baseline_params": result.baseline_params,
    }


def _card(
    result: TrainingResult,
    *,
    model_version: str,
    schema: FeatureSchema,
    settings: TrainingSettings,
    as_of: str,
    parity: dict[str, Any],
    edge_case_rows_count: int,
    reference: np.ndarray,
    scores: dict[str, object],
    tuning: dict[str, Any] | None,
) -> dict[str, Any]:
    heads = result.heads
    assert heads is not None
    return {
        "model_version": model_version,
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="microseconds"),
        **judged_fields(result),
        "form": FORMS[heads.combination],
        "combination": heads.combination,
        "as_of": as_of,
        "horizon_days": settings.horizon_days,
        "seed": settings.seed,
        "features": schema.to_card(),
        **({"btyd_features": schema.btyd.to_card()} if schema.btyd else {}),
        "params": result.params,
        "max_boost_rounds": settings.max_boost_rounds,
        "best_iterations": result.best_iterations,
        "tuning": tuning,
        "feature_importance": [
            {"head": i.head, "feature_name": i.feature_name, "gain": i.gain, "splits": i.splits}
            for i in feature_importance(heads, schema=schema)
        ],
        "parity": {
            "gate": {
                "max_spend_relative_diff": MAX_SPEND_RELATIVE_DIFF,
                "max_probability_absolute_diff": MAX_PROBABILITY_ABSOLUTE_DIFF,
                "tier_changes": 0,
                "tier_boundary_tolerance": MAX_INDEX_ABSOLUTE_DIFF,
            },
            "edge_cases": {
                "rows": edge_case_rows_count,
                "split_thresholds": len(
                    _splits(heads.purchase) | _splits(heads.spend_given_purchase)
                ),
                "special_values_per_feature": len(_SPECIAL_VALUES),
                "single_leaf_trees": {
                    head: _single_leaf_trees(heads.booster(head)) for head in BOOSTER_HEADS
                },
                "categorical_splits": 0,
            },
            **parity,
        },
        "reference_spend_quantiles": reference.tolist(),
        "scores": scores,
        "files": {head: f"{head}{GRAPH_SUFFIX['tree_ensemble']}" for head in HEADS},
        "tensor_files": {head: f"{head}{GRAPH_SUFFIX['tensor']}" for head in HEADS},
        "lightgbm_files": {head: f"{head}.lgb.txt" for head in BOOSTER_HEADS},
        "packages": _package_versions(),
    }


def register_models(
    result: TrainingResult,
    *,
    schema: FeatureSchema,
    settings: TrainingSettings,
    as_of: str,
    scoring_features: np.ndarray,
    tiers: Sequence[Tier],
    artifacts_dir: Path,
    tuning: dict[str, Any] | None = None,
    feature_reference: dict[str, dict[str, Any]] | None = None,
    training_reason: str | None = None,
    extension: dict[str, Any] | None = None,
) -> RegisteredModel:
    """Export both heads, prove parity, write the artifact, its card and its report.

    ``feature_reference``: the features' drift reference on the training rows
    (monitoring.feature_references); without it the validation rows'.
    ``extension`` (``purchasing_power.extension``): where the heads learnt a shorter label
    window than the horizon, how scoring extends them; the power index's reference is
    extended with them, so a user's index is the same either way."""
    heads = result.heads
    if heads is None or result.validation_features is None:
        raise ValueError(f"{result.method} has no trees to register")
    exported = export_graphs(heads)
    tree_ensemble = exported["tree_ensemble"]
    edge_cases = edge_case_rows(heads, result.validation_features)
    validation_rows = len(result.validation_features)
    proof = prove_parity(
        heads,
        exported,
        rows=np.vstack([result.validation_features, scoring_features]),
        edge_cases=edge_cases,
        validation_rows=validation_rows,
        tiers=tiers,
    )
    # The reference distribution comes from the engine that scores, so a user's
    # prediction and the quantiles it is placed among agree to the last bit.
    reference = reference_quantiles(proof.spend[:validation_rows])
    # The version names the exported models, their data window and their verdict: the
    # same trees found unproven (against other baselines) are another version, so an
    # accepted model's folder is never overwritten by an unproven one. (Metric values
    # are left out: the warehouse sums floats in no fixed order, so they can differ in
    # the last bits between two builds of the same data.)
    judged = json.dumps(
        {"as_of": as_of, "training_cutoffs": result.training_cutoffs, "status": result.status},
        sort_keys=True,
    ).encode()
    digest = hashlib.sha256(b"".join(tree_ensemble[head] for head in HEADS) + judged).hexdigest()[
        :12
    ]
    model_version = f"pp-{as_of.replace('-', '')}-{digest}"
    scores = _score_summary(
        proof.probability[validation_rows:],
        proof.spend[validation_rows:],
        quantiles=reference,
        tiers=tiers,
    )
    card = _card(
        result,
        model_version=model_version,
        schema=schema,
        settings=settings,
        as_of=as_of,
        parity=proof.figures,
        edge_case_rows_count=len(edge_cases),
        reference=reference,
        scores=scores,
        tuning=tuning,
    )
    validation_spend = proof.spend[:validation_rows]
    validation_probability = proof.probability[:validation_rows]
    if extension:
        card["extension"] = extension
        card["method"] = f"{result.method}_extended"
        card["reference_spend_quantiles"] = (reference * extension["spend_factor"]).tolist()
        # the outputs' drift reference in the units scoring publishes: extended too
        validation_spend, validation_probability = Extension(**extension).apply(
            validation_spend, validation_probability
        )
    # monitoring (docs/monitoring.md): the drift reference and why the model was trained
    validation_index = power_index(
        validation_spend, np.asarray(card["reference_spend_quantiles"], dtype=np.float64)
    )
    trained_on = feature_reference is not None and set(schema.names) <= set(feature_reference)
    card["reference"] = monitoring.model_reference(
        features={name: feature_reference[name] for name in schema.names}
        if trained_on and feature_reference is not None
        else monitoring.feature_references(result.validation_features, schema.names),
        features_source="training rows" if trained_on else "validation rows",
        outputs={
            "predicted_spend": validation_spend,
            "purchase_probability": validation_probability,
            "power_index": validation_index,
            "tier": assign_tiers(validation_index, tiers),
        },
        tiers=[tier.tier for tier in tiers],
    )
    card["training_reason"] = training_reason

    artifacts_dir.mkdir(parents=True, exist_ok=True)
    final_path = artifacts_dir / model_version
    with staging.only_writer(artifacts_dir):  # two builds may share the registry
        staging.remove(staging.leftovers([artifacts_dir], STAGED))
        staged = _staged_folder(model_version, artifacts_dir)
        replaced = None
        try:
            for graph, files in exported.items():
                for head, content in files.items():
                    (staged / f"{head}{GRAPH_SUFFIX[graph]}").write_bytes(content)
            for head in BOOSTER_HEADS:
                heads.booster(head).save_model(str(staged / card["lightgbm_files"][head]))
            (staged / "card.json").write_text(json.dumps(card, indent=2, sort_keys=True) + "\n")
            (staged / "report.html").write_text(report.render_report(card))
            if final_path.exists():
                # moved aside whole (a folder renamed over an empty one), never deleted
                # in place: a kill leaves the old version or the new one, not half of one
                replaced = _staged_folder(model_version, artifacts_dir)
                os.replace(final_path, replaced)
            os.replace(staged, final_path)
        finally:
            staging.remove(folder for folder in (staged, replaced) if folder is not None)
    return RegisteredModel(model_version=model_version, path=final_path, card=card)


def _staged_folder(model_version: str, artifacts_dir: Path) -> Path:
    """A new empty folder with a hidden name that ``STAGED`` matches."""
    return Path(tempfile.mkdtemp(prefix=f".{model_version}-", dir=artifacts_dir))


def remove_leftovers(artifacts_dir: Path) -> None:
    """Remove what registrations killed before their end left in ``artifacts_dir``: the
    hidden folders they staged, and never a registered version."""
    if artifacts_dir.is_dir():
        with staging.only_writer(artifacts_dir):
            staging.remove(staging.leftovers([artifacts_dir], STAGED))


def load_heads(model: RegisteredModel) -> Heads:
    """The LightGBM models of a registered version."""
    files = model.card["lightgbm_files"]
    return Heads(
        **{head: lgb.Booster(model_file=str(model.path / files[head])) for head in BOOSTER_HEADS},
        combination=model.card.get("combination", HURDLE),
    )


def recheck_parity(
    model: RegisteredModel, *, scoring_features: np.ndarray, tiers: Sequence[Tier]
) -> dict[str, dict[str, Any]]:
    """The parity gate of a registered model's graphs on today's scoring rows.

    Both graph kinds passed the gate at registration. What scoring runs is rechecked:
    the spend graph (both its outputs; the purchase graph alone scores nothing), its
    TreeEnsemble everywhere and its tensor graph where CUDA runs (where it scores). On
    the CPU the tensor graph runs some ten times slower than the TreeEnsemble (56 s
    against 4 s for 60,000 users and 1,500 trees), which would make the recheck cost
    more than the scoring.
    """
    graphs: tuple[GraphKind, ...] = ("tree_ensemble",)
    if _gate_provider("tensor") == "cuda":
        graphs = ("tree_ensemble", "tensor")
    # the graph scoring runs on the CPU: the file the card names
    exported: dict[GraphKind, dict[str, bytes]] = {
        "tree_ensemble": {"spend": (model.path / model.card["files"]["spend"]).read_bytes()}
    }
    if "tensor" in graphs:
        exported["tensor"] = {"spend": tensor_graph(model.path, "spend").read_bytes()}
    return prove_parity(
        load_heads(model),
        exported,
        rows=scoring_features,
        edge_cases=np.empty((0, scoring_features.shape[1])),
        validation_rows=len(scoring_features),
        tiers=tiers,
        graphs=graphs,
    ).figures


def list_models(artifacts_dir: Path) -> list[RegisteredModel]:
    """Every registered model, oldest first."""
    if not artifacts_dir.is_dir():
        return []
    models = []
    for card_path in sorted(artifacts_dir.glob("*/card.json")):
        if card_path.parent.name.startswith("."):
            continue
        card = json.loads(card_path.read_text())
        models.append(RegisteredModel(card["model_version"], card_path.parent, card))
    return sorted(models, key=lambda model: (model.card["created_at"], model.model_version))
