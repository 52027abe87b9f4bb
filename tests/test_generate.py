"""Tests of the synthetic event generator (small sizes, a few seconds each)."""

from __future__ import annotations

import datetime
import math
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from purchasing_power.generate import (
    EVENT_TYPES,
    PRESETS,
    GeneratedData,
    GeneratorSettings,
    generate,
)
from zoo import shop_stats

EVENT_COLUMNS = [
    "event_id",
    "user_id",
    "event_time",
    "event_type",
    "item_id",
    "category",
    "price",
    "quantity",
    "amount",
    "order_id",
    "session_id",
    "rating",
    "review_text",
    "channel",
]
SMALL = {"users": 1_500, "days": 120, "seed": 7}


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> GeneratedData:
    out = tmp_path_factory.mktemp("clean")
    return generate(out, settings=GeneratorSettings(**SMALL, dirty_fraction=0.0))


@pytest.fixture(scope="module")
def dirty(tmp_path_factory: pytest.TempPathFactory) -> GeneratedData:
    out = tmp_path_factory.mktemp("dirty")
    return generate(out, settings=GeneratorSettings(**SMALL, dirty_fraction=0.01))


@pytest.fixture(scope="module")
def dirty_csv(tmp_path_factory: pytest.TempPathFactory) -> GeneratedData:
    out = tmp_path_factory.mktemp("dirty_csv")
    settings = GeneratorSettings(users=400, days=60, seed=3, file_format="csv", dirty_fraction=0.02)
    return generate(out, settings=settings)


@pytest.fixture(scope="module")
def year(tmp_path_factory: pytest.TempPathFactory) -> GeneratedData:
    out = tmp_path_factory.mktemp("year")
    return generate(out, settings=GeneratorSettings(users=2_500, seed=11, dirty_fraction=0.0))


def _sql(query: str, **files: Path) -> list[tuple]:
    con = duckdb.connect()
    for name, path in files.items():
        con.execute(f"create view {name} as select * from '{path}'")
    return con.execute(query).fetchall()


def _one(query: str, **files: Path) -> object:
    return _sql(query, **files)[0][0]


# --------------------------------------------------------------------------------------
# contract
# --------------------------------------------------------------------------------------


def test_files_and_counts(clean: GeneratedData) -> None:
    assert clean.events_path == clean.out_dir / "events.parquet"
    assert clean.users_path == clean.out_dir / "users.parquet"
    assert clean.items_path == clean.out_dir / "items.parquet"
    assert clean.ground_truth_path == clean.out_dir / "ground_truth.parquet"
    assert pq.read_metadata(clean.events_path).num_rows == clean.events
    assert pq.read_metadata(clean.users_path).num_rows == clean.users == SMALL["users"]
    assert pq.read_metadata(clean.items_path).num_rows == clean.items
    assert pq.read_metadata(clean.ground_truth_path).num_rows == SMALL["users"]
    assert 40_000 < clean.events < 200_000
    assert pq.read_metadata(clean.events_path).row_group(0).column(0).compression == "ZSTD"


def test_event_schema(clean: GeneratedData) -> None:
    schema = pq.read_schema(clean.events_path)
    assert schema.names == EVENT_COLUMNS
    expected = {
        "event_time": pa.timestamp("us"),
        "price": pa.float64(),
        "amount": pa.float64(),
        "quantity": pa.int32(),
        "rating": pa.int32(),
    }
    for name in EVENT_COLUMNS:
        assert schema.field(name).type == expected.get(name, pa.string()), name
    assert schema.field("event_time").type.tz is None


def test_dimension_schemas(clean: GeneratedData) -> None:
    users = pq.read_schema(clean.users_path)
    assert users.names == ["user_id", "signed_up_at", "region", "age_band"]
    assert users.field("signed_up_at").type == pa.timestamp("us")
    items = pq.read_schema(clean.items_path)
    assert items.names == ["item_id", "category", "list_price", "brand"]
    assert items.field("list_price").type == pa.float64()
    truth = pq.read_schema(clean.ground_truth_path)
    assert truth.names == [
        "user_id",
        "latent_power",
        "activity_rate",
        "purchase_rate",
        "churned_at",
        "expected_daily_spend",
    ]
    assert truth.field("churned_at").type == pa.timestamp("us")


