"""Scoring: the power index, the graph and provider choice, and the tensor graph on CPU."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import lightgbm as lgb
import numpy as np
import onnxruntime as ort
import pyarrow as pa
import pytest

from model_examples import with_wrong_probability
from purchasing_power.features import FeatureSchema, FeatureSpec
from purchasing_power.model_graphs import export_graphs
from purchasing_power.registry import GRAPH_SUFFIX
from purchasing_power.scoring import (
    CPU_PROVIDER,
    RuntimeParityError,
    choose_provider,
    cuda_is_usable,
    load_scoring_model,
    power_index,
    score_batches,
)
from purchasing_power.train import Heads

SCHEMA = FeatureSchema(
    features=tuple(
        FeatureSpec(name, name) for name in ("count_views_30d", "sum_spend_90d", "days_since")
    )
)
PARAMS = {"verbose": -1, "deterministic": True, "num_threads": 2, "seed": 3, "num_leaves": 15}


def test_power_index_maps_through_the_frozen_reference() -> None:
    reference = np.quantile(np.arange(101.0), np.linspace(0, 1, 101))
    index = power_index(np.array([-5.0, 0.0, 25.0, 50.0, 100.0, 1e9]), reference)
    np.testing.assert_allclose(index, [0.0, 0.0, 25.0, 50.0, 100.0, 100.0])


def test_power_index_is_monotone_and_puts_ties_in_the_middle() -> None:
    reference = np.array([0.0, 0.0, 0.0, 0.0, 10.0])  # most users predicted alike
    index = power_index(np.array([0.0, 5.0, 10.0]), reference)
    assert index[0] == 37.5  # the middle of the 0-75 percentiles that share 0.0
    assert index[0] < index[1] < index[2] == 100.0


def test_power_index_reads_an_ulp_off_a_shared_quantile_as_that_quantile() -> None:
    reference = np.array([0.0, 1.5, 1.5, 1.5, 10.0])  # quantiles 25-75 share 1.5
    at, ulp_above, clearly_above = 1.5, float(np.nextafter(1.5, 2.0)), 1.5 * (1 + 1e-6)
    index = power_index(np.array([at, ulp_above, 1.5 * (1 - 1e-12), clearly_above]), reference)
    assert index[0] == index[1] == index[2] == 50.0  # the midpoint of 25-75
    assert index[3] == pytest.approx(75.0, abs=1e-3)  # just above: the top of the tie


def test_power_index_of_one_user_does_not_depend_on_the_others() -> None:
    reference = np.sort(np.random.default_rng(1).gamma(0.8, 50, 101))
    alone = power_index(np.array([42.0]), reference)
    crowd = power_index(np.array([1.0, 42.0, 900.0]), reference)
    assert alone[0] == crowd[1]


@dataclass(frozen=True)
class Artifact:
    path: Path
    features: pa.Table
    heads: Heads

    def expected(self) -> tuple[np.ndarray, np.ndarray]:
        """LightGBM's purchase probability and expected spend for the features."""
        return self.heads.predict(SCHEMA.to_matrix(self.features))


def _features(rows: int, seed: int) -> pa.Table:
    rng = np.random.default_rng(seed)
    views = rng.poisson(5, rows).astype(np.float64)
    spend = np.where(rng.random(rows) < 0.4, 0.0, rng.gamma(1.5, 40.0, rows))
    days = rng.integers(0, 200, rows).astype(np.float64)
    days[rng.random(rows) < 0.1] = np.nan  # never purchased
    return pa.table(
        {
            "user_id": [f"u{i:05d}" for i in range(rows)],
            "count_views_30d": views,
            "sum_spend_90d": spend,
            "days_since": days,
        }
    )


def _write_artifact(path: Path, *, seed: int) -> Artifact:
    """A registered model's scoring files as the registry writes them (card, ONNX graphs
    of both kinds), without the registry's training and gate."""
    table = _features(3000, seed)
    x = SCHEMA.to_matrix(table)
    rng = np.random.default_rng(seed)
    signal = 0.02 * x[:, 1] + 0.1 * x[:, 0] - 0.01 * np.nan_to_num(x[:, 2], nan=300.0)
    bought = rng.random(len(x)) < 1 / (1 + np.exp(-signal))
    amount = rng.gamma(2.0, 10.0 + 0.5 * x[:, 1])
    heads = Heads(
        purchase=lgb.train(
            {**PARAMS, "objective": "binary"}, lgb.Dataset(x, bought.astype(np.float64)), 30
        ),
        spend_given_purchase=lgb.train(
            {**PARAMS, "objective": "gamma"}, lgb.Dataset(x[bought], amount[bought]), 30
        ),
    )
    path.mkdir(parents=True)
    for graph, files in export_graphs(heads).items():
        for head, content in files.items():
            (path / f"{head}{GRAPH_SUFFIX[graph]}").write_bytes(content)
    _, spend = heads.predict(x)
    card = {
        "model_version": f"pp-test-{seed}",
        "status": "unproven",
        "features": SCHEMA.to_card(),
        "reference_spend_quantiles": np.quantile(spend, np.linspace(0, 1, 101)).tolist(),
        "files": {"purchase": "purchase.onnx", "spend": "spend.onnx"},
    }
    (path / "card.json").write_text(json.dumps(card))
    return Artifact(path, table, heads)


