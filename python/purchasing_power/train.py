"""Choose the model on a rolling-origin time split and train it: functions on
``training_examples`` (a DuckDB relation or an Arrow table), numpy arrays and boosters.

Candidates. Each is a pair of LightGBM heads: ``purchase``, a binary model of P(at least
one purchase in the label window), and a tweedie model of spend, combined one of two
ways:

``lightgbm_hurdle``
    The spend head is fitted on the rows that bought (E[spend | purchase]) and expected
    spend is the product ``P x E[spend | purchase]``, so ``predicted_spend`` and
    ``purchase_probability`` agree by construction.
``lightgbm_tweedie``
    A single tweedie model of spend over every row is the prediction (``direct``); the
    purchase head (the hurdle's own) gives the probability.
``lightgbm_hybrid``
    The hurdle on the features plus four buy-till-you-die quantities computed at each
    cutoff from that cutoff's history alone (``btyd_features``): P(alive), expected
    purchase days, Gamma-Gamma's expected value and their product.

Folds (``rolling_origin_folds``). The validation cutoffs are the latest
``validation_folds`` training cutoffs with an earlier cutoff whose label window ends by
them; each fold fits on exactly those earlier cutoffs, whose labels end at or before
its validation cutoff, so no fold learns from an outcome inside the window it is
judged on (users repeat across cutoffs). Every candidate's heads stop early on the
fold's validation cutoff; every baseline (``baselines.py``) is fitted on the same
training rows; all are measured on the same validation rows.

The choice. Each method's score is its mean, over the folds, of (AUC + normalized
Gini) / 2, the two gating metrics. The best candidate is the model (``lightgbm`` in
the evaluations). The method that scores is the best of the candidates and of the
baselines that can score (``baselines.SCORING_METHODS``; ties go to the candidate). A
candidate that scores is refitted on every cutoff with the rounds early stopping chose
on the latest fold, and is ``accepted`` where its mean AUC and mean normalized Gini
both beat every baseline's, else ``unproven``; a baseline that scores carries the
status ``baseline``.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeAlias, cast

import duckdb
import lightgbm as lgb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from purchasing_power import baselines, btyd_features, metrics
from purchasing_power.features import FeatureSchema, FeatureSpec
from purchasing_power.warehouse import arrow_relation, quote_identifier, relation_query

MODEL_METHOD = "lightgbm"  # the best candidate's rows in the evaluations
LIGHTGBM_HURDLE = "lightgbm_hurdle"
LIGHTGBM_TWEEDIE = "lightgbm_tweedie"
LIGHTGBM_HYBRID = "lightgbm_hybrid"
CANDIDATES = (LIGHTGBM_HURDLE, LIGHTGBM_TWEEDIE, LIGHTGBM_HYBRID)
# How a pair of heads makes expected spend: P x E[spend | purchase], or the spend head.
HURDLE = "hurdle"
DIRECT = "direct"
COMBINATION = {
    LIGHTGBM_HURDLE: HURDLE,
    LIGHTGBM_TWEEDIE: DIRECT,
    LIGHTGBM_HYBRID: HURDLE,
    baselines.LIGHTGBM_RFM: DIRECT,
}
# The boosters' keys (files, params, best iterations): the second is the spend head,
# conditional on a purchase in the hurdle, over every row in the direct combination.
HEADS = ("purchase", "spend_given_purchase")
ACCEPTED = "accepted"
UNPROVEN = "unproven"
BASELINE = "baseline"  # a baseline beat every candidate and scores
VALIDATION_FOLDS = 3
MAX_FOLD_TRAINING_ROWS = 300_000
# The most trees a head grows by default (the dbt var max_boost_rounds, the CLI's option),
# chosen by a rule: the smallest cap tried whose normalized Gini and AUC were within 0.001
# of the uncapped model on every shop of the zoo, CDNOW and a medium shop
# (bench/tree_cap.py, docs/configuration.md#the-tree-cap).
MAX_BOOST_ROUNDS = 50
# The model must beat every baseline on both of these to be accepted.
GATING_METRICS = ("auc", "normalized_gini")
GAIN_CURVE_POINTS = 101
# training_examples: a DuckDB relation on the warehouse table, or an Arrow table.
Examples: TypeAlias = duckdb.DuckDBPyRelation | pa.Table


# The leaves a tree may grow, by the training examples' rows (every cutoff's): below
# each bound its count, 31 above the last. Chosen on the zoo by bench/training_defaults.py
# (issue 34 point 6, docs/configuration.md#the-heads-knobs): shops of a few thousand
# users (5,000 to 8,000 rows) gained up to 0.010 of Gini and 0.007 of AUC with 7 leaves,
# a medium shop (235,000 rows) lost 0.002 with them and kept 31, and CDNOW (131,000
# rows) did best of the three with 15.
NUM_LEAVES_BY_ROWS = ((50_000, 7), (200_000, 15))
NUM_LEAVES_ABOVE = 31


def num_leaves_for(rows: int) -> int:
    """The leaves per tree for ``rows`` training examples (``NUM_LEAVES_BY_ROWS``)."""
    return next((leaves for bound, leaves in NUM_LEAVES_BY_ROWS if rows < bound), NUM_LEAVES_ABOVE)


@dataclass(frozen=True)
class HeadParams:
    """The LightGBM knobs of one head (what tuning searches over).

    A learning rate of 0.1 rather than 0.05: on the demo shop the same accuracy (AUC
    0.9228 vs 0.9222, normalized Gini 0.9021 vs 0.9023) with half the trees (the purchase
    head stopped at 543 rounds instead of running into the 1000-round cap), so training,
    scoring and above all TreeSHAP reasons (linear in trees) take about half the time.
    ``num_leaves`` None: by the training rows (``num_leaves_for``).
    """

    learning_rate: float = 0.1
    num_leaves: int | None = None
    min_data_in_leaf: int = 50
    feature_fraction: float = 0.9
    lambda_l2: float = 1.0


# Each knob of HeadParams: its type and what LightGBM accepts (least, most, whether the
# least itself is allowed). A test holds the names to HeadParams' fields.
_KNOBS: dict[str, tuple[type, float, float, bool]] = {
    "learning_rate": (float, 0.0, math.inf, False),
    "num_leaves": (int, 2, 131_072, True),
    "min_data_in_leaf": (int, 1, math.inf, True),
    "feature_fraction": (float, 0.0, 1.0, False),
    "lambda_l2": (float, 0.0, math.inf, True),
}


def head_params_from(
    overrides: dict[str, Any] | None, *, source: str = "head_params"
) -> HeadParams:
    """``HeadParams`` with ``overrides`` (the dbt var ``head_params``) in place of the
    defaults; an unknown knob, a value of the wrong kind or one LightGBM refuses is an
    error naming it."""
    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - set(_KNOBS))
    if unknown:
        raise ValueError(
            f"{source}: unknown knob(s) {', '.join(unknown)}; the knobs are {', '.join(_KNOBS)}"
        )
    checked: dict[str, Any] = {}
    for name, value in overrides.items():
        kind, least, most, inclusive = _KNOBS[name]
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"{source}: {name} must be a number, got {value!r}")
        if kind is int and value != int(value):
            raise ValueError(f"{source}: {name} must be a whole number, got {value!r}")
        if not (value >= least if inclusive else value > least) or value > most:
            bound = "at least" if inclusive else "above"
            upper = "" if math.isinf(most) else f" and at most {most:g}"
            raise ValueError(f"{source}: {name} must be {bound} {least:g}{upper}, got {value!r}")
        checked[name] = kind(value)
    return HeadParams(**checked)


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
    # Early stopping's patience: the rounds without a better validation loss after which
    # a head stops, a share of the rounds so far, at least min_early_stopping_rounds
    # and at most early_stopping_rounds (``patience``). A fixed 50 rounds ran each fold's
    # fit 50 rounds past a best of 28 to 50 on the small bench: more than half of the
    # choosing's boosting rounds confirmed a best already found (bench/README.md).
    early_stopping_rounds: int = 50
    min_early_stopping_rounds: int = 10
    early_stopping_share: float = 0.25
    tweedie_variance_power: float = 1.5
    # how many rolling-origin folds validate the candidates, where the cutoffs allow
    # (the dbt var validation_folds)
    validation_folds: int = VALIDATION_FOLDS
    candidates: tuple[str, ...] = CANDIDATES
    # The most training rows a fold's fits read (an even sample, every k-th row, above it;
    # the dbt var max_fold_training_rows; None: all). Choosing among candidates needs far
    # fewer rows than the model: where the latest fold is sampled, the method that scores
    # stops early once more on all its rows before it is refitted on every cutoff. With
    # three candidates and three folds, unsampled folds would double training on a large
    # shop (bench/README.md).
    max_fold_training_rows: int | None = MAX_FOLD_TRAINING_ROWS
    purchase: HeadParams = field(default_factory=HeadParams)
    spend_given_purchase: HeadParams = field(default_factory=HeadParams)

    def __post_init__(self) -> None:
        if self.max_boost_rounds < 1:
            raise ValueError(
                f"max_boost_rounds must be at least 1, got {self.max_boost_rounds}: it is the "
                "most trees each head grows"
            )
        if self.validation_folds < 1:
            raise ValueError(
                f"validation_folds must be at least 1, got {self.validation_folds}: it is how "
                "many validation cutoffs judge the candidates"
            )
        if not 1 <= self.min_early_stopping_rounds <= self.early_stopping_rounds:
            raise ValueError(
                f"min_early_stopping_rounds must be from 1 to early_stopping_rounds "
                f"({self.early_stopping_rounds}), got {self.min_early_stopping_rounds}"
            )
        unknown = sorted(set(self.candidates) - set(CANDIDATES))
        if unknown or not self.candidates:
            raise ValueError(
                f"candidates must be some of {', '.join(CANDIDATES)}, got "
                f"{', '.join(self.candidates) or 'none'}"
            )

    def patience(self, best_iteration: int) -> int:
        """The rounds a head goes on without a better validation loss once its best so
        far is at round ``best_iteration`` (counted from 1): a quarter of them by
        default, from 10 to 50. A validation curve that turned after 40 rounds is
        trusted after 10 more; one that took 400 gets the full 50."""
        share = math.ceil(self.early_stopping_share * best_iteration)
        return min(self.early_stopping_rounds, max(self.min_early_stopping_rounds, share))

    @property
    def label_days(self) -> int:
        """The length of the label window (the horizon, or the shorter window learnt)."""
        return self.label_horizon_days or self.horizon_days

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


@dataclass(frozen=True)
class Fold:
    """One rolling-origin fold: fit on ``training_cutoffs``, whose label windows end at or
    before ``validation_cutoff``, and judge on ``validation_cutoff``."""

    validation_cutoff: str
    training_cutoffs: tuple[str, ...]


def rolling_origin_folds(
    cutoffs: Sequence[str], *, label_days: int, folds: int
) -> tuple[Fold, ...]:
    """The latest ``folds`` cutoffs that have an earlier cutoff whose ``label_days``-day
    label window ([c, c + label_days)) ends by them, each with every such cutoff, oldest
    fold first."""
    dates = sorted(dt.date.fromisoformat(str(cutoff)) for cutoff in cutoffs)
    window = dt.timedelta(days=label_days)
    found = []
    for validation in dates:
        training = tuple(c.isoformat() for c in dates if c + window <= validation)
        if training:
            found.append(Fold(validation.isoformat(), training))
    return tuple(found[-folds:])


@dataclass(frozen=True)
class TimeSplit:
    """``training_examples`` as matrices, rows in (cutoff_date, user_id) order, and the
    rolling-origin folds over its cutoffs.

    ``examples`` holds the few other columns the baselines and the BTYD features read,
    row for row. ``btyd`` is ``btyd_features.NAMES`` at every row, each cutoff with its
    own fit (None where no candidate reads them)."""

    features: np.ndarray
    cutoff_index: np.ndarray
    purchased: np.ndarray
    spend: np.ndarray
    cutoffs: tuple[str, ...]
    folds: tuple[Fold, ...]
    examples: pa.Table
    schema: FeatureSchema
    btyd: np.ndarray | None = None

    @property
    def feature_names(self) -> list[str]:
        return self.schema.names

    @property
    def monotone_constraints(self) -> list[int]:
        return self.schema.monotone_constraints

    def fold_rows(self, fold: Fold, *, validation: bool, at_most: int | None = None) -> slice:
        """A fold's training rows (every cutoff up to its last training cutoff, every
        k-th of them where there are more than ``at_most``) or validation rows: one run
        each, cutoffs being in order."""
        if validation:
            at = self.cutoffs.index(fold.validation_cutoff)
            return self._run(at, at + 1)
        run = self._run(0, self.cutoffs.index(fold.training_cutoffs[-1]) + 1)
        rows = run.stop - run.start
        if at_most is None or rows <= at_most:
            return run
        return slice(run.start, run.stop, -(-rows // at_most))

    def examples_rows(self, rows: slice) -> pa.Table:
        """``examples`` at some rows (a run, or every k-th row of one)."""
        if rows.step in (None, 1):
            return self.examples.slice(rows.start, rows.stop - rows.start)
        return self.examples.take(pa.array(np.arange(rows.start, rows.stop, rows.step)))

    def _run(self, first: int, stop: int) -> slice:
        positions = np.searchsorted(self.cutoff_index, [first, stop])
        return slice(int(positions[0]), int(positions[1]))

    @property
    def latest(self) -> Fold:
        return self.folds[-1]

    @property
    def is_validation(self) -> np.ndarray:
        """The latest fold's validation rows."""
        mask = np.zeros(len(self.purchased), dtype=bool)
        mask[self.fold_rows(self.latest, validation=True)] = True
        return mask

    @property
    def training(self) -> pa.Table:
        """The latest fold's training rows of ``examples``."""
        return self.examples_rows(self.fold_rows(self.latest, validation=False))

    @property
    def validation(self) -> pa.Table:
        rows = self.fold_rows(self.latest, validation=True)
        return self.examples.slice(rows.start, rows.stop - rows.start)

    def rows(
        self, head: str, *, validation: bool, fold: Fold | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Features and label of a plain head's rows on one side of a fold (the latest
        by default): a view of the features, except for the spend-given-purchase head's
        buyers."""
        run = self.fold_rows(fold or self.latest, validation=validation)
        features, purchased, spend = self.features[run], self.purchased[run], self.spend[run]
        if head == "spend_given_purchase":
            buyers = purchased > 0
            return features[buyers], spend[buyers]
        return features, purchased


@dataclass(frozen=True)
class Heads:
    """Two boosters and how they combine (``HURDLE`` or ``DIRECT``)."""

    purchase: lgb.Booster
    spend_given_purchase: lgb.Booster
    combination: str = HURDLE

    def predict(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(purchase probability, expected spend: P x E[spend | purchase] for the hurdle,
        the spend head's prediction for the direct combination)."""
        probability = cast(np.ndarray, self.purchase.predict(features))
        spend = cast(np.ndarray, self.spend_given_purchase.predict(features))
        return probability, probability * spend if self.combination == HURDLE else spend

    def booster(self, head: str) -> lgb.Booster:
        return self.purchase if head == "purchase" else self.spend_given_purchase

    @property
    def head_names(self) -> tuple[str, str]:
        """What the two heads model, as the importance table names them."""
        return ("purchase", "spend_given_purchase" if self.combination == HURDLE else "spend")