def test_identifier_formats_and_uniqueness(clean: GeneratedData) -> None:
    row = _sql(
        """
        select count(*), count(distinct event_id),
               count(*) filter (where not regexp_full_match(event_id, 'e[0-9]{9,}')),
               count(*) filter (where not regexp_full_match(user_id, 'u[0-9]{6,}')),
               count(*) filter (where item_id is not null
                                and not regexp_full_match(item_id, 'i[0-9]{5,}')),
               count(*) filter (where order_id is not null
                                and not regexp_full_match(order_id, 'o[0-9]{7,}')),
               count(*) filter (where session_id is not null
                                and not regexp_full_match(session_id, 's[0-9]{8,}'))
        from ev
        """,
        ev=clean.events_path,
    )[0]
    assert row[0] == row[1] == clean.events
    assert row[2:] == (0, 0, 0, 0, 0)
    orphans = _one(
        """
        select count(*) from ev
        where user_id not in (select user_id from us)
           or (item_id is not null and item_id not in (select item_id from it))
        """,
        ev=clean.events_path,
        us=clean.users_path,
        it=clean.items_path,
    )
    assert orphans == 0


def test_columns_filled_per_event_type(clean: GeneratedData) -> None:
    rows = _sql(
        """
        select event_type, count(*),
               count(item_id), count(price), count(quantity), count(amount),
               count(order_id), count(rating), count(review_text),
               count(*) filter (where session_id is null)
        from ev group by 1
        """,
        ev=clean.events_path,
    )
    by_type = {r[0]: r[1:] for r in rows}
    assert set(by_type) == set(EVENT_TYPES)
    for etype, (n, item, price, qty, amount, order, rating, text, no_session) in by_type.items():
        assert item == (0 if etype == "search" else n), etype
        assert price == (0 if etype in ("search", "review") else n), etype
        assert qty == (
            n if etype in ("add_to_cart", "remove_from_cart", "purchase", "refund") else 0
        )
        assert amount == order == (n if etype in ("purchase", "refund") else 0), etype
        assert rating == text == (n if etype == "review" else 0), etype
        if etype in ("refund", "review"):
            assert no_session == n  # back-office / later events carry no session
    total = sum(v[0] for v in by_type.values())
    share_without_session = sum(v[-1] for v in by_type.values()) / total
    assert 0.2 < share_without_session < 0.4
    # the funnel narrows
    assert (
        by_type["page_view"][0]
        > by_type["product_click"][0]
        > by_type["add_to_cart"][0]
        > by_type["purchase"][0]
        > by_type["refund"][0]
    )
    channels = {r[0] for r in _sql("select distinct channel from ev", ev=clean.events_path)}
    assert channels == {"web", "app", "mobile_web"}


def test_times_within_period(tmp_path: Path) -> None:
    start = datetime.date(2024, 2, 27)  # crosses a leap day
    settings = GeneratorSettings(users=300, days=10, seed=5, start_date=start, dirty_fraction=0.05)
    data = generate(tmp_path, settings=settings)
    lo, hi, nulls = _sql(
        "select min(event_time), max(event_time), count(*) - count(event_time) from ev",
        ev=data.events_path,
    )[0]
    assert lo >= datetime.datetime(2024, 2, 27)
    assert hi < datetime.datetime(2024, 3, 8)
    assert nulls > 0  # the dirty kind "missing event_time"
    # nobody acts before signing up
    early = _one(
        """
        select count(*) from ev join us using (user_id) where event_time < signed_up_at
        """,
        ev=data.events_path,
        us=data.users_path,
    )
    assert early == 0


def test_signups_before_and_during_period(clean: GeneratedData) -> None:
    before, during = _sql(
        """
        select count(*) filter (where signed_up_at < timestamp '2025-01-01'),
               count(*) filter (where signed_up_at >= timestamp '2025-01-01')
        from us
        """,
        us=clean.users_path,
    )[0]
    assert before > 0.3 * clean.users
    assert during > 0.1 * clean.users


