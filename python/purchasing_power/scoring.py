"""Score feature batches with a registered model through onnxruntime, on CPU or CUDA.

Batches stream through; every output depends on its own row only, so the scores do
not depend on the batch size. The power index maps predicted spend through the
reference distribution frozen in the model card, so a user whose prediction does not
change keeps the same index whatever happens to everybody else.

What scoring runs: the registry's ``spend`` graph, the whole hurdle, which outputs the
expected spend and the purchase probability in one pass over both heads' trees (the
``purchase`` graph alone would evaluate the purchase trees a second time).

Where scoring runs: onnxruntime implements the ``ai.onnx.ml`` TreeEnsemble operator on
the CPU only (a CUDA session silently runs it there), so on a host where a CUDA session
really starts, the model is scored with its ``tensor`` graph (standard operators, see
``export``) on the CUDA execution provider, and with the TreeEnsemble graph on the CPU
otherwise. The graph and the provider are recorded with every score. Before the first
batch is written, the tensor graph's scores are checked against the TreeEnsemble graph
(the one the parity gate proved equal to LightGBM) on that batch.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import io
import json
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import onnxruntime as ort
import pyarrow as pa
from onnx import TensorProto, helper

from purchasing_power.export import (
    INPUT_NAME,
    MAX_PROBABILITY_ABSOLUTE_DIFF,
    MAX_SPEND_RELATIVE_DIFF,
    OUTPUT_NAME,
    PROBABILITY_OUTPUT_NAME,
    GraphKind,
)
from purchasing_power.extension import Extension
from purchasing_power.features import FeatureSchema

Device = Literal["auto", "cpu", "cuda"]
Provider = Literal["cpu", "cuda"]

CPU_PROVIDER = "CPUExecutionProvider"
CUDA_PROVIDER = "CUDAExecutionProvider"
# The outputs scoring reads from the spend graph, in this order.
SCORING_OUTPUTS = (OUTPUT_NAME, PROBABILITY_OUTPUT_NAME)

SCORE_SCHEMA = pa.schema(
    [
        ("user_id", pa.string()),
        ("model_version", pa.string()),
        ("model_status", pa.string()),
        ("predicted_spend", pa.float64()),
        ("purchase_probability", pa.float64()),
        ("power_index", pa.float64()),
        ("execution_provider", pa.string()),
        ("scoring_graph", pa.string()),
    ]
)

# The runtime check of a tensor graph against the TreeEnsemble graph: the parity gate's
# bounds (export), on up to this many rows of the first batch.
RUNTIME_PARITY_ROWS = 4096


class RuntimeParityError(RuntimeError):
    """The tensor graph on this execution provider does not reproduce the TreeEnsemble."""


@dataclass(frozen=True)
class ScoringModel:
    model_version: str
    schema: FeatureSchema
    reference_spend_quantiles: np.ndarray
    # The spend graph (the hurdle): expected spend and purchase probability.
    session: Session
    model_status: str = "accepted"
    graph: GraphKind = "tree_ensemble"
    # The TreeEnsemble spend graph (CPU) a tensor graph is checked against; None otherwise.
    cpu_reference: Session | None = None
    # Where the model learnt a shorter label window than its horizon: how its scores
    # reach the horizon (purchasing_power.extension); None otherwise.
    extension: Extension | None = None

    @property
    def execution_provider(self) -> str:
        return self.session.provider

    def predict(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The raw expected spend and the purchase probability of each row."""
        spend, probability = predict_outputs(self.session, features, SCORING_OUTPUTS)
        return spend, probability


# Two onnxruntime details would make a row's score depend on where it sits in a batch:
# TreeEnsemble sums trees in a different order for small batches, and the vectorised
# Exp/Sigmoid kernels compute the last few elements of an array (the remainder of the
# SIMD width) with scalar code, one ulp apart. Every run therefore gets at least
# MIN_ROWS_PER_RUN rows, padded with missing values up to a multiple of ROW_MULTIPLE,
# so no real row ever lands on either path and scores do not depend on batching.
MIN_ROWS_PER_RUN = 256
ROW_MULTIPLE = 64
# On CUDA, larger inputs run in pieces of this many rows, CUDA_RUNS_IN_FLIGHT at a time,
# so that one piece's copy to the GPU overlaps another's kernels. On an H100, 1M rows
# in one call scored 6.7M rows/s in pieces of 131,072 and 5.5M in one run (bench/README.md).
CUDA_ROWS_PER_RUN = 1 << 17
CUDA_RUNS_IN_FLIGHT = 2


