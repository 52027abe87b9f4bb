"""The whole monitoring loop, with real dbt builds one scoring date after another:
a shop where 60% of the customers leave on a given date raises drift and
realized-performance alerts, retrains by itself (retrain: auto) and recovers; the same
shop without the shift raises no alert and keeps its model."""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pytest

from dbt_runner import make_project
from purchasing_power import monitoring
from purchasing_power.generate import GeneratorSettings, Shift, generate

pytestmark = pytest.mark.slow

SHIFT_DATE = dt.date(2025, 9, 10)
STEP = dt.timedelta(days=14)  # one horizon: each build completes the previous one's labels
# as_of S-14 trains the first model; S sees no shift yet; S+14 labels S (post-shift) and
# sees two weeks of it; S+28 retrains on what the S+14 build found; S+42 labels S+28.
SHIFTED_AS_OFS = [SHIFT_DATE + k * STEP for k in range(-1, 4)]
STABLE_AS_OFS = SHIFTED_AS_OFS[:3]
SHOP = {"users": 800, "days": 300, "seed": 7, "dirty_fraction": 0.001}
VARS = {
    "horizon_days": 14,
    "cutoff_spacing_days": 7,
    "training_cutoffs": 3,
    "max_boost_rounds": 30,
}
# what the loop needs: monitoring, what it is built from (the model choice, scores and
# their history, evaluations), its own tests (the alerts) and none of the others', which
# other tests run; a third of the nodes of a whole build
SELECTED = [
    "--select", "+path:models/monitoring", "path:models/monitoring,resource_type:test",
    "--indirect-selection", "empty",
]  # fmt: skip


@dataclass(frozen=True)
class Step:
    """What one build left: its dbt output and the monitoring tables' rows."""

    as_of: dt.date
    stdout: str
    alerts: list[tuple]  # (check_name, subject, model_version, alert_level)
    models: list[tuple]  # (model_version, is_active, training_reason)
    performance: dict[tuple, dict]  # (as_of, model_version) -> row


def _build_day_by_day(base: Path, shift: Shift | None, as_ofs: list[dt.date]) -> list[Step]:
    raw = base / "raw"
    generate(raw, settings=GeneratorSettings(**SHOP, shift=shift))
    project = make_project(base / "project")
    steps = []
    for as_of in as_ofs:
        result = project.run(
            "build", *SELECTED,
            vars={"raw_path": str(raw), "as_of": as_of.isoformat(), **VARS},
        )  # fmt: skip
        with duckdb.connect(str(project.warehouse), read_only=True) as connection:
            alerts = connection.sql(
                "select check_name, subject, model_version, alert_level"
                " from monitoring.monitoring_alerts order by all"
            ).fetchall()
            models = connection.sql(
                "select model_version, is_active, training_reason from ml.ml_models order by 1"
            ).fetchall()
            relation = connection.sql("select * from monitoring.monitoring_performance")
            # (fetched whole: the rows are few)
            performance = {
                (row[0], row[1]): dict(zip(relation.columns, row, strict=True))
                for row in relation.fetchall()
            }
        steps.append(Step(as_of, result.stdout, alerts, models, performance))
    return steps


@pytest.fixture(scope="module")
def shifted(tmp_path_factory: pytest.TempPathFactory) -> list[Step]:
    return _build_day_by_day(
        tmp_path_factory.mktemp("shifted"), Shift(SHIFT_DATE, churn_share=0.6), SHIFTED_AS_OFS
    )


@pytest.fixture(scope="module")
def stable_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("stable")


@pytest.fixture(scope="module")
def stable(stable_base: Path) -> list[Step]:
    return _build_day_by_day(stable_base, None, STABLE_AS_OFS)


def _levels(step: Step, prefix: str) -> set[str]:
    return {level for check, _, _, level in step.alerts if check.startswith(prefix)}


def test_drift_and_realized_performance_alerts_fire_after_the_shift(shifted: list[Step]) -> None:
    before, at_shift, after = shifted[0], shifted[1], shifted[2]
    for step in (before, at_shift):
        assert "alert" not in {level for *_, level in step.alerts}, step.alerts
    # two weeks in: the activity of the customers who left moved the features, and the
    # scores published at the shift date (horizon now passed) were far off
    assert "alert" in _levels(after, "feature_drift_reference"), after.alerts
    assert "alert" in _levels(after, "realized_"), after.alerts
    # dbt shows them as warnings, and the build still succeeds
    assert "WARN" in after.stdout
    assert "alert_feature_drift" in after.stdout
    assert "alert_realized_performance" in after.stdout


def test_retrain_auto_trains_once_the_monitoring_says_so(shifted: list[Step]) -> None:
    trained = [len(step.models) for step in shifted]
    # the first build trains (no model), the builds up to the alerts keep it, the build
    # after the alerts trains again, with the reason recorded
    assert trained[:4] == [1, 1, 1, 2], trained
    reasons = dict((version, reason) for version, _, reason in shifted[3].models)
    first, second = sorted(reasons)
    assert reasons[first] == "no accepted model for this horizon"
    assert reasons[second].startswith("retrain: auto, ")
    assert "feature_drift" in reasons[second] or "realized_" in reasons[second]
    assert [version for version, active, _ in shifted[3].models if active] == [second]


