"""The steps that dbt Python models (and the CLI) call: choose or train the model,
list the registry, score, explain. Each takes Arrow data and plain settings and
returns Arrow data; where the data comes from is the caller's business.

Which model scores (``choose_and_train``):

* ``model_version`` pinned: that one, whatever its status, rechecked as below.
* ``retrain`` set, or no accepted model for this horizon whose features
  ``user_features`` still has: choose among the candidate models and the baselines on
  rolling-origin folds and train the winner (``train.train_models``). A candidate that
  wins scores if it is accepted (its mean AUC and mean normalized Gini over the folds
  beat every baseline's). Where a baseline that can score wins (``rfm_decay``,
  ``bg_nbd_gamma_gamma``, ``lightgbm_rfm``), it is registered with status ``baseline``
  and scores. Either way, where the winner is not accepted and an accepted model
  exists, the build warns and the latest accepted model scores instead; an unproven
  candidate scores only where there is none, its status carried into
  ``ml_models.model_status``.
* otherwise: the latest accepted model for this horizon; its TreeEnsemble graph (and
  where CUDA runs, its tensor graph) is rechecked against LightGBM on today's scoring
  rows before it scores.
* where a model is to be trained but the history holds no two cutoffs with complete
  labels, the labels of one ending by the other (no fold), BG/NBD x Gamma-Gamma fitted
  on every user's history before as_of scores the whole horizon instead (``fallback``),
  with status ``fallback``; the build says why and what to change to train a model.

A model whose features differ from today's ``feature_registry`` still scores (it reads
the features its card lists); the log says it is stale.
"""

from __future__ import annotations

import ctypes
import json
import logging
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from purchasing_power import baselines, btyd_features, extension, fallback, monitoring
from purchasing_power.explain import REASONS_SCHEMA, load_explainer, reason_batches
from purchasing_power.features import FeatureSchema
from purchasing_power.parity import TIER_BOUND_DISTANCE, recheck_parity
from purchasing_power.registration import judged_fields, register_models
from purchasing_power.registry import RegisteredModel, list_models, remove_leftovers
from purchasing_power.scoring import SCORE_SCHEMA, load_scoring_model, score_batches
from purchasing_power.tiers import Tier, reference_quantiles
from purchasing_power.train import (
    ACCEPTED,
    CANDIDATES,
    MAX_BOOST_ROUNDS,
    MAX_FOLD_TRAINING_ROWS,
    VALIDATION_FOLDS,
    Examples,
    HeadParams,
    ShortHistoryError,
    TimeSplit,
    TrainingResult,
    TrainingSettings,
    time_split,
    train_models,
)
from purchasing_power.tuning import tune

if TYPE_CHECKING:
    import duckdb

log = logging.getLogger("purchasing_power")

LIGHTGBM_HURDLE = "lightgbm_hurdle"

METRIC_TYPE = pa.list_(
    pa.struct([("method", pa.string()), ("metric", pa.string()), ("value", pa.float64())])
)
FOLD_METRIC_TYPE = pa.list_(
    pa.struct(
        [
            ("validation_cutoff_date", pa.string()),
            ("method", pa.string()),
            ("metric", pa.string()),
            ("value", pa.float64()),
        ]
    )
)
CALIBRATION_TYPE = pa.list_(
    pa.struct(
        [
            ("method", pa.string()),
            ("decile", pa.int32()),
            ("rows", pa.int64()),
            ("mean_predicted_spend", pa.float64()),
            ("mean_actual_spend", pa.float64()),
        ]
    )
)
IMPORTANCE_TYPE = pa.list_(
    pa.struct(
        [
            ("head", pa.string()),
            ("feature_name", pa.string()),
            ("gain", pa.float64()),
            ("splits", pa.int64()),
        ]
    )
)
MODELS_SCHEMA = pa.schema(
    [
        ("model_version", pa.string()),
        ("created_at", pa.string()),
        ("model_status", pa.string()),
        ("is_active", pa.bool_()),
        ("as_of_date", pa.string()),
        ("horizon_days", pa.int32()),
        ("validation_cutoff_date", pa.string()),
        ("training_rows", pa.int64()),
        ("validation_rows", pa.int64()),
        ("feature_count", pa.int32()),
        ("features_match_registry", pa.bool_()),
        ("artifact_path", pa.string()),
        ("report_path", pa.string()),
        ("training_reason", pa.string()),
        ("scoring_method", pa.string()),
        ("metrics", METRIC_TYPE),
        ("decile_calibration", CALIBRATION_TYPE),
        ("feature_importance", IMPORTANCE_TYPE),
        ("fold_metrics", FOLD_METRIC_TYPE),
    ]
)


