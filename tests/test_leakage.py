"""Point-in-time proofs on real dbt builds: features never see the cutoff or what follows,
labels see only the horizon after it.

Three builds of ``+training_examples`` (no training) on one small generated shop with
``as_of`` pinned, so the cutoffs cannot move:

* ``base``: the shop plus a few hand-made users for the edge cases;
* ``future``: the same events, with events at or after the cutoff ``CUTOFF`` removed,
  changed and added (fresh event ids), per user bucket;
* ``past``: the same perturbations applied to the 20 days before ``CUTOFF`` instead.

Features: every ``user_features`` row at every cutoff up to ``CUTOFF`` is equal in
``base`` and ``future`` (all columns, exactly), and ``past`` changes some of them (so
the proof can fail). Hand-made edge cases cover what random perturbations rarely hit: a
session or an order that continues across the cutoff, events at exactly the cutoff, a
category's first purchase of the month after the cutoff.

Labels at ``CUTOFF`` read only events in ``[CUTOFF, CUTOFF + HORIZON_DAYS)``: they equal
a reference computed from that window of the raw file in every build, perturbing
outside it changes none, inside it does, and the window's edges fall where they should:
an event at exactly ``CUTOFF`` is in the labels and in no feature, so every event counts
exactly once.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest

from dbt_runner import DbtProject, make_project

pytestmark = pytest.mark.slow

START = dt.date(2025, 1, 1)
DAYS = 230  # the last generated day is 2025-08-18
AS_OF = dt.date(2025, 8, 19)
HORIZON_DAYS = 30
# Training cutoffs: 2025-07-20 (validation), 06-20, 05-21, 04-21. The proofs use the
# second one, so its horizon ends before as_of and a later cutoff still reads the
# perturbed days; it falls mid-month, where month-level reference tables could leak.
CUTOFF = dt.datetime(2025, 6, 20)
HORIZON_END = CUTOFF + dt.timedelta(days=HORIZON_DAYS)
VARS = {
    "as_of": AS_OF.isoformat(),
    "horizon_days": HORIZON_DAYS,
    "training_cutoffs": 4,
    "cutoff_spacing_days": 30,
    "cutoff_anchor_date": "2025-07-20",
    "min_history_days": 28,
}
LABEL_PURCHASED = f"label_purchased_next_{HORIZON_DAYS}d"
LABEL_SPEND = f"label_spend_next_{HORIZON_DAYS}d"
MINUTE = dt.timedelta(minutes=1)
SECOND = dt.timedelta(seconds=1)
DAY = dt.timedelta(days=1)

# Generated users are bucketed by the number in their id (u000123 -> 123 % 8).
REMOVE, CHANGE, ADD_COPIES, ADD_AT_CUTOFF, REMOVE_AFTER_HORIZON, CHANGE_AFTER_HORIZON = range(6)
PERTURBED_BUCKETS = (REMOVE, CHANGE, ADD_COPIES, ADD_AT_CUTOFF)
COPIED_TO_NEW_USERS = 6


@dataclass(frozen=True)
class Edge:
    """A hand-made user: events in every build, more in ``future``, a mirror in ``past``.

    ``future`` adds events at or after the cutoff that touch something the user did
    before it (the same session, the same order); ``past`` adds the mirror image just
    before the cutoff, which must change the user's features.
    """

    user_id: str
    base: tuple[dict, ...]
    future: tuple[dict, ...]
    past: tuple[dict, ...]


def _event(event_id: str, user_id: str, at: dt.datetime, event_type: str, **values) -> dict:
    return {"event_id": event_id, "user_id": user_id, "event_time": at, "event_type": event_type,
            "channel": "web", **values}  # fmt: skip


def _view(event_id: str, user_id: str, at: dt.datetime, session_id: str | None = None) -> dict:
    return _event(event_id, user_id, at, "page_view", item_id="i00001", category="books",
                  price=12.0, session_id=session_id)  # fmt: skip


def _purchase(
    event_id: str, user_id: str, at: dt.datetime, amount: float, **values: str | float | None
) -> dict:
    values = {"item_id": "i00001", "category": "books", "price": amount, "quantity": 1,
              "amount": amount, "order_id": None} | values  # fmt: skip
    return _event(event_id, user_id, at, "purchase", **values)


def _bargain(event_id: str, user_id: str, at: dt.datetime) -> dict:
    """A purchase in a category of its own, cheaper than every generated one."""
    return _purchase(event_id, user_id, at, 0.5, category="zz_bargain", item_id="i-zz")


def _first_visit(user_id: str) -> dict:
    """An early view, so the user is on the spine at CUTOFF."""
    return _view(f"x-{user_id}-first", user_id, CUTOFF - 40 * DAY, session_id=f"{user_id}-first")


EDGES = (
    Edge(  # inferred sessions: a view 15 minutes later joins the session across midnight
        "edge_session_gap",
        base=(
            _first_visit("edge_session_gap"),
            _view("x-gap-1", "edge_session_gap", CUTOFF - 10 * MINUTE),
        ),
        future=(_view("x-gap-2", "edge_session_gap", CUTOFF + 5 * MINUTE),),
        past=(_view("x-gap-2", "edge_session_gap", CUTOFF - 5 * MINUTE),),
    ),
    Edge(  # the shop's session id: the same session continues after the cutoff
        "edge_session_id",
        base=(
            _first_visit("edge_session_id"),
            _view("x-sid-1", "edge_session_id", CUTOFF - 10 * MINUTE, session_id="edge-s1"),
        ),
        future=(_view("x-sid-2", "edge_session_id", CUTOFF + 120 * MINUTE, session_id="edge-s1"),),
        past=(_view("x-sid-2", "edge_session_id", CUTOFF - 1 * MINUTE, session_id="edge-s1"),),
    ),
    Edge(  # one order whose lines straddle the cutoff
        "edge_order",
        base=(
            _first_visit("edge_order"),
            _purchase("x-ord-1", "edge_order", CUTOFF - 2 * MINUTE, 10.0, order_id="edge-o1"),
        ),
        future=(_purchase("x-ord-2", "edge_order", CUTOFF + MINUTE, 1000.0, order_id="edge-o1"),),
        past=(_purchase("x-ord-2", "edge_order", CUTOFF - MINUTE, 1000.0, order_id="edge-o1"),),
    ),
    Edge(  # everything at exactly the cutoff is the future
        "edge_at_cutoff",
        base=(_first_visit("edge_at_cutoff"),),
        future=(
            _purchase("x-atc-1", "edge_at_cutoff", CUTOFF, 100.0),
            _view("x-atc-2", "edge_at_cutoff", CUTOFF, session_id="edge-s2"),
        ),
        past=(_purchase("x-atc-1", "edge_at_cutoff", CUTOFF - SECOND, 100.0),),
    ),
    Edge(  # a user whose first event is at exactly the cutoff is not on its spine
        "edge_first_at_cutoff",
        base=(),
        future=(_purchase("x-fac-1", "edge_first_at_cutoff", CUTOFF, 100.0),),
        past=(_purchase("x-fac-1", "edge_first_at_cutoff", CUTOFF - SECOND, 100.0),),
    ),
    Edge(  # a cheap category bought earlier, then again after the cutoff in the cutoff's month
        "edge_category_month",
        base=(
            _first_visit("edge_category_month"),
            _bargain("x-cat-1", "edge_category_month", CUTOFF - 45 * DAY),
            _bargain("x-cat-2", "edge_category_month", CUTOFF - 30 * DAY),
        ),
        future=(_bargain("x-cat-3", "edge_category_month", CUTOFF + 2 * DAY),),
        past=(_bargain("x-cat-3", "edge_category_month", CUTOFF - 2 * DAY),),
    ),
)


@dataclass(frozen=True)
class LabelEdge:
    """A hand-made user (on the spine at CUTOFF) with events added in ``future``, and its
    labels at CUTOFF in ``base`` and in ``future``."""

    user_id: str
    base: tuple[dict, ...]
    future: tuple[dict, ...]
    labels_before: tuple[bool, float]
    labels_after: tuple[bool, float]


def _refund(event_id: str, user_id: str, at: dt.datetime, amount: float) -> dict:
    return _event(event_id, user_id, at, "refund", item_id="i00001", category="books",
                  price=amount, amount=amount)  # fmt: skip


LABEL_EDGES = (
    LabelEdge(
        "label_at_cutoff",  # the labels' first instant (the features end just before it)
        base=(),
        future=(_purchase("y-1", "label_at_cutoff", CUTOFF, 100.0),),
        labels_before=(False, 0.0),
        labels_after=(True, 100.0),
    ),
    LabelEdge(
        "label_just_before_horizon_end",
        base=(),
        future=(_purchase("y-2", "label_just_before_horizon_end", HORIZON_END - SECOND, 100.0),),
        labels_before=(False, 0.0),
        labels_after=(True, 100.0),
    ),
    LabelEdge(
        "label_at_horizon_end",  # the next window's first instant
        base=(),
        future=(_purchase("y-3", "label_at_horizon_end", HORIZON_END, 100.0),),
        labels_before=(False, 0.0),
        labels_after=(False, 0.0),
    ),
    LabelEdge(
        "label_just_after_cutoff",
        base=(),
        future=(_purchase("y-4", "label_just_after_cutoff", CUTOFF + SECOND, 100.0),),
        labels_before=(False, 0.0),
        labels_after=(True, 100.0),
    ),
    LabelEdge(
        "label_refund_exceeds_purchase",
        base=(_purchase("y-5", "label_refund_exceeds_purchase", CUTOFF + 5 * DAY, 50.0),),
        future=(_refund("y-6", "label_refund_exceeds_purchase", CUTOFF + 6 * DAY, 80.0),),
        labels_before=(True, 50.0),
        labels_after=(True, 0.0),
    ),
    LabelEdge(
        "label_refund_nets",
        base=(_purchase("y-7", "label_refund_nets", CUTOFF + DAY, 50.0),),
        future=(_refund("y-8", "label_refund_nets", CUTOFF + 2 * DAY, 20.0),),
        labels_before=(True, 50.0),
        labels_after=(True, 30.0),
    ),
)

EDGE_USERS = tuple(edge.user_id for edge in EDGES) + tuple(edge.user_id for edge in LABEL_EDGES)

# Perturbations of generated users' events in [window_start, window_end), by bucket. The
# same statements make `future` (window from CUTOFF on, times shifted forward) and `past`
# (the 20 days before CUTOFF, times shifted backward). `shift` keeps changed and copied
# events inside the window; `burst_at` is where the burst of extra events goes.
_PERTURB = f"""
create or replace temp table perturbed as
with
bucketed as (
    -- hand-made users (not u<number>) are in no bucket
    select *, coalesce(try_cast(substr(user_id, 2) as integer) % 8, -1) as bucket,
        event_time >= $window_start and event_time < $window_end as in_window,
        event_time >= $horizon_end as after_horizon
    from base
),
kept as (
    select * from bucketed
    where not (bucket = {REMOVE} and in_window)
      and not (bucket = {REMOVE_AFTER_HORIZON} and after_horizon)
),
changed as (
    select * exclude (event_type, price, amount, quantity, category, session_id, order_id,
                      rating, event_time, bucket, in_window, after_horizon),
        case event_type when 'page_view' then 'purchase' when 'purchase' then 'page_view'
            when 'search' then 'refund' else event_type end as event_type,
        price * 3 as price,
        coalesce(amount, price) * 3 as amount,
        coalesce(quantity, 1) + 1 as quantity,
        case when category = 'books' then 'phones' else 'books' end as category,
        case when session_id is null then 'sx-' || user_id end as session_id,
        'ox-' || event_id as order_id,
        case when rating is not null then 6 - rating end as rating,
        event_time + $shift as event_time
    from kept
    where (bucket = {CHANGE} and in_window) or (bucket = {CHANGE_AFTER_HORIZON} and after_horizon)
),
unchanged as (
    select * exclude (bucket, in_window, after_horizon) from kept
    where not ((bucket = {CHANGE} and in_window)
               or (bucket = {CHANGE_AFTER_HORIZON} and after_horizon))
),
copied as (
    select * replace ('c-' || event_id as event_id, event_time + $shift as event_time,
                      coalesce(amount, price) * 2 as amount)
    from unchanged
    where try_cast(substr(user_id, 2) as integer) % 8 = {ADD_COPIES}
      and event_time >= $window_start and event_time < $window_end
),
new_users as (
    select * replace ('n-' || event_id as event_id, 'n' || user_id as user_id)
    from unchanged
    where try_cast(substr(user_id, 2) as integer) % 8 = {COPIED_TO_NEW_USERS}
      and event_time >= $window_start and event_time < $window_end
),
burst_users as (
    select distinct user_id from unchanged
    where try_cast(substr(user_id, 2) as integer) % 8 = {ADD_AT_CUTOFF}
),
burst as (
    select
        'b-' || user_id || '-' || burst.kind as event_id, user_id, $burst_at as event_time,
        burst.kind as event_type, 'i00002' as item_id, 'computers' as category,
        999.0 as price, 1 as quantity, 999.0 as amount, 'b-' || user_id as order_id,
        'b-' || user_id as session_id, case when burst.kind = 'review' then 1 end as rating,
        case when burst.kind = 'review' then 'terrible awful broken' end as review_text,
        'app' as channel
    from burst_users
    cross join (values ('purchase'), ('page_view'), ('add_to_cart'), ('review'), ('refund'))
        as burst (kind)
)
select * from unchanged
union all by name select * from changed
union all by name select * from copied
union all by name select * from new_users
union all by name select * from burst
"""
_COLUMNS = (
    "event_id, user_id, event_time, event_type, item_id, category, price, quantity, amount,"
    " order_id, session_id, rating, review_text, channel"
)


def _insert(connection: duckdb.DuckDBPyConnection, table: str, events: list[dict]) -> None:
    names = [name.strip() for name in _COLUMNS.split(",")]
    connection.executemany(
        f"insert into {table} ({_COLUMNS}) values ({', '.join('?' * len(names))})",
        [[event.get(name) for name in names] for event in events],
    )


def _write_raw(generated: Path, out: Path, *, variant: str) -> Path:
    """The base shop, or one of its perturbed variants, as ``out/events.parquet``."""
    out.mkdir(parents=True)
    with duckdb.connect() as connection:
        connection.execute(
            f"create table base as select {_COLUMNS} from '{generated / 'events.parquet'}'"
        )
        _insert(connection, "base", [e for edge in EDGES for e in edge.base])
        for edge in LABEL_EDGES:
            _insert(connection, "base", [_first_visit(edge.user_id), *edge.base])
        if variant == "base":
            connection.execute("create temp table perturbed as select * from base")
        else:
            future = variant == "future"
            connection.execute(
                _PERTURB,
                {
                    "window_start": CUTOFF if future else CUTOFF - 20 * DAY,
                    "window_end": dt.datetime(2100, 1, 1) if future else CUTOFF,
                    "horizon_end": HORIZON_END if future else dt.datetime(2100, 1, 1),
                    "shift": dt.timedelta(hours=3) if future else -dt.timedelta(hours=3),
                    "burst_at": CUTOFF if future else CUTOFF - DAY,
                },
            )
            edges = [e for edge in EDGES for e in (edge.future if future else edge.past)]
            if future:
                edges += [e for edge in LABEL_EDGES for e in edge.future]
            _insert(connection, "perturbed", edges)
        connection.execute(
            f"copy (select {_COLUMNS} from perturbed order by event_time, event_id)"
            f" to '{out / 'events.parquet'}'"
        )
    return out


@dataclass(frozen=True)
class Builds:
    base: DbtProject
    future: DbtProject
    past: DbtProject
    raw: dict[str, Path]


@pytest.fixture(scope="module")
def builds(tmp_path_factory: pytest.TempPathFactory) -> Builds:
    from purchasing_power.generate import GeneratorSettings, generate

    generated = tmp_path_factory.mktemp("generated")
    settings = GeneratorSettings(users=500, days=DAYS, seed=11, start_date=START, dirty_fraction=0)
    generate(generated, settings=settings)
    raw, projects = {}, {}
    for variant in ("base", "future", "past"):
        work = tmp_path_factory.mktemp(variant)
        raw[variant] = _write_raw(generated, work / "raw", variant=variant)
        projects[variant] = make_project(work / "dbt")
        projects[variant].run(
            "build", "--select", "+training_examples",
            vars={"raw_path": str(raw[variant]), **VARS},
        )  # fmt: skip
    return Builds(**projects, raw=raw)


@contextmanager
def _attached(*projects: tuple[str, DbtProject]) -> Iterator[duckdb.DuckDBPyConnection]:
    with duckdb.connect() as connection:
        for name, project in projects:
            connection.execute(f"attach '{project.warehouse}' as {name} (read_only)")
        yield connection


# Labels are plain double sums, whose last bits follow DuckDB's physical row order, which
# any change to the file moves: they count as equal within this relative tolerance.
# Features are compared exactly (the user-day base sums money as DECIMAL, `sum_exactly`).
LABEL_TOLERANCE = 1e-12


@dataclass(frozen=True)
class Difference:
    """How two builds' rows of one table differ, keyed by (user_id, cutoff_date)."""

    only_left: int  # keys in the left build only
    only_right: int
    users: frozenset[str]  # users with a row that differs or exists on one side only
    columns: dict[str, int]  # rows of matched keys where the column differs

    @property
    def is_empty(self) -> bool:
        return not (self.only_left or self.only_right or self.users)


