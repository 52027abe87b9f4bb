"""The model registry: ``artifacts/<model_version>/`` with ONNX files, LightGBM text
models and a JSON card. A model is exported, proven equal to LightGBM, and only then
written; nothing half-written is ever listed (the folder is renamed into place).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import lightgbm as lgb
import numpy as np

from purchasing_power.export import ParityReport, booster_to_onnx, check_parity
from purchasing_power.features import FeatureSchema
from purchasing_power.scoring import make_session, predict
from purchasing_power.train import TrainingResult, TrainingSettings

HEADS = ("purchase", "spend")
# The parity gate: ONNX must equal LightGBM on every checked row.
MAX_SPEND_RELATIVE_DIFF = 1e-9
MAX_PROBABILITY_ABSOLUTE_DIFF = 1e-9
REFERENCE_QUANTILES = 101
_PACKAGES = ("lightgbm", "onnx", "onnxruntime-gpu", "onnxruntime", "duckdb", "dbt-core", "polars")


class ParityError(RuntimeError):
    """The ONNX export does not reproduce LightGBM within the gate."""


@dataclass(frozen=True)
class RegisteredModel:
    model_version: str
    path: Path
    card: dict


def _package_versions() -> dict[str, str]:
    versions = {}
    for package in _PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return versions


def _gate(head: str, report: ParityReport) -> None:
    if head == "spend" and report.max_rel_diff > MAX_SPEND_RELATIVE_DIFF:
        raise ParityError(
            f"spend head: ONNX differs from LightGBM by a relative {report.max_rel_diff:.3g} "
            f"(gate {MAX_SPEND_RELATIVE_DIFF:g}) over {report.rows} rows"
        )
    if head == "purchase" and report.max_abs_diff > MAX_PROBABILITY_ABSOLUTE_DIFF:
        raise ParityError(
            f"purchase head: ONNX differs from LightGBM by {report.max_abs_diff:.3g} "
            f"(gate {MAX_PROBABILITY_ABSOLUTE_DIFF:g}) over {report.rows} rows"
        )


def register_models(
    result: TrainingResult,
    *,
    schema: FeatureSchema,
    settings: TrainingSettings,
    as_of: str,
    scoring_features: np.ndarray,
    artifacts_dir: Path,
) -> RegisteredModel:
    """Export both heads, prove parity on validation and scoring rows, write the artifact."""
    boosters: dict[str, lgb.Booster] = {
        "purchase": result.purchase_booster,
        "spend": result.spend_booster,
    }
    parity_rows = np.vstack([result.validation_features, scoring_features])
    onnx_bytes: dict[str, bytes] = {}
    parity: dict[str, dict[str, float | int]] = {}
    for head, booster in boosters.items():
        model = booster_to_onnx(booster, graph="tree_ensemble")
        report = check_parity(booster, model, parity_rows)
        _gate(head, report)
        onnx_bytes[head] = model.SerializeToString()
        parity[head] = {
            "rows": report.rows,
            "max_abs_diff": report.max_abs_diff,
            "max_rel_diff": report.max_rel_diff,
        }

    digest = hashlib.sha256(b"".join(onnx_bytes[head] for head in HEADS)).hexdigest()[:12]
    model_version = f"pp-{as_of.replace('-', '')}-{digest}"
    # The reference distribution comes from the engine that scores, so a user's
    # prediction and the quantiles it is placed among agree to the last bit.
    reference = predict(make_session(onnx_bytes["spend"]), result.validation_features)
    card = {
        "model_version": model_version,
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "status": "accepted",
        "as_of": as_of,
        "horizon_days": settings.horizon_days,
        "training_cutoffs": list(result.training_cutoffs),
        "validation_cutoff": result.validation_cutoff,
        "training_rows": result.training_rows,
        "validation_rows": result.validation_rows,
        "features": schema.to_card(),
        "params": result.params,
        "best_iterations": result.best_iterations,
        "metrics": [
            {"method": e.method, "metric": e.metric, "value": e.value} for e in result.evaluations
        ],
        "parity": parity,
        "reference_spend_quantiles": np.quantile(
            reference, np.linspace(0, 1, REFERENCE_QUANTILES)
        ).tolist(),
        "files": {head: f"{head}.onnx" for head in HEADS},
        "packages": _package_versions(),
    }

    artifacts_dir.mkdir(parents=True, exist_ok=True)
    final_path = artifacts_dir / model_version
    staging = Path(tempfile.mkdtemp(prefix=f".{model_version}-", dir=artifacts_dir))
    try:
        for head in HEADS:
            (staging / f"{head}.onnx").write_bytes(onnx_bytes[head])
            boosters[head].save_model(str(staging / f"{head}.lgb.txt"))
        (staging / "card.json").write_text(json.dumps(card, indent=2, sort_keys=True) + "\n")
        if final_path.exists():
            shutil.rmtree(final_path)
        os.replace(staging, final_path)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return RegisteredModel(model_version=model_version, path=final_path, card=card)


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