# --------------------------------------------------------------------------------------
# determinism
# --------------------------------------------------------------------------------------


def test_same_seed_gives_identical_files(tmp_path: Path) -> None:
    settings = GeneratorSettings(users=300, days=60, seed=123)
    a = generate(tmp_path / "a", settings=settings)
    b = generate(tmp_path / "b", settings=settings)
    assert a.events == b.events > 0
    assert pq.read_table(a.events_path).equals(pq.read_table(b.events_path))
    for name in ("events.parquet", "users.parquet", "items.parquet", "ground_truth.parquet"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


def test_different_seed_differs(tmp_path: Path) -> None:
    a = generate(tmp_path / "a", settings=GeneratorSettings(users=300, days=60, seed=1))
    b = generate(tmp_path / "b", settings=GeneratorSettings(users=300, days=60, seed=2))
    ta, tb = pq.read_table(a.events_path), pq.read_table(b.events_path)
    n = min(ta.num_rows, tb.num_rows)
    assert not ta.slice(0, n).equals(tb.slice(0, n))
    assert not pq.read_table(a.ground_truth_path).equals(pq.read_table(b.ground_truth_path))


def test_existing_files_are_overwritten(tmp_path: Path) -> None:
    generate(tmp_path, settings=GeneratorSettings(users=200, days=30, seed=1))
    second = generate(tmp_path, settings=GeneratorSettings(users=100, days=30, seed=1))
    assert pq.read_metadata(second.users_path).num_rows == 100
    assert pq.read_metadata(second.events_path).num_rows == second.events


# --------------------------------------------------------------------------------------
# dirty rows
# --------------------------------------------------------------------------------------

_DIRTY_COUNTS = """
    select
      (select count(*) from (select * from ev group by all having count(*) > 1)),
      (select count(*) from (select event_id from ev where event_id is not null
                             group by 1 having count(distinct ev::varchar) > 1)),
      count(*) filter (where event_id is null),
      count(*) filter (where user_id is null),
      count(*) filter (where event_time is null),
      count(*) filter (where event_type not in ({types})),
      count(*) filter (where price < 0 or amount < 0),
      count(*) filter (where quantity <= 0)
    from ev
""".format(types=", ".join(f"'{t}'" for t in EVENT_TYPES))


def test_dirty_rows_of_every_kind(dirty: GeneratedData, clean: GeneratedData) -> None:
    counts = _sql(_DIRTY_COUNTS, ev=dirty.events_path)[0]
    kinds = (
        "exact_duplicate",
        "conflicting_duplicate",
        "missing_event_id",
        "missing_user_id",
        "missing_event_time",
        "unknown_event_type",
        "negative_price_or_amount",
        "bad_quantity",
    )
    for kind, count in zip(kinds, counts, strict=True):
        assert count > 0, kind
    # dirty rows come on top of the same clean rows: same seed, same clean events
    assert dirty.events == clean.events + math.ceil(0.01 * clean.events)
    extra = _one(
        "select count(*) from (from d except all from c)",
        d=dirty.events_path,
        c=clean.events_path,
    )
    assert extra == dirty.events - clean.events
    types = {r[0] for r in _sql("select distinct event_type from ev", ev=dirty.events_path)}
    assert "wishlist_add_v2" in types - set(EVENT_TYPES)


def test_dirty_rows_are_spread_out(dirty: GeneratedData) -> None:
    positions = np.flatnonzero(
        pq.read_table(dirty.events_path, columns=["event_id"])
        .column(0)
        .is_null()
        .to_numpy(zero_copy_only=False)
    )
    assert len(positions) >= 10
    assert positions.min() < dirty.events * 0.3
    assert positions.max() > dirty.events * 0.7


def test_conflicting_duplicates_differ_in_amount(dirty: GeneratedData) -> None:
    rows = _sql(
        """
        select event_id, count(distinct amount), count(distinct price), count(distinct user_id)
        from ev where event_id in (
            select event_id from ev group by 1 having count(distinct ev::varchar) > 1
        )
        group by 1
        """,
        ev=dirty.events_path,
    )
    assert rows
    for _, n_amount, n_price, n_user in rows:
        assert n_amount >= 2
        assert (n_price, n_user) == (1, 1)


def test_no_dirty_rows_when_disabled(clean: GeneratedData) -> None:
    assert _sql(_DIRTY_COUNTS, ev=clean.events_path)[0] == (0,) * 8


def test_csv_format(dirty_csv: GeneratedData) -> None:
    assert dirty_csv.events_path.name == "events.csv"
    assert dirty_csv.ground_truth_path.name == "ground_truth.parquet"
    con = duckdb.connect()
    rel = con.sql(f"select * from read_csv('{dirty_csv.events_path}', all_varchar=true)")
    assert rel.columns == EVENT_COLUMNS
    assert len(rel.fetchall()) == dirty_csv.events
    bad, good, missing = con.execute(
        rf"""
        select count(*) filter (where event_time is not null
                                and try_strptime(event_time, '%Y-%m-%d %H:%M:%S') is null),
               count(*) filter (where regexp_full_match(
                   event_time, '\d{{4}}-\d{{2}}-\d{{2}} \d{{2}}:\d{{2}}:\d{{2}}')
                   and try_strptime(event_time, '%Y-%m-%d %H:%M:%S') is not null),
               count(*) filter (where event_time is null)
        from read_csv('{dirty_csv.events_path}', all_varchar=true)
        """
    ).fetchone()
    assert bad > 0  # unparseable event_time strings exist only in csv
    assert missing > 0
    assert bad + good + missing == dirty_csv.events
    assert (
        con.execute(
            f"""select count(*) from read_csv('{dirty_csv.events_path}', all_varchar=true)
                where event_time = 'not-a-time'"""
        ).fetchone()[0]
        > 0
    )
    users = con.sql(f"select * from read_csv('{dirty_csv.users_path}', all_varchar=true)")
    assert users.columns == ["user_id", "signed_up_at", "region", "age_band"]
    items = con.sql(f"select * from read_csv('{dirty_csv.items_path}', all_varchar=true)")
    assert items.columns == ["item_id", "category", "list_price", "brand"]
    # review texts with commas survive the round trip
    texts = con.execute(
        f"""select count(*) from read_csv('{dirty_csv.events_path}', all_varchar=true)
            where review_text like '%,%'"""
    ).fetchone()[0]
    assert texts > 0


def test_csv_and_parquet_hold_the_same_rows(tmp_path: Path) -> None:
    base = {"users": 200, "days": 30, "seed": 9, "dirty_fraction": 0.0}
    p = generate(tmp_path / "p", settings=GeneratorSettings(**base))
    c = generate(tmp_path / "c", settings=GeneratorSettings(**base, file_format="csv"))
    assert p.events == c.events
    diff = _one(
        f"""
        select count(*) from (
            select * replace (strftime(event_time, '%Y-%m-%d %H:%M:%S') as event_time) from p
            except all
            select * from read_csv('{c.events_path}', all_varchar=false,
                                   types={{'event_time': 'varchar'}})
        )
        """,
        p=p.events_path,
    )
    assert diff == 0


# --------------------------------------------------------------------------------------
# realism
# --------------------------------------------------------------------------------------


def test_purchase_amount_is_price_times_quantity(clean: GeneratedData) -> None:
    n, off, min_qty, multi_line = _sql(
        """
        select count(*), count(*) filter (where abs(amount - price * quantity) > 0.005),
               min(quantity),
               (select count(*) from (select order_id from ev where event_type = 'purchase'
                                      group by 1 having count(*) > 1))
        from ev where event_type = 'purchase'
        """,
        ev=clean.events_path,
    )[0]
    assert n > 500
    assert off == 0
    assert min_qty == 1
    assert multi_line > 0


def test_refunds_reference_purchases(clean: GeneratedData) -> None:
    n, unmatched, early, too_many = _sql(
        """
        with p as (
            select order_id, item_id, user_id, max(event_time) t, sum(quantity) q
            from ev where event_type = 'purchase' group by all
        )
        select count(*), count(*) filter (where p.order_id is null),
               count(*) filter (where r.event_time <= p.t + interval 2 days),
               count(*) filter (where r.quantity > p.q or r.amount <= 0)
        from ev r left join p using (order_id, item_id, user_id)
        where r.event_type = 'refund'
        """,
        ev=clean.events_path,
    )[0]
    assert n > 10
    assert unmatched == early == too_many == 0


def test_review_sentiment_matches_rating(clean: GeneratedData) -> None:
    rows = _sql(
        "select review_text, min(rating), max(rating), count(*) from ev "
        "where event_type = 'review' group by 1",
        ev=clean.events_path,
    )
    assert len(rows) > 10
    for text, lo, hi, _ in rows:
        assert lo == hi, text  # each text belongs to one rating level
        if "love it" in text or "great" in text:
            assert lo >= 4
        if "terrible" in text or "waste" in text:
            assert lo <= 2
    counts = dict(
        _sql(
            "select rating, count(*) from ev where event_type = 'review' group by 1",
            ev=clean.events_path,
        )
    )
    assert set(counts) == {1, 2, 3, 4, 5}
    assert counts[5] > counts[1]


def test_sessions_have_no_30_minute_gaps(clean: GeneratedData) -> None:
    longest = _one(
        """
        select max(gap) from (
            select event_time - lag(event_time) over (
                partition by session_id order by event_time, event_id) as gap
            from ev where session_id is not null
        )
        """,
        ev=clean.events_path,
    )
    assert longest < datetime.timedelta(minutes=30)


def test_latent_power_drives_spend(year: GeneratedData) -> None:
    rows = _sql(
        """
        select g.latent_power, g.expected_daily_spend, coalesce(s.spend, 0)
        from g left join (
            select user_id, sum(amount) spend from ev where event_type = 'purchase' group by 1
        ) s using (user_id)
        """,
        ev=year.events_path,
        g=year.ground_truth_path,
    )
    power, expected, spend = (np.array(c, dtype=np.float64) for c in zip(*rows, strict=True))
    buyers = spend > 0
    assert buyers.sum() > 500
    assert _spearman(power[buyers], spend[buyers]) > 0.3
    assert _spearman(power, spend) > 0.15
    assert _spearman(expected, spend) > 0.5
    # richer buyers buy pricier items
    avg_price = _sql(
        """
        select g.latent_power, avg(price) from ev join g using (user_id)
        where event_type = 'purchase' group by all
        """,
        ev=year.events_path,
        g=year.ground_truth_path,
    )
    p, a = (np.array(c, dtype=np.float64) for c in zip(*avg_price, strict=True))
    assert _spearman(p, a) > 0.3


def test_population_heterogeneity(year: GeneratedData) -> None:
    truth = pq.read_table(year.ground_truth_path).to_pydict()
    power = np.array(truth["latent_power"])
    rate = np.array(truth["purchase_rate"])
    churned = np.array([t is not None for t in truth["churned_at"]])
    log_power = np.log(power)
    assert 0.5 < log_power.std() < 1.0  # log-normal budget
    assert np.mean(np.abs(log_power - np.median(log_power)) > 1.0) > 0.1
    assert 0.1 < np.mean(rate == 0) < 0.35  # never-buyers
    assert 0.1 < churned.mean() < 0.7
    buyers_never_buy = _one(
        """
        select count(*) from ev join g using (user_id)
        where event_type = 'purchase' and g.purchase_rate = 0
        """,
        ev=year.events_path,
        g=year.ground_truth_path,
    )
    assert buyers_never_buy == 0
    quiet_after_churn = _one(
        """
        select count(*) from ev join g using (user_id)
        where g.churned_at is not null
          and ev.event_time >= g.churned_at + interval 1 day  -- a session may run on
          and ev.event_type not in ('refund', 'review')
        """,
        ev=year.events_path,
        g=year.ground_truth_path,
    )
    assert quiet_after_churn == 0


def test_weekly_and_daily_rhythm(year: GeneratedData) -> None:
    rows = dict(
        _sql(
            "select isodow(event_time) >= 6, count(*) / count(distinct event_time::date) "
            "from ev group by 1",
            ev=year.events_path,
        )
    )
    assert rows[True] > 1.1 * rows[False]
    hours = dict(_sql("select hour(event_time), count(*) from ev group by 1", ev=year.events_path))
    assert hours[20] > 5 * hours[4]


def test_category_price_levels(clean: GeneratedData) -> None:
    levels = dict(
        _sql("select category, median(list_price) from it group by 1", it=clean.items_path)
    )
    assert 20 <= len(levels) <= 40
    assert levels["groceries"] < 10
    assert levels["computers"] > 300
    assert levels["jewellery"] > 20 * levels["groceries"]
    assert levels["electronics"] > 5 * levels["books"]
    brands = _one("select count(distinct brand) from it", it=clean.items_path)
    assert brands > 100


@pytest.mark.parametrize(
    "settings",
    [
        GeneratorSettings(users=0),
        GeneratorSettings(days=0),
        GeneratorSettings(dirty_fraction=-0.1),
        GeneratorSettings(dirty_fraction=1.0),
        GeneratorSettings(file_format="json"),  # type: ignore[arg-type]
        GeneratorSettings(preset="bakery"),  # type: ignore[arg-type]
    ],
)
def test_invalid_settings(tmp_path: Path, settings: GeneratorSettings) -> None:
    with pytest.raises(ValueError, match="must be"):
        generate(tmp_path, settings=settings)


def test_tiny_and_empty_outputs(tmp_path: Path) -> None:
    data = generate(tmp_path / "new" / "dir", settings=GeneratorSettings(users=1, days=1))
    assert data.out_dir.is_dir()
    assert pq.read_metadata(data.events_path).num_rows == data.events
    assert pq.read_schema(data.events_path).names == EVENT_COLUMNS


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(_ranks(a), _ranks(b))[0, 1])


