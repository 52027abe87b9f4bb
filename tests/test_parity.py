"""The parity gate: an export is proven equal to LightGBM before it is registered, and
rechecked where it scores."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from model_examples import (
    SCHEMA,
    TIERS,
    examples,
    register,
    trained,
    with_wrong_probability,
)
from purchasing_power import parity as parity_gate
from purchasing_power import registry
from purchasing_power.export import ParityReport
from purchasing_power.model_graphs import export_graphs
from purchasing_power.parity import (
    ParityError,
    _gate,
    changed_packages,
    package_versions,
    prove_parity,
    recheck_parity,
    recheck_rows,
)
from purchasing_power.scoring import make_session


@pytest.fixture(scope="module")
def registered(tmp_path_factory: pytest.TempPathFactory):
    return register(trained(), tmp_path_factory.mktemp("artifacts"))


def test_parity_gate_refuses_a_drifting_export() -> None:
    _gate("spend", "tensor", "rows", ParityReport(rows=10, max_abs_diff=1.0, max_rel_diff=1e-12))
    with pytest.raises(ParityError, match="spend head, tensor graph"):
        _gate("spend", "tensor", "rows", ParityReport(10, 1e-3, 1e-6))
    with pytest.raises(ParityError, match="purchase head, tree_ensemble graph, edge cases"):
        _gate("purchase", "tree_ensemble", "edge cases", ParityReport(10, 1e-6, 1e-12))
    with pytest.raises(ParityError, match="spend head"):
        _gate("spend", "tensor", "rows", ParityReport(10, np.inf, np.nan))


def _gate_on_validation_rows(result, exported) -> dict[str, dict]:
    """The gate on the validation rows, with five of them as edge cases."""
    return prove_parity(
        result.heads,
        exported,
        rows=result.validation_features,
        edge_cases=result.validation_features[:5],
        validation_rows=len(result.validation_features),
        tiers=TIERS,
    ).figures


def test_a_mismatched_export_is_refused() -> None:
    result, other = trained(), trained(rows_per_cutoff=300, seed=11)
    exported = export_graphs(result.heads)
    exported["tensor"]["spend"] = export_graphs(other.heads)["tensor"]["spend"]
    with pytest.raises(ParityError, match="spend head, tensor graph"):
        _gate_on_validation_rows(result, exported)


def test_the_probability_scoring_reads_from_the_spend_graph_is_gated() -> None:
    """Scoring reads the purchase probability from the spend graph, not from the purchase
    graph: the gate checks that output too, and refuses a spend graph without it."""
    result = trained()
    exported = export_graphs(result.heads)
    parity = _gate_on_validation_rows(result, exported)
    for graph in ("tree_ensemble", "tensor"):
        assert parity[graph]["purchase_probability"]["max_abs_diff"] <= 1e-9
    for graph in ("tree_ensemble", "tensor"):
        wrong = export_graphs(result.heads)
        wrong[graph]["spend"] = with_wrong_probability(wrong[graph]["spend"])
        with pytest.raises(ParityError, match=f"purchase_probability output, {graph} graph"):
            _gate_on_validation_rows(result, wrong)
    exported["tree_ensemble"]["spend"] = exported["tree_ensemble"]["purchase"]
    with pytest.raises(ParityError, match="has no 'purchase_probability' output"):
        _gate_on_validation_rows(result, exported)


def test_the_gate_refuses_to_run_without_the_graph_scoring_runs_on_the_cpu() -> None:
    """Registration reads its reference and summary from the TreeEnsemble run: a gate
    without that graph is a caller's error, raised before any work."""
    result = trained()
    with pytest.raises(ValueError, match="must include 'tree_ensemble'"):
        prove_parity(
            result.heads,
            export_graphs(result.heads),
            rows=result.validation_features,
            edge_cases=result.validation_features[:5],
            validation_rows=len(result.validation_features),
            tiers=TIERS,
            graphs=("tensor",),
        )


def _gate_with_validation_and_scoring_rows(result, exported) -> tuple[dict[str, dict], int]:
    """The gate on the validation rows followed by 300 of them again as scoring rows."""
    rows = np.vstack([result.validation_features, result.validation_features[:300]])
    parity = prove_parity(
        result.heads,
        exported,
        rows=rows,
        edge_cases=result.validation_features[:5],
        validation_rows=len(result.validation_features),
        tiers=TIERS,
    ).figures
    return parity, len(rows)