def _difference(
    connection: duckdb.DuckDBPyConnection, left: str, right: str, *, table: str, where: str
) -> Difference:
    """Every column of ``table`` compared row by row between two attached warehouses,
    exactly (``is distinct from``: nulls equal nulls, NaN equals NaN), but built_from (which
    runs built a cutoff)."""
    described = connection.execute(f"describe {left}.{table}").fetchall()
    compared = [
        row[0] for row in described if row[0] not in ("user_id", "cutoff_date", "built_from")
    ]
    differs = ", ".join(
        f"left_rows.{name} is distinct from right_rows.{name} as differs_{name}"
        for name in compared
    )
    connection.execute(
        f"""
        create or replace temp table compared as
        select * from (
            select
                coalesce(left_rows.user_id, right_rows.user_id) as user_id,
                coalesce(left_rows.cutoff_date, right_rows.cutoff_date) as cutoff_date,
                right_rows.user_id is null as is_only_left,
                left_rows.user_id is null as is_only_right,
                {differs}
            from {left}.{table} as left_rows
            full outer join {right}.{table} as right_rows
                on left_rows.user_id = right_rows.user_id
                and left_rows.cutoff_date = right_rows.cutoff_date
        )
        where {where}
        """
    )
    only_left, only_right, *counts = connection.execute(
        "select count(*) filter (where is_only_left), count(*) filter (where is_only_right), "
        + ", ".join(
            f"count(*) filter (where differs_{name} and not is_only_left and not is_only_right)"
            for name in compared
        )
        + " from compared"
    ).fetchone()
    users = connection.execute(
        "select distinct user_id from compared where is_only_left or is_only_right or "
        + " or ".join(f"differs_{name}" for name in compared)
    ).fetchall()
    return Difference(
        only_left=only_left,
        only_right=only_right,
        users=frozenset(row[0] for row in users),
        columns={name: n for name, n in zip(compared, counts, strict=True) if n},
    )


