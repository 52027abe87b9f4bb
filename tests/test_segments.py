"""Segments, price bands and category demand on the shared small build (issue 39).

The logic's edge cases are dbt unit tests (models/marts/_marts__unit_tests.yml); these
check what only a real build shows: the default rules on real scores, a bad rule in the
seed stopping the build by name, the bands and item fit on real purchases, and the
demand backtest against a reference read straight from the clean events.
"""

from __future__ import annotations

import datetime as dt
import shutil
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest

from dbt_runner import DbtProject, make_project

pytestmark = pytest.mark.slow

HORIZON_DAYS = 60  # the built fixture's


def _vars(raw: Path) -> dict:
    return {"raw_path": str(raw), "horizon_days": HORIZON_DAYS}


def _rows(path: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(path), read_only=True) as connection:
        return connection.execute(sql).fetchall()


def _copy(built: DbtProject, base: Path) -> DbtProject:
    project = make_project(base)
    shutil.copy(built.warehouse, project.warehouse)
    return project


def test_every_scored_user_gets_one_default_segment(built: DbtProject) -> None:
    scored = _rows(built.warehouse, "select count(*) from marts.purchasing_power_scores")[0][0]
    counts = dict(
        _rows(built.warehouse, "select segment, count(*) from marts.customer_segments group by 1")
    )
    assert sum(counts.values()) == scored
    rules = dict(_rows(built.warehouse, "select segment, priority from reference.segment_rules"))
    assert set(counts) <= set(rules)
    # the first build has no earlier score: nobody is falling, so nobody is at risk
    assert "at_risk" not in counts
    assert _rows(
        built.warehouse, "select bool_or(has_previous_score) from marts.customer_segments"
    ) == [(False,)]
    # with nobody at risk, high_value is exactly the top tenth of predicted spend
    ((top,),) = _rows(
        built.warehouse,
        "select count(*) from marts.customer_segments where predicted_spend_percentile >= 90",
    )
    assert counts["high_value"] == top
    assert 0.05 * scored <= top <= 0.15 * scored
    # no event on or after as_of reaches the inputs
    assert _rows(
        built.warehouse,
        "select min(days_since_last_event) >= 1, bool_and(days_since_first_event"
        " >= days_since_last_event) from marts.customer_segments",
    ) == [(True, True)]
    summary = dict(
        _rows(
            built.warehouse,
            "select segment, sum(user_count) from marts.purchasing_power_tier_summary"
            " where segment_type = 'customer_segment' group by 1",
        )
    )
    assert summary == counts


@pytest.mark.parametrize(
    ("condition", "says"),
    [
        ("predicted_spend >", "does not parse"),
        ("predicted_spend >>> 3", "cannot be evaluated on the input columns"),
        ("shoe_size > 3", "names shoe_size, which is not an input column"),
        ("predicted_spend * 2", "is DOUBLE, not a boolean"),
        (
            "predicted_spend > (select max(amount) from intermediate.int_events_validated)",
            "subquery",
        ),
    ],
)
def test_a_bad_segment_rule_stops_the_build_naming_its_row(
    built: DbtProject, small_raw: Path, tmp_path: Path, condition: str, says: str
) -> None:
    project = _copy(built, tmp_path)
    with duckdb.connect(str(project.warehouse)) as connection:
        connection.execute(
            "insert into reference.segment_rules by name"
            " select 0 as priority, 'broken' as segment, ? as condition, 'x' as description",
            [condition],
        )
    result = project.run("run", "--select", "customer_segments", vars=_vars(small_raw), check=False)
    assert result.returncode != 0
    assert "segment rule broken (priority 0) of segment_rules" in result.stdout
    assert says in result.stdout


def test_price_bands_rank_items_by_fit_within_the_user_s_categories(built: DbtProject) -> None:
    ((users, overall),) = _rows(
        built.warehouse,
        "select count(distinct user_id), count(*) filter (where is_overall)"
        " from marts.user_price_bands",
    )
    assert users == overall > 100
    # a one-line band is mostly the category's: k = 5 gives the line a sixth
    assert _rows(
        built.warehouse,
        "select bool_and(abs(user_weight - 1 / 6) < 1e-12) from marts.user_price_bands"
        " where count_purchase_lines = 1",
    ) == [(True,)]
    fits = _rows(
        built.warehouse,
        "select fit.user_id, fit.item_rank, fit.fit_score, bands.user_id is not null"
        " from marts.user_item_price_fit as fit"
        " left join marts.user_price_bands as bands"
        " on fit.user_id = bands.user_id and fit.category = bands.category"
        " order by fit.user_id, fit.item_rank",
    )
    assert fits
    assert all(has_band for *_, has_band in fits)
    per_user: dict[str, list[float]] = {}
    for user, rank, score, _ in fits:
        per_user.setdefault(user, []).append(score)
        assert rank == len(per_user[user])
    assert max(len(scores) for scores in per_user.values()) == 10
    assert all(scores == sorted(scores, reverse=True) for scores in per_user.values())