def _ranks(x: np.ndarray) -> np.ndarray:
    """Average ranks (ties share their mean rank)."""
    order = np.argsort(x, kind="stable")
    sorted_x = x[order]
    first = np.concatenate([[True], sorted_x[1:] != sorted_x[:-1]])
    group = np.cumsum(first) - 1
    starts = np.flatnonzero(first)
    ends = np.concatenate([starts[1:], [len(x)]])
    mean_rank = (starts + ends - 1) / 2.0
    ranks = np.empty(len(x))
    ranks[order] = mean_rank[group]
    return ranks


# --------------------------------------------------------------------------------------
# presets: a zoo of shops
# --------------------------------------------------------------------------------------

# each preset's signature; the default shop fails every one of them (see the last test)
_SIGNATURES: dict[str, dict[str, tuple[float, float]]] = {
    "grocery": {
        "quarter_buyer_share": (0.7, 1.0),  # most customers buy in any quarter
        "orders_per_customer": (25.0, math.inf),  # weekly baskets
        "p90_order_value": (0.0, 160.0),  # low basket values: no large baskets
        "p90_over_median_order_value": (0.0, 3.5),  # low variance
        "categories_per_order": (1.8, math.inf),
    },
    "cdnow": {
        "last_first_purchase_day": (0, 83),  # one 12-week cohort
        "share_two_purchase_days_or_fewer": (0.6, 1.0),
        "last_over_second_quarter_purchases": (0.0, 0.6),  # customers drop out (BG/NBD)
        "not_at_midnight": (0, 0),  # date-only timestamps
        "with_session_id": (0, 0),
        "span_days": (500, 545),  # 78 weeks
    },
    "fashion": {
        "views_per_purchase_line": (60.0, math.inf),
        "december_spend_share": (0.15, 1.0),  # a uniform year would give 0.085
        "refunds_per_purchase_line": (0.2, 1.0),
        "median_order_value": (55.0, math.inf),
    },
    "young": {
        "span_days": (110, 119),  # four months
        "signed_up_before": (0, 0),
        "late_over_early_signups": (1.3, math.inf),  # still acquiring
    },
}