def _features_difference(
    builds: Builds, other: str, *, users: str = "true", up_to: dt.datetime = CUTOFF
) -> Difference:
    with _attached(("base", builds.base), (other, getattr(builds, other))) as connection:
        return _difference(
            connection, "base", other, table="features.user_features",
            where=f"cutoff_date <= date '{up_to.date()}' and ({users})",
        )  # fmt: skip


def _not_edge_users() -> str:
    return "user_id not in (" + ", ".join(f"'{user}'" for user in EDGE_USERS) + ")"


def _cutoffs(project: DbtProject) -> list[dt.date]:
    with duckdb.connect(str(project.warehouse), read_only=True) as connection:
        return [
            row[0]
            for row in connection.execute(
                "select cutoff_date from intermediate.int_cutoffs_derived"
                " where is_training_cutoff order by 1"
            ).fetchall()
        ]


# ---------------------------------------------------------------------------------------
# (a) features at a cutoff see nothing at or after it
# ---------------------------------------------------------------------------------------


def test_cutoffs_are_pinned_and_the_proof_cutoff_is_one_of_them(builds: Builds) -> None:
    expected = [dt.date(2025, 4, 21), dt.date(2025, 5, 21), CUTOFF.date(), dt.date(2025, 7, 20)]
    assert _cutoffs(builds.base) == _cutoffs(builds.future) == _cutoffs(builds.past) == expected


