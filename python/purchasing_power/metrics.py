"""Evaluation metrics on numpy arrays: pure functions, no I/O."""

from __future__ import annotations

import numpy as np


def _ranks(values: np.ndarray) -> np.ndarray:
    """Average ranks (1-based), ties sharing the mean of their positions."""
    order = np.argsort(values, kind="mergesort")
    sorted_values = values[order]
    boundaries = np.flatnonzero(np.diff(sorted_values)) + 1
    starts = np.concatenate(([0], boundaries))
    ends = np.concatenate((boundaries, [len(values)]))
    average = (starts + ends + 1) / 2.0
    ranks = np.empty(len(values), dtype=np.float64)
    ranks[order] = np.repeat(average, ends - starts)
    return ranks


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney U, ties counted half); NaN if one class only."""
    labels = np.asarray(labels, dtype=bool)
    positives = int(labels.sum())
    negatives = len(labels) - positives
    if positives == 0 or negatives == 0:
        return float("nan")
    ranks = _ranks(np.asarray(scores, dtype=np.float64))
    return float((ranks[labels].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def log_loss(labels: np.ndarray, probabilities: np.ndarray) -> float:
    p = np.clip(np.asarray(probabilities, dtype=np.float64), 1e-15, 1 - 1e-15)
    y = np.asarray(labels, dtype=np.float64)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def _gini(actual: np.ndarray, predicted: np.ndarray) -> float:
    # Sort by prediction, highest first; ties broken by the lowest actual first, so
    # that a constant prediction earns no credit for the order the rows came in.
    order = np.lexsort((actual, -predicted))
    cumulative = np.cumsum(actual[order]) / actual.sum()
    n = len(actual)
    return float(cumulative.sum() / n - (n + 1) / (2 * n))


def normalized_gini(actual: np.ndarray, predicted: np.ndarray) -> float:
    """Gini of ``predicted`` over the Gini of a perfect ordering (1 perfect, 0 random).

    For non-negative targets such as spend, following Wang, Liu & Miao (2019): how much
    of the total actual value the prediction's ranking concentrates at the top.
    """
    actual = np.asarray(actual, dtype=np.float64)
    predicted = np.asarray(predicted, dtype=np.float64)
    if len(actual) == 0 or actual.sum() <= 0:
        return float("nan")
    return _gini(actual, predicted) / _gini(actual, actual)


def spearman(actual: np.ndarray, predicted: np.ndarray) -> float:
    a = _ranks(np.asarray(actual, dtype=np.float64))
    p = _ranks(np.asarray(predicted, dtype=np.float64))
    if a.std() == 0 or p.std() == 0:
        return float("nan")
    return float(np.corrcoef(a, p)[0, 1])


def top_decile_capture(actual: np.ndarray, predicted: np.ndarray) -> float:
    """Share of total actual value held by the 10% of rows predicted highest."""
    actual = np.asarray(actual, dtype=np.float64)
    if actual.sum() <= 0:
        return float("nan")
    top = max(1, int(np.ceil(len(actual) * 0.1)))
    order = np.lexsort((actual, -np.asarray(predicted, dtype=np.float64)))
    return float(actual[order[:top]].sum() / actual.sum())


def rmse(actual: np.ndarray, predicted: np.ndarray) -> float:
    return float(np.sqrt(np.mean((np.asarray(actual) - np.asarray(predicted)) ** 2)))


def mae(actual: np.ndarray, predicted: np.ndarray) -> float:
    return float(np.mean(np.abs(np.asarray(actual) - np.asarray(predicted))))


def total_bias_percent(actual: np.ndarray, predicted: np.ndarray) -> float:
    """(sum predicted - sum actual) / sum actual, in percent."""
    total = float(np.sum(actual))
    if total == 0:
        return float("nan")
    return float((np.sum(predicted) - total) / total * 100)


def spend_metrics(actual: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    return {
        "normalized_gini": normalized_gini(actual, predicted),
        "spearman": spearman(actual, predicted),
        "top_decile_capture": top_decile_capture(actual, predicted),
        "rmse": rmse(actual, predicted),
        "mae": mae(actual, predicted),
        "total_bias_percent": total_bias_percent(actual, predicted),
    }


def probability_metrics(labels: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    """AUC for any score; log loss only where the score is a probability."""
    metrics = {"auc": roc_auc(labels, scores)}
    scores = np.asarray(scores, dtype=np.float64)
    if len(scores) and scores.min() >= 0 and scores.max() <= 1:
        metrics["log_loss"] = log_loss(labels, scores)
    return metrics


def decile_calibration(
    actual: np.ndarray, predicted: np.ndarray, *, groups: int = 10
) -> list[tuple[int, int, float, float]]:
    """Mean predicted and mean actual value per group of rows ranked by prediction.

    Rows are ranked by prediction, lowest first (ties keep row order), and cut into
    ``groups`` groups as equal in size as possible; group 1 is predicted lowest, group
    ``groups`` highest. Returns ``(group, rows, mean predicted, mean actual)`` per group.
    """
    actual = np.asarray(actual, dtype=np.float64)
    predicted = np.asarray(predicted, dtype=np.float64)
    order = np.argsort(predicted, kind="mergesort")
    return [
        (
            group,
            len(rows),
            float(predicted[rows].mean()) if len(rows) else float("nan"),
            float(actual[rows].mean()) if len(rows) else float("nan"),
        )
        for group, rows in enumerate(np.array_split(order, groups), start=1)
    ]


def gain_curve(actual: np.ndarray, predicted: np.ndarray, *, points: int = 101) -> np.ndarray:
    """Share of total actual value held by the top ``q`` of rows ranked by prediction.

    ``q`` runs over ``points`` evenly spaced shares from 0 to 1; ties in the prediction
    are ranked lowest actual first, as in :func:`normalized_gini`, so that a constant
    prediction earns no credit for the order of the rows. A random ranking gives the
    diagonal; lift at ``q`` is ``gain / q``.
    """
    actual = np.asarray(actual, dtype=np.float64)
    predicted = np.asarray(predicted, dtype=np.float64)
    total = actual.sum()
    if len(actual) == 0 or total <= 0:
        return np.full(points, np.nan)
    order = np.lexsort((actual, -predicted))
    cumulative = np.concatenate(([0.0], np.cumsum(actual[order]))) / total
    positions = np.rint(np.linspace(0.0, 1.0, points) * len(actual)).astype(np.int64)
    result: np.ndarray = cumulative[positions]
    return result