@pytest.fixture(scope="module")
def zoo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, GeneratedData]:
    out = tmp_path_factory.mktemp("zoo")
    return {
        preset: generate(
            out / preset,
            settings=GeneratorSettings(users=800, seed=5, dirty_fraction=0.0, preset=preset),
        )
        for preset in PRESETS
    }


@pytest.mark.parametrize("preset", sorted(_SIGNATURES))
def test_preset_signature(zoo: dict[str, GeneratedData], preset: str) -> None:
    stats = shop_stats(zoo[preset], start=datetime.date(2025, 1, 1), days=PRESETS[preset].days)
    for name, (lo, hi) in _SIGNATURES[preset].items():
        assert lo <= stats[name] <= hi, (name, stats[name])
    expected_types = ["purchase"] if preset == "cdnow" else sorted(EVENT_TYPES)
    assert stats["event_types"] == expected_types


@pytest.mark.parametrize("preset", sorted(_SIGNATURES))
def test_default_shop_lacks_each_signature(zoo: dict[str, GeneratedData], preset: str) -> None:
    stats = shop_stats(zoo["default"], start=datetime.date(2025, 1, 1), days=365)
    for name, (lo, hi) in _SIGNATURES[preset].items():
        if name not in ("span_days", "signed_up_before"):  # not defined on a shorter history
            assert not lo <= stats[name] <= hi, (name, stats[name])