def test_events_from_the_cutoff_on_change_no_feature_at_or_before_it(builds: Builds) -> None:
    difference = _features_difference(builds, "future", users=_not_edge_users())
    assert difference.is_empty, f"features at cutoffs <= {CUTOFF.date()} changed: {difference}"


def test_the_future_perturbation_is_large_and_reaches_later_features(builds: Builds) -> None:
    base, future = (builds.raw[v] / "events.parquet" for v in ("base", "future"))
    with duckdb.connect() as connection:
        (changed,) = connection.execute(
            f"select count(*) from (select * from '{base}' except all select * from '{future}'"
            f" union all (select * from '{future}' except all select * from '{base}'))"
        ).fetchone()
    assert changed > 5000
    later = _features_difference(builds, "future", up_to=dt.datetime(2025, 7, 20))
    for bucket in (*PERTURBED_BUCKETS, COPIED_TO_NEW_USERS):
        assert any(_in_bucket(user, bucket) for user in later.users), bucket
    assert later.only_right > 0  # the users that only exist from the cutoff on


def _in_bucket(user_id: str, bucket: int) -> bool:
    if user_id.startswith("nu"):
        return bucket == COPIED_TO_NEW_USERS
    return user_id.startswith("u") and int(user_id[1:]) % 8 == bucket