@dataclass(frozen=True)
class RunSettings:
    """What a dbt run passes down: dbt vars and paths."""

    artifacts_dir: Path
    horizon_days: int
    seed: int = 42
    num_threads: int = 2  # var training_threads; see TrainingSettings.num_threads
    retrain: bool = False
    model_version: str | None = None
    tune_trials: int = 0
    max_boost_rounds: int = MAX_BOOST_ROUNDS  # var max_boost_rounds; see TrainingSettings
    # retrain: auto, the monitoring policy's reasons to train (monitoring.retrain_reasons)
    retrain_reasons: tuple[str, ...] = ()
    # int_cutoffs_derived.label_horizon_days: shorter than horizon_days where the history
    # is (the model then learns it and its scores are extended); None: the horizon
    label_horizon_days: int | None = None
    validation_folds: int = VALIDATION_FOLDS  # var validation_folds; see TrainingSettings
    candidates: tuple[str, ...] = CANDIDATES  # the candidate models judged on the folds
    # var max_fold_training_rows (0: no limit); see TrainingSettings
    max_fold_training_rows: int | None = MAX_FOLD_TRAINING_ROWS
    # var head_params: the LightGBM knobs of both heads (train.head_params_from)
    head_params: HeadParams = field(default_factory=HeadParams)


@dataclass(frozen=True)
class Choice:
    """The model that scores this build, and the one trained by it (if any)."""

    active: RegisteredModel
    trained: RegisteredModel | None


Say = Callable[[str, bool], None]


def say_to_stderr(message: str, warning: bool) -> None:
    """Report a decision: the ``purchasing_power`` logger and one line on stderr."""
    log.log(logging.WARNING if warning else logging.INFO, message)
    prefix = "WARNING purchasing_power: " if warning else "purchasing_power: "
    print(prefix + message, file=sys.stderr, flush=True)


def say_to_dbt(message: str, warning: bool) -> None:
    """Report a decision as a dbt event, so that it shows in dbt's console output and in
    logs/dbt.log (dbt Python models run inside dbt's process); warnings as warnings."""
    from dbt_common.events.base_types import EventLevel
    from dbt_common.events.functions import fire_event
    from dbt_common.events.types import Note

    text = f"purchasing_power: {'WARNING ' if warning else ''}{message}"
    fire_event(Note(msg=text), level=EventLevel.WARN if warning else EventLevel.INFO)


def _card_names(model: RegisteredModel) -> list[str]:
    """The user_features columns a model reads (its derived features are not columns)."""
    return [f["name"] for f in model.card["features"] if not f.get("derived")]


def _usable(model: RegisteredModel, *, horizon_days: int, columns: set[str]) -> bool:
    return (
        model.status == ACCEPTED
        and int(model.card["horizon_days"]) == horizon_days
        and "lightgbm_files" in model.card
        and set(_card_names(model)) <= columns
    )


def _return_freed_memory() -> None:
    """Give the pages the C heap holds free back to the OS (glibc's ``malloc_trim``).

    The examples read from the warehouse are freed once they are in the matrix, but
    glibc keeps the freed pages: at 125M events 0.73 GiB of the process stayed resident
    through training, and so counted in its peak (bench/README.md). Without glibc this
    does nothing."""
    try:
        trim = ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return
    trim(0)


