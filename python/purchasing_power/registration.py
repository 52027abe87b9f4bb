"""Registration: export both heads, prove parity (``purchasing_power.parity``), write the
card and the report, and store the version (``purchasing_power.registry``)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from purchasing_power import monitoring
from purchasing_power.explain import feature_importance
from purchasing_power.extension import Extension
from purchasing_power.features import FeatureSchema
from purchasing_power.model_graphs import export_graphs
from purchasing_power.parity import (
    edge_case_rows,
    gate_description,
    package_versions,
    prove_parity,
)
from purchasing_power.registry import GRAPH_SUFFIX, HEADS, RegisteredModel, store
from purchasing_power.scoring import power_index
from purchasing_power.tiers import Tier, assign_tiers, reference_quantiles
from purchasing_power.train import HEADS as BOOSTER_HEADS
from purchasing_power.train import TrainingResult, TrainingSettings

HISTOGRAM_BINS = 30


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
        "parity": {**gate_description(heads, edge_case_rows=edge_case_rows_count), **parity},
        "reference_spend_quantiles": reference.tolist(),
        "scores": scores,
        "files": {head: f"{head}{GRAPH_SUFFIX['tree_ensemble']}" for head in HEADS},
        "tensor_files": {head: f"{head}{GRAPH_SUFFIX['tensor']}" for head in HEADS},
        "lightgbm_files": {head: f"{head}.lgb.txt" for head in BOOSTER_HEADS},
        "packages": package_versions(),
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

    return store(
        model_version,
        card=card,
        exported=exported,
        heads=heads,
        artifacts_dir=artifacts_dir,
    )