def test_the_same_perturbation_before_the_cutoff_changes_features(builds: Builds) -> None:
    difference = _features_difference(builds, "past", users=_not_edge_users())
    for bucket in PERTURBED_BUCKETS:
        assert any(_in_bucket(user, bucket) for user in difference.users), bucket
    assert difference.only_right > 0  # users first seen in the 20 days before the cutoff
    assert len(difference.columns) > 10


@pytest.mark.parametrize("edge", EDGES, ids=[edge.user_id for edge in EDGES])
def test_edge_case_from_the_cutoff_on_changes_no_feature(builds: Builds, edge: Edge) -> None:
    difference = _features_difference(builds, "future", users=f"user_id = '{edge.user_id}'")
    assert difference.is_empty, f"{edge.user_id}: {difference}"


@pytest.mark.parametrize("edge", EDGES, ids=[edge.user_id for edge in EDGES])
def test_edge_case_mirrored_before_the_cutoff_changes_features(builds: Builds, edge: Edge) -> None:
    difference = _features_difference(builds, "past", users=f"user_id = '{edge.user_id}'")
    assert not difference.is_empty, edge.user_id


# ---------------------------------------------------------------------------------------
# (b) labels at a cutoff see only [cutoff, cutoff + horizon)
# ---------------------------------------------------------------------------------------


