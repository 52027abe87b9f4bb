"""A score for every user when the history holds no complete labels at the horizon.

Training needs at least two cutoffs whose labels, ``horizon_days`` long, end before
``as_of``. Where the history is shorter, nothing can be learned from labels at that
horizon, but buy-till-you-die needs none: BG/NBD x Gamma-Gamma is fitted by maximum
likelihood on every user's whole purchase history before ``as_of`` (the classic
customer-level calibration: Fader, Hardie & Lee 2005) and predicts the expected spend
and P(any purchase) over any horizon in closed form. Its inputs are ``user_features``
columns (the same ones ``training_examples`` derives the ``btyd_*`` baseline inputs
from). Users who never bought are outside the model and get 0: with no labels there is
nothing to learn their first purchase from.

The fitted parameters are registered as an artifact of their own (``card.json`` with
``method: bg_nbd_gamma_gamma`` and status ``fallback``); scoring computes the scores from
it in Python, and the build says so.

The same artifacts carry a baseline that beat every candidate model on the rolling-origin
folds (status ``baseline``): BG/NBD x Gamma-Gamma, fitted as above, or ``rfm_decay``,
fitted on every training cutoff (``baselines.RfmDecay``). ``rfm_decay`` ranks users;
the level of its spend is BTYD's: at scoring its spend over the label window is
multiplied by ``spend_level``, which makes today's buyers' total the BG/NBD x
Gamma-Gamma total over the horizon (its own scale, fitted on the training cutoffs'
labels, does not carry across a change in tenure: on CDNOW, whose customers all came
in one quarter, it left the total 84% short). Its purchase probability is extended to
the horizon like a model's (``extension``) where it learnt a shorter window. Their cards
carry every candidate's and baseline's figures per fold, as a model's do.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from purchasing_power import baselines

FALLBACK = "fallback"
# the status where a baseline scores because it beat every candidate, not for want of labels
BASELINE = "baseline"
METHOD = baselines.BTYD
# the methods these artifacts score in Python
PYTHON_METHODS = (baselines.BTYD, baselines.RFM_DECAY)
EXECUTION_PROVIDER = "python"
INPUT_COLUMNS = (
    "count_purchase_days_lifetime",
    "days_since_first_purchase",
    "days_since_last_purchase",
    "sum_purchase_amount_lifetime",
    "sum_refund_amount_lifetime",
)


@dataclass(frozen=True)
class BtydInputs:
    """Per user: repeat purchase days, days from the first to the last purchase day, days
    since the first, net spend per purchase day; ``bought`` where there was a purchase."""

    frequency: np.ndarray
    recency: np.ndarray
    age: np.ndarray
    monetary_value: np.ndarray
    bought: np.ndarray


def _numbers(table: pa.Table | pa.RecordBatch, name: str) -> np.ndarray:
    if name not in table.schema.names:
        raise KeyError(f"user_features has no column {name!r} (an input of {METHOD})")
    result: np.ndarray = pc.cast(table.column(name), pa.float64()).to_numpy(zero_copy_only=False)
    return result


def btyd_inputs(table: pa.Table | pa.RecordBatch) -> BtydInputs:
    """The BTYD inputs at the scoring cutoff, as ``training_examples`` derives them."""
    days, first, last, bought_amount, refunded = (_numbers(table, n) for n in INPUT_COLUMNS)
    bought = np.nan_to_num(days) > 0
    net = np.nan_to_num(bought_amount) - np.nan_to_num(refunded)
    with np.errstate(invalid="ignore", divide="ignore"):
        return BtydInputs(
            frequency=np.where(bought, days - 1, 0.0),
            recency=np.where(bought, first - last, 0.0),
            age=np.where(bought, first, 0.0),
            monetary_value=np.where(bought, net / np.maximum(days, 1), 0.0),
            bought=bought,
        )


@dataclass(frozen=True)
class BtydScorer:
    bg_nbd: baselines.BgNbd
    gamma_gamma: baselines.GammaGamma
    horizon_days: int
    users: int
    buyers: int

    def params(self) -> dict[str, float]:
        return {
            "bg_nbd_r": self.bg_nbd.r,
            "bg_nbd_alpha": self.bg_nbd.alpha,
            "bg_nbd_a": self.bg_nbd.a,
            "bg_nbd_b": self.bg_nbd.b,
            "gamma_gamma_p": self.gamma_gamma.p,
            "gamma_gamma_q": self.gamma_gamma.q,
            "gamma_gamma_gamma": self.gamma_gamma.gamma,
        }

    def predict(self, table: pa.Table | pa.RecordBatch) -> tuple[np.ndarray, np.ndarray]:
        """(expected net spend, P(any purchase)) over the horizon, per row."""
        inputs = btyd_inputs(table)
        known = inputs.bought
        spend = np.zeros(len(known))
        probability = np.zeros(len(known))
        if known.any():
            args = (self.bg_nbd, inputs.frequency[known], inputs.recency[known], inputs.age[known])
            horizon = float(self.horizon_days)
            probability[known] = baselines.probability_of_purchase(*args, horizon=horizon)
            per_purchase = baselines.expected_purchase_value(
                self.gamma_gamma,
                inputs.frequency[known] + 1,
                np.maximum(inputs.monetary_value[known], 0.0),
            )
            spend[known] = baselines.expected_purchases(*args, horizon=horizon) * per_purchase
        return np.maximum(spend, 0.0), np.clip(probability, 0.0, 1.0)


def fit(scoring_features: pa.Table, *, horizon_days: int) -> BtydScorer:
    """BG/NBD x Gamma-Gamma on every user's history before the scoring cutoff."""
    inputs = btyd_inputs(scoring_features)
    bought = inputs.bought
    if int(bought.sum()) < 2:
        raise ValueError(
            f"{METHOD} needs purchases from at least 2 users before as_of, found "
            f"{int(bought.sum())}: check that purchase events map to 'purchase' in "
            "seeds/event_types.csv"
        )
    bg_nbd = baselines.fit_bg_nbd(
        inputs.frequency[bought], inputs.recency[bought], inputs.age[bought]
    )
    valued = bought & (inputs.monetary_value > 0)
    gamma_gamma = baselines.fit_gamma_gamma(
        inputs.frequency[valued] + 1, inputs.monetary_value[valued]
    )
    return BtydScorer(
        bg_nbd, gamma_gamma, horizon_days, users=len(bought), buyers=int(bought.sum())
    )