# Every band against every item of its category, ranked: what user_item_price_fit
# computes from a window of items around each band's median (the full pairing ran out of
# memory at the large bench's 156,250 items).
FULL_PAIRING = """
with items as (
    select item_id, any_value(category order by category) as category,
        any_value(list_price order by list_price) as list_price
    from staging.stg_raw__items
    where item_id is not null and category is not null and list_price > 0
    group by item_id
)
select bands.user_id, items.item_id,
    row_number() over (
        partition by bands.user_id
        order by least(items.list_price, bands.band_upper_price)
            / greatest(items.list_price, bands.band_lower_price) * bands.category_spend_share desc,
            abs(ln(items.list_price / bands.band_median_price)), items.item_id
    ) as item_rank
from marts.user_price_bands as bands
inner join items on bands.category = items.category
where not bands.is_overall
qualify item_rank <= 10
"""


def test_the_items_read_around_each_median_are_the_best_of_every_item(built: DbtProject) -> None:
    """user_item_price_fit reads only the items within n places of each band's median
    price (ties at the low end whole): the same rows as ranking every item, on a shop
    whose items share prices."""
    with duckdb.connect(str(built.warehouse), read_only=True) as connection:
        shared = connection.execute(
            "select count(*) from (select category, list_price from staging.stg_raw__items"
            " group by all having count(*) > 1)"
        ).fetchone()[0]
        fitted = connection.execute(
            "select user_id, item_id, item_rank from marts.user_item_price_fit order by all"
        ).fetchall()
        full = connection.execute(f"select * from ({FULL_PAIRING}) order by all").fetchall()
    assert shared > 0  # prices that several items of a category share
    assert len(fitted) > 1_000
    assert fitted == full


@dataclass(frozen=True)
class Backtest:
    project: DbtProject
    as_of: dt.date
    earlier: dt.date


@pytest.fixture(scope="module")
def backtest(
    built: DbtProject, small_raw: Path, tmp_path_factory: pytest.TempPathFactory
) -> Backtest:
    """The built shop with an earlier as_of, one horizon back, put into the score history
    (today's scores of the users seen by then) and the demand models built again."""
    project = _copy(built, tmp_path_factory.mktemp("demand"))
    with duckdb.connect(str(project.warehouse)) as connection:
        ((as_of,),) = connection.execute(
            "select distinct as_of from marts.purchasing_power_scores"
        ).fetchall()
        earlier = as_of - dt.timedelta(days=HORIZON_DAYS)
        connection.execute(
            """
            insert into marts.purchasing_power_score_history by name
            select history.* replace (
                history.as_of - $days as as_of,
                history.scored_at - to_days($days) as scored_at
            )
            from marts.purchasing_power_score_history as history
            inner join marts.customer_segments as segments using (user_id)
            where segments.days_since_first_event > $days
            """,
            {"days": HORIZON_DAYS},
        )
    project.run(
        "build", "--select", "category_demand_forecast", "category_demand_accuracy",
        vars=_vars(small_raw),
    )  # fmt: skip
    return Backtest(project, as_of, earlier)


def test_the_demand_backtest_matches_spend_read_from_the_events(backtest: Backtest) -> None:
    checked = _rows(
        backtest.project.warehouse,
        "select category, expected_spend, actual_spend, actual_spend_all_users,"
        " absolute_percentage_error from marts.category_demand_accuracy order by category",
    )
    reference = _rows(
        backtest.project.warehouse,
        f"""
        select
            coalesce(category, 'unknown'),
            coalesce(sum(amount) filter (where user_id in (
                select user_id from marts.purchasing_power_score_history
                where as_of = '{backtest.earlier}'
            )), 0),
            sum(amount)
        from (
            select user_id, category,
                case event_type when 'purchase' then amount else -amount end as amount
            from intermediate.int_events_validated
            where is_clean and event_type in ('purchase', 'refund')
                and event_date >= '{backtest.earlier}' and event_date < '{backtest.as_of}'
        )
        group by 1 order by 1
        """,
    )
    assert [category for category, *_ in checked] == [category for category, *_ in reference]
    for (_, _, actual, everyone, _), (_, reference_actual, reference_everyone) in zip(
        checked, reference, strict=True
    ):
        assert actual == pytest.approx(reference_actual, abs=1e-6)
        assert everyone == pytest.approx(reference_everyone, abs=1e-6)
    # the old forecast spreads exactly the old scores' predicted spend
    ((expected, predicted),) = _rows(
        backtest.project.warehouse,
        f"""
        select
            (select sum(expected_spend) from marts.category_demand_accuracy),
            (select sum(predicted_spend) from marts.purchasing_power_score_history
             where as_of = '{backtest.earlier}')
        """,
    )
    assert expected == pytest.approx(predicted, abs=0.01 * len(checked) * 20)
    assert any(error is not None and error > 0 for *_, error in checked)
    # the current forecast is not checked yet
    assert _rows(
        backtest.project.warehouse,
        "select bool_and(actual_spend is null) = bool_and(is_current),"
        " count(distinct as_of) from marts.category_demand_forecast",
    ) == [(True, 2)]