def _labels(project: DbtProject) -> dict[str, tuple[bool, float]]:
    with duckdb.connect(str(project.warehouse), read_only=True) as connection:
        rows = connection.execute(
            f"select user_id, {LABEL_PURCHASED}, {LABEL_SPEND} from ml.training_examples"
            f" where cutoff_date = date '{CUTOFF.date()}'"
        ).fetchall()
    return {user: (purchased, spend) for user, purchased, spend in rows}


def _reference_labels(raw: Path, users: set[str]) -> dict[str, tuple[bool, float]]:
    """Labels from the raw file's [CUTOFF, CUTOFF + horizon) alone, written independently."""
    with duckdb.connect() as connection:
        rows = connection.execute(
            f"""
            select user_id,
                count(*) filter (where event_type = 'purchase') > 0,
                greatest(coalesce(sum(case event_type when 'purchase' then line_amount
                                  when 'refund' then -line_amount end), 0), 0)
            from (select *, coalesce(amount, price * coalesce(quantity, 1), 0) as line_amount
                  from '{raw / "events.parquet"}')
            where event_time >= $cutoff and event_time < $horizon_end
            group by user_id
            """,
            {"cutoff": CUTOFF, "horizon_end": HORIZON_END},
        ).fetchall()
    found = {user: (purchased, spend) for user, purchased, spend in rows}
    return {user: found.get(user, (False, 0.0)) for user in users}