def test_the_tensor_graph_is_gated_on_leading_validation_and_scoring_rows(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    result = trained()
    exported = export_graphs(result.heads)
    monkeypatch.setattr(parity_gate, "TENSOR_GATE_ROWS", 100)

    def gate() -> dict[str, dict]:
        return _gate_with_validation_and_scoring_rows(result, exported)[0]

    parity, rows = _gate_with_validation_and_scoring_rows(result, exported)
    assert parity["tree_ensemble"]["spend"]["rows"] == rows
    assert parity["tensor"]["spend"]["rows"] == 100
    assert parity["tensor"]["validation_rows"] == 50
    assert parity["tensor"]["spend"]["edge_cases"]["rows"] == 5
    # a wrong tensor graph is still caught on the sample
    other = export_graphs(trained(rows_per_cutoff=300, seed=11).heads)
    exported["tensor"]["spend"] = other["tensor"]["spend"]
    with pytest.raises(ParityError, match="spend head, tensor graph"):
        gate()


def test_the_recheck_gates_the_graphs_the_card_names_for_scoring(
    registered, tmp_path: Path
) -> None:
    """Scoring runs the spend graph the card names, for both its outputs; the recheck
    reads the same file, so a card pointing at another graph fails the recheck."""
    copy = tmp_path / registered.path.name
    shutil.copytree(registered.path, copy)
    card = {**registered.card, "files": {**registered.card["files"], "spend": "other.onnx"}}
    (copy / "other.onnx").write_bytes((copy / card["files"]["purchase"]).read_bytes())
    features = SCHEMA.to_matrix(examples(rows_per_cutoff=100, seed=5))
    rechecked = recheck_parity(registered, scoring_features=features, tiers=TIERS).figures
    assert set(rechecked["tree_ensemble"]) >= {"spend", "purchase_probability"}
    assert "purchase" not in rechecked["tree_ensemble"]  # the purchase graph scores nothing
    moved = registry.RegisteredModel(registered.model_version, copy, card)
    with pytest.raises(ParityError, match="spend head, tree_ensemble graph"):
        recheck_parity(moved, scoring_features=features, tiers=TIERS)
    (copy / "other.onnx").write_bytes(
        with_wrong_probability((copy / registered.card["files"]["spend"]).read_bytes())
    )
    with pytest.raises(ParityError, match="purchase_probability output, tree_ensemble graph"):
        recheck_parity(moved, scoring_features=features, tiers=TIERS)


def test_where_cuda_runs_the_tensor_graph_is_gated_there_on_every_row(
    monkeypatch: pytest.MonkeyPatch, registered
) -> None:
    """Registration and the recheck of an accepted model gate the tensor graph on every
    row, on CUDA, where CUDA runs (here the CUDA session falls back to the CPU, which
    the figures record); elsewhere on a sample at registration and not at the recheck."""
    result = trained()
    exported = export_graphs(result.heads)
    monkeypatch.setattr(parity_gate, "TENSOR_GATE_ROWS", 100)
    features = SCHEMA.to_matrix(examples(rows_per_cutoff=100, seed=5))

    parity, rows = _gate_with_validation_and_scoring_rows(result, exported)
    assert parity["tensor"]["spend"]["rows"] == 100
    assert parity["tensor"]["execution_provider"] == "CPUExecutionProvider"
    assert set(recheck_parity(registered, scoring_features=features, tiers=TIERS).figures) == {
        "tree_ensemble"
    }

    monkeypatch.setattr(parity_gate, "cuda_is_usable", lambda: True)
    asked: list[str] = []

    def make_session_spy(model, **options):
        asked.append(options.get("provider", "cpu"))
        return make_session(model, **options)

    monkeypatch.setattr(parity_gate, "make_session", make_session_spy)
    parity, rows = _gate_with_validation_and_scoring_rows(result, exported)
    assert parity["tensor"]["spend"]["rows"] == rows
    assert parity["tensor"]["validation_rows"] == len(result.validation_features)
    # a session per file: the TreeEnsemble graphs on the CPU, the tensor graphs on CUDA
    assert asked == ["cpu"] * 2 + ["cuda"] * 2
    # the provider that really ran, whatever this host is
    assert parity["tensor"]["execution_provider"] == (
        make_session(exported["tensor"]["spend"], provider="cuda").provider
    )
    rechecked = recheck_parity(registered, scoring_features=features, tiers=TIERS).figures
    assert set(rechecked) == {"tree_ensemble", "tensor"}
    assert rechecked["tensor"]["spend"]["rows"] == len(features)
    assert rechecked["tensor"]["spend"]["max_rel_diff"] <= 1e-9
    assert rechecked["tensor"]["purchase_probability"]["max_abs_diff"] <= 1e-9


def test_a_reused_model_is_rechecked_on_a_sample_and_the_rows_near_a_tier_bound(
    monkeypatch: pytest.MonkeyPatch, registered
) -> None:
    """Issue 40, point 1: where LightGBM, onnxruntime and NumPy are the card's versions,
    the recheck runs on the edge cases, a fixed sample and every row near a tier bound;
    the same rows every time; and a wrong graph is still refused on them."""
    assert changed_packages(registered.card) == []
    features = SCHEMA.to_matrix(examples(rows_per_cutoff=200, seed=5))
    monkeypatch.setattr(parity_gate, "RECHECK_SAMPLE_ROWS", 50)
    found = recheck_parity(registered, scoring_features=features, tiers=TIERS)
    assert not found.every_row
    assert found.scoring_rows == len(features)
    assert found.sampled == 50
    assert max(found.sampled, found.near_bound) <= found.rows <= found.sampled + found.near_bound
    assert found.figures["tree_ensemble"]["spend"]["rows"] == found.rows
    assert found.edge_cases > 0
    assert found.figures["tree_ensemble"]["spend"]["edge_cases"]["rows"] == found.edge_cases
    assert recheck_parity(registered, scoring_features=features, tiers=TIERS) == found

    copy = registry.RegisteredModel(
        registered.model_version,
        registered.path,
        {**registered.card, "files": {**registered.card["files"], "spend": "purchase.onnx"}},
    )
    with pytest.raises(ParityError, match="tree_ensemble graph"):
        recheck_parity(copy, scoring_features=features, tiers=TIERS)


def test_the_rows_rechecked_are_a_fixed_sample_and_every_row_near_a_tier_bound(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(parity_gate, "RECHECK_SAMPLE_ROWS", 10)
    reference = np.linspace(0.0, 100.0, 101)  # the power index of spend s is s
    bounds = sorted({b for tier in TIERS for b in (tier.min_power_index, tier.max_power_index)})
    inner = [b for b in bounds if 0 < b < 100]
    assert inner, "the example tiers have bounds inside 0..100"
    spend = np.linspace(0.5, 99.5, 1_000)
    near = [inner[0], inner[0] + 0.004, inner[0] - 0.009, inner[-1] + 0.0099]
    spend = np.concatenate([spend, near, [inner[0] + 0.02]])
    chosen, sampled, near_bound = recheck_rows(spend, reference=reference, tiers=TIERS)
    at = np.flatnonzero(np.isin(spend, near))
    assert set(at) <= set(chosen)  # every row within 0.01 of a bound, whatever the sample
    assert sampled == 10
    assert near_bound >= len(near)
    assert np.all(np.diff(chosen) > 0)
    again, *_ = recheck_rows(spend, reference=reference, tiers=TIERS)
    assert np.array_equal(chosen, again)


def test_a_changed_package_version_rechecks_every_row(
    monkeypatch: pytest.MonkeyPatch, registered
) -> None:
    features = SCHEMA.to_matrix(examples(rows_per_cutoff=200, seed=5))
    monkeypatch.setattr(parity_gate, "RECHECK_SAMPLE_ROWS", 50)
    installed = package_versions()
    newer = {**installed, "lightgbm": installed["lightgbm"] + ".post1"}
    monkeypatch.setattr(parity_gate, "package_versions", lambda: newer)
    assert changed_packages(registered.card) == [
        f"lightgbm {installed['lightgbm']} -> {installed['lightgbm']}.post1"
    ]
    found = recheck_parity(registered, scoring_features=features, tiers=TIERS)
    assert found.every_row
    assert found.rows == len(features)
    assert found.sampled == 0
    assert found.changed_packages == changed_packages(registered.card)
    unversioned = {k: v for k, v in registered.card.items() if k != "packages"}
    assert changed_packages(unversioned) == ["the card records no package versions"]