@pytest.fixture(scope="module")
def artifact(tmp_path_factory: pytest.TempPathFactory) -> Artifact:
    return _write_artifact(tmp_path_factory.mktemp("artifacts") / "pp-test-1", seed=1)


def _scores(artifact: Artifact, *, graph: str, batch_rows: int, num_threads: int = 2) -> pa.Table:
    model = load_scoring_model(
        artifact.path,
        device="cpu",
        graph=graph,  # type: ignore[arg-type]
        num_threads=num_threads,
    )
    batches = artifact.features.to_batches(max_chunksize=batch_rows)
    return pa.Table.from_batches(list(score_batches(batches, model=model)))


def test_tensor_graph_scores_like_lightgbm_and_the_tree_ensemble_on_cpu(
    artifact: Artifact,
) -> None:
    tensor = _scores(artifact, graph="tensor", batch_rows=1000)
    trees = _scores(artifact, graph="tree_ensemble", batch_rows=1000)
    probability, spend = artifact.expected()
    for scores in (tensor, trees):
        np.testing.assert_allclose(scores["predicted_spend"].to_numpy(), spend, rtol=1e-12)
        np.testing.assert_allclose(
            scores["purchase_probability"].to_numpy(), probability, atol=1e-12
        )
    np.testing.assert_allclose(
        tensor["power_index"].to_numpy(), trees["power_index"].to_numpy(), atol=1e-9
    )
    assert set(tensor["scoring_graph"].to_pylist()) == {"tensor"}
    assert set(trees["scoring_graph"].to_pylist()) == {"tree_ensemble"}
    assert set(tensor["execution_provider"].to_pylist()) == {CPU_PROVIDER}
    assert set(tensor["model_status"].to_pylist()) == {"unproven"}
    assert tensor["user_id"].to_pylist() == artifact.features["user_id"].to_pylist()


@pytest.mark.parametrize("graph", ["tensor", "tree_ensemble"])
def test_scores_do_not_depend_on_the_batch_size(artifact: Artifact, graph: str) -> None:
    small, large = (_scores(artifact, graph=graph, batch_rows=rows) for rows in (7, 100_000))
    assert small.equals(large)


@pytest.mark.parametrize("graph", ["tensor", "tree_ensemble"])
def test_scores_do_not_depend_on_the_thread_count(artifact: Artifact, graph: str) -> None:
    """A session with threads of its own splits each row's trees among them (its sums,
    and so the scores, then moved with the thread count); scoring runs one-thread pieces."""
    one, three = (
        _scores(artifact, graph=graph, batch_rows=100_000, num_threads=threads)
        for threads in (1, 3)
    )
    assert one.equals(three)


def test_a_tensor_graph_beside_the_artifact_is_used_and_checked(
    artifact: Artifact, tmp_path: Path
) -> None:
    other = _write_artifact(tmp_path / "other", seed=2)
    copy = tmp_path / "copy"
    copy.mkdir()
    for file in artifact.path.iterdir():
        (copy / file.name).write_bytes(file.read_bytes())
    # Another model's tensor graph where this model's belongs: the check must refuse it.
    (copy / "spend.tensor.onnx").write_bytes((other.path / "spend.tensor.onnx").read_bytes())
    model = load_scoring_model(copy, device="cpu", graph="tensor")
    with pytest.raises(RuntimeParityError, match="spend by a relative"):
        list(score_batches(artifact.features.to_batches(max_chunksize=500), model=model))


def test_the_runtime_check_covers_the_probability_the_spend_graph_outputs(
    artifact: Artifact, tmp_path: Path
) -> None:
    """Scores come from the spend graph alone: its ``purchase_probability`` output is
    checked like its spend, and a spend graph without that output is refused by name."""
    copy = tmp_path / "copy"
    shutil.copytree(artifact.path, copy)
    tensor = copy / "spend.tensor.onnx"
    tensor.write_bytes(with_wrong_probability(tensor.read_bytes()))
    model = load_scoring_model(copy, device="cpu", graph="tensor")
    with pytest.raises(RuntimeParityError, match="purchase by"):
        list(score_batches(artifact.features.to_batches(max_chunksize=500), model=model))
    (copy / "spend.onnx").write_bytes((copy / "purchase.onnx").read_bytes())
    with pytest.raises(ValueError, match=r"spend\.onnx: the spend graph has no 'purchase_prob"):
        load_scoring_model(copy, device="cpu")


@pytest.mark.skipif(cuda_is_usable(), reason="a CUDA session starts on this host")
def test_without_a_usable_gpu_scoring_stays_on_the_cpu(artifact: Artifact) -> None:
    if ort.get_device() == "GPU":  # the onnxruntime-gpu wheel: CUDA listed, yet unusable here
        assert "CUDAExecutionProvider" in ort.get_available_providers()
    assert choose_provider("auto") == "cpu"
    assert choose_provider("cpu") == "cpu"
    with pytest.raises(RuntimeError, match="no CUDA session starts here"):
        choose_provider("cuda")
    with pytest.raises(ValueError, match="auto, cpu or cuda"):
        choose_provider("gpu")  # type: ignore[arg-type]
    model = load_scoring_model(artifact.path, device="auto")
    assert (model.graph, model.execution_provider) == ("tree_ensemble", CPU_PROVIDER)
