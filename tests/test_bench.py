"""The benchmark's own machinery (bench/measure.py, bench/run.py), on tiny inputs: what
its figures rest on. No timing is asserted; benchmarks never gate CI."""

from __future__ import annotations

import datetime as dt
import json
import math
import shutil
import sys
from pathlib import Path

import duckdb
import polars as pl
import pytest

import bench_publish
import bench_tree_count
import holdout
import measure
import run as bench_run
import training_defaults
import tree_cap
import zoo
from dbt_runner import DbtProject
from purchasing_power import baselines
from purchasing_power.train import MAX_BOOST_ROUNDS, TrainingSettings


def test_measure_counts_the_peak_memory_of_the_whole_process_tree(tmp_path: Path) -> None:
    # the child holds little; the grandchild it starts holds 300 MiB for a while
    grandchild = "b = bytearray(300 * 2**20); import time; time.sleep(1.0); print('held')"
    child = (
        "import subprocess, sys; "
        f"subprocess.run([sys.executable, '-c', {grandchild!r}], check=True); print('done')"
    )
    measured = measure.measure([sys.executable, "-c", child], log=tmp_path / "log")

    assert measured.returncode == 0
    assert measured.log.read_text().split() == ["held", "done"]
    assert measured.peak_rss_bytes >= 300 * 2**20
    assert measured.wall_seconds >= 1.0


def test_measure_reports_a_failing_command_s_return_code(tmp_path: Path) -> None:
    measured = measure.measure(
        [sys.executable, "-c", "import sys; print('no'); sys.exit(3)"], log=tmp_path / "log"
    )
    assert measured.returncode == 3
    assert measured.log.read_text() == "no\n"


