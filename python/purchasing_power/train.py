"""Train the two heads on a time split and judge them against the baselines: functions
on ``training_examples`` (a DuckDB relation or an Arrow table), numpy arrays and boosters.

The heads form a hurdle model. ``purchase`` is a binary LightGBM model of P(at least
one purchase in the horizon); ``spend_given_purchase`` a tweedie one of net spend over
the horizon, fitted on the rows that bought. Expected spend is their product,
``P x E[spend | purchase]``, so ``predicted_spend`` and ``purchase_probability`` agree by
construction: no spend without a purchase probability, and spend never grows while
P falls for an unchanged basket. On the demo shop the hurdle also beat a single tweedie
model of spend on every spend metric (README, "Models").

Both heads are fitted on the earlier training cutoffs with early stopping on the
latest complete cutoff (never a random split: users repeat across cutoffs), judged on
that cutoff against the baselines (``baselines.py``) on the same rows, then refitted
on every cutoff with the number of rounds early stopping chose, so that the
registered model has seen the most recent behaviour. The evaluation figures are those
of the held-out fit.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import duckdb
import lightgbm as lgb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from purchasing_power import baselines, metrics
from purchasing_power.features import FeatureSchema
from purchasing_power.warehouse import quote_identifier

MODEL_METHOD = "lightgbm"
HEADS = ("purchase", "spend_given_purchase")
ACCEPTED = "accepted"
UNPROVEN = "unproven"
# The most trees a head grows by default (the dbt var max_boost_rounds, the CLI's option).
MAX_BOOST_ROUNDS = 1000
# The model must beat every baseline on both of these to be accepted.
GATING_METRICS = ("auc", "normalized_gini")
GAIN_CURVE_POINTS = 101
# training_examples: a DuckDB relation on the warehouse table, or an Arrow table.
Examples = duckdb.DuckDBPyRelation | pa.Table


@dataclass(frozen=True)
class HeadParams:
    """The LightGBM knobs of one head (what tuning searches over).

    A learning rate of 0.1 rather than 0.05: on the demo shop the same accuracy (AUC
    0.9228 vs 0.9222, normalized Gini 0.9021 vs 0.9023) with half the trees (the purchase
    head stopped at 543 rounds instead of running into the 1000-round cap), so training,
    scoring and above all TreeSHAP reasons (linear in trees) take about half the time.
    """

    learning_rate: float = 0.1
    num_leaves: int = 31
    min_data_in_leaf: int = 50
    feature_fraction: float = 0.9
    lambda_l2: float = 1.0


@dataclass(frozen=True)
class TrainingSettings:
    """Knobs of one training run. ``horizon_days`` names the label columns."""

    horizon_days: int
    seed: int = 42
    # LightGBM threads of each head. The heads train one after another, each on every
    # thread: two threads for the purchase head beat one thread per head side by side,
    # where the purchase head, fitted on every row, ran long after the spend head was done
    # (medium: 53.5 s against 78.2 s, bench/README.md). A booster depends on its thread
    # count (LightGBM sums histograms per thread), so this is a setting (the dbt var
    # training_threads), not the machine's core count.
    # OpenMP threads spin waiting for each other, so nothing of training runs beside them:
    # on this 2-core machine, shared with other work, 100 rounds took 3-4 s with one
    # thread and 26-64 s with two.
    num_threads: int = 2
    # The most trees a head grows; early stopping on the validation cutoff picks fewer
    # where more stop helping (the dbt var max_boost_rounds). Training, scoring, the
    # parity recheck and the reasons all grow with the trees: bench/bench_tree_count.py
    # shows what a lower cap costs in quality.
    max_boost_rounds: int = MAX_BOOST_ROUNDS
    # The label window, where the history is too short for horizon_days labels
    # (int_cutoffs_derived.label_horizon_days; None: the horizon). The label columns keep
    # the horizon's name; the baselines predict this window, as the labels measure it.
    label_horizon_days: int | None = None
    early_stopping_rounds: int = 50
    tweedie_variance_power: float = 1.5
    purchase: HeadParams = field(default_factory=HeadParams)
    spend_given_purchase: HeadParams = field(default_factory=HeadParams)

    def __post_init__(self) -> None:
        if self.max_boost_rounds < 1:
            raise ValueError(
                f"max_boost_rounds must be at least 1, got {self.max_boost_rounds}: it is the "
                "most trees each head grows"
            )

    @property
    def purchase_label(self) -> str:
        return f"label_purchased_next_{self.horizon_days}d"

    @property
    def spend_label(self) -> str:
        return f"label_spend_next_{self.horizon_days}d"

    @property
    def baseline_column(self) -> str:
        return f"baseline_spend_last_{self.horizon_days}d"

    def head(self, head: str) -> HeadParams:
        return self.purchase if head == "purchase" else self.spend_given_purchase


def _rows(matrix: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``matrix[mask]``, without a copy where the rows are one contiguous run."""
    positions = np.flatnonzero(mask)
    if len(positions) and positions[-1] - positions[0] + 1 == len(positions):
        return matrix[positions[0] : positions[-1] + 1]
    return matrix[mask]