def _same(labels: tuple[bool, float], other: tuple[bool, float]) -> bool:
    return labels[0] is other[0] and labels[1] == pytest.approx(
        other[1], rel=LABEL_TOLERANCE, abs=1e-9
    )


def _assert_labels_equal(actual: dict, expected: dict) -> None:
    assert actual.keys() == expected.keys()
    wrong = {
        user: (actual[user], expected[user])
        for user in actual
        if not _same(actual[user], expected[user])
    }
    assert not wrong, f"{len(wrong)} users' labels differ from the reference: {wrong}"


@pytest.mark.parametrize("variant", ["base", "future", "past"])
def test_labels_equal_a_reference_reading_only_the_horizon(builds: Builds, variant: str) -> None:
    labels = _labels(getattr(builds, variant))
    assert len(labels) > 300
    assert 0 < sum(purchased for purchased, _ in labels.values()) < len(labels)
    _assert_labels_equal(labels, _reference_labels(builds.raw[variant], set(labels)))


def test_events_before_the_cutoff_change_no_label(builds: Builds) -> None:
    base, past = _labels(builds.base), _labels(builds.past)
    changed = {user for user in base.keys() & past.keys() if not _same(base[user], past[user])}
    assert not changed
    assert past.keys() - base.keys()  # new users before the cutoff: labelled, features changed


def test_events_outside_the_horizon_change_no_label_and_inside_do(builds: Builds) -> None:
    base, future = _labels(builds.base), _labels(builds.future)
    changed = {user for user in base if not _same(base[user], future[user])}
    outside = (REMOVE_AFTER_HORIZON, CHANGE_AFTER_HORIZON, 6, 7)
    assert not {user for user in changed if any(_in_bucket(user, b) for b in outside)}
    # a burst at exactly the cutoff is the labels' first instant: a purchase for all
    for bucket in (REMOVE, CHANGE, ADD_COPIES, ADD_AT_CUTOFF):
        assert any(_in_bucket(user, bucket) for user in changed), bucket


@pytest.mark.parametrize("edge", LABEL_EDGES, ids=[edge.user_id for edge in LABEL_EDGES])
def test_label_window_edges(builds: Builds, edge: LabelEdge) -> None:
    for project, expected in ((builds.base, edge.labels_before),
                              (builds.future, edge.labels_after)):  # fmt: skip
        purchased, spend = _labels(project)[edge.user_id]
        assert purchased is expected[0]
        assert spend == pytest.approx(expected[1], abs=1e-9)