def test_the_held_back_day_is_every_event_of_the_last_day_and_only_those(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    raw.mkdir()
    times = [
        "2026-05-13 10:00:00",
        "2026-05-14 23:59:59",
        "2026-05-15 00:00:00",
        "2026-05-15 18:30:00",
        None,  # no readable time: stays with the other days, the build quarantines it
    ]
    with duckdb.connect() as connection:
        connection.execute(
            "create table events as select 'e' || i as event_id, t::timestamp as event_time"
            " from unnest(?) with ordinality as times(t, i)",
            [times],
        )
        connection.execute(f"copy events to '{raw / 'events.parquet'}'")

    held = tmp_path / "held.parquet"
    assert bench_run.hold_back_last_day(raw, held) == {
        "new_day": "2026-05-15",
        "new_day_events": 2,
    }

    assert not (raw / "events.parquet").exists()
    with duckdb.connect() as connection:
        kept = connection.execute(
            f"select event_time from '{raw / 'events' / 'part-0.parquet'}' order by event_time"
        ).fetchall()
        new = connection.execute(f"select event_time from '{held}' order by 1").fetchall()
    assert kept == [
        (dt.datetime(2026, 5, 13, 10),),
        (dt.datetime(2026, 5, 14, 23, 59, 59),),
        (None,),
    ]
    assert new == [(dt.datetime(2026, 5, 15),), (dt.datetime(2026, 5, 15, 18, 30),)]


def test_a_copied_shop_is_the_earlier_run_s_as_it_was_before_its_build(tmp_path: Path) -> None:
    shop = tmp_path / "earlier"
    raw, held = shop / "raw", shop / "held" / "events-last-day.parquet"
    raw.mkdir(parents=True)
    held.parent.mkdir()
    with duckdb.connect() as connection:
        connection.execute(
            "copy (select 'e' || i as event_id, timestamp '2026-05-13 10:00' + i * interval 9 hour"
            f" as event_time from range(8) as r(i)) to '{raw / 'events.parquet'}'"
        )
        connection.execute(f"copy (select 1 as user_id) to '{raw / 'users.parquet'}'")
    new_day = bench_run.hold_back_last_day(raw, held)
    # the earlier run's rerun added the held day as a second file
    shutil.copy(held, raw / "events" / "part-1.parquet")

    copy = tmp_path / "copy"
    assert bench_run.copy_shop(shop, copy / "raw", copy / "held" / held.name) == new_day
    assert sorted(p.relative_to(copy).as_posix() for p in copy.rglob("*.parquet")) == [
        "held/events-last-day.parquet",
        "raw/events/part-0.parquet",
        "raw/users.parquet",
    ]
    for name in ("raw/events/part-0.parquet", "held/events-last-day.parquet"):
        assert (copy / name).read_bytes() == (shop / name).read_bytes()


def _warehouse(path: Path, *, built_from: int, scored_at: str, spend: float) -> None:
    with duckdb.connect(str(path)) as connection:
        connection.execute("create schema features; create schema marts")
        connection.execute(
            "create table features.user_features as"
            f" select 'u1' as user_id, 3 as orders, {built_from}::ubigint as built_from"
        )
        connection.execute(
            "create table marts.purchasing_power_scores as select 'u1' as user_id,"
            f" {spend} as expected_spend, '{scored_at}'::timestamp as scored_at"
        )
        connection.execute(
            "create table marts.purchasing_power_reasons as"
            " select 'u1' as user_id, 1 as rank, 'orders' as feature"
        )


def test_a_rerun_is_compared_with_a_full_rebuild_on_every_column_but_run_stamps(
    tmp_path: Path,
) -> None:
    _warehouse(tmp_path / "a.duckdb", built_from=1, scored_at="2026-05-15 01:00", spend=10.0)
    _warehouse(tmp_path / "b.duckdb", built_from=2, scored_at="2026-05-15 02:00", spend=10.0)
    _warehouse(tmp_path / "c.duckdb", built_from=1, scored_at="2026-05-15 01:00", spend=10.5)

    assert bench_run._differences(tmp_path / "a.duckdb", tmp_path / "b.duckdb") == dict.fromkeys(
        bench_run.COMPARED, 0
    )
    # one score differs: one row on each side
    assert bench_run._differences(tmp_path / "a.duckdb", tmp_path / "c.duckdb") == {
        "features.user_features": 0,
        "marts.purchasing_power_scores": 2,
        "marts.purchasing_power_reasons": 0,
    }


def test_the_rerun_is_cut_into_models_tests_and_the_rest_from_dbt_s_own_times(
    tmp_path: Path,
) -> None:
    warehouse = measure.Warehouse(tmp_path)
    warehouse.target.mkdir()
    results = [
        ("model.purchasing_power.int_events_validated", 10.0),
        ("model.purchasing_power.ml_reasons", 20.0),
        ("test.purchasing_power.unique_int_events_validated_event_id.5a1b2c3d4e", 4.0),
        ("unit_test.purchasing_power.ml_scores.scores_read_the_spend_graph", 1.0),
        ("seed.purchasing_power.power_tiers", 0.5),
    ]
    (warehouse.target / "run_results.json").write_text(
        json.dumps(
            {
                "elapsed_time": 37.0,
                "results": [
                    {"unique_id": unique_id, "execution_time": seconds}
                    for unique_id, seconds in results
                ],
            }
        )
    )

    models = warehouse.model_seconds()
    tests = warehouse.node_seconds("test", "unit_test")
    assert models == {"int_events_validated": 10.0, "ml_reasons": 20.0}
    assert tests == {
        "unique_int_events_validated_event_id": 4.0,
        "ml_scores::scores_read_the_spend_graph": 1.0,
    }
    assert warehouse.elapsed_seconds() == 37.0

    made_of = bench_run._rerun_made_of(
        {
            "incremental_seconds": 45.0,
            "incremental_model_seconds": models,
            "incremental_test_seconds": tests,
            "incremental_dbt_elapsed_seconds": 37.0,
        }
    )
    assert made_of == (
        "The rerun's 45.0 s: models 30.0 s, data and unit tests 5.0 s (2; slowest "
        "unique_int_events_validated_event_id 4.0 s, ml_scores::scores_read_the_spend_graph "
        "1.0 s), "
        "the rest of dbt's elapsed time 2.0 s, and 8.0 s outside it (starting Python, "
        "parsing, closing)."
    )


def test_every_stored_result_s_markdown_is_its_json_rendered() -> None:
    # the markdown is made from the JSON; only its first line (the command) may have been
    # annotated by hand with the commit and the machine's state. A change to the
    # rendering must keep rendering older results as they were written.
    stored = [
        path
        for path in sorted(bench_run.RESULTS.glob("*.json"))
        if "stages" in json.loads(path.read_text())
    ]
    assert len(stored) >= 10
    for path in stored:
        rendered = bench_run.render(json.loads(path.read_text())).splitlines()
        written = path.with_suffix(".md").read_text().splitlines()
        assert rendered[1:] == written[1:], path.name


def test_every_stored_result_is_cited_where_a_reader_finds_it() -> None:
    # bench/results keeps only what the docs, bench/README.md or bench/HISTORY.md cite by
    # name; git keeps the rest
    repo = bench_run.RESULTS.parents[1]
    citing = [repo / "README.md", repo / "bench" / "README.md", repo / "bench" / "HISTORY.md"]
    text = "\n".join(path.read_text() for path in [*citing, *(repo / "docs").glob("*.md")])
    stems = sorted({path.stem for path in bench_run.RESULTS.iterdir()})
    assert [stem for stem in stems if stem not in text] == []


def test_one_build_is_cut_into_stages_by_its_nodes_times_and_samples() -> None:
    stages = [stage.name for stage in bench_run.STAGES]
    first, second, before_last, last = stages[0], stages[1], stages[-2], stages[-1]
    spans = {  # node: (start, end, execution time)
        "seed.p.a": (100.0, 101.0, 1.0),
        "model.p.b": (101.5, 110.0, 8.5),
        "test.p.b_unique": (110.2, 110.6, 0.4),
        "model.p.c": (111.0, 121.0, 10.0),
        "model.p.z": (122.0, 123.0, 1.0),
        "model.p.quick": (123.1, 123.2, 0.1),  # between two samples: the nearer one counts
    }
    nodes = {
        first: {"seed.p.a", "model.p.b", "test.p.b_unique"},
        second: {"model.p.c", "model.p.never_ran"},
        before_last: {"model.p.quick"},
        last: {"model.p.z"},
    }
    samples = [  # (at, GiB): between nodes, a sample counts for no stage
        (99.0, 9.0), (100.5, 1.0), (105.0, 2.0), (110.1, 8.0), (110.4, 2.5),
        (115.0, 4.0), (121.5, 7.0), (122.5, 0.5), (124.0, 6.0),
    ]  # fmt: skip
    build = measure.Measured(
        command=("dbt", "build"),
        wall_seconds=30.0,
        peak_rss_bytes=9 * 2**30,
        returncode=0,
        log=Path("build.log"),
        load_average=1.5,
        samples=tuple(measure.Sample(at, int(gib * 2**30), at / 100) for at, gib in samples),
    )
    cut = bench_run.split_by_stage(build, spans, nodes, {"raw_events": 1000, "training_rows": 40})

    assert list(cut) == [first, second, before_last, last]
    assert [stage.wall_seconds for stage in cut.values()] == [9.9, 10.0, 0.1, 1.0]
    assert [stage.peak_rss_gib for stage in cut.values()] == [2.5, 4.0, 0.5, 0.5]
    assert [stage.load_average for stage in cut.values()] == [1.104, 1.15, 1.225, 1.225]
    assert cut[first].model_seconds == {"b": 8.5}
    assert cut[first].rows == 1000
    assert cut[first].rows_per_second == 1000 / 9.9


def test_the_publishing_bench_checks_both_copies_and_keeps_its_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    argv = ["bench_publish.py", "--users", "50", "--runs", "3", "--out", str(tmp_path)]
    monkeypatch.setattr(sys, "argv", argv)
    bench_publish.main()  # asserts that each copy holds the warehouse's rows
    (stored,) = tmp_path.glob("*-publish.json")
    result = json.loads(stored.read_text())
    assert [p["rows"] for p in result["publications"]] == [150, 150, 200, 200, 200]
    assert [p["runs"] for p in result["publications"]] == [3, 3, 4, 4, 4]
    assert stored.with_suffix(".md").read_text() == bench_publish.render(result)
    for path in bench_run.RESULTS.glob("*-publish.json"):
        written = path.with_suffix(".md").read_text().splitlines()
        assert bench_publish.render(json.loads(path.read_text())).splitlines() == written


def test_a_result_never_overwrites_an_earlier_one_of_the_same_name(tmp_path: Path) -> None:
    first = measure.write_result(tmp_path, "2026-01-01-small", {"run": 1}, "one\n")
    (tmp_path / "2026-01-01-medium.md").write_text("a table kept without its json\n")
    second = measure.write_result(tmp_path, "2026-01-01-small", {"run": 2}, "two\n")
    medium = measure.write_result(tmp_path, "2026-01-01-medium", {"run": 1}, "three\n")
    assert [first.name, second.name, medium.name] == [
        "2026-01-01-small",
        "2026-01-01-small-2",
        "2026-01-01-medium-2",
    ]
    assert json.loads(first.with_suffix(".json").read_text()) == {"run": 1}
    assert second.with_suffix(".md").read_text() == "two\n"
    assert (tmp_path / "2026-01-01-medium.md").read_text() == "a table kept without its json\n"


@pytest.mark.slow
def test_the_tree_count_bench_fits_the_registered_model_and_cuts_it(
    built: DbtProject, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    argv = ["bench_tree_count.py", "--warehouse", str(built.warehouse), "--reason-rows", "300"]
    monkeypatch.setattr(sys, "argv", [*argv, "--out", str(tmp_path)])
    bench_tree_count.main()
    (stored,) = tmp_path.glob("*-tree-count.json")
    result = json.loads(stored.read_text())
    with duckdb.connect(str(built.warehouse), read_only=True) as connection:
        registered = dict(
            connection.execute(
                "select metric, metric_value from marts.model_evaluations"
                " where method = 'lightgbm_hurdle' and metric in ('auc', 'normalized_gini')"
                " and validation_cutoff_date = (select max(validation_cutoff_date)"
                " from marts.model_evaluations)"
            ).fetchall()
        )
    # the whole model is the hurdle that training fitted and judged on the latest fold:
    # the same trees, the same figures
    whole = result["cuts"][-1]
    assert whole["trees"] == {head: fit["trees"] for head, fit in result["fits"].items()}
    assert math.isclose(whole["auc"], registered["auc"], rel_tol=1e-12)
    assert math.isclose(whole["normalized_gini"], registered["normalized_gini"], rel_tol=1e-12)
    trees = [max(cut["trees"].values()) for cut in result["cuts"]]
    assert trees == sorted(set(trees))
    assert trees[0] <= bench_tree_count.CUTS[0]
    assert all(cut["reason_ms_per_thousand_users"] > 0 for cut in result["cuts"])
    assert stored.with_suffix(".md").read_text() == bench_tree_count.render(result)
    for path in bench_run.RESULTS.glob("*-tree-count.json"):  # the first line may be annotated
        written = path.with_suffix(".md").read_text().splitlines()[1:]
        assert bench_tree_count.render(json.loads(path.read_text())).splitlines()[1:] == written


@pytest.mark.slow
def test_the_zoo_judges_the_model_and_every_baseline_on_the_held_out_horizon(
    tmp_path: Path,
) -> None:
    # the tiniest shop of one preset, one build (the demand build doubles the time)
    argv = ["--presets", "default", "--users", "150", "--no-cdnow", "--no-demand"]
    result = zoo.main([*argv, "--work", str(tmp_path / "zoo"), "--out", str(tmp_path)])

    (shop,) = result["shops"]
    assert (shop["shop"], shop["as_of"], shop["horizon_days"]) == ("default", "2025-10-03", 90)
    assert shop["build"]["succeeded"]
    # what the rolling-origin folds chose scored: a trained model, or a baseline that beat
    # every candidate (on 150 users, a few dozen buyers a fold, either can win)
    assert shop["model_status"] in ("accepted", "unproven", "baseline")
    # the model and every baseline of the gate, each with every metric
    assert list(shop["rows"]) == [holdout.MODEL, *baselines.METHODS]
    for method, figures in shop["rows"].items():
        assert list(figures) == list(holdout.COLUMNS), method
        assert 0 <= figures["mae"] <= figures["rmse"], method
        assert -1 <= figures["spearman"] <= 1, method
        assert -1 <= figures["normalized_gini"] <= 1, method
        assert 0 <= figures["top_decile_capture"] <= 1, method
        assert 0 <= figures["auc"] <= 1, method
        assert figures["total_bias_percent"] >= -100, method
    # the model ranks far better than chance (AUC 0.84 and Gini 0.77 when written)
    assert shop["rows"]["model"]["auc"] > 0.7
    assert shop["rows"]["model"]["normalized_gini"] > 0.5
    assert shop["beats_every_baseline"] == "yes" or shop["beats_every_baseline"].startswith("no: ")

    raw = tmp_path / "zoo" / "default" / "events.parquet"
    warehouse = measure.Warehouse(tmp_path / "zoo" / "default" / "build").path
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        (scored,) = connection.execute(
            "select count(*) from marts.purchasing_power_scores"
        ).fetchone()
        ((cutoff,),) = connection.execute(
            "select max(cutoff_date) from ml.training_examples"
        ).fetchall()
        derived = holdout.baseline_inputs(
            connection, cutoff=cutoff, settings=TrainingSettings(horizon_days=90)
        ).to_pylist()
        examples = connection.sql(
            "select * exclude (built_from) from ml.training_examples"
            f" where cutoff_date = '{cutoff}' order by user_id"
        ).to_arrow_table()
    # users known before as_of who bought in the 90 days after it
    with duckdb.connect() as own:  # fetchone on the default connection would leave its
        # result open and block that connection for every later test in this process
        ((buyers,),) = own.execute(
            f"select count(distinct user_id) from '{raw}' where event_type = 'purchase'"
            " and event_time >= '2025-10-03' and event_time < '2026-01-01' and user_id in"
            f" (select user_id from '{raw}' where event_time < '2025-10-03')"
        ).fetchall()
    assert shop["users"] == scored
    assert shop["buyers"] == buyers > 0

    # the baselines' inputs at the scoring cutoff are derived as training_examples derives
    # them: at a training cutoff, both give every non-label column alike
    inputs = [name for name in examples.schema.names if not name.startswith("label_")]
    assert len(derived) == examples.num_rows > 0
    for row, example in zip(derived, examples.to_pylist(), strict=True):
        for name in inputs:
            want = example[name]
            if isinstance(want, float):
                assert math.isclose(row[name], want, rel_tol=1e-9, abs_tol=1e-9), name
            else:
                assert row[name] == want, name

    (stored,) = tmp_path.glob("*-zoo.json")
    assert stored.with_suffix(".md").read_text() == zoo.render(json.loads(stored.read_text()))


def test_every_stored_zoo_result_s_markdown_is_its_json_rendered() -> None:
    stored = sorted(bench_run.RESULTS.glob("*-zoo*.json"))
    assert stored
    for path in stored:  # only the first line (the command) may be annotated
        written = path.with_suffix(".md").read_text().splitlines()[1:]
        assert zoo.render(json.loads(path.read_text())).splitlines()[1:] == written, path.name


def test_holdout_aligns_per_user_figures_to_the_scored_users_with_zero_for_the_missing() -> None:
    frame = pl.DataFrame({"user_id": ["b", "a", "z"], "spend": [2.5, 1.0, 9.0],
                          "purchased": [True, False, True]})  # fmt: skip
    spend, purchased = holdout.aligned(frame, ["a", "b", "c"], ["spend", "purchased"])

    assert spend.tolist() == [1.0, 2.5, 0.0]  # user order, "z" is not scored, "c" bought nothing
    assert purchased.tolist() == [False, True, False]
    assert purchased.dtype == bool


def _shop(name: str, **caps: tuple[float, float]) -> dict:
    """A judged shop: (normalized Gini, AUC) by cap, the uncapped one as ``uncapped``."""
    keys = {"uncapped": str(tree_cap.UNCAPPED)}
    return {
        "shop": name,
        "caps": {
            keys.get(cap, cap.removeprefix("c")): {"normalized_gini": gini, "auc": auc}
            for cap, (gini, auc) in caps.items()
        },
    }


def test_the_tree_cap_rule_takes_the_smallest_cap_within_tolerance_on_every_shop() -> None:
    first = _shop("a", uncapped=(0.90, 0.80), c50=(0.90, 0.80), c100=(0.90, 0.80))
    # 50 is within on the first shop only; a Gini 0.0015 lower is not within 0.001
    second = _shop("b", uncapped=(0.90, 0.80), c50=(0.8985, 0.80), c100=(0.8995, 0.7995))
    assert tree_cap.chosen([first], (50, 100)) == 50
    assert tree_cap.chosen([first, second], (50, 100)) == 100
    # the AUC counts as much as the Gini
    third = _shop("c", uncapped=(0.90, 0.80), c50=(0.90, 0.80), c100=(0.90, 0.798))
    assert tree_cap.chosen([first, second, third], (50, 100)) is None


def test_the_default_tree_cap_is_the_rule_s_pick_in_the_latest_stored_run() -> None:
    """The default follows the evidence: the dbt var, the CLI's option and training's
    constant all equal the cap the latest bench/tree_cap.py run picked."""
    import typer
    import yaml

    from purchasing_power.cli import app

    def order(path: Path) -> tuple[str, int]:  # <date>-tree-cap, then -2, -3... that day
        date, _, run = path.stem.partition("-tree-cap")
        return date, int(run.removeprefix("-") or 1)

    latest = max(bench_run.RESULTS.glob("*-tree-cap*.json"), key=order)
    result = json.loads(latest.read_text())
    assert tree_cap.chosen(result["shops"], tuple(result["caps"])) == result["chosen"]
    assert result["chosen"] == MAX_BOOST_ROUNDS
    project = yaml.safe_load((measure.REPO / "dbt_project.yml").read_text())
    assert project["vars"]["max_boost_rounds"] == MAX_BOOST_ROUNDS
    train = typer.main.get_command(app).commands["train"]
    (option,) = (param for param in train.params if param.name == "max_boost_rounds")
    assert option.default == MAX_BOOST_ROUNDS


def _judged(name: str, **settings: tuple[float, float]) -> dict:
    """A judged shop: (normalized Gini, AUC) by setting."""
    return {
        "shop": name,
        "settings": {s: {"normalized_gini": g, "auc": a} for s, (g, a) in settings.items()},
    }


def test_the_defaults_rule_takes_the_best_mean_among_settings_no_worse_anywhere() -> None:
    first = _judged("a", defaults=(0.80, 0.80), small=(0.83, 0.82), big=(0.81, 0.80))
    # small is far better on a but 0.0025 worse on b's AUC: not eligible
    second = _judged("b", defaults=(0.90, 0.90), small=(0.90, 0.8975), big=(0.901, 0.8985))
    assert training_defaults.chosen([first], ["defaults", "small", "big"]) == "small"
    assert training_defaults.chosen([first, second], ["defaults", "small", "big"]) == "big"
    # nothing better: the defaults stay, and they win a tie
    worse = _judged("c", defaults=(0.9, 0.9), small=(0.85, 0.9), big=(0.9, 0.9))
    assert training_defaults.chosen([worse], ["defaults", "small", "big"]) == "defaults"


def test_every_stored_training_defaults_result_s_markdown_is_its_json_rendered() -> None:
    stored = sorted(bench_run.RESULTS.glob("*-training-defaults*.json"))
    assert stored
    for path in stored:
        result = json.loads(path.read_text())
        assert path.with_suffix(".md").read_text() == training_defaults.render(result)
        assert (
            training_defaults.chosen(result["shops"], list(result["settings"]))
            == (result["chosen"])
        ), path.name


def test_the_shipped_training_defaults_are_the_rule_s_pick_in_the_latest_stored_run() -> None:
    """The latest bench/training_defaults.py run, judged at the shipped defaults, found
    no setting that beats them by the rule; and its defaults are those shipped."""
    from purchasing_power.train import HeadParams

    def order(path: Path) -> tuple[str, int]:
        date, _, run = path.stem.partition("-training-defaults")
        return date, int(run.removeprefix("-") or 1)

    latest = max(bench_run.RESULTS.glob("*-training-defaults*.json"), key=order)
    result = json.loads(latest.read_text())
    assert result["chosen"] == training_defaults.DEFAULTS
    assert result["defaults"] == vars(HeadParams())
    assert result["settings"][training_defaults.DEFAULTS] == {}
