"""Registration (card, files; the gate is tests/test_parity.py) and the policy that picks
the model that scores, on a small examples table built in code."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pyarrow as pa
import pytest

from model_examples import (
    HURDLE_SETTINGS,
    SCHEMA,
    SETTINGS,
    TIERS,
    TIERS_TABLE,
    examples,
    register,
    trained,
)
from purchasing_power import baselines, btyd_features
from purchasing_power.pipeline import RunSettings, choose_and_train, models_table
from purchasing_power.registration import _score_summary, register_models
from purchasing_power.registry import list_models, load_heads, remove_leftovers
from purchasing_power.scoring import (
    load_scoring_model,
    score_batches,
    stream_scores,
)
from purchasing_power.tiers import reference_quantiles
from purchasing_power.train import (
    BASELINE,
    COMBINATION,
    LIGHTGBM_HURDLE,
    LIGHTGBM_HYBRID,
    LIGHTGBM_TWEEDIE,
    MAX_BOOST_ROUNDS,
    UNPROVEN,
    time_split,
    train_models,
)

REGISTRY = pa.table(
    {
        "feature_position": [1, 2, 3],
        "feature_name": SCHEMA.names,
        "feature_description": [f.description for f in SCHEMA.features],
        "monotone_constraint": [0, 0, 0],
    }
)


def _train(table: pa.Table):
    split = time_split(table, schema=SCHEMA, settings=HURDLE_SETTINGS)
    return train_models(split, settings=HURDLE_SETTINGS)


@pytest.fixture(scope="module")
def registered(tmp_path_factory: pytest.TempPathFactory):
    return register(trained(), tmp_path_factory.mktemp("artifacts"))


@pytest.mark.parametrize("candidate", [LIGHTGBM_TWEEDIE, LIGHTGBM_HYBRID])
def test_every_candidate_registers_proven_equal_and_scores_as_lightgbm_predicts(
    candidate: str, tmp_path: Path
) -> None:
    """The single tweedie and the hybrid (whose BTYD features are fitted on the scoring
    rows and frozen in the card) pass the same gate and score as their trees predict."""
    result = trained(candidate=candidate)
    scoring = examples(rows_per_cutoff=100, seed=5)
    schema = result.schema
    if schema.has_derived:
        schema = schema.with_btyd(btyd_features.fit(scoring, window_days=30))
    model = register_models(
        result, schema=schema, settings=HURDLE_SETTINGS, as_of="2025-04-01",
        scoring_features=schema.to_matrix(scoring), tiers=TIERS, artifacts_dir=tmp_path,
    )  # fmt: skip
    card = model.card
    assert (card["method"], card["combination"]) == (candidate, COMBINATION[candidate])
    for graph in ("tree_ensemble", "tensor"):
        assert card["parity"][graph]["spend"]["max_rel_diff"] <= 1e-9
        assert card["parity"][graph]["purchase_probability"]["max_abs_diff"] <= 1e-9
        assert card["parity"][graph]["tier_changes"] == 0
    loaded = load_scoring_model(model.path)
    assert loaded.schema == schema
    scored = pa.Table.from_batches(list(score_batches(scoring.to_batches(100), model=loaded)))
    probability, spend = result.heads.predict(schema.to_matrix(scoring))
    np.testing.assert_allclose(scored.column("predicted_spend").to_numpy(), spend, rtol=1e-12)
    np.testing.assert_allclose(
        scored.column("purchase_probability").to_numpy(), probability, atol=1e-12
    )
    assert load_heads(model).combination == COMBINATION[candidate]


def test_the_hybrid_registers_the_same_bytes_whatever_the_order_of_the_scoring_rows(
    tmp_path: Path,
) -> None:
    """The hybrid's BTYD fit at the scoring cutoff, frozen in the card, is the same to
    the last bit when the warehouse hands the scoring rows over in another order (it
    gives them in no fixed order), and so are the model, its card and its scores."""
    result = trained(candidate=LIGHTGBM_HYBRID)
    scoring = examples(rows_per_cutoff=400, seed=5)
    shuffled = scoring.take(np.random.default_rng(1).permutation(scoring.num_rows))
    found = []
    for k, rows in enumerate((scoring, shuffled)):
        schema = result.schema.with_btyd(btyd_features.fit(rows, window_days=30))
        model = register_models(
            result, schema=schema, settings=HURDLE_SETTINGS, as_of="2025-04-01",
            scoring_features=schema.to_matrix(scoring), tiers=TIERS,
            artifacts_dir=tmp_path / str(k),
        )  # fmt: skip
        card = {key: value for key, value in model.card.items() if key != "created_at"}
        files = {
            path.name: path.read_bytes() for path in model.path.iterdir() if path.suffix == ".onnx"
        }
        scored = pa.Table.from_batches(
            list(score_batches(scoring.to_batches(100), model=load_scoring_model(model.path)))
        )
        found.append((model.model_version, json.dumps(card, sort_keys=True), files,
                      scored))  # fmt: skip
    (version, card, files, scored), again = found
    assert files
    assert again[2] == files
    assert again[:2] == (version, card)
    assert again[3].equals(scored)


def test_registered_artifact_holds_both_graphs_and_a_card_with_the_proof(registered) -> None:
    files = {path.name for path in registered.path.iterdir()}
    assert files == {
        "card.json", "report.html", "purchase.onnx", "spend.onnx", "purchase.tensor.onnx",
        "spend.tensor.onnx", "purchase.lgb.txt", "spend_given_purchase.lgb.txt",
    }  # fmt: skip
    card = json.loads((registered.path / "card.json").read_text())
    assert card == registered.card
    parity = card["parity"]
    assert parity["edge_cases"]["rows"] == (
        3 * parity["edge_cases"]["split_thresholds"] + 19 * len(SCHEMA.names)
    )
    for graph in ("tree_ensemble", "tensor"):
        assert parity[graph]["tier_changes"] == 0
        assert parity[graph]["purchase"]["rows"] == 600 + 300  # validation + scoring rows
        assert parity[graph]["purchase"]["max_abs_diff"] <= 1e-9
        assert parity[graph]["purchase_probability"]["rows"] == 600 + 300
        assert parity[graph]["purchase_probability"]["max_abs_diff"] <= 1e-9
        assert parity[graph]["spend"]["max_rel_diff"] <= 1e-9
        assert parity[graph]["spend"]["edge_cases"]["rows"] == parity["edge_cases"]["rows"]
        assert parity[graph]["spend"]["edge_cases"]["max_rel_diff"] <= 1e-9
    assert card["status"] == "accepted"
    assert (card["method"], card["combination"]) == ("lightgbm_hurdle", "hurdle")
    assert {row["method"] for row in card["metrics"]} == {
        "lightgbm", "lightgbm_hurdle", "last_period_spend", "rfm", "rfm_decay",
        "bg_nbd_gamma_gamma", "lightgbm_rfm",
    }  # fmt: skip
    # every method on every fold, and the folds themselves
    folds = [fold["validation_cutoff"] for fold in card["folds"]]
    assert folds == ["2025-02-01", "2025-03-01"]
    assert len(card["fold_metrics"]) == len(folds) * len(card["metrics"])
    assert {row["validation_cutoff"] for row in card["fold_metrics"]} == set(folds)
    assert len(card["decile_calibration"]) == 60
    assert sum(tier["users"] for tier in card["scores"]["tiers"]) == 300
    assert card["model_version"] in (registered.path / "report.html").read_text()
    model = onnx.load(registered.path / "purchase.onnx")
    assert any(node.domain == "ai.onnx.ml" for node in model.graph.node)


def test_the_cards_reference_and_score_summary_are_what_scoring_computes(registered) -> None:
    """The reference quantiles are the scoring engine's predictions of the validation
    rows (registration reads them from the gate's run, not from a run of its own), and
    the score summary is that of the scores scoring gives the scoring rows."""
    model = load_scoring_model(registered.path)
    validation_spend, _ = model.predict(trained().validation_features)
    reference = reference_quantiles(validation_spend)
    assert registered.card["reference_spend_quantiles"] == reference.tolist()
    scoring = examples(rows_per_cutoff=100, seed=5)
    scored = pa.Table.from_batches(
        list(score_batches(scoring.to_batches(max_chunksize=64), model=model))
    )
    assert registered.card["scores"] == _score_summary(
        scored.column("purchase_probability").to_numpy(),
        scored.column("predicted_spend").to_numpy(),
        quantiles=reference,
        tiers=TIERS,
    )


def test_same_data_and_seed_give_byte_identical_files_and_scores(tmp_path: Path) -> None:
    first = register(trained(), tmp_path / "a")
    second = register(_train(examples(rows_per_cutoff=600)), tmp_path / "b")
    assert first.model_version == second.model_version
    for name in ("purchase.onnx", "spend.onnx", "purchase.tensor.onnx", "spend.tensor.onnx"):
        assert (first.path / name).read_bytes() == (second.path / name).read_bytes()
    scoring = examples(rows_per_cutoff=100, seed=5)

    def scores(path: Path, batch_rows: int) -> pa.Table:
        model = load_scoring_model(path)
        batches = scoring.to_batches(max_chunksize=batch_rows)
        return pa.Table.from_batches(list(score_batches(batches, model=model)))

    assert scores(first.path, 7).equals(scores(second.path, 100_000))


def test_registered_model_scores_like_lightgbm(registered) -> None:
    scoring = examples(rows_per_cutoff=100, seed=5)
    model = load_scoring_model(registered.path)
    table = pa.Table.from_batches(list(score_batches(scoring.to_batches(), model=model)))
    probability, spend = trained().heads.predict(SCHEMA.to_matrix(scoring))
    np.testing.assert_allclose(table.column("predicted_spend").to_numpy(), spend, rtol=1e-12)
    np.testing.assert_allclose(
        table.column("purchase_probability").to_numpy(), probability, atol=1e-12
    )


# --------------------------------------------------------------------------------------
# Which model scores
# --------------------------------------------------------------------------------------


def _choose(directory: Path, table: pa.Table, registry: pa.Table = REGISTRY, **options):
    scoring = examples(rows_per_cutoff=100, seed=5)
    return choose_and_train(
        lambda: table,
        registry,
        scoring,
        TIERS_TABLE,
        as_of="2025-04-01",
        settings=RunSettings(artifacts_dir=directory, horizon_days=30, num_threads=1, **options),
    )


def _cheating_baseline(table: pa.Table) -> pa.Table:
    """The last-period baseline replaced by the future: the model cannot beat it."""
    return table.set_column(
        table.schema.get_field_index(SETTINGS.baseline_column),
        SETTINGS.baseline_column,
        table.column(SETTINGS.spend_label),
    )


def test_policy_trains_once_then_reuses_the_accepted_model(tmp_path: Path, capsys) -> None:
    table = examples(rows_per_cutoff=400)
    first = _choose(tmp_path, table)
    assert first.trained is not None
    assert first.active == first.trained
    assert "training a new model (no accepted model" in capsys.readouterr().err

    again = _choose(tmp_path, table)
    assert again.trained is None
    assert again.active.model_version == first.active.model_version
    assert "scoring with the latest accepted model" in capsys.readouterr().err

    stale = REGISTRY.slice(0, 2)  # today's registry no longer lists 'noise'
    reused = _choose(tmp_path, table, registry=stale)
    assert reused.active.model_version == first.active.model_version
    assert "is stale" in capsys.readouterr().err

    with pytest.raises(ValueError, match="model_version 'pp-nope' is not registered"):
        _choose(tmp_path, table, model_version="pp-nope")
    capsys.readouterr()
    pinned = _choose(tmp_path, table, model_version=first.active.model_version)
    assert pinned.active.model_version == first.active.model_version
    # a pinned model is rechecked on today's scoring rows like the latest accepted one
    assert "scoring with pinned model" in (said := capsys.readouterr().err)
    assert "parity rechecked on" in said

    # an unproven retrain is registered but not promoted over the accepted model
    unproven = _choose(tmp_path, _cheating_baseline(table), retrain=True)
    assert unproven.trained is not None
    assert unproven.trained.status == UNPROVEN
    assert unproven.active.model_version == first.active.model_version
    assert "UNPROVEN MODEL NOT PROMOTED" in capsys.readouterr().err

    listed = models_table(tmp_path, active_version=unproven.active.model_version)
    assert listed.num_rows == 2
    rows = listed.to_pylist()
    assert [row["is_active"] for row in rows] == [True, False]
    assert [row["model_status"] for row in rows] == ["accepted", "unproven"]


def test_where_a_baseline_beats_every_candidate_it_scores_with_status_baseline(
    tmp_path: Path, capsys
) -> None:
    """Features that know nothing (the registry lists 'noise' only) against baselines
    that read the real history: a baseline wins the folds, is registered with status
    'baseline' and scores every user, and the build says so."""
    noise = REGISTRY.filter(pa.compute.equal(REGISTRY["feature_name"], "noise"))
    choice = _choose(
        tmp_path, examples(rows_per_cutoff=400), registry=noise,
        candidates=(LIGHTGBM_HURDLE, LIGHTGBM_TWEEDIE),
    )  # fmt: skip
    card = choice.active.card
    assert choice.active.status == BASELINE
    assert choice.active == choice.trained
    assert card["method"] in baselines.SCORING_METHODS
    assert "BASELINE SCORES" in capsys.readouterr().err
    # the card shows every candidate and baseline per fold
    assert {row["method"] for row in card["fold_metrics"]} == {
        "lightgbm", LIGHTGBM_HURDLE, LIGHTGBM_TWEEDIE, *baselines.METHODS,
    }  # fmt: skip
    scoring = examples(rows_per_cutoff=100, seed=5)
    scored = stream_scores(
        pa.RecordBatchReader.from_batches(scoring.schema, scoring.to_batches(64)),
        model_dir=choice.active.path,
        device="cpu",
    ).read_all()
    assert scored.num_rows == scoring.num_rows
    assert set(scored["model_status"].to_pylist()) == {BASELINE}
    assert set(scored["model_version"].to_pylist()) == {choice.active.model_version}
    listed = models_table(tmp_path, active_version=choice.active.model_version).to_pylist()
    assert [(row["scoring_method"], row["is_active"]) for row in listed] == [(card["method"], True)]


def test_an_unproven_model_scores_only_where_nothing_was_accepted(tmp_path: Path, capsys) -> None:
    choice = _choose(tmp_path, _cheating_baseline(examples(rows_per_cutoff=400)))
    assert choice.active.status == UNPROVEN
    assert choice.active == choice.trained
    assert "UNPROVEN MODEL SCORES" in capsys.readouterr().err
    listed = models_table(tmp_path, active_version=choice.active.model_version).to_pylist()
    assert [(row["model_status"], row["is_active"]) for row in listed] == [("unproven", True)]
    assert list_models(tmp_path)[0].card["status_reasons"]


def test_max_boost_rounds_caps_each_head_and_lands_in_the_card(tmp_path: Path) -> None:
    table = examples(rows_per_cutoff=300)
    default = _choose(tmp_path / "default", table).active.card
    assert max(default["best_iterations"].values()) > 7  # the cap below binds
    capped = _choose(tmp_path / "capped", table, max_boost_rounds=7).active.card
    assert capped["max_boost_rounds"] == 7
    assert default["max_boost_rounds"] == MAX_BOOST_ROUNDS
    assert all(0 < rounds <= 7 for rounds in capped["best_iterations"].values())
    with pytest.raises(ValueError, match="max_boost_rounds must be at least 1, got 0"):
        _choose(tmp_path / "none", table, max_boost_rounds=0)


def test_tune_trials_search_before_training_and_land_in_the_card(tmp_path: Path) -> None:
    choice = _choose(tmp_path, examples(rows_per_cutoff=300), tune_trials=2)
    tuning = choice.active.card["tuning"]
    assert tuning["trials"] == 2
    for head in ("purchase", "spend_given_purchase"):
        assert tuning["best_losses"][head] <= tuning["default_losses"][head]
    assert _choose(tmp_path / "plain", examples(rows_per_cutoff=300)).active.card["tuning"] is None


# A process that registers a version, then registers it again (retrain: true) and
# SIGKILLs itself at a given moment of that: while the files are staged (when the report
# is rendered), or once it removed a first file (of the version it replaces).
REGISTRAR = """
import os
import signal
import sys
from pathlib import Path

sys.path.insert(0, sys.argv[1])
from test_registry import _choose, examples

from purchasing_power import report


def die(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)


def unlink_and_die(*args, unlink=os.unlink, **kwargs):
    unlink(*args, **kwargs)
    die()


directory, moment = Path(sys.argv[2]), sys.argv[3]
table = examples(rows_per_cutoff=400)
_choose(directory, table)
if moment == "writing":
    report.render_report = die
else:
    os.unlink = unlink_and_die
_choose(directory, table, retrain=True)
"""


def _register_and_die(directory: Path, moment: str) -> None:
    killed = subprocess.run(
        [sys.executable, "-c", REGISTRAR, str(Path(__file__).parent), str(directory), moment],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert killed.returncode == -signal.SIGKILL, killed.stderr


def _hidden(directory: Path) -> set[str]:
    return {path.name for path in directory.iterdir() if path.name.startswith(".")}


def test_a_registration_killed_midway_lists_nothing_and_the_next_build_clears_it(
    tmp_path: Path,
) -> None:
    _register_and_die(tmp_path, "writing")
    (registered,) = list_models(tmp_path)  # the first registration alone
    (staged,) = _hidden(tmp_path)
    assert (tmp_path / staged / "spend.onnx").is_file()
    unrelated = {".notes", ".pp-20250401-0123456789ab-short"}
    for name in unrelated:
        (tmp_path / name).mkdir()

    choice = _choose(tmp_path, examples(rows_per_cutoff=400))  # scores, trains nothing

    assert choice.trained is None
    assert list_models(tmp_path) == [registered]
    assert _hidden(tmp_path) == unrelated


def test_a_version_registered_again_is_whole_whenever_the_registration_is_killed(
    tmp_path: Path,
) -> None:
    _register_and_die(tmp_path, "replacing")
    print(sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")))
    (model,) = list_models(tmp_path)
    card = model.card
    for name in (*card["files"].values(), *card["lightgbm_files"].values(), "report.html"):
        assert (model.path / name).is_file(), name
    assert load_heads(model).booster("purchase").num_trees() > 0
    assert _hidden(tmp_path)  # the version replaced, moved aside whole

    remove_leftovers(tmp_path)

    assert not _hidden(tmp_path)
    assert list_models(tmp_path) == [model]


def test_head_params_set_both_heads_knobs_and_land_in_the_card(tmp_path: Path) -> None:
    import lightgbm as lgb

    from purchasing_power.train import head_params_from, num_leaves_for

    knobs = head_params_from({"num_leaves": 4, "min_data_in_leaf": 30})
    card = _choose(tmp_path, examples(rows_per_cutoff=300), head_params=knobs).active.card
    assert card["params"], card["method"]  # a trained model scores, not a baseline
    for params in card["params"].values():
        assert (params["num_leaves"], params["min_data_in_leaf"]) == (4, 30)
        assert params["learning_rate"] == 0.1  # the knobs not named keep their defaults
    for name in card["lightgbm_files"].values():
        trees = lgb.Booster(model_file=str(tmp_path / card["model_version"] / name)).dump_model()
        assert max(tree["num_leaves"] for tree in trees["tree_info"]) <= 4
    # by default the leaves follow the training rows (7 below 50,000)
    default = _choose(tmp_path / "default", examples(rows_per_cutoff=300)).active.card
    assert {params["num_leaves"] for params in default["params"].values()} == {7}
    assert (num_leaves_for(49_999), num_leaves_for(50_000), num_leaves_for(199_999)) == (7, 15, 15)
    assert num_leaves_for(200_000) == 31
    with pytest.raises(ValueError, match=r"head_params: unknown knob\(s\) leaves; the knobs are"):
        head_params_from({"leaves": 4})
    with pytest.raises(ValueError, match="head_params: num_leaves must be a whole number"):
        head_params_from({"num_leaves": 4.5})
    # what LightGBM would refuse is named before it is asked
    with pytest.raises(ValueError, match="num_leaves must be at least 2 and at most 131072, got 1"):
        head_params_from({"num_leaves": 1})
    with pytest.raises(ValueError, match=r"fraction must be above 0 and at most 1, got 1\.5"):
        head_params_from({"feature_fraction": 1.5})
    assert head_params_from({"lambda_l2": 0}).lambda_l2 == 0.0  # no L2 is a valid choice
    # every knob of HeadParams is checked, and only those
    from purchasing_power.train import _KNOBS, HeadParams

    assert list(_KNOBS) == list(vars(HeadParams()))
    assert head_params_from({"min_data_in_leaf": 30.0}).min_data_in_leaf == 30  # stored as int