@pytest.mark.parametrize("preset", list(PRESETS))
def test_preset_ground_truth_matches_realised_spend(
    zoo: dict[str, GeneratedData], preset: str
) -> None:
    """Realised spend over each user's active window ~ expected_daily_spend x active days.

    expected_daily_spend leaves out the sign-up session, which in a purchase cohort (cdnow)
    always ends in an order: there the first order is left out of the realised spend too.
    """
    data = zoo[preset]
    end = datetime.date(2025, 1, 1) + datetime.timedelta(days=PRESETS[preset].days)
    skip_first = PRESETS[preset].acquisition.first_session_buys
    ratio, correlation = _sql(
        f"""
        with orders as (
            select user_id, order_id, min(event_time) as t, sum(amount) as order_value
            from ev where event_type = 'purchase' group by all
        ),
        spend as (
            select user_id, sum(order_value) filter (
                where not {skip_first} or t > (select min(o.t) from orders o
                                               where o.user_id = orders.user_id)
            ) as spend
            from orders group by 1
        ),
        active as (
            select g.user_id, g.expected_daily_spend as expected,
                   greatest(0, datediff('second',
                       greatest(us.signed_up_at, timestamp '2025-01-01'),
                       least(coalesce(g.churned_at, timestamp '{end}'), timestamp '{end}'))
                   ) / 86400 as active_days
            from g inner join us using (user_id)
        )
        select sum(coalesce(spend, 0)) / sum(expected * active_days),
               corr(expected, coalesce(spend, 0) / nullif(active_days, 0))
        from active left join spend using (user_id)
        """,
        ev=data.events_path,
        g=data.ground_truth_path,
        us=data.users_path,
    )[0]
    assert 0.85 < ratio < 1.2, ratio
    assert correlation > 0.4, correlation


def test_preset_is_a_setting_of_the_cli(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from purchasing_power.cli import app

    ok = CliRunner().invoke(
        app, ["generate", "--out", str(tmp_path), "--users", "60", "--preset", "cdnow"]
    )
    assert ok.exit_code == 0, ok.output
    types = _sql("select distinct event_type from ev", ev=tmp_path / "events.parquet")
    assert types == [("purchase",)]
    bad = CliRunner().invoke(app, ["generate", "--out", str(tmp_path), "--preset", "bakery"])
    assert bad.exit_code == 1
    assert "--preset must be one of default, grocery, cdnow, fashion, young" in bad.output