def _train(
    read_examples: Callable[[], Examples],
    schema: FeatureSchema,
    scoring: pa.Table,
    tiers: tuple[Tier, ...],
    *,
    as_of: str,
    settings: RunSettings,
    say: Say = say_to_stderr,
    training_reason: str | None = None,
    extended: extension.Extension | None = None,
) -> RegisteredModel:
    training = TrainingSettings(
        horizon_days=settings.horizon_days,
        label_horizon_days=extended.label_horizon_days if extended else None,
        seed=settings.seed,
        num_threads=settings.num_threads,
        max_boost_rounds=settings.max_boost_rounds,
        validation_folds=settings.validation_folds,
        candidates=settings.candidates,
        max_fold_training_rows=settings.max_fold_training_rows or None,
        purchase=settings.head_params,
        spend_given_purchase=settings.head_params,
    )
    split = time_split(read_examples(), schema=schema, settings=training)
    _return_freed_memory()
    tuning = None
    if settings.tune_trials > 0:
        say(f"tuning: {settings.tune_trials} Optuna trials per head on the time split", False)
        tuned = tune(split, settings=training, trials=settings.tune_trials)
        training = tuned.settings
        tuning = {
            "trials": tuned.trials,
            "best_losses": tuned.best_losses,
            "default_losses": tuned.default_losses,
        }
    folds = "; ".join(
        f"{fold.validation_cutoff} on {len(fold.training_cutoffs)} cutoff(s)"
        for fold in split.folds
    )
    say(f"choosing on {len(split.folds)} rolling-origin fold(s): {folds}", False)
    result = train_models(split, settings=training)
    feature_reference = _training_reference(result, split)
    del split  # the feature matrix of every example: registration needs only the result
    return _register(
        result,
        scoring,
        tiers,
        as_of=as_of,
        settings=settings,
        training=training,
        tuning=tuning,
        extended=extended,
        feature_reference=feature_reference,
        training_reason=training_reason,
    )


def _training_reference(
    result: TrainingResult, split: TimeSplit
) -> dict[str, dict[str, Any]] | None:
    """The drift reference (monitoring.feature_references) of the features the winning
    trees read, on every training row; None for a baseline scored in Python."""
    if result.heads is None or result.schema is None:
        return None
    if result.method == baselines.LIGHTGBM_RFM:
        matrix = baselines.lightgbm_rfm_matrix(split.examples)
        return monitoring.feature_references(matrix, result.schema.names)
    found = monitoring.feature_references(split.features, split.schema.names)
    if result.schema.has_derived and split.btyd is not None:  # the hybrid's BTYD columns
        found.update(monitoring.feature_references(split.btyd, btyd_features.NAMES))
    return found


def _register(
    result: TrainingResult,
    scoring: pa.Table,
    tiers: tuple[Tier, ...],
    *,
    as_of: str,
    settings: RunSettings,
    training: TrainingSettings,
    tuning: dict[str, Any] | None,
    extended: extension.Extension | None,
    feature_reference: dict[str, dict[str, Any]] | None = None,
    training_reason: str | None = None,
) -> RegisteredModel:
    """Register what won: trees (a candidate, lightgbm_rfm) through export and the parity
    gate, a Python-scored baseline as its card. ``feature_reference``: the drift
    reference of the trees' features on their training rows (``_training_reference``);
    ``training_reason``: why the build trained (ml_models.training_reason)."""
    if result.heads is not None:
        assert result.schema is not None
        schema = result.schema
        if schema.has_derived:  # the scoring cutoff's own BTYD fit, frozen in the card
            schema = schema.with_btyd(btyd_features.fit(scoring, window_days=training.label_days))
        return register_models(
            result,
            schema=schema,
            settings=training,
            as_of=as_of,
            scoring_features=schema.to_matrix(scoring),
            tiers=tiers,
            artifacts_dir=settings.artifacts_dir,
            tuning=tuning,
            extension=extended.to_card() if extended else None,
            feature_reference=feature_reference,
            training_reason=training_reason,
        )
    judged = judged_fields(result)
    reason = "; ".join(result.status_reasons)
    if result.method == baselines.BTYD:
        return _fall_back(
            scoring, as_of=as_of, settings=settings, reason=reason, why=training_reason,
            status=fallback.BASELINE, judged=judged,
        )  # fmt: skip
    assert result.rfm_decay is not None
    level = fallback.rfm_decay_level(result.rfm_decay, scoring, horizon_days=settings.horizon_days)
    card = fallback.rfm_decay_card(
        result.rfm_decay,
        as_of=as_of,
        horizon_days=settings.horizon_days,
        spend_level=level,
        judged=judged,
        reference_quantiles=np.empty(0),
        scores={},
        extension=extended.to_card() if extended else None,
    )
    spend, probability = fallback.rfm_decay_predictor(card)(scoring)
    card["reference_spend_quantiles"] = reference_quantiles(spend).tolist()
    card["scores"] = fallback.summarize_scores(spend, probability)
    card["training_reason"] = training_reason
    path = fallback.write_artifact(card, artifacts_dir=settings.artifacts_dir)
    return RegisteredModel(model_version=card["model_version"], path=path, card=card)