@dataclass(frozen=True)
class Session:
    """An onnxruntime session and how many of its runs go at once.

    On the CPU the session has one onnxruntime thread, and a batch is cut into ``runs``
    contiguous pieces run at the same time (onnxruntime lets go of the GIL), one per
    thread asked for. With more than one thread of its own, onnxruntime's TreeEnsemble
    kernel splits the trees of each row among them and adds up their partial sums: a
    row's score then depends on the thread count (4e-14 apart), and it ran slower (large
    model, 200,000 rows, 2 threads: 47,915 rows/s against 55,608 in two one-thread
    pieces, bench/README.md). With one thread each row sums its trees in order, as
    LightGBM does (6e-16 apart there, 4e-14 before), whatever the piece. On CUDA,
    pieces of ``CUDA_ROWS_PER_RUN`` rows, ``runs`` (``CUDA_RUNS_IN_FLIGHT``) at a time.
    """

    inference: ort.InferenceSession
    runs: int

    @property
    def provider(self) -> str:
        """The execution provider the session really got (CUDA falls back to the CPU)."""
        result: str = self.inference.get_providers()[0]
        return result

    def piece_rows(self, rows: int) -> int:
        """How many rows each run of a ``rows``-row input gets (the last one fewer)."""
        if self.provider == CUDA_PROVIDER:
            return CUDA_ROWS_PER_RUN
        return _padded_rows(-(-rows // self.runs))


def _inference_session(
    model: Path | bytes, providers: list[str], num_threads: int
) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = num_threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    source = str(model) if isinstance(model, Path) else model
    return ort.InferenceSession(source, options, providers=providers)


def make_session(
    model: Path | bytes, *, num_threads: int = 2, provider: Provider = "cpu"
) -> Session:
    """A session for an exported model (a file or its bytes).

    ``provider="cuda"`` asks for the CUDA execution provider (CPU as fallback for nodes
    without a CUDA kernel, with ``num_threads`` threads); where no CUDA session starts,
    the session is a CPU one. ``session.provider`` tells which one it got. On the CPU,
    ``num_threads`` one-thread runs go at once (:class:`Session`).
    """
    if provider == "cuda":
        inference = _inference_session(model, [CUDA_PROVIDER, CPU_PROVIDER], num_threads)
        if inference.get_providers()[0] == CUDA_PROVIDER:
            return Session(inference, runs=CUDA_RUNS_IN_FLIGHT)
    return Session(_inference_session(model, [CPU_PROVIDER], 1), runs=max(num_threads, 1))


def _run(session: Session, features: np.ndarray, outputs: Sequence[str]) -> list[np.ndarray]:
    rows, width = features.shape
    run_rows = _padded_rows(rows)
    if run_rows != rows or not features.flags.c_contiguous or features.dtype != np.float64:
        padded = np.full((run_rows, width), np.nan)
        padded[:rows] = features
        features = padded
    found = session.inference.run(list(outputs), {INPUT_NAME: features})
    return [out.reshape(-1)[:rows] for out in found]


def _padded_rows(rows: int) -> int:
    return max(MIN_ROWS_PER_RUN, -(-rows // ROW_MULTIPLE) * ROW_MULTIPLE)


def predict_outputs(
    session: Session, features: np.ndarray, outputs: Sequence[str]
) -> list[np.ndarray]:
    """Each of the model's ``outputs`` for each row of ``features`` (float64)."""
    rows = features.shape[0]
    step = session.piece_rows(rows)
    if rows <= step:
        return _run(session, features, outputs)
    with ThreadPoolExecutor(max_workers=session.runs) as pool:
        pieces = list(
            pool.map(
                lambda start: _run(session, features[start : start + step], outputs),
                range(0, rows, step),
            )
        )
    return [np.concatenate(output) for output in zip(*pieces, strict=True)]


def predict(session: Session, features: np.ndarray) -> np.ndarray:
    """The model's ``prediction`` output for each row of ``features`` (float64)."""
    return predict_outputs(session, features, (OUTPUT_NAME,))[0]


def has_outputs(session: Session, outputs: Sequence[str]) -> bool:
    """Whether the session's graph has every one of ``outputs``."""
    return set(outputs) <= {output.name for output in session.inference.get_outputs()}


def _probe_model() -> bytes:
    graph = helper.make_graph(
        [helper.make_node("Neg", ["x"], ["y"])],
        "cuda_probe",
        [helper.make_tensor_value_info("x", TensorProto.DOUBLE, ["N"])],
        [helper.make_tensor_value_info("y", TensorProto.DOUBLE, ["N"])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    model.ir_version = 10
    result: bytes = model.SerializeToString()
    return result


def _cuda_session_starts() -> bool:
    options = ort.SessionOptions()
    options.log_severity_level = 4
    session = ort.InferenceSession(_probe_model(), options, providers=[CUDA_PROVIDER, CPU_PROVIDER])
    if session.get_providers()[0] != CUDA_PROVIDER:
        return False
    out = session.run(["y"], {"x": np.array([1.0, -2.0])})[0]
    return bool(np.array_equal(out, [-1.0, 2.0]))


@functools.cache
def cuda_is_usable() -> bool:
    """Whether a CUDA session really starts here and runs a kernel.

    The onnxruntime-gpu wheel lists the CUDA provider as available on any machine; only
    a session tells whether the CUDA libraries and a device are there. CUDA libraries
    installed as Python packages (``nvidia-*`` wheels) are preloaded when present.
    """
    if CUDA_PROVIDER not in ort.get_available_providers():
        return False
    ort.set_default_logger_severity(4)  # a failed probe is an answer, not an error
    try:
        if _cuda_session_starts():
            return True
        if importlib.util.find_spec("nvidia") is None or not hasattr(ort, "preload_dlls"):
            return False
        with contextlib.redirect_stdout(io.StringIO()):
            ort.preload_dlls()
        return _cuda_session_starts()
    finally:
        ort.set_default_logger_severity(2)  # onnxruntime's default: warnings


def choose_provider(device: Device) -> Provider:
    """``cpu`` or ``cuda`` for a requested device; ``cuda`` fails where CUDA does not run."""
    if device == "cpu":
        return "cpu"
    if device not in ("auto", "cuda"):
        raise ValueError(f"scoring device must be auto, cpu or cuda, not {device!r}")
    if cuda_is_usable():
        return "cuda"
    if device == "cuda":
        raise RuntimeError(
            "scoring device 'cuda' was asked for, but no CUDA session starts here "
            "(onnxruntime-gpu, the CUDA 13 libraries and a GPU are needed); use auto or cpu"
        )
    return "cpu"


def tensor_graph(model_dir: Path, head: str) -> Path:
    """The head's tensor graph file, ``<head>.tensor.onnx``."""
    path = model_dir / f"{head}.tensor.onnx"
    if not path.exists():
        raise FileNotFoundError(f"{path}: the model's tensor graph is missing")
    return path


def _spend_session(path: Path, *, num_threads: int = 2, provider: Provider = "cpu") -> Session:
    session = make_session(path, num_threads=num_threads, provider=provider)
    if not has_outputs(session, SCORING_OUTPUTS):
        raise ValueError(
            f"{path}: the spend graph has no {PROBABILITY_OUTPUT_NAME!r} output (it is not "
            "the hurdle graph the registry writes); retrain with --vars '{retrain: true}'"
        )
    return session


def load_scoring_model(
    model_dir: Path,
    *,
    num_threads: int = 2,
    device: Device = "cpu",
    graph: GraphKind | None = None,
) -> ScoringModel:
    """Open a registered model's spend graph for scoring.

    ``device="auto"`` picks CUDA with the tensor graph where a CUDA session starts and
    the CPU with the TreeEnsemble graph otherwise; ``graph`` overrides the graph (the
    tensor graph runs on the CPU too, slowly: tests use it there).
    """
    card = json.loads((model_dir / "card.json").read_text())
    provider = choose_provider(device)
    chosen: GraphKind = graph or ("tensor" if provider == "cuda" else "tree_ensemble")
    tree_ensemble = model_dir / card["files"]["spend"]
    cpu_reference = None
    if chosen == "tensor":
        tensor = tensor_graph(model_dir, "spend")
        session = _spend_session(tensor, num_threads=num_threads, provider=provider)
        cpu_reference = _spend_session(tree_ensemble, num_threads=num_threads)
    else:
        session = _spend_session(tree_ensemble, num_threads=num_threads, provider=provider)
    return ScoringModel(
        model_version=card["model_version"],
        model_status=str(card.get("status", "accepted")),
        schema=FeatureSchema.from_card(card["features"], card.get("btyd_features")),
        reference_spend_quantiles=np.asarray(card["reference_spend_quantiles"], dtype=np.float64),
        session=session,
        graph=chosen,
        cpu_reference=cpu_reference,
        extension=Extension.from_card(card.get("extension")),
    )


# Predictions this close (relatively) to a reference quantile are read as equal to it:
# the parity gate's bound. Many users are predicted alike, so several quantiles share one
# value, and the index jumps at such a value (the midpoint of the shared percentiles
# there, their top just above it). Without snapping, an engine whose result is one ulp
# off (the tensor graph on CUDA sums in another order) would move such users by the
# whole jump, often to another tier.
SNAP_RELATIVE = 1e-9


def power_index(predicted_spend: np.ndarray, reference_quantiles: np.ndarray) -> np.ndarray:
    """0-100: where each prediction falls in the frozen reference distribution.

    Linear between reference quantiles; where several quantiles share a value (many
    users predicted alike), the midpoint of their percentiles. A prediction within
    ``SNAP_RELATIVE`` of a quantile counts as that quantile.
    """
    predicted_spend = np.asarray(predicted_spend, dtype=np.float64)
    upper = np.clip(np.searchsorted(reference_quantiles, predicted_spend), 1, None)
    upper = np.minimum(upper, len(reference_quantiles) - 1)
    below, above = reference_quantiles[upper - 1], reference_quantiles[upper]
    nearest = np.where(
        np.abs(predicted_spend - below) <= np.abs(above - predicted_spend), below, above
    )
    tolerance = SNAP_RELATIVE * np.maximum(np.abs(nearest), np.finfo(np.float64).tiny)
    predicted_spend = np.where(
        np.abs(predicted_spend - nearest) <= tolerance, nearest, predicted_spend
    )
    percentiles = np.linspace(0.0, 100.0, len(reference_quantiles))
    low = np.interp(predicted_spend, reference_quantiles, percentiles, left=0.0, right=100.0)
    high = -np.interp(
        -predicted_spend, -reference_quantiles[::-1], -percentiles[::-1], left=-100.0, right=0.0
    )
    result: np.ndarray = np.clip((low + high) / 2.0, 0.0, 100.0)
    return result


def check_runtime_parity(
    model: ScoringModel, features: np.ndarray, probability: np.ndarray, spend: np.ndarray
) -> None:
    """Raise unless the scoring graph equals the TreeEnsemble graph on these rows."""
    if model.cpu_reference is None:
        return
    rows = min(len(features), RUNTIME_PARITY_ROWS)
    expected_spend, expected_probability = predict_outputs(
        model.cpu_reference, features[:rows], SCORING_OUTPUTS
    )
    probability_diff = np.max(np.abs(probability[:rows] - expected_probability), initial=0.0)
    spend_diff = np.max(
        np.abs(spend[:rows] - expected_spend)
        / np.maximum(np.abs(expected_spend), np.finfo(np.float64).tiny),
        initial=0.0,
    )
    if not (
        probability_diff <= MAX_PROBABILITY_ABSOLUTE_DIFF and spend_diff <= MAX_SPEND_RELATIVE_DIFF
    ):
        raise RuntimeParityError(
            f"{model.model_version}: the {model.graph} graph on {model.execution_provider} "
            f"differs from the TreeEnsemble graph on {rows} rows (purchase by "
            f"{probability_diff:.3g}, gate {MAX_PROBABILITY_ABSOLUTE_DIFF:g}; spend by a "
            f"relative {spend_diff:.3g}, gate {MAX_SPEND_RELATIVE_DIFF:g})"
        )


def score_batches(
    batches: Iterable[pa.RecordBatch], *, model: ScoringModel
) -> Iterator[pa.RecordBatch]:
    """Scores for each batch of ``user_features`` rows (with ``user_id``), in order."""
    provider = model.execution_provider
    checked = False
    for batch in batches:
        features = model.schema.to_matrix(batch)
        raw_spend, probability = model.predict(features)
        if not checked:
            check_runtime_parity(model, features, probability, raw_spend)
            checked = True
        spend = np.maximum(raw_spend, 0.0)
        if model.extension is not None:
            spend, probability = model.extension.apply(spend, probability)
        rows = batch.num_rows
        yield pa.RecordBatch.from_arrays(
            [
                batch.column(batch.schema.get_field_index("user_id")).cast(pa.string()),
                pa.array([model.model_version] * rows, pa.string()),
                pa.array([model.model_status] * rows, pa.string()),
                pa.array(spend, pa.float64()),
                pa.array(probability, pa.float64()),
                pa.array(power_index(spend, model.reference_spend_quantiles), pa.float64()),
                pa.array([provider] * rows, pa.string()),
                pa.array([model.graph] * rows, pa.string()),
            ],
            schema=SCORE_SCHEMA,
        )


def stream_scores(
    features: pa.RecordBatchReader,
    *,
    model_dir: Path,
    device: Device = "auto",
    num_threads: int = 2,
) -> pa.RecordBatchReader:
    """Stream scores for a stream of ``user_features`` batches (what ``ml_scores`` calls):
    with the ONNX spend graph, or in Python where the active model is the BTYD fallback."""
    from purchasing_power import fallback

    if fallback.is_fallback(model_dir):
        return pa.RecordBatchReader.from_batches(
            SCORE_SCHEMA,
            fallback.score_batches(
                features, model_dir=model_dir, schema=SCORE_SCHEMA, power_index=power_index
            ),
        )
    model = load_scoring_model(model_dir, num_threads=num_threads, device=device)
    return pa.RecordBatchReader.from_batches(SCORE_SCHEMA, score_batches(features, model=model))