@dataclass(frozen=True)
class Evaluation:
    """One metric of one method: on one fold's validation cutoff, or the mean over
    the folds (``validation_cutoff`` None)."""

    method: str
    metric: str
    value: float
    validation_cutoff: str | None = None


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
    """What the folds found and the method that scores, refitted on every cutoff.

    ``method`` is the candidate or baseline that scores. Trees (a candidate,
    ``lightgbm_rfm``) come as ``heads`` with their ``schema`` (derived BTYD features
    not yet fitted to a scoring cutoff); ``rfm_decay`` as its fit; ``bg_nbd_gamma_gamma``
    needs no training rows (it is fitted on the scoring cutoff's histories). The
    evaluations are the means over the folds; ``fold_evaluations`` each fold's;
    calibration and gain curves are the latest fold's. ``validation_features`` are the
    latest fold's validation rows as the scoring trees read them.
    """

    method: str
    heads: Heads | None
    schema: FeatureSchema | None
    rfm_decay: baselines.RfmDecay | None
    params: dict[str, dict[str, object]]
    best_iterations: dict[str, int]
    evaluations: tuple[Evaluation, ...]
    fold_evaluations: tuple[Evaluation, ...]
    calibration: tuple[CalibrationRow, ...]
    gain_curves: dict[str, list[float]]
    baseline_params: dict[str, dict[str, float]]
    status: str
    status_reasons: tuple[str, ...]
    folds: tuple[Fold, ...]
    candidate_scores: dict[str, float]
    best_candidate: str
    training_cutoffs: tuple[str, ...]
    validation_cutoff: str
    training_rows: int
    validation_rows: int
    validation_features: np.ndarray | None

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
    """No cutoff's labels end by a later cutoff: no fold to choose or train a model on."""