def card(
    scorer: BtydScorer,
    *,
    as_of: str,
    reason: str,
    reference_quantiles: np.ndarray,
    scores: dict[str, object],
    status: str = FALLBACK,
    judged: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The fallback's model card: what scored, why, and its fitted parameters (and, where
    it scores as the best baseline, ``judged``: what the folds found)."""
    params = scorer.params()
    fitted = {"as_of": as_of, "horizon_days": scorer.horizon_days, **params}
    digest = hashlib.sha256(json.dumps(fitted, sort_keys=True).encode()).hexdigest()[:12]
    return {
        "model_version": f"pp-{as_of.replace('-', '')}-btyd-{digest}",
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="microseconds"),
        "training_cutoffs": [],
        "validation_cutoff": None,
        "training_rows": scorer.users,
        "validation_rows": 0,
        "metrics": [],
        "decile_calibration": [],
        **(judged or {}),
        "status": status,
        "status_reasons": [reason],
        "method": METHOD,
        "form": (
            "BG/NBD x Gamma-Gamma fitted on every user's history before as_of: expected "
            "spend = E[purchase days in the horizon] x E[value of one]; users who never "
            "bought get 0"
        ),
        "as_of": as_of,
        "horizon_days": scorer.horizon_days,
        "features": [],
        "params": params,
        "fitted_users": scorer.users,
        "fitted_buyers": scorer.buyers,
        "feature_importance": [],
        "reference_spend_quantiles": [float(v) for v in reference_quantiles],
        "scores": scores,
    }


def rfm_decay_inputs(
    table: pa.Table | pa.RecordBatch,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(net spend, days since the first purchase, days since the last), NaN for users who
    never bought: rfm_decay's inputs, as ``training_examples`` derives them."""
    inputs = btyd_inputs(table)
    days = inputs.frequency + 1
    missing = np.where(inputs.bought, 1.0, np.nan)
    return (
        inputs.monetary_value * days * missing,
        inputs.age * missing,
        (inputs.age - inputs.recency) * missing,
    )


def rfm_decay_level(
    fitted: baselines.RfmDecay, scoring_features: pa.Table, *, horizon_days: int
) -> float:
    """The factor that makes the buyers' rfm_decay spend at the scoring cutoff total what
    BG/NBD x Gamma-Gamma, fitted on their histories, expects over the horizon."""
    spend, _ = fitted.predict(*rfm_decay_inputs(scoring_features))
    bought = btyd_inputs(scoring_features).bought
    expected, _ = fit(scoring_features, horizon_days=horizon_days).predict(scoring_features)
    total = float(np.maximum(spend[bought], 0.0).sum())
    return float(expected[bought].sum()) / total if total > 0 else 1.0