def choose_and_train(
    read_examples: Callable[[], Examples],
    registry: pa.Table,
    scoring_features: pa.Table,
    power_tiers: pa.Table,
    *,
    as_of: str,
    settings: RunSettings,
    say: Say = say_to_stderr,
) -> Choice:
    """Pick the model that scores this build, training one where the policy says so."""
    schema = FeatureSchema.from_registry(registry)
    tiers = Tier.from_table(power_tiers)
    columns = set(scoring_features.schema.names)
    remove_leftovers(settings.artifacts_dir)
    models = list_models(settings.artifacts_dir)

    if settings.model_version:
        pinned = [m for m in models if m.model_version == settings.model_version]
        if not pinned:
            raise ValueError(
                f"model_version {settings.model_version!r} is not registered in "
                f"{settings.artifacts_dir} (registered: "
                f"{', '.join(m.model_version for m in models) or 'none'})"
            )
        active = pinned[0]
        if active.card.get("method") == fallback.METHOD:
            say(f"scoring with pinned {fallback.METHOD} fallback {active.model_version}", False)
            return Choice(active=active, trained=None)
        rechecked = _recheck(active, scoring_features, tiers)
        say(
            f"scoring with pinned model {active.model_version} ({active.status}); {rechecked}",
            False,
        )
        _note_staleness(active, schema, say=say)
        return Choice(active=active, trained=None)

    accepted = [
        m for m in models if _usable(m, horizon_days=settings.horizon_days, columns=columns)
    ]
    if accepted and not settings.retrain and not settings.retrain_reasons:
        active = accepted[-1]
        rechecked = _recheck(active, scoring_features, tiers)
        say(
            f"scoring with the latest accepted model {active.model_version} (no retrain: set "
            f"--vars '{{retrain: true}}' to train); {rechecked}",
            False,
        )
        _note_staleness(active, schema, say=say)
        return Choice(active=active, trained=None)

    why = "retrain: true" if settings.retrain else "no accepted model for this horizon"
    if accepted and not settings.retrain:
        why = "retrain: auto, " + "; ".join(settings.retrain_reasons)
    say(f"training a new model ({why})", False)
    extended = None
    window = settings.label_horizon_days
    if window is not None and window < settings.horizon_days:
        extended = extension.fit(
            scoring_features, horizon_days=settings.horizon_days, label_horizon_days=window
        )
        say(
            f"the history holds no complete {settings.horizon_days}-day labels: the model "
            f"learns {window}-day labels, and its scores are extended to {settings.horizon_days} "
            f"days by the BG/NBD purchase-rate curve of today's users (spend x "
            f"{extended.spend_factor:.3f}, P(no purchase) ^ {extended.probability_exponent:.3f}); "
            "more history or a shorter horizon_days would train on the horizon itself",
            True,
        )
    try:
        trained = _train(
            read_examples,
            schema,
            scoring_features,
            tiers,
            as_of=as_of,
            settings=settings,
            say=say,
            extended=extended,
            training_reason=why,
        )
    except ShortHistoryError as short:
        active = _fall_back(
            scoring_features, as_of=as_of, settings=settings, reason=str(short), why=why
        )
        say(
            f"SCORED WITH {fallback.METHOD.upper()}, NOT A TRAINED MODEL: {short}. Every user "
            f"is scored by BG/NBD x Gamma-Gamma fitted on all history before {as_of}, over the "
            f"whole {settings.horizon_days}-day horizon ({active.model_version}, status "
            f"'{fallback.FALLBACK}'); users who never bought get 0",
            True,
        )
        return Choice(active=active, trained=None)
    card = trained.card
    metrics = {(m["method"], m["metric"]): m["value"] for m in card["metrics"]}
    winner = card["method"].removesuffix("_extended")
    figures = ", ".join(
        f"{method} AUC {metrics[(method, 'auc')]:.3f}, normalized Gini "
        f"{metrics[(method, 'normalized_gini')]:.3f}"
        for method in dict.fromkeys((winner, card["best_candidate"]))
    )
    say(
        f"registered {trained.model_version} ({trained.status}, {card['method']}) at "
        f"{trained.path}: means over {len(card['folds'])} fold(s): {figures}"
        + (f"; report {trained.path / 'report.html'}" if "lightgbm_files" in card else ""),
        False,
    )
    if trained.status == ACCEPTED:
        return Choice(active=trained, trained=trained)
    reasons = "; ".join(card["status_reasons"])
    if accepted:
        active = accepted[-1]
        say(
            f"{trained.status.upper()} MODEL NOT PROMOTED: {trained.model_version} "
            f"({card['method']}) is not accepted ({reasons}); scoring keeps the last accepted "
            f"model {active.model_version}",
            True,
        )
        return Choice(active=active, trained=trained)
    if trained.status == fallback.BASELINE:
        say(
            f"BASELINE SCORES: {winner} beat every candidate model on the rolling-origin "
            f"folds ({reasons}) and no accepted model exists: {trained.model_version} "
            f"({card['method']}) scores today's users, with model_status "
            f"'{fallback.BASELINE}'",
            True,
        )
        return Choice(active=trained, trained=trained)
    say(
        f"UNPROVEN MODEL SCORES: {trained.model_version} does not beat every baseline "
        f"({reasons}) and no accepted model exists; its scores carry model_status 'unproven'",
        True,
    )
    return Choice(active=trained, trained=trained)