def _positioned_batches(
    examples: duckdb.DuckDBPyRelation, columns: Sequence[str]
) -> pa.RecordBatchReader:
    """A stream of the ``columns`` of ``examples``, each row with its
    ``example_position``: its place in (cutoff_date, user_id) order.

    Only the two keys are sorted (DuckDB, a window); the wide rows stream past a hash
    join on them in whatever order the scan gives, so no sorted copy of the table is
    made, by DuckDB or here."""
    selected = ", ".join(f"_examples.{quote_identifier(name)}" for name in columns)
    positioned = relation_query(
        examples,
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


def _btyd_columns(examples: pa.Table, cutoff_index: np.ndarray, *, label_days: int) -> np.ndarray:
    """``btyd_features.NAMES`` at every row, each cutoff's rows with a fit of their own."""
    columns = np.empty((examples.num_rows, len(btyd_features.NAMES)))
    for position in np.unique(cutoff_index):
        start, stop = np.searchsorted(cutoff_index, [position, position + 1])
        rows = examples.slice(int(start), int(stop - start))
        fitted = btyd_features.fit(rows, window_days=label_days)
        columns[start:stop] = fitted.columns(rows)
    return columns


def time_split(
    examples: Examples, *, schema: FeatureSchema, settings: TrainingSettings
) -> TimeSplit:
    """Check ``training_examples`` and lay out its rolling-origin folds.

    ``examples`` is the warehouse table as a DuckDB relation (read in batches) or an
    Arrow table. The warehouse returns rows in no fixed order (parallel scans and
    joins); training, the baselines and every tie-break see them in one order,
    (cutoff_date, user_id), so that the same data gives the same model. Each batch's
    features go straight to their rows of the matrix; of the other columns only the
    few the folds, the baselines and the BTYD features read are read, in that order."""
    if isinstance(examples, pa.Table):
        examples = arrow_relation(examples)
    names = examples.columns
    labels = (settings.purchase_label, settings.spend_label, settings.baseline_column)
    for column in (*_KEYS, *labels):
        if column not in names:
            raise KeyError(f"training_examples has no column {column!r}")
    missing = [name for name in schema.names if name not in names]
    if missing:
        raise KeyError(f"feature columns missing from training_examples: {missing}")
    wanted = ("cutoff_date", *labels, *baselines.COLUMNS, *btyd_features.INPUT_COLUMNS)
    kept = [name for name in dict.fromkeys(wanted) if name in names]
    # The narrow columns come first, in one sorted read (a column kept from a streamed
    # batch would keep the whole batch alive: DuckDB hands each over as one allocation).
    selected = ", ".join(map(quote_identifier, kept))
    ordered = f"select {selected} from _examples order by cutoff_date, user_id"
    kept_table = relation_query(examples, "_examples", ordered).to_arrow_table()
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
    cutoff_column = pc.cast(kept_table.column("cutoff_date"), pa.string())
    cutoffs = tuple(sorted(pc.unique(cutoff_column).to_pylist()))
    cutoff_index = np.searchsorted(
        np.asarray(cutoffs), cutoff_column.to_numpy(zero_copy_only=False)
    )
    label_days = settings.label_days
    folds = rolling_origin_folds(cutoffs, label_days=label_days, folds=settings.validation_folds)
    if not folds:
        raise ShortHistoryError(
            f"training needs at least 2 cutoffs with complete {label_days}-day labels, the "
            f"labels of one ending by the other, for a time split; found {len(cutoffs)} "
            f"({', '.join(cutoffs) or 'none'}): use more history, a shorter horizon_days, "
            "or a smaller cutoff_spacing_days"
        )
    purchased = pc.cast(kept_table.column(settings.purchase_label), pa.float64()).to_numpy()
    split = TimeSplit(
        features=features,
        cutoff_index=cutoff_index,
        purchased=purchased,
        spend=pc.cast(kept_table.column(settings.spend_label), pa.float64()).to_numpy(),
        cutoffs=cutoffs,
        folds=folds,
        examples=kept_table,
        schema=schema,
    )
    for fold in folds:
        for side in ("training", "validation"):
            run = split.fold_rows(fold, validation=side == "validation")
            buyers = int(np.count_nonzero(purchased[run]))
            if not 0 < buyers < run.stop - run.start:
                raise ValueError(
                    f"the {side} cutoffs of the fold validated on {fold.validation_cutoff} "
                    f"need both buyers and non-buyers within {label_days} days; {buyers} of "
                    f"{run.stop - run.start} rows bought: check that purchase events map to "
                    "'purchase' in seeds/event_types.csv and carry an amount or a price"
                )
    if LIGHTGBM_HYBRID in settings.candidates:
        btyd = _btyd_columns(kept_table, cutoff_index, label_days=label_days)
        split = TimeSplit(**{**split.__dict__, "btyd": btyd})
    return split


# --------------------------------------------------------------------------------------
# Heads
# --------------------------------------------------------------------------------------

# The heads a candidate fits: the purchase head, and its spend head.
_SPEND_HEAD = {HURDLE: "spend_given_purchase", DIRECT: "spend"}


def head_params(
    head: str, *, split: TimeSplit, settings: TrainingSettings, extra_features: int = 0
) -> dict[str, Any]:
    """LightGBM parameters of one head: ``purchase`` (binary), ``spend_given_purchase``
    or ``spend`` (tweedie; both take the spend-given-purchase knobs). Derived features
    carry no monotone constraint.

    ``monotone_constraints`` is passed only where some feature has one: given at all,
    even all zeros, it sends LightGBM down its constrained split search, which
    constrains nothing then and made a round of the small bench's heads about a third
    slower (bench/README.md). The trees differ only where two splits tie (mostly which
    way a missing value goes at a node whose rows had none)."""
    knobs = settings.head("purchase" if head == "purchase" else "spend_given_purchase")
    params: dict[str, object] = {
        "objective": "binary" if head == "purchase" else "tweedie",
        "learning_rate": knobs.learning_rate,
        "num_leaves": knobs.num_leaves or num_leaves_for(len(split.purchased)),
        "min_data_in_leaf": knobs.min_data_in_leaf,
        "feature_fraction": knobs.feature_fraction,
        "lambda_l2": knobs.lambda_l2,
        "seed": settings.seed,
        "deterministic": True,
        "force_row_wise": True,
        "num_threads": settings.num_threads,
        "verbosity": -1,
    }
    constraints = [*split.monotone_constraints, *[0] * extra_features]
    if any(constraints):
        params["monotone_constraints"] = constraints
    if head != "purchase":
        params["tweedie_variance_power"] = settings.tweedie_variance_power
    return params


def _feature_names(split: TimeSplit, *, hybrid: bool) -> list[str]:
    return [*split.feature_names, *(btyd_features.NAMES if hybrid else ())]


def _matrix(split: TimeSplit, rows: slice, *, hybrid: bool) -> np.ndarray:
    """The rows a candidate reads: a view of the features, or (the hybrid) a copy with
    the BTYD columns beside them."""
    if not hybrid:
        return split.features[rows]
    assert split.btyd is not None
    return np.hstack([split.features[rows], split.btyd[rows]])


def _head_rows(
    split: TimeSplit, head: str, rows: slice, *, hybrid: bool
) -> tuple[np.ndarray, np.ndarray]:
    features = _matrix(split, rows, hybrid=hybrid)
    if head == "purchase":
        return features, split.purchased[rows]
    if head == "spend":
        return features, split.spend[rows]
    buyers = split.purchased[rows] > 0
    return features[buyers], split.spend[rows][buyers]


def _fit_early_stopped(
    head: str,
    *,
    split: TimeSplit,
    fold: Fold,
    settings: TrainingSettings,
    hybrid: bool,
    at_most: int | None = None,
) -> tuple[lgb.Booster, dict[str, Any]]:
    extra = len(btyd_features.NAMES) if hybrid else 0
    params = head_params(head, split=split, settings=settings, extra_features=extra)
    names = _feature_names(split, hybrid=hybrid)
    train_x, train_y = _head_rows(
        split, head, split.fold_rows(fold, validation=False, at_most=at_most), hybrid=hybrid
    )
    valid_x, valid_y = _head_rows(
        split, head, split.fold_rows(fold, validation=True), hybrid=hybrid
    )
    train_set = lgb.Dataset(train_x, label=train_y, feature_name=names, free_raw_data=hybrid)
    valid_set = lgb.Dataset(valid_x, label=valid_y, reference=train_set)
    booster = lgb.train(
        params,
        train_set,
        num_boost_round=settings.max_boost_rounds,
        valid_sets=[valid_set],
        callbacks=[_StopEarly(settings.patience)],
    )
    return booster, params


class _StopEarly:
    """LightGBM's early stopping on one validation set and one metric, with a patience
    that depends on the best round so far (``TrainingSettings.patience``): with a fixed
    patience it stops where ``lgb.early_stopping`` does and sets the same best
    iteration (a test holds them to it)."""

    order = 30  # where lgb.early_stopping runs among the callbacks

    def __init__(self, patience: Callable[[int], int]) -> None:
        self.patience = patience
        self.best_iteration = 0
        self.best_score = math.nan
        self.best_results: list[Any] = []

    def __call__(self, env: lgb.callback.CallbackEnv) -> None:
        if env.iteration == env.begin_iteration:
            self.best_results = []
        results = env.evaluation_result_list
        if results is None:  # LightGBM gives it to callbacks where there is a validation set
            raise ValueError("early stopping needs a validation set")
        (result,) = results  # (set, metric, value, higher is better)
        value, higher_is_better = result[2], result[3]
        better = value > self.best_score if higher_is_better else value < self.best_score
        if not self.best_results or better:
            self.best_iteration, self.best_score = env.iteration, value
            self.best_results = results
        waited = env.iteration - self.best_iteration
        if waited >= self.patience(self.best_iteration + 1) or (
            env.iteration == env.end_iteration - 1
        ):
            raise lgb.callback.EarlyStopException(self.best_iteration, self.best_results)


def fit_head(
    head: str, *, split: TimeSplit, settings: TrainingSettings, fold: Fold | None = None
) -> tuple[lgb.Booster, dict[str, Any]]:
    """Fit one head on the features of a fold's training cutoffs (the latest fold by
    default) with early stopping on its validation cutoff."""
    return _fit_early_stopped(
        head, split=split, fold=fold or split.latest, settings=settings, hybrid=False
    )


def _refit(
    head: str, params: dict[str, Any], *, split: TimeSplit, rounds: int, hybrid: bool = False
) -> lgb.Booster:
    features, label = _head_rows(split, head, slice(0, len(split.purchased)), hybrid=hybrid)
    dataset = lgb.Dataset(features, label=label, feature_name=_feature_names(split, hybrid=hybrid))
    return lgb.train(params, dataset, num_boost_round=max(rounds, 1))


def _best_iteration(booster: lgb.Booster) -> int:
    return int(booster.best_iteration or booster.current_iteration())


@dataclass(frozen=True)
class _FoldFit:
    """A candidate's heads fitted on one fold's training rows."""

    purchase: lgb.Booster
    spend: lgb.Booster
    combination: str
    params: dict[str, dict[str, Any]]
    best_iterations: dict[str, int]

    def predict(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        probability = cast(
            np.ndarray,
            self.purchase.predict(features, num_iteration=self.best_iterations["purchase"]),
        )
        spend = cast(
            np.ndarray,
            self.spend.predict(
                features, num_iteration=self.best_iterations["spend_given_purchase"]
            ),
        )
        return probability, probability * spend if self.combination == HURDLE else spend


def _fit_fold(
    split: TimeSplit,
    fold: Fold,
    *,
    settings: TrainingSettings,
    candidates: Sequence[str] | None = None,
    at_most: int | None = None,
) -> dict[str, _FoldFit]:
    """Candidates (every one by default) fitted on a fold's training rows, at most
    ``at_most`` of them (the hurdle and the tweedie share the purchase head: the same
    rows, features and parameters give the same booster)."""
    fitted: dict[tuple[str, bool], tuple[lgb.Booster, dict[str, Any]]] = {}

    def head(name: str, hybrid: bool) -> tuple[lgb.Booster, dict[str, Any]]:
        if (name, hybrid) not in fitted:
            fitted[(name, hybrid)] = _fit_early_stopped(
                name, split=split, fold=fold, settings=settings, hybrid=hybrid, at_most=at_most
            )
        return fitted[(name, hybrid)]

    found = {}
    for candidate in candidates or settings.candidates:
        hybrid = candidate == LIGHTGBM_HYBRID
        combination = COMBINATION[candidate]
        purchase, purchase_params = head("purchase", hybrid)
        spend, spend_params = head(_SPEND_HEAD[combination], hybrid)
        found[candidate] = _FoldFit(
            purchase,
            spend,
            combination,
            {"purchase": purchase_params, "spend_given_purchase": spend_params},
            {"purchase": _best_iteration(purchase), "spend_given_purchase": _best_iteration(spend)},
        )
    return found


# --------------------------------------------------------------------------------------
# Judging
# --------------------------------------------------------------------------------------


def evaluate(
    predictions: tuple[baselines.BaselinePrediction, ...],
    *,
    purchased: np.ndarray,
    spend: np.ndarray,
    validation_cutoff: str | None = None,
) -> tuple[Evaluation, ...]:
    """Every metric of every method on the same validation rows."""
    rows: list[Evaluation] = []
    for prediction in predictions:
        scores = {"auc": metrics.roc_auc(purchased, prediction.purchase_score)}
        if prediction.is_probability:
            scores["log_loss"] = metrics.log_loss(purchased, prediction.purchase_score)
        scores.update(metrics.spend_metrics(spend, prediction.spend))
        rows.extend(
            Evaluation(prediction.method, name, value, validation_cutoff)
            for name, value in scores.items()
        )
    return tuple(rows)


def mean_over_folds(fold_evaluations: Sequence[Evaluation]) -> tuple[Evaluation, ...]:
    """Each (method, metric)'s mean over the folds, in first-seen order (NaN where a
    fold's value is)."""
    values: dict[tuple[str, str], list[float]] = {}
    for evaluation in fold_evaluations:
        values.setdefault((evaluation.method, evaluation.metric), []).append(evaluation.value)
    return tuple(
        Evaluation(method, metric, float(np.mean(found)))
        for (method, metric), found in values.items()
    )


def selection_score(evaluations: Sequence[Evaluation], method: str) -> float:
    """(AUC + normalized Gini) / 2 of a method in ``evaluations`` (the means over the
    folds); NaN where either is missing or undefined."""
    values = {e.metric: e.value for e in evaluations if e.method == method}
    return (values.get("auc", math.nan) + values.get("normalized_gini", math.nan)) / 2


def choose(evaluations: Sequence[Evaluation], methods: Sequence[str]) -> str:
    """The method with the highest ``selection_score``; the first listed on a tie (a
    NaN score never wins while any other is defined)."""
    scores = [(selection_score(evaluations, method), -k) for k, method in enumerate(methods)]
    defined = [(score, k) for score, k in scores if not math.isnan(score)]
    if not defined:
        return methods[0]
    return methods[-max(defined)[1]]


def judge(evaluations: tuple[Evaluation, ...]) -> tuple[str, tuple[str, ...]]:
    """``accepted`` if the model (``lightgbm``) beats every baseline on every gating
    metric, else ``unproven`` with one reason per loss (a NaN never beats anything).
    Candidates other than the model are not baselines."""
    values = {(e.method, e.metric): e.value for e in evaluations}
    methods = sorted({e.method for e in evaluations} - {MODEL_METHOD, *CANDIDATES})
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


def _as_model(evaluations: Sequence[Evaluation], candidate: str) -> tuple[Evaluation, ...]:
    """The candidate's rows again under ``MODEL_METHOD``, first."""
    model = tuple(
        Evaluation(MODEL_METHOD, e.metric, e.value, e.validation_cutoff)
        for e in evaluations
        if e.method == candidate
    )
    return model + tuple(evaluations)


# --------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------


def _fold_predictions(
    split: TimeSplit, fold: Fold, *, settings: TrainingSettings
) -> tuple[dict[str, _FoldFit], tuple[baselines.BaselinePrediction, ...]]:
    """Every candidate's and baseline's predictions of a fold's validation rows, each
    fitted on the same training rows (at most ``max_fold_training_rows``)."""
    at_most = settings.max_fold_training_rows
    training = split.fold_rows(fold, validation=False, at_most=at_most)
    validation = split.fold_rows(fold, validation=True)
    examples = {"training": split.examples_rows(training),
                "validation": split.examples_rows(validation)}  # fmt: skip
    fits = _fit_fold(split, fold, settings=settings, at_most=at_most)
    candidates = tuple(
        baselines.BaselinePrediction(
            candidate,
            *_swap(fit.predict(_matrix(split, validation, hybrid=candidate == LIGHTGBM_HYBRID))),
        )
        for candidate, fit in fits.items()
    )
    baseline_predictions = baselines.fit_and_predict(
        examples["training"],
        examples["validation"],
        horizon_days=settings.label_days,
        purchase_label=settings.purchase_label,
        spend_label=settings.spend_label,
        last_period_column=settings.baseline_column,
        seed=settings.seed,
        num_threads=settings.num_threads,
    )
    return fits, candidates + baseline_predictions


def _swap(
    predicted: tuple[np.ndarray, np.ndarray],
) -> tuple[np.ndarray, bool, np.ndarray, dict[str, Any]]:
    probability, spend = predicted
    return probability, True, spend, {}


def _refit_winner(
    method: str, split: TimeSplit, latest: _FoldFit | None, *, settings: TrainingSettings
) -> tuple[
    Heads | None, FeatureSchema | None, baselines.RfmDecay | None, dict[str, Any], dict[str, Any]
]:
    """The scoring method fitted on every cutoff: (heads, schema, rfm_decay, params,
    best iterations)."""
    if method in CANDIDATES:
        assert latest is not None
        hybrid = method == LIGHTGBM_HYBRID
        spend_head = _SPEND_HEAD[latest.combination]
        heads = Heads(
            _refit("purchase", latest.params["purchase"], split=split,
                   rounds=latest.best_iterations["purchase"], hybrid=hybrid),
            _refit(spend_head, latest.params["spend_given_purchase"], split=split,
                   rounds=latest.best_iterations["spend_given_purchase"], hybrid=hybrid),
            latest.combination,
        )  # fmt: skip
        schema = split.schema.with_btyd(None) if hybrid else split.schema
        return heads, schema, None, latest.params, latest.best_iterations
    if method == baselines.LIGHTGBM_RFM:
        purchase, spend = baselines.fit_lightgbm_rfm(
            baselines.lightgbm_rfm_matrix(split.examples), split.purchased, split.spend,
            seed=settings.seed, num_threads=settings.num_threads,
        )  # fmt: skip
        schema = FeatureSchema(
            tuple(FeatureSpec(name, text) for name, text in baselines.LIGHTGBM_RFM_COLUMNS)
        )
        params = {
            "purchase": baselines.lightgbm_rfm_params(
                "binary", seed=settings.seed, num_threads=settings.num_threads
            ),
            "spend_given_purchase": baselines.lightgbm_rfm_params(
                "tweedie", seed=settings.seed, num_threads=settings.num_threads
            ),
        }
        rounds = {head: baselines.LIGHTGBM_RFM_ROUNDS for head in HEADS}
        return Heads(purchase, spend, DIRECT), schema, None, params, rounds
    if method == baselines.RFM_DECAY:
        fitted = baselines.fit_rfm_decay(
            split.examples,
            purchased=split.purchased,
            spend=split.spend,
            horizon=float(settings.label_days),
        )
        return None, None, fitted, {}, {}
    return None, None, None, {}, {}


def train_models(split: TimeSplit, *, settings: TrainingSettings) -> TrainingResult:
    """Judge every candidate and baseline on every fold, choose, and refit the method
    that scores on every cutoff.

    One fold after another; in each, every candidate's heads one after another, each
    with ``settings.num_threads`` LightGBM threads, then the baselines."""
    fold_evaluations: list[Evaluation] = []
    latest_fits: dict[str, _FoldFit] = {}
    latest_predictions: tuple[baselines.BaselinePrediction, ...] = ()
    for fold in split.folds:
        fits, predictions = _fold_predictions(split, fold, settings=settings)
        rows = split.fold_rows(fold, validation=True)
        fold_evaluations.extend(
            evaluate(
                predictions,
                purchased=split.purchased[rows].astype(bool),
                spend=split.spend[rows],
                validation_cutoff=fold.validation_cutoff,
            )
        )
        latest_fits, latest_predictions = fits, predictions
    means = mean_over_folds(fold_evaluations)
    candidates = tuple(settings.candidates)
    best_candidate = choose(means, candidates)
    method = choose(means, candidates + baselines.SCORING_METHODS)
    evaluations = _as_model(means, best_candidate)
    status, reasons = judge(evaluations)
    if method not in candidates:
        status = BASELINE
        reasons = (
            f"{method} scores: its mean (AUC + normalized Gini) / 2 over "
            f"{len(split.folds)} fold(s), {selection_score(means, method):.4f}, beats the "
            f"best candidate's ({best_candidate}) "
            f"{selection_score(means, best_candidate):.4f}",
            *reasons,
        )
    latest = split.latest
    sampled = split.fold_rows(latest, validation=False, at_most=settings.max_fold_training_rows)
    if method in candidates and sampled.step not in (None, 1):
        # the rounds of the model that scores come from all the latest fold's rows
        latest_fits = _fit_fold(split, latest, settings=settings, candidates=(method,))
    heads, schema, rfm_decay, params, best_iterations = _refit_winner(
        method, split, latest_fits.get(method), settings=settings
    )
    validation = split.fold_rows(latest, validation=True)
    training = split.fold_rows(latest, validation=False)
    spend = split.spend[validation]
    model_prediction = next(p for p in latest_predictions if p.method == best_candidate)
    charted = (
        baselines.BaselinePrediction(
            MODEL_METHOD,
            model_prediction.purchase_score,
            True,
            model_prediction.spend,
            {},
        ),
        *(p for p in latest_predictions if p.method in baselines.METHODS),
    )
    if method in CANDIDATES:
        validation_features = _matrix(split, validation, hybrid=method == LIGHTGBM_HYBRID)
    elif method == baselines.LIGHTGBM_RFM:
        validation_features = baselines.lightgbm_rfm_matrix(
            split.examples.slice(validation.start, validation.stop - validation.start)
        )
    else:
        validation_features = None
    return TrainingResult(
        method=method,
        heads=heads,
        schema=schema,
        rfm_decay=rfm_decay,
        params=params,
        best_iterations=best_iterations,
        evaluations=evaluations,
        fold_evaluations=_as_model(fold_evaluations, best_candidate),
        calibration=tuple(
            CalibrationRow(prediction.method, *row)
            for prediction in charted
            for row in metrics.decile_calibration(spend, prediction.spend)
        ),
        gain_curves={
            prediction.method: metrics.gain_curve(
                spend, prediction.spend, points=GAIN_CURVE_POINTS
            ).tolist()
            for prediction in charted
        },
        baseline_params={
            p.method: p.params for p in latest_predictions if p.method in baselines.METHODS
        },
        status=status,
        status_reasons=reasons,
        folds=split.folds,
        candidate_scores={
            m: selection_score(means, m) for m in candidates + baselines.SCORING_METHODS
        },
        best_candidate=best_candidate,
        training_cutoffs=split.cutoffs,
        validation_cutoff=latest.validation_cutoff,
        training_rows=training.stop - training.start,
        validation_rows=validation.stop - validation.start,
        validation_features=validation_features,
    )
