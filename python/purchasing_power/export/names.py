"""The names, opsets and parity bounds every exported graph shares (``purchasing_power.export``)."""

from __future__ import annotations

from typing import Literal

GraphKind = Literal["tree_ensemble", "tensor"]
# The parity gate (registration, recheck, and the tensor graph's check when it scores):
# an exported model must equal LightGBM within these bounds on every checked row.
MAX_SPEND_RELATIVE_DIFF = 1e-9
MAX_PROBABILITY_ABSOLUTE_DIFF = 1e-9
INPUT_NAME = "features"
OUTPUT_NAME = "prediction"
RAW_OUTPUT_NAME = "raw_score"
# The registry's hurdle graph (``spend.onnx``) outputs the purchase head's prediction
# under this name beside its own ``prediction``, the expected spend.
PROBABILITY_OUTPUT_NAME = "purchase_probability"
ONNX_OPSET = 21
ML_OPSET = 5
IR_VERSION = 10  # the IR version that goes with opset 21 (onnx 1.16)
