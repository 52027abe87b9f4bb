"""How far an exported model is from ``booster.predict``: the figures the parity gate
(``purchasing_power.parity``) judges."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import onnx

from purchasing_power.export.names import (
    INPUT_NAME,
    OUTPUT_NAME,
)

if TYPE_CHECKING:
    import lightgbm


@dataclass(frozen=True)
class ParityReport:
    """How far an exported model is from ``booster.predict`` on one feature matrix.

    Attributes:
        rows: number of rows compared.
        max_abs_diff: ``max |onnx - lgb|`` (0.0 for no rows; ``inf`` where exactly one of
            the two is NaN).
        max_rel_diff: ``max |onnx - lgb| / max(|lgb|, tiny)`` with ``tiny`` the smallest
            normal double.
    """

    rows: int
    max_abs_diff: float
    max_rel_diff: float


def check_parity(
    booster: lightgbm.Booster, model: onnx.ModelProto, features: np.ndarray
) -> ParityReport:
    """Run ``model`` with onnxruntime's CPU execution provider and compare with LightGBM.

    Args:
        booster: the booster the model was exported from.
        model: the exported model (either graph kind).
        features: ``[N, F]`` feature matrix; it is converted to contiguous float64.

    Returns:
        The row count and the maximum absolute and relative differences between the
        model's ``prediction`` output and ``booster.predict(features)``.
    """
    import onnxruntime as ort

    x = np.ascontiguousarray(features, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"features must be a 2-D array, got shape {x.shape}")
    options = ort.SessionOptions()
    # Do not leave busy-waiting worker threads behind (they slow down LightGBM's OpenMP).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = ort.InferenceSession(
        model.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )
    (onnx_pred,) = session.run([OUTPUT_NAME], {INPUT_NAME: x})
    onnx_pred = np.asarray(onnx_pred, dtype=np.float64).reshape(-1)
    lgb_pred = np.asarray(booster.predict(x), dtype=np.float64).reshape(-1)
    return compare_predictions(lgb_pred, onnx_pred)


def compare_predictions(expected: np.ndarray, actual: np.ndarray) -> ParityReport:
    """The row count and the largest absolute and relative differences of ``actual``
    (ONNX) from ``expected`` (LightGBM), as in :class:`ParityReport`."""
    if actual.shape != expected.shape:
        raise ValueError(
            f"prediction shapes differ: onnx {actual.shape} vs lightgbm {expected.shape}"
        )
    if expected.size == 0:
        return ParityReport(rows=0, max_abs_diff=0.0, max_rel_diff=0.0)
    with np.errstate(invalid="ignore", over="ignore"):
        same = (actual == expected) | (np.isnan(actual) & np.isnan(expected))
        abs_diff = np.where(same, 0.0, np.abs(actual - expected))
        abs_diff = np.where(np.isnan(abs_diff), np.inf, abs_diff)
        denom = np.maximum(np.abs(expected), np.finfo(np.float64).tiny)
        rel_diff = np.where(same, 0.0, abs_diff / np.where(np.isnan(denom), 1.0, denom))
    return ParityReport(
        rows=int(expected.size),
        max_abs_diff=float(abs_diff.max()),
        max_rel_diff=float(rel_diff.max()),
    )