def _fall_back(
    scoring_features: pa.Table,
    *,
    as_of: str,
    settings: RunSettings,
    reason: str,
    why: str | None,
    status: str = fallback.FALLBACK,
    judged: dict[str, Any] | None = None,
) -> RegisteredModel:
    """Fit and register the BTYD fallback on the scoring cutoff's own history; ``why``:
    why the build set out to train (ml_models.training_reason)."""
    scorer = fallback.fit(scoring_features, horizon_days=settings.horizon_days)
    spend, probability = scorer.predict(scoring_features)
    card = fallback.card(
        scorer,
        as_of=as_of,
        reason=reason,
        reference_quantiles=reference_quantiles(spend),
        scores=fallback.summarize_scores(spend, probability),
        status=status,
        judged=judged,
    )
    card["training_reason"] = why
    path = fallback.write_artifact(card, artifacts_dir=settings.artifacts_dir)
    return RegisteredModel(model_version=card["model_version"], path=path, card=card)


def _recheck(model: RegisteredModel, scoring_features: pa.Table, tiers: Sequence[Tier]) -> str:
    """The parity gate of a registered model on today's scoring rows, in user_id order
    (raises where it fails), summed up for the log."""
    schema = FeatureSchema.from_card(model.card["features"], model.card.get("btyd_features"))
    ordered = scoring_features.sort_by("user_id")
    found = recheck_parity(model, scoring_features=schema.to_matrix(ordered), tiers=tiers)
    graphs = "; ".join(
        f"{graph} on {found.figures[graph]['execution_provider']}, "
        f"max relative spend difference {found.figures[graph]['spend']['max_rel_diff']:.2g}"
        for graph in found.figures
    )
    if found.every_row:
        why = (
            f" ({', '.join(found.changed_packages)} since registration)"
            if found.changed_packages
            else ""
        )
        rows = f"every one of {found.rows:,} scoring rows{why}"
    else:
        rows = (
            f"{found.rows:,} of {found.scoring_rows:,} scoring rows (a sample of "
            f"{found.sampled:,} and the {found.near_bound:,} within {TIER_BOUND_DISTANCE:g} of "
            "a tier bound: LightGBM, onnxruntime and NumPy are the versions it was "
            "registered with)"
        )
    return f"parity rechecked on {rows} and {found.edge_cases:,} edge cases: {graphs}"


def _note_staleness(model: RegisteredModel, schema: FeatureSchema, *, say: Say) -> None:
    card_names, today = _card_names(model), schema.names
    if card_names != today:
        added = sorted(set(today) - set(card_names))
        dropped = sorted(set(card_names) - set(today))
        say(
            f"model {model.model_version} is stale: it reads its own {len(card_names)} features, "
            f"feature_registry now lists {len(today)} (new: {', '.join(added) or 'none'}; "
            f"no longer listed: {', '.join(dropped) or 'none'}); retrain with "
            "--vars '{retrain: true}'",
            True,
        )


def models_table(
    artifacts_dir: Path, *, active_version: str | None, registry: pa.Table | None = None
) -> pa.Table:
    """The registry as a table, one row per registered model version."""
    today = FeatureSchema.from_registry(registry).names if registry is not None else None
    rows = []
    for model in list_models(artifacts_dir):
        card = model.card
        names = _card_names(model)
        rows.append(
            {
                "model_version": model.model_version,
                "created_at": card["created_at"],
                "model_status": card["status"],
                "is_active": model.model_version == active_version,
                "as_of_date": card["as_of"],
                "horizon_days": card["horizon_days"],
                "validation_cutoff_date": card["validation_cutoff"],
                "training_rows": card["training_rows"],
                "validation_rows": card["validation_rows"],
                "feature_count": len(names),
                "features_match_registry": None if today is None else names == today,
                "artifact_path": str(model.path),
                "report_path": str(model.path / "report.html"),
                "training_reason": card.get("training_reason"),
                "scoring_method": card.get("method", LIGHTGBM_HURDLE),
                "metrics": card["metrics"],
                "decile_calibration": card.get("decile_calibration", []),
                "feature_importance": card.get("feature_importance", []),
                "fold_metrics": _fold_metrics(card),
            }
        )
    return pa.Table.from_pylist(rows, schema=MODELS_SCHEMA)