def test_the_retrained_model_recovers(shifted: list[Step]) -> None:
    last = shifted[-1].performance
    old = last[(SHIFT_DATE, shifted[1].models[0][0])]
    retrained_version = next(version for version, active, _ in shifted[3].models if active)
    new = last[(SHIFTED_AS_OFS[3], retrained_version)]
    assert old["is_horizon_complete"]
    assert new["is_horizon_complete"]
    # the old model expected the customers who left to buy; the new one expects as many
    # buyers as there were again (within the alert threshold, |ln ratio| < 0.5) and
    # ranks as it validated
    assert abs(np.log(old["realized_buyers_ratio"])) > 0.5
    assert abs(np.log(new["realized_buyers_ratio"])) < 0.3
    assert new["realized_auc"] > old["realized_auc"]
    assert new["validation_auc"] - new["realized_auc"] < 0.05
    realized = {alert for alert in shifted[-1].alerts if alert[0].startswith("realized_")}
    assert not [alert for alert in realized if alert[3] == "alert"], realized


def test_a_stable_shop_raises_no_alert_and_keeps_its_model(stable: list[Step]) -> None:
    for step in stable:
        assert not [alert for alert in step.alerts if alert[3] == "alert"], step.alerts
        # every alert test ran and passed: none warned (they warn on alert-level rows only;
        # other tests may warn, e.g. on the events after a backfilled as_of, rejected)
        found = re.findall(r" of \d+ (PASS|WARN \d+) (alert_\w+) ", step.stdout)
        results = {name: status for status, name in found}
        assert sorted(results.values()) == ["PASS"] * 5, results
    assert [len(step.models) for step in stable] == [1, 1, 1]
    # the realized figures exist (the horizons passed) and sit near the validation ones
    complete = [row for row in stable[-1].performance.values() if row["is_horizon_complete"]]
    assert len(complete) == 2
    for row in complete:
        assert row["validation_auc"] - row["realized_auc"] < 0.10
        assert abs(row["estimated_auc_error"]) < 0.10
        assert abs(np.log(row["realized_buyers_ratio"])) < 0.3


def test_realized_figures_count_the_label_window_from_as_of_on(
    stable: list[Step], stable_base: Path
) -> None:
    """Buyers and spend as an independent query counts them: clean purchases and refunds
    in [as_of, as_of + 14 days), net spend floored at 0 per user."""
    warehouse = stable_base / "project" / "warehouse.duckdb"
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        counted = connection.sql(
            """
            with outcomes as (
                select history.as_of, history.user_id,
                    count(events.event_id) filter (where events.event_type = 'purchase') > 0
                        as bought,
                    greatest(coalesce(sum(case when events.event_type = 'purchase'
                        then events.amount else -events.amount end), 0), 0) as spend
                from marts.purchasing_power_score_history as history
                left join intermediate.int_events_validated as events
                    on events.user_id = history.user_id and events.is_clean
                    and events.event_type in ('purchase', 'refund')
                    and events.event_at >= history.as_of
                    and events.event_at < history.as_of + interval 14 day
                group by all
            )
            select as_of, count(*) filter (where bought), sum(spend) from outcomes group by 1
            """
        ).fetchall()
    realized = {
        as_of: (row["realized_buyers"], row["realized_spend"])
        for (as_of, _), row in stable[-1].performance.items()
        if row["is_horizon_complete"]
    }
    assert len(realized) == 2
    for as_of, buyers, spend in counted:
        if as_of in realized:
            assert realized[as_of][0] == buyers
            assert realized[as_of][1] == pytest.approx(spend)


def test_drift_and_estimates_in_sql_match_their_python_definitions(
    stable: list[Step], stable_base: Path
) -> None:
    warehouse = stable_base / "project" / "warehouse.duckdb"
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        drift = connection.sql(
            "select psi, jensen_shannon, baseline_bin_rows, current_bin_rows, baseline_rows,"
            " current_rows from monitoring.monitoring_drift"
        ).fetchall()
        history = connection.sql(
            "select as_of, model_version, list(purchase_probability order by user_id)"
            " from marts.purchasing_power_score_history group by 1, 2"
        ).fetchall()
        estimated = dict(
            ((row[0], row[1]), row[2])
            for row in connection.sql(
                "select as_of, model_version, estimated_auc from monitoring.monitoring_performance"
            ).fetchall()
        )
    assert len(drift) > 100
    for psi, js, baseline, current, baseline_rows, current_rows in drift:
        assert sum(baseline) == baseline_rows
        assert sum(current) == current_rows
        assert psi == pytest.approx(monitoring.population_stability_index(baseline, current))
        assert js == pytest.approx(monitoring.jensen_shannon(baseline, current), abs=1e-12)
    for as_of, version, probabilities in history:
        assert estimated[(as_of, version)] == pytest.approx(
            monitoring.expected_auc(np.array(probabilities))
        )


def test_a_model_without_a_card_reference_falls_back_and_says_so(
    stable: list[Step], stable_base: Path, tmp_path: Path
) -> None:
    artifacts = stable_base / "project" / "artifacts"
    (card_path,) = artifacts.glob("*/card.json")
    card = json.loads(card_path.read_text())
    assert set(card["reference"]["features"]) == {f["name"] for f in card["features"]}
    assert card["reference"]["features_source"] == "training rows"
    old = tmp_path / card["model_version"]
    shutil.copytree(card_path.parent, old)
    del card["reference"]
    (old / "card.json").write_text(json.dumps(card))
    warehouse = stable_base / "project" / "warehouse.duckdb"
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        table = monitoring.references_table(
            [(card["model_version"], str(old))],
            examples=connection.table("ml.training_examples"),
            history=connection.table("marts.purchasing_power_score_history"),
        )
    sources = set(table.column("reference_source").to_pylist())
    # the model was trained at the first as_of; training_examples now holds the last
    # build's cutoffs only
    assert sources == {
        "training_examples (none of its 3 training cutoffs; the 3 held now)",
        f"first scores (as_of {STABLE_AS_OFS[0]})",
    }
    assert set(table.column("column_name").to_pylist()) == {
        *(f["name"] for f in card["features"]),
        *monitoring.OUTPUT_COLUMNS,
    }