@dataclass(frozen=True)
class TimeSplit:
    """``training_examples`` as matrices: earlier cutoffs to fit, the latest to validate."""

    features: np.ndarray
    is_validation: np.ndarray
    purchased: np.ndarray
    spend: np.ndarray
    cutoffs: tuple[str, ...]
    training: pa.Table
    validation: pa.Table
    feature_names: list[str]
    monotone_constraints: list[int]

    def rows(self, head: str, *, validation: bool) -> tuple[np.ndarray, np.ndarray]:
        """Features and label of a head's rows on one side of the split (a view of the
        features where the rows are contiguous, as the cutoffs are, in cutoff order)."""
        mask = self.is_validation if validation else ~self.is_validation
        if head == "spend_given_purchase":
            mask = mask & (self.purchased > 0)
            return _rows(self.features, mask), self.spend[mask]
        return _rows(self.features, mask), self.purchased[mask]

    def all_rows(self, head: str) -> tuple[np.ndarray, np.ndarray]:
        if head == "spend_given_purchase":
            mask = self.purchased > 0
            return self.features[mask], self.spend[mask]
        return self.features, self.purchased


@dataclass(frozen=True)
class Heads:
    """The two boosters and how they combine."""

    purchase: lgb.Booster
    spend_given_purchase: lgb.Booster

    def predict(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(purchase probability, expected spend = P x E[spend | purchase])."""
        probability = self.purchase.predict(features)
        return probability, probability * self.spend_given_purchase.predict(features)

    def booster(self, head: str) -> lgb.Booster:
        return self.purchase if head == "purchase" else self.spend_given_purchase


@dataclass(frozen=True)
class Evaluation:
    """One metric of one method on the validation rows."""

    method: str
    metric: str
    value: float


@dataclass(frozen=True)
class CalibrationRow:
    """Mean predicted vs actual spend in one decile of one method's predicted spend."""

    method: str
    decile: int
    rows: int
    mean_predicted_spend: float
    mean_actual_spend: float


@dataclass(frozen=True)
class TrainingResult:
    heads: Heads
    params: dict[str, dict[str, object]]
    best_iterations: dict[str, int]
    evaluations: tuple[Evaluation, ...]
    calibration: tuple[CalibrationRow, ...]
    gain_curves: dict[str, list[float]]
    baseline_params: dict[str, dict[str, float]]
    status: str
    status_reasons: tuple[str, ...]
    training_cutoffs: tuple[str, ...]
    validation_cutoff: str
    training_rows: int
    validation_rows: int
    validation_features: np.ndarray

    def metric(self, method: str, metric: str) -> float:
        for evaluation in self.evaluations:
            if evaluation.method == method and evaluation.metric == metric:
                return evaluation.value
        raise KeyError(f"no {metric} for {method}")


# Rows of training_examples read per batch: the table is never whole in memory, only
# the feature matrix it fills (at 125M events the whole table took 1.49 GB as Arrow
# beside its 1.23 GB matrix, bench/README.md).
EXAMPLE_BATCH_ROWS = 1 << 17
_KEYS = ("cutoff_date", "user_id")


class ShortHistoryError(ValueError):
    """Fewer than two cutoffs have complete labels at the horizon: nothing to train on."""


def _positioned_batches(
    examples: duckdb.DuckDBPyRelation, columns: Sequence[str]
) -> pa.RecordBatchReader:
    """A stream of the ``columns`` of ``examples``, each row with its
    ``example_position``: its place in (cutoff_date, user_id) order.

    Only the two keys are sorted (DuckDB, a window); the wide rows stream past a hash
    join on them in whatever order the scan gives, so no sorted copy of the table is
    made, by DuckDB or here."""
    selected = ", ".join(f"_examples.{quote_identifier(name)}" for name in columns)
    positioned = examples.query(
        "_examples",
        f"""
        with positions as (
            select user_id, cutoff_date,
                row_number() over (order by cutoff_date, user_id) - 1 as example_position
            from _examples
        )
        select positions.example_position, {selected}
        from _examples inner join positions using (user_id, cutoff_date)
        """,
    )
    return positioned.to_arrow_reader(EXAMPLE_BATCH_ROWS)


def time_split(
    examples: Examples, *, schema: FeatureSchema, settings: TrainingSettings
) -> TimeSplit:
    """Check ``training_examples`` and cut it at the validation cutoff.

    ``examples`` is the warehouse table as a DuckDB relation (read in batches) or an
    Arrow table. The warehouse returns rows in no fixed order (parallel scans and
    joins); training, the baselines and every tie-break see them in one order,
    (cutoff_date, user_id), so that the same data gives the same model. Each batch's
    features go straight to their rows of the matrix; of the other columns only the
    few the split and the baselines read are read, in that order."""
    if isinstance(examples, pa.Table):
        examples = duckdb.connect().from_arrow(examples)
    names = examples.columns
    labels = (settings.purchase_label, settings.spend_label, settings.baseline_column)
    for column in (*_KEYS, "is_validation_cutoff", *labels):
        if column not in names:
            raise KeyError(f"training_examples has no column {column!r}")
    missing = [name for name in schema.names if name not in names]
    if missing:
        raise KeyError(f"feature columns missing from training_examples: {missing}")
    kept = [
        name
        for name in ("cutoff_date", "is_validation_cutoff", *labels, *baselines.COLUMNS)
        if name in names
    ]
    # The narrow columns come first, in one sorted read (a column kept from a streamed
    # batch would keep the whole batch alive: DuckDB hands each over as one allocation).
    selected = ", ".join(map(quote_identifier, kept))
    ordered = f"select {selected} from _examples order by cutoff_date, user_id"
    kept_table = examples.query("_examples", ordered).to_arrow_table()
    rows = kept_table.num_rows
    features = np.empty((rows, len(schema.names)), dtype=np.float64)
    # A (user_id, cutoff_date) held by k rows joins k x k times; a null key never joins.
    # So the rows are one to one with their positions when exactly `rows` rows stream
    # past and every position is placed.
    placed = np.zeros(rows, dtype=bool)
    streamed = 0
    for batch in _positioned_batches(examples, schema.names):
        positions = batch.column("example_position").to_numpy()
        streamed += len(positions)
        if streamed > rows:
            raise ValueError(
                "training_examples has more than one row for some (user_id, cutoff_date): "
                "it must hold one per user and cutoff (its unique_combination test)"
            )
        placed[positions] = True
        features[positions] = schema.to_matrix(batch)
    if not placed.all():
        raise ValueError(
            f"training_examples has {int(rows - placed.sum())} rows whose user_id or "
            "cutoff_date is null"
        )
    cutoff_dates = pc.unique(kept_table.column("cutoff_date")).to_pylist()
    cutoffs = sorted(str(value) for value in cutoff_dates)
    if len(cutoffs) < 2:
        raise ShortHistoryError(
            f"training needs at least 2 cutoffs with complete {settings.horizon_days}-day labels "
            f"for a time split, found {len(cutoffs)} ({', '.join(cutoffs) or 'none'}): "
            "use more history, a shorter horizon_days, or a smaller cutoff_spacing_days"
        )
    purchased = pc.cast(kept_table.column(settings.purchase_label), pa.float64()).to_numpy()
    is_valid = kept_table.column("is_validation_cutoff").to_numpy(zero_copy_only=False).astype(bool)
    for side, mask in (("training", ~is_valid), ("validation", is_valid)):
        buyers = int(np.count_nonzero(purchased[mask]))
        if not 0 < buyers < int(mask.sum()):
            raise ValueError(
                f"the {side} cutoffs need both buyers and non-buyers within "
                f"{settings.horizon_days} days; {buyers} of {int(mask.sum())} rows bought: check "
                "that purchase events map to 'purchase' in seeds/event_types.csv and carry an "
                "amount or a price"
            )
    return TimeSplit(
        features=features,
        is_validation=is_valid,
        purchased=purchased,
        spend=pc.cast(kept_table.column(settings.spend_label), pa.float64()).to_numpy(),
        cutoffs=tuple(cutoffs),
        training=kept_table.filter(pa.array(~is_valid)),
        validation=kept_table.filter(pa.array(is_valid)),
        feature_names=schema.names,
        monotone_constraints=schema.monotone_constraints,
    )


def head_params(head: str, *, split: TimeSplit, settings: TrainingSettings) -> dict:
    """LightGBM parameters of one head."""
    knobs = settings.head(head)
    params: dict[str, object] = {
        "objective": "binary" if head == "purchase" else "tweedie",
        "learning_rate": knobs.learning_rate,
        "num_leaves": knobs.num_leaves,
        "min_data_in_leaf": knobs.min_data_in_leaf,
        "feature_fraction": knobs.feature_fraction,
        "lambda_l2": knobs.lambda_l2,
        "seed": settings.seed,
        "deterministic": True,
        "force_row_wise": True,
        "num_threads": settings.num_threads,
        "verbosity": -1,
        "monotone_constraints": split.monotone_constraints,
    }
    if head != "purchase":
        params["tweedie_variance_power"] = settings.tweedie_variance_power
    return params


def fit_head(
    head: str, *, split: TimeSplit, settings: TrainingSettings
) -> tuple[lgb.Booster, dict]:
    """Fit one head on the training cutoffs with early stopping on the validation cutoff."""
    params = head_params(head, split=split, settings=settings)
    train_x, train_y = split.rows(head, validation=False)
    valid_x, valid_y = split.rows(head, validation=True)
    train_set = lgb.Dataset(
        train_x, label=train_y, feature_name=split.feature_names, free_raw_data=False
    )
    valid_set = lgb.Dataset(valid_x, label=valid_y, reference=train_set)
    booster = lgb.train(
        params,
        train_set,
        num_boost_round=settings.max_boost_rounds,
        valid_sets=[valid_set],
        callbacks=[lgb.early_stopping(settings.early_stopping_rounds, verbose=False)],
    )
    return booster, params


def _refit(head: str, params: dict, *, split: TimeSplit, rounds: int) -> lgb.Booster:
    features, label = split.all_rows(head)
    dataset = lgb.Dataset(features, label=label, feature_name=split.feature_names)
    return lgb.train(params, dataset, num_boost_round=max(rounds, 1))


@dataclass(frozen=True)
class _FittedHead:
    held_out: lgb.Booster
    params: dict
    best_iteration: int
    final: lgb.Booster


def _fit_and_refit(head: str, *, split: TimeSplit, settings: TrainingSettings) -> _FittedHead:
    booster, params = fit_head(head, split=split, settings=settings)
    best_iteration = int(booster.best_iteration or booster.current_iteration())
    final = _refit(head, params, split=split, rounds=best_iteration)
    return _FittedHead(booster, params, best_iteration, final)


def train_models(split: TimeSplit, *, settings: TrainingSettings) -> TrainingResult:
    """Fit both heads, judge them against the baselines, refit them on every cutoff.

    The baselines, then each head (its early-stopping fit and its refit), one after
    another, each head with ``settings.num_threads`` LightGBM threads."""
    baseline_predictions = baselines.fit_and_predict(
        split.training,
        split.validation,
        horizon_days=settings.label_horizon_days or settings.horizon_days,
        purchase_label=settings.purchase_label,
        spend_label=settings.spend_label,
        last_period_column=settings.baseline_column,
    )
    fitted = {head: _fit_and_refit(head, split=split, settings=settings) for head in HEADS}
    params = {head: fitted[head].params for head in HEADS}
    best_iterations = {head: fitted[head].best_iteration for head in HEADS}
    held_out = {head: fitted[head].held_out for head in HEADS}

    valid_x = split.features[split.is_validation]
    probability = held_out["purchase"].predict(valid_x, num_iteration=best_iterations["purchase"])
    spend_given_purchase = held_out["spend_given_purchase"].predict(
        valid_x, num_iteration=best_iterations["spend_given_purchase"]
    )
    predictions = (
        baselines.BaselinePrediction(
            MODEL_METHOD, probability, True, probability * spend_given_purchase, {}
        ),
        *baseline_predictions,
    )
    purchased = split.purchased[split.is_validation].astype(bool)
    spend = split.spend[split.is_validation]
    evaluations = evaluate(predictions, purchased=purchased, spend=spend)
    status, reasons = judge(evaluations)
    final = Heads(**{head: fitted[head].final for head in HEADS})
    return TrainingResult(
        heads=final,
        params=params,
        best_iterations=best_iterations,
        evaluations=evaluations,
        calibration=tuple(
            CalibrationRow(prediction.method, *row)
            for prediction in predictions
            for row in metrics.decile_calibration(spend, prediction.spend)
        ),
        gain_curves={
            prediction.method: metrics.gain_curve(
                spend, prediction.spend, points=GAIN_CURVE_POINTS
            ).tolist()
            for prediction in predictions
        },
        baseline_params={p.method: p.params for p in predictions if p.method != MODEL_METHOD},
        status=status,
        status_reasons=reasons,
        training_cutoffs=split.cutoffs,
        validation_cutoff=split.cutoffs[-1],
        training_rows=int((~split.is_validation).sum()),
        validation_rows=int(split.is_validation.sum()),
        validation_features=valid_x,
    )


def evaluate(
    predictions: tuple[baselines.BaselinePrediction, ...],
    *,
    purchased: np.ndarray,
    spend: np.ndarray,
) -> tuple[Evaluation, ...]:
    """Every metric of every method on the same validation rows."""
    rows: list[Evaluation] = []
    for prediction in predictions:
        scores = {"auc": metrics.roc_auc(purchased, prediction.purchase_score)}
        if prediction.is_probability:
            scores["log_loss"] = metrics.log_loss(purchased, prediction.purchase_score)
        scores.update(metrics.spend_metrics(spend, prediction.spend))
        rows.extend(Evaluation(prediction.method, name, value) for name, value in scores.items())
    return tuple(rows)


def judge(evaluations: tuple[Evaluation, ...]) -> tuple[str, tuple[str, ...]]:
    """``accepted`` if the model beats every baseline on every gating metric, else
    ``unproven`` with one reason per loss (a NaN never beats anything)."""
    values = {(e.method, e.metric): e.value for e in evaluations}
    methods = sorted({e.method for e in evaluations} - {MODEL_METHOD})
    reasons = []
    for metric in GATING_METRICS:
        model = values.get((MODEL_METHOD, metric), math.nan)
        for method in methods:
            baseline = values.get((method, metric), math.nan)
            if not model > baseline:
                reasons.append(
                    f"{metric}: lightgbm {model:.4f} does not beat {method} {baseline:.4f}"
                )
    return (UNPROVEN if reasons else ACCEPTED), tuple(reasons)
