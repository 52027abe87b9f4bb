"""The parity proof: an exported model is registered only once its ONNX graphs are
shown to reproduce LightGBM (``prove_parity``), and a registered model is rechecked on
each scoring run's rows (``recheck_parity``): on every row where the packages that
compute (LightGBM, onnxruntime, NumPy) are not the versions the model was registered
with, else on the edge cases, a deterministic sample and every row near a tier bound.

The parity gate, on every validation row, every scoring row and a set of edge cases
built from the model's own splits (values exactly at, just below and just above every
threshold; zero, signed zero, LightGBM's zero threshold, tiny, huge, infinite and
missing values in every feature): spend within a relative 1e-9 of LightGBM,
probability (``purchase.onnx``'s and the one ``spend.onnx`` outputs beside the spend)
within an absolute 1e-9, and no validation or scoring row in another
power tier than LightGBM's prediction would put it (rows sitting on a tier bound, whose
power index differs by at most 1e-9, are counted apart). Both graph kinds, both heads; the
figures go into the card.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from importlib import metadata
from typing import Any

import lightgbm as lgb
import numpy as np

from purchasing_power.export import (
    MAX_PROBABILITY_ABSOLUTE_DIFF,
    MAX_SPEND_RELATIVE_DIFF,
    PROBABILITY_OUTPUT_NAME,
    GraphKind,
    ParityReport,
    compare_predictions,
)
from purchasing_power.model_graphs import GRAPHS
from purchasing_power.registry import RegisteredModel, load_heads
from purchasing_power.scoring import (
    SCORING_OUTPUTS,
    Provider,
    Session,
    cuda_is_usable,
    has_outputs,
    make_session,
    power_index,
    predict,
    predict_outputs,
    tensor_graph,
)
from purchasing_power.tiers import Tier, assign_tiers, reference_quantiles
from purchasing_power.train import HEADS as BOOSTER_HEADS
from purchasing_power.train import Heads

HEADS = ("purchase", "spend")
# What the gate compares with LightGBM: each file's prediction, and the probability the
# spend graph outputs beside it (what scoring reads), each against the LightGBM head
# named here.
GATED_HEAD = {"purchase": "purchase", "spend": "spend", PROBABILITY_OUTPUT_NAME: "purchase"}
MAX_INDEX_ABSOLUTE_DIFF = 1e-9  # power index moves this small are on a tier bound
# The tensor graph scores only on CUDA. Where CUDA runs, it is gated there on every
# row, like the TreeEnsemble graph. Elsewhere it is gated on the CPU, where it runs some
# ten to twenty times slower than the TreeEnsemble, on every edge case but at most this
# many validation and scoring rows (the leading ones of each, half and half where both
# have enough): a row's traversal is the same gather/compare/add whatever the row, and
# the edge cases (every split threshold and its neighbours, NaN, zeros, extremes) are
# where graphs differ. On the demo shop the gate took 21.2 s of the 56.9 s of training
# and registration on all rows, 14.7 s of 46.4 s with this bound.
TENSOR_GATE_ROWS = 20_000
# The recheck of a registered model where the packages that compute are the versions
# it was registered with: its graphs and LightGBM's trees are the bytes that passed the
# gate on every row, run by the same code, and a row's prediction does not depend on
# the rows beside it; so the edge cases, this many scoring rows drawn with a fixed seed
# from the rows in user_id order, and every row whose published power index lies within
# TIER_BOUND_DISTANCE of a tier bound (where a last-bit difference could change a tier).
RECHECK_SAMPLE_ROWS = 20_000
RECHECK_SEED = 0
TIER_BOUND_DISTANCE = 0.01  # power index points
# the packages whose versions decide between the sample and every row; the card's
# "packages" records these and the rest of PACKAGES
COMPUTING_PACKAGES = ("lightgbm", "onnxruntime", "onnxruntime-gpu", "numpy")
PACKAGES = (
    "lightgbm", "onnx", "onnxruntime-gpu", "onnxruntime", "duckdb", "dbt-core", "numpy",
    "scipy", "optuna",
)  # fmt: skip
_K_ZERO = float(np.float32(1e-35))  # LightGBM's kZeroThreshold
_SPECIAL_VALUES = (
    0.0, -0.0, _K_ZERO, -_K_ZERO, float(np.nextafter(_K_ZERO, np.inf)),
    float(np.nextafter(-_K_ZERO, -np.inf)), 5e-36, -5e-36, 5e-324, -5e-324, 1e-300, -1e-300,
    1e300, -1e300, np.finfo(np.float64).max, -np.finfo(np.float64).max, np.inf, -np.inf, np.nan,
)  # fmt: skip


class ParityError(RuntimeError):
    """The ONNX export does not reproduce LightGBM within the gate."""


@dataclass(frozen=True)
class Proof:
    """What the parity gate found: the figures for the card, and the spend TreeEnsemble
    graph's outputs on every gated row, ``spend`` and ``probability``: what CPU scoring
    computes for those rows (a row's outputs do not depend on the rows beside it), so
    registration reads its reference quantiles and score summary from them."""

    figures: dict[str, dict[str, Any]]
    spend: np.ndarray
    probability: np.ndarray


def package_versions() -> dict[str, str]:
    """The installed versions of ``PACKAGES`` (those installed), as the card records them."""
    versions = {}
    for package in PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return versions


def changed_packages(card: dict[str, Any]) -> list[str]:
    """The computing packages whose installed version is not the one in the card, as
    ``"lightgbm 4.5.0 -> 4.6.0"`` (``none``: not installed); one line saying so where
    the card records no versions."""
    registered: dict[str, str] | None = card.get("packages")
    if not registered:
        return ["the card records no package versions"]
    installed = package_versions()
    return [
        f"{package} {registered.get(package, 'none')} -> {installed.get(package, 'none')}"
        for package in COMPUTING_PACKAGES
        if registered.get(package) != installed.get(package)
    ]


def _splits(booster: lgb.Booster) -> set[tuple[int, float]]:
    found = set()
    for info in booster.dump_model()["tree_info"]:
        stack = [info["tree_structure"]]
        while stack:
            node = stack.pop()
            if "split_index" in node:
                found.add((int(node["split_feature"]), float(node["threshold"])))
                stack.extend([node["left_child"], node["right_child"]])
    return found


def _single_leaf_trees(booster: lgb.Booster) -> int:
    return sum(info["num_leaves"] == 1 for info in booster.dump_model()["tree_info"])


def edge_case_rows(heads: Heads, base: np.ndarray) -> np.ndarray:
    """Rows exactly at, just below and just above every split threshold of both heads,
    and every feature in turn set to each special value; other features from ``base``."""
    rows = []
    splits = sorted(_splits(heads.purchase) | _splits(heads.spend_given_purchase))
    for i, (feature, threshold) in enumerate(splits):
        for value in (threshold, np.nextafter(threshold, -np.inf), np.nextafter(threshold, np.inf)):
            row = base[i % len(base)].copy()
            row[feature] = value
            rows.append(row)
    for feature in range(base.shape[1]):
        for k, value in enumerate(_SPECIAL_VALUES):
            row = base[(feature + k) % len(base)].copy()
            row[feature] = value
            rows.append(row)
    return np.asarray(rows, dtype=np.float64).reshape(-1, base.shape[1])


def gate_description(heads: Heads, *, edge_case_rows: int) -> dict[str, Any]:
    """The card's account of the gate: its bounds, and the edge cases it ran
    (``edge_case_rows`` of them)."""
    return {
        "gate": {
            "max_spend_relative_diff": MAX_SPEND_RELATIVE_DIFF,
            "max_probability_absolute_diff": MAX_PROBABILITY_ABSOLUTE_DIFF,
            "tier_changes": 0,
            "tier_boundary_tolerance": MAX_INDEX_ABSOLUTE_DIFF,
        },
        "edge_cases": {
            "rows": edge_case_rows,
            "split_thresholds": len(_splits(heads.purchase) | _splits(heads.spend_given_purchase)),
            "special_values_per_feature": len(_SPECIAL_VALUES),
            "single_leaf_trees": {
                head: _single_leaf_trees(heads.booster(head)) for head in BOOSTER_HEADS
            },
            "categorical_splits": 0,
        },
    }


def _reference(heads: Heads, features: np.ndarray) -> dict[str, np.ndarray]:
    if len(features) == 0:
        return {head: np.empty(0) for head in HEADS}
    probability, spend = heads.predict(features)
    return {"purchase": probability, "spend": spend}


def _gate_provider(graph: GraphKind) -> Provider:
    """Where a graph is gated: the tensor graph on CUDA where CUDA runs, else the CPU."""
    return "cuda" if graph == "tensor" and cuda_is_usable() else "cpu"


def _sessions(files: dict[str, bytes], graph: GraphKind, provider: Provider) -> dict[str, Session]:
    """A session per file of one graph kind; the spend graph must output what scoring
    reads from it."""
    sessions = {head: make_session(content, provider=provider) for head, content in files.items()}
    if not has_outputs(sessions["spend"], SCORING_OUTPUTS):
        raise ParityError(
            f"spend head, {graph} graph: the graph has no {PROBABILITY_OUTPUT_NAME!r} output "
            "(it is not the hurdle graph scoring reads)"
        )
    return sessions


def _onnx(sessions: dict[str, Session], features: np.ndarray) -> dict[str, np.ndarray]:
    """The predictions of each gated output (``GATED_HEAD``) of the files' sessions."""
    found = {}
    if "purchase" in sessions:
        found["purchase"] = predict(sessions["purchase"], features)
    found["spend"], found[PROBABILITY_OUTPUT_NAME] = predict_outputs(
        sessions["spend"], features, SCORING_OUTPUTS
    )
    return found


def _gate(output: str, graph: str, where: str, found: ParityReport) -> None:
    if output == "spend" and not found.max_rel_diff <= MAX_SPEND_RELATIVE_DIFF:
        raise ParityError(
            f"spend head, {graph} graph, {where}: ONNX differs from LightGBM by a relative "
            f"{found.max_rel_diff:.3g} (gate {MAX_SPEND_RELATIVE_DIFF:g}) over {found.rows} rows"
        )
    what = "purchase head" if output == "purchase" else f"spend head's {output} output"
    if output != "spend" and not found.max_abs_diff <= MAX_PROBABILITY_ABSOLUTE_DIFF:
        raise ParityError(
            f"{what}, {graph} graph, {where}: ONNX differs from LightGBM by "
            f"{found.max_abs_diff:.3g} (gate {MAX_PROBABILITY_ABSOLUTE_DIFF:g}) over "
            f"{found.rows} rows"
        )


def _gate_rows(
    graph: GraphKind, provider: Provider, rows: int, validation_rows: int
) -> tuple[np.ndarray | None, int]:
    """Positions of the rows a graph is gated on (``None``: all) and how many of them,
    first, are validation rows."""
    if graph != "tensor" or provider == "cuda" or rows <= TENSOR_GATE_ROWS:
        return None, validation_rows
    scoring_rows = rows - validation_rows
    validation = min(validation_rows, max(TENSOR_GATE_ROWS // 2, TENSOR_GATE_ROWS - scoring_rows))
    scoring = min(scoring_rows, TENSOR_GATE_ROWS - validation)
    chosen = np.concatenate([np.arange(validation), validation_rows + np.arange(scoring)])
    return chosen, validation


def prove_parity(
    heads: Heads,
    exported: dict[GraphKind, dict[str, bytes]],
    *,
    rows: np.ndarray,
    edge_cases: np.ndarray,
    validation_rows: int,
    tiers: Sequence[Tier],
    graphs: Sequence[GraphKind] = GRAPHS,
    reference: np.ndarray | None = None,
) -> Proof:
    """Run the gate for each of ``graphs`` (the TreeEnsemble graph among them) on
    ``rows`` (the first ``validation_rows`` of them validation rows, then scoring rows;
    the tensor graph on CUDA where CUDA runs, else on the CPU and at most
    ``TENSOR_GATE_ROWS`` of them) and ``edge_cases``; raise :class:`ParityError` on any
    miss, else return the figures for the card and the TreeEnsemble spend graph's
    outputs on ``rows``.

    Tiers are compared end to end: each engine places its predictions among the
    reference quantiles it computes on the validation rows, as scoring does. A
    row counts as changing tier when its power index moves by more than 1e-9; a row
    whose index sits on a tier bound (within 1e-9, e.g. exactly 50.0 in one engine
    and 49.99999999999999 in the other, which happens where a prediction equals a
    reference quantile) is counted apart as a boundary row: no export can keep a
    last-bit difference from crossing a bound the value sits on. ``reference``: the
    quantiles both engines place predictions among instead (a registered model's, as
    scoring places them).
    """
    if not 0 < validation_rows <= len(rows):
        raise ValueError(f"validation_rows must be in 1..{len(rows)}, not {validation_rows}")
    if "tree_ensemble" not in graphs:
        raise ValueError(
            f"graphs must include 'tree_ensemble' (the graph CPU scoring runs): {graphs}"
        )
    expected = _reference(heads, rows)
    expected_edges = _reference(heads, edge_cases)
    figures: dict[str, dict[str, Any]] = {}
    outputs: dict[str, np.ndarray] = {}
    for graph in graphs:
        provider = _gate_provider(graph)
        chosen, validation = _gate_rows(graph, provider, len(rows), validation_rows)
        gated = rows if chosen is None else rows[chosen]
        wanted = expected if chosen is None else {h: expected[h][chosen] for h in HEADS}
        expected_index = power_index(
            wanted["spend"],
            reference
            if reference is not None
            else reference_quantiles(wanted["spend"][:validation]),
        )
        sessions = _sessions(exported[graph], graph, provider)
        ran_on = "/".join(sorted({session.provider for session in sessions.values()}))
        actual = _onnx(sessions, gated)
        if graph == "tree_ensemble":
            outputs = actual
        actual_edges = _onnx(sessions, edge_cases)
        own_reference = (
            reference
            if reference is not None
            else reference_quantiles(actual["spend"][:validation])
        )
        index_now = power_index(actual["spend"], own_reference)
        moved = assign_tiers(index_now, tiers) != assign_tiers(expected_index, tiers)
        on_boundary = moved & (np.abs(index_now - expected_index) <= MAX_INDEX_ABSOLUTE_DIFF)
        changed = int(np.count_nonzero(moved & ~on_boundary))
        figures[graph] = {
            "validation_rows": validation,
            "execution_provider": ran_on,
            "tier_changes": changed,
            "tier_boundary_rows": int(np.count_nonzero(on_boundary)),
            "max_power_index_diff": float(np.max(np.abs(index_now - expected_index), initial=0)),
        }
        for output in actual:
            head = GATED_HEAD[output]
            found = compare_predictions(wanted[head], actual[output])
            at_edges = compare_predictions(expected_edges[head], actual_edges[output])
            _gate(output, graph, "validation and scoring rows", found)
            _gate(output, graph, "edge cases", at_edges)
            figures[graph][output] = {**asdict(found), "edge_cases": asdict(at_edges)}
        if changed:
            raise ParityError(
                f"{graph} graph: {changed} of {len(gated)} rows change tier between LightGBM "
                "and ONNX"
            )
    return Proof(figures, spend=outputs["spend"], probability=outputs[PROBABILITY_OUTPUT_NAME])


@dataclass(frozen=True)
class Recheck:
    """What the recheck of a registered model found: the gate's ``figures`` per graph,
    and which rows it ran on: ``rows`` of the ``scoring_rows`` (every one, or the
    ``sampled`` ones and the ``near_bound`` ones, which may overlap) and ``edge_cases``;
    ``changed_packages``: the versions that differ from the card's, why every row was
    rechecked (empty where none differs)."""

    figures: dict[str, dict[str, Any]]
    scoring_rows: int
    rows: int
    sampled: int
    near_bound: int
    edge_cases: int
    changed_packages: list[str]

    @property
    def every_row(self) -> bool:
        return self.rows == self.scoring_rows


def _unextended_reference(card: dict[str, Any]) -> np.ndarray:
    """The reference quantiles in the units the graphs output (a card's are in the
    units scoring publishes: extended, where the model's scores are)."""
    reference = np.asarray(card["reference_spend_quantiles"], dtype=np.float64)
    factor = float(card.get("extension", {}).get("spend_factor", 1.0))
    return reference / factor


def recheck_rows(
    spend: np.ndarray, *, reference: np.ndarray, tiers: Sequence[Tier]
) -> tuple[np.ndarray, int, int]:
    """Positions of the rows to recheck (sorted), given the TreeEnsemble graph's spend on
    every scoring row: ``RECHECK_SAMPLE_ROWS`` drawn with ``RECHECK_SEED`` and every row
    whose power index (as scoring places it) lies within ``TIER_BOUND_DISTANCE`` of a
    tier bound; and how many of each."""
    rows = len(spend)
    sample = np.random.default_rng(RECHECK_SEED).choice(
        rows, size=min(RECHECK_SAMPLE_ROWS, rows), replace=False
    )
    index = power_index(np.maximum(spend, 0.0), reference)
    bounds = np.unique([b for t in tiers for b in (t.min_power_index, t.max_power_index)])
    distance = np.min(np.abs(index[:, None] - bounds[None, :]), axis=1, initial=np.inf)
    near = np.flatnonzero(distance <= TIER_BOUND_DISTANCE)
    return np.union1d(sample, near), len(sample), len(near)


def recheck_parity(
    model: RegisteredModel, *, scoring_features: np.ndarray, tiers: Sequence[Tier]
) -> Recheck:
    """The parity gate of a registered model's graphs on today's scoring rows, in the
    order scoring sees them (user_id order, so that the sample is the same for the
    same users).

    Both graph kinds passed the gate at registration. What scoring runs is rechecked:
    the spend graph (both its outputs; the purchase graph alone scores nothing), its
    TreeEnsemble everywhere and its tensor graph where CUDA runs (where it scores). On
    the CPU the tensor graph runs some ten times slower than the TreeEnsemble (56 s
    against 4 s for 60,000 users and 1,500 trees), which would make the recheck cost
    more than the scoring.

    The rows: every one where a computing package's version differs from the card's
    (``changed_packages``), else the edge cases, a sample and the rows near a tier bound
    (``recheck_rows``; the TreeEnsemble graph finds them on every row, LightGBM runs on
    those only). Tiers are compared as scoring assigns them, among the card's reference
    quantiles.
    """
    graphs: tuple[GraphKind, ...] = ("tree_ensemble",)
    if _gate_provider("tensor") == "cuda":
        graphs = ("tree_ensemble", "tensor")
    # the graph scoring runs on the CPU: the file the card names
    exported: dict[GraphKind, dict[str, bytes]] = {
        "tree_ensemble": {"spend": (model.path / model.card["files"]["spend"]).read_bytes()}
    }
    if "tensor" in graphs:
        exported["tensor"] = {"spend": tensor_graph(model.path, "spend").read_bytes()}
    heads = load_heads(model)
    reference = _unextended_reference(model.card)
    changed = changed_packages(model.card)
    rows, sampled, near = scoring_features, 0, 0
    if not changed and len(scoring_features) > RECHECK_SAMPLE_ROWS:
        session = _sessions(exported["tree_ensemble"], "tree_ensemble", "cpu")["spend"]
        spend, _ = predict_outputs(session, scoring_features, SCORING_OUTPUTS)
        chosen, sampled, near = recheck_rows(spend, reference=reference, tiers=tiers)
        rows = scoring_features[chosen]
    edge_cases = edge_case_rows(heads, rows)
    proof = prove_parity(
        heads,
        exported,
        rows=rows,
        edge_cases=edge_cases,
        validation_rows=len(rows),
        tiers=tiers,
        graphs=graphs,
        reference=reference,
    )
    return Recheck(
        figures=proof.figures,
        scoring_rows=len(scoring_features),
        rows=len(rows),
        sampled=sampled,
        near_bound=near,
        edge_cases=len(edge_cases),
        changed_packages=changed,
    )