def _fold_metrics(card: dict[str, Any]) -> list[dict[str, Any]]:
    """Every method's figures per fold; a card from before the folds (one validation
    cutoff) as one fold."""
    rows = card.get("fold_metrics")
    if rows is None:
        rows = [{**row, "validation_cutoff": card["validation_cutoff"]} for row in card["metrics"]]
    return [
        {
            "validation_cutoff_date": row["validation_cutoff"],
            "method": row["method"],
            "metric": row["metric"],
            "value": row["value"],
        }
        for row in rows
    ]


def score(
    features: pa.RecordBatchReader, *, model_dir: Path, num_threads: int = 2
) -> pa.RecordBatchReader:
    """Stream scores for a stream of ``user_features`` batches."""
    model = load_scoring_model(model_dir, num_threads=num_threads)
    return pa.RecordBatchReader.from_batches(SCORE_SCHEMA, score_batches(features, model=model))


def explain(
    features: pa.RecordBatchReader, *, model_dir: Path, num_threads: int = 1
) -> pa.RecordBatchReader:
    """Stream each user's top reasons for a stream of ``user_features`` batches (none
    for the BTYD fallback, which has no trees to explain)."""
    if fallback.is_fallback(model_dir):
        return pa.RecordBatchReader.from_batches(REASONS_SCHEMA, iter(()))
    explainer = load_explainer(model_dir, num_threads=num_threads)
    return pa.RecordBatchReader.from_batches(
        REASONS_SCHEMA, reason_batches(features, explainer=explainer)
    )


def train_from_warehouse(
    connection: duckdb.DuckDBPyConnection,
    *,
    artifacts_dir: Path,
    seed: int = 42,
    tune_trials: int = 0,
    num_threads: int = 2,
    max_boost_rounds: int = MAX_BOOST_ROUNDS,
) -> RegisteredModel:
    """Train and register a model from the tables of a built warehouse (the CLI's
    ``train``): the same steps as a dbt build with ``retrain: true``, without scoring."""
    from purchasing_power.warehouse import query, read_table

    _, cutoffs = query(
        connection,
        "select as_of_date::varchar, horizon_days from intermediate.int_cutoffs_derived"
        " where is_scoring_cutoff",
    )
    as_of, horizon_days = cutoffs[0]
    registry = read_table(connection, "ml.feature_registry")
    schema = FeatureSchema.from_registry(registry)
    scoring = read_table(connection, "features.user_features", where="is_scoring_cutoff")
    run = RunSettings(
        artifacts_dir=artifacts_dir,
        horizon_days=int(horizon_days),
        seed=seed,
        num_threads=num_threads,
        tune_trials=tune_trials,
        max_boost_rounds=max_boost_rounds,
    )
    return _train(
        lambda: connection.table("ml.training_examples"),
        schema,
        scoring,
        Tier.from_table(read_table(connection, "reference.power_tiers")),
        as_of=as_of,
        settings=run,
    )


def model_report(
    connection: duckdb.DuckDBPyConnection, *, model_version: str | None = None
) -> tuple[str, str]:
    """(model version, report HTML) of the active model in ``ml.ml_models``, or of the
    given version."""
    from purchasing_power.report import render_report
    from purchasing_power.warehouse import query

    condition = "is_active" if model_version is None else "model_version = $version"
    relation = connection.sql(
        f"select model_version, artifact_path from ml.ml_models where {condition}",
        params=None if model_version is None else {"version": model_version},
    )
    rows = relation.fetchall()
    if not rows:
        _, known = query(connection, "select model_version from ml.ml_models order by 1")
        raise ValueError(
            f"no model {model_version or '(active)'} in ml.ml_models; registered: "
            f"{', '.join(row[0] for row in known) or 'none'}"
        )
    version, path = rows[0]
    card = json.loads((Path(path) / "card.json").read_text())
    return version, render_report(card)