def rfm_decay_card(
    fitted: baselines.RfmDecay,
    *,
    as_of: str,
    horizon_days: int,
    spend_level: float,
    judged: dict[str, Any],
    reference_quantiles: np.ndarray,
    scores: dict[str, object],
    extension: dict[str, Any] | None,
) -> dict[str, Any]:
    """The card of ``rfm_decay`` scoring as the best baseline."""
    params = fitted.params()
    digest_of = {"as_of": as_of, "horizon_days": horizon_days, **params, "extension": extension}
    digest = hashlib.sha256(json.dumps(digest_of, sort_keys=True).encode()).hexdigest()[:12]
    return {
        "model_version": f"pp-{as_of.replace('-', '')}-rfmdecay-{digest}",
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="microseconds"),
        **judged,
        "status": BASELINE,
        "method": baselines.RFM_DECAY + ("_extended" if extension else ""),
        "form": (
            "rfm_decay fitted on every training cutoff: spend rate since the first purchase "
            "x window x 0.5 ^ (days since the last purchase / half-life), its level BTYD's "
            "(x spend_level); P(purchase) a logistic curve of log(1 + spend)"
        ),
        "as_of": as_of,
        "horizon_days": horizon_days,
        "features": [],
        "params": params,
        "spend_level": spend_level,
        **({"extension": extension} if extension else {}),
        "feature_importance": [],
        "reference_spend_quantiles": [float(v) for v in reference_quantiles],
        "scores": scores,
    }


def write_artifact(card_: dict[str, Any], *, artifacts_dir: Path) -> Path:
    path = artifacts_dir / card_["model_version"]
    path.mkdir(parents=True, exist_ok=True)
    (path / "card.json").write_text(json.dumps(card_, indent=2, sort_keys=True) + "\n")
    result: Path = path
    return result


def load(model_dir: Path) -> tuple[dict[str, Any], BtydScorer]:
    card_ = json.loads((model_dir / "card.json").read_text())
    p = card_["params"]
    scorer = BtydScorer(
        baselines.BgNbd(p["bg_nbd_r"], p["bg_nbd_alpha"], p["bg_nbd_a"], p["bg_nbd_b"]),
        baselines.GammaGamma(p["gamma_gamma_p"], p["gamma_gamma_q"], p["gamma_gamma_gamma"]),
        int(card_["horizon_days"]),
        users=int(card_["fitted_users"]),
        buyers=int(card_["fitted_buyers"]),
    )
    return card_, scorer


def _base_method(card_: dict[str, Any]) -> str:
    return str(card_.get("method", "")).removesuffix("_extended")


def is_fallback(model_dir: Path) -> bool:
    """Whether the registered version is scored in Python (BTYD or rfm_decay: no trees)."""
    card_ = json.loads((model_dir / "card.json").read_text())
    return _base_method(card_) in PYTHON_METHODS


def predictor(
    model_dir: Path,
) -> tuple[dict[str, Any], Callable[[pa.RecordBatch], tuple[Any, ...]]]:
    """A registered Python-scored version's card and its (spend, probability) of a batch."""
    card_ = json.loads((model_dir / "card.json").read_text())
    if _base_method(card_) == METHOD:
        _, scorer = load(model_dir)
        return card_, scorer.predict
    return card_, rfm_decay_predictor(card_)


def rfm_decay_predictor(card_: dict[str, Any]) -> Callable[[pa.RecordBatch], tuple[Any, ...]]:
    """(spend, probability) of a batch by the rfm_decay a card holds."""
    from purchasing_power.extension import Extension  # extension fits with this module

    fitted = baselines.RfmDecay(**card_["params"])
    level = float(card_["spend_level"])
    extended = Extension.from_card(card_.get("extension"))

    def predict(batch: pa.RecordBatch) -> tuple[np.ndarray, np.ndarray]:
        spend, probability = fitted.predict(*rfm_decay_inputs(batch))
        if extended:
            _, probability = extended.apply(spend, probability)
        return np.maximum(spend, 0.0) * level, probability

    return predict


def score_batches(
    batches: Iterable[pa.RecordBatch],
    *,
    model_dir: Path,
    schema: pa.Schema,
    power_index: Callable[[np.ndarray, np.ndarray], np.ndarray],
) -> Iterator[pa.RecordBatch]:
    """Scores of each ``user_features`` batch by the registered Python-scored version,
    in order."""
    card_, predict = predictor(model_dir)
    quantiles = np.asarray(card_["reference_spend_quantiles"], dtype=np.float64)
    method = _base_method(card_)
    for batch in batches:
        spend, probability = predict(batch)
        rows = batch.num_rows
        yield pa.RecordBatch.from_arrays(
            [
                batch.column(batch.schema.get_field_index("user_id")).cast(pa.string()),
                pa.array([card_["model_version"]] * rows, pa.string()),
                pa.array([card_["status"]] * rows, pa.string()),
                pa.array(spend, pa.float64()),
                pa.array(probability, pa.float64()),
                pa.array(power_index(spend, quantiles), pa.float64()),
                pa.array([EXECUTION_PROVIDER] * rows, pa.string()),
                pa.array([method] * rows, pa.string()),
            ],
            schema=schema,
        )


def summarize_scores(spend: np.ndarray, probability: np.ndarray) -> dict[str, object]:
    return {
        "users": len(spend),
        "mean_predicted_spend": float(np.mean(spend)) if len(spend) else 0.0,
        "mean_purchase_probability": float(np.mean(probability)) if len(spend) else 0.0,
    }
