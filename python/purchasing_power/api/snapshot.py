"""One publication of the BI copy, held in memory, and the watcher that swaps it.

The published DuckDB file is replaced by rename, never written in place, so a file once
opened is one publication for good. A ``Snapshot`` reads the current scores, reasons,
last changes, the latest score history and model summary of one such file into arrays
keyed by ``user_id``: a lookup is a dict hit and a few array reads, no query. The
history of the latest ``history_days`` as_of dates (30 by default) is sorted by user at
load, latest first, with each user's offsets into it, so that a user's recent history is
a slice (a query per request scanned the whole history table: 3 ms at 1.8 million rows).
Older history is not loaded: held in memory it grew without bound with each day a shop
runs (26 bytes a row: 5.5 GiB for a year of 625,000 users). A request that asks for
more than a user's recent entries reads the older ones from the file, which the snapshot
then keeps open read-only (a cursor per thread, parameters only); where the history has
no older dates the file is let go once loaded. A ``Watcher`` thread notices a new file
(its inode, size or mtime), builds the new snapshot off the request path, and swaps one
reference: a request reads that reference once, so it never sees two publications (the
file a snapshot keeps open is its own publication's, whatever is renamed over it).

The file is attached to an in-memory DuckDB rather than opened by path: DuckDB reuses a
database instance per path within a process, so opening the path again while the last
snapshot is open would read the old file.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from purchasing_power.publish import PUBLICATION_TABLE, pseudonym
from purchasing_power.warehouse import in_memory

log = logging.getLogger("purchasing_power.api")

SCORES = "purchasing_power_scores"
REASONS = "purchasing_power_reasons"
CHANGES = "purchasing_power_score_changes"
HISTORY = "purchasing_power_score_history"
EVALUATIONS = "model_evaluations"
PERFORMANCE = "model_performance"
SEGMENTS = "customer_segments"
_PSEUDONYM = re.compile(r"[0-9a-f]{64}")
_NO_RANK_CHANGE = -(2**31)  # a null tier_rank_change, read as an int32
HISTORY_DAYS_IN_MEMORY = 30  # the latest as_of dates of history held in memory
# What DuckDB may hold for the older history's reads (its buffer pool, after the load):
# the bound on what they add to the server's memory.
FILE_MEMORY_LIMIT = "128MB"


class PublicationError(RuntimeError):
    """The published file cannot be served (missing, or without the tables it needs)."""


@dataclass(frozen=True)
class Publication:
    """Which publication an answer came from."""

    publication_id: str
    published_at: dt.datetime  # UTC
    as_of: dt.date
    model_version: str
    is_pseudonymised: bool
    users: int

    def age_seconds(self, now: dt.datetime | None = None) -> float:
        now = now or dt.datetime.now(dt.UTC).replace(tzinfo=None)
        return max(0.0, (now - self.published_at).total_seconds())


def _codes(column: pa.ChunkedArray) -> tuple[np.ndarray, list[Any]]:
    """Dictionary codes (int32, -1 for null) and the values they stand for: the distinct
    values, then None, so that ``values[code]`` is None for a null."""
    encoded = pc.dictionary_encode(column.combine_chunks())
    codes = encoded.indices.to_numpy(zero_copy_only=False)
    codes = np.where(encoded.indices.is_null().to_numpy(zero_copy_only=False), -1, codes)
    return codes.astype(np.int32), [*encoded.dictionary.to_pylist(), None]


def _floats(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    values: np.ndarray = column.cast(pa.float64()).to_numpy(zero_copy_only=False)  # null -> nan
    return values


def _float_or_none(value: float) -> float | None:
    return value if value == value else None  # NaN (a null) is the one float unequal to itself


def _latest_first(row: tuple[Any, ...]) -> tuple[tuple[bool, Any], ...]:
    """A history row's sort key, reversed: as_of, scored_at and model version descending
    with nulls last, then status and tier descending with nulls first (as DuckDB's
    ``desc nulls last`` and ``desc nulls first`` order them)."""
    as_of, version, status, _, _, _, tier, scored_at = row
    return (
        (as_of is not None, as_of or dt.date.min),
        (scored_at is not None, scored_at or dt.datetime.min),
        (version is not None, version or ""),
        (status is None, status or ""),
        (tier is None, tier or ""),
    )


def _float_or_none_or_null(value: float | None) -> float | None:
    return None if value is None else _float_or_none(value)


def _single(rows: list[tuple[Any, ...]]) -> Any:
    ((value,),) = rows
    return value


SCORE_CODES = ("as_of", "model_version", "model_status", "tier", "scored_at", "segment")
SCORE_FLOATS = ("predicted_spend", "purchase_probability", "power_index")
REASON_FLOATS = ("feature_value", "contribution", "spend_multiplier")
HISTORY_FIELDS = ("as_of", "model_version", "status", "tier", "scored_at")
HISTORY_FLOATS = ("predicted_spend", "purchase_probability", "power_index")


@dataclass(frozen=True)
class History:
    """Every user's scores over the builds, in memory, sorted by user and latest first:
    user ``row``'s entries are ``offsets[row]`` to ``offsets[row + 1]``. What varies
    little (the as_of, model, status, tier and scored_at of a row) is one code into
    ``entries``; the three figures are float64, as published. About 26 bytes a row."""

    offsets: np.ndarray  # int64, users + 1
    codes: np.ndarray  # uint16 or uint32, one a row: an index into ``entries``
    entries: list[tuple[Any, ...]]  # code -> HISTORY_FIELDS
    floats: tuple[np.ndarray, ...]  # float64, one a row, per HISTORY_FLOATS

    @property
    def row_count(self) -> int:
        return len(self.codes)

    def rows(self, user_row: int, *, limit: int) -> list[dict[str, Any]]:
        start = int(self.offsets[user_row])
        stop = min(int(self.offsets[user_row + 1]), start + limit)
        entries = self.entries
        return [
            {
                "as_of": as_of,
                "model_version": model_version,
                "status": status,
                "predicted_spend": _float_or_none(spend),
                "purchase_probability": _float_or_none(probability),
                "power_index": _float_or_none(power_index),
                "tier": tier,
                "scored_at": scored_at,
            }
            for (as_of, model_version, status, tier, scored_at), spend, probability, power_index
            in zip(
                (entries[code] for code in self.codes[start:stop].tolist()),
                *(figures[start:stop].tolist() for figures in self.floats),
                strict=True,
            )
        ]  # fmt: skip


class FileHistory:
    """The history older than a snapshot's memory holds (one row per user, as_of and
    model_version, as published), read from the publication's file per request.

    Holds the file open read-only, attached to an in-memory DuckDB of its own. Each
    thread that reads gets a cursor of its own (a DuckDB connection is not shared across
    threads); the user id, dates and limits are query parameters, never SQL. Closed with
    the snapshot: when the last request holding it is done.

    The history is published by as_of partition, a day's rows after the last's, so
    DuckDB's zone maps on as_of skip the row groups of other days but those on user_id
    skip nothing (every day holds every user). A read asking for ``limit`` entries
    therefore first scans only the ``limit`` latest dates before ``before`` (a user has an
    entry a date, or more where a model changed that day), and the rest only when
    those held fewer: its cost follows the depth asked for, not the history's length."""

    def __init__(
        self,
        connection: duckdb.DuckDBPyConnection,
        *,
        table: str,
        before: dt.date | None,
        dates: list[dt.date],
        has_undated: bool,
    ) -> None:
        self._connection = connection
        self._lock = threading.Lock()
        self._local = threading.local()
        self.before = before  # the oldest as_of memory holds (None: none)
        self.dates = dates  # the as_of dates older than that, latest first
        self.has_undated = has_undated  # rows of a null as_of: the oldest, last
        columns = (
            "select as_of, model_version, model_status, predicted_spend,"
            f" purchase_probability, power_index, tier, scored_at from {table}"
            " where user_id = $user_id and "
        )
        # latest first, as History orders its entries (their order reversed)
        order = (
            " order by as_of desc nulls last, scored_at desc nulls last,"
            " model_version desc nulls last, model_status desc nulls first,"
            " tier desc nulls first limit $limit"
        )
        # a handful of rows a date: ordered here (DuckDB's top-N doubled a read's CPU)
        self._recent_sql = f"{columns}as_of between $oldest and $latest"
        self._rest_sql = f"{columns}(as_of < $before or as_of is null){order}"

    def _cursor(self) -> duckdb.DuckDBPyConnection:
        cursor = getattr(self._local, "cursor", None)
        if cursor is None:
            with self._lock:  # cursors are made from the one connection, one at a time
                cursor = self._local.cursor = self._connection.cursor()
        return cursor

    def rows(self, published_id: str, *, limit: int) -> list[dict[str, Any]]:
        """The user's entries older than memory holds, latest first (at most ``limit``)."""
        cursor = self._cursor()
        found: list[tuple[Any, ...]] = []
        if self.dates:
            oldest = self.dates[min(limit, len(self.dates)) - 1]
            found = sorted(
                cursor.execute(
                    self._recent_sql,
                    {"user_id": published_id, "oldest": oldest, "latest": self.dates[0]},
                ).fetchall(),
                key=_latest_first,
                reverse=True,
            )[:limit]
            is_rest = oldest != self.dates[-1] or self.has_undated
        else:
            oldest, is_rest = self.before or dt.date.min, self.has_undated
        if len(found) < limit and is_rest:
            found += cursor.execute(
                self._rest_sql,
                {"user_id": published_id, "before": oldest, "limit": limit - len(found)},
            ).fetchall()
        return [
            {
                "as_of": as_of,
                "model_version": model_version,
                "status": status,
                "predicted_spend": _float_or_none_or_null(spend),
                "purchase_probability": _float_or_none_or_null(probability),
                "power_index": _float_or_none_or_null(power_index),
                "tier": tier,
                "scored_at": scored_at,
            }
            for as_of, model_version, status, spend, probability, power_index, tier, scored_at
            in found
        ]  # fmt: skip


@dataclass
class Snapshot:
    """One publication in memory. Built once, then only read (from any thread)."""

    publication: Publication
    path: Path
    index: dict[str, int]  # user_id -> row
    # a row's values are read with one tolist() per array: a numpy read per value costs
    # more than the rest of the lookup
    codes: np.ndarray  # int32 (users, 8): SCORE_CODES, horizon_days, the change row or -1
    values: list[list[Any]]  # per SCORE_CODES column: code -> value (see _codes)
    figures: np.ndarray  # float64 (users, 3): SCORE_FLOATS
    reason_features: np.ndarray  # int16 (users, ranks): a code into features, -1 none
    reason_figures: np.ndarray  # float64 (users, ranks, 3): REASON_FLOATS
    features: list[tuple[str, str | None]]  # code -> (name, description)
    change_columns: dict[str, np.ndarray]  # by change row
    change_values: dict[str, list[Any]]
    history: History  # the latest history_days as_of dates
    model: dict[str, Any]
    pseudonym_key: bytes | None = None
    loaded_seconds: float = 0.0
    older_history: FileHistory | None = None  # None: the history has no older dates

    @property
    def users(self) -> int:
        return len(self.index)

    # -- lookups (no DuckDB call) ------------------------------------------------------

    def published_id(self, user_id: str) -> str | None:
        """The id the publication knows ``user_id`` by: as given where it holds that id
        (raw in a plain copy, a pseudonym in a pseudonymised one), else the pseudonym of
        a raw id where the server holds the key."""
        if user_id in self.index:
            return user_id
        key = self.pseudonym_key if self.publication.is_pseudonymised else None
        if key is not None and not _PSEUDONYM.fullmatch(user_id):
            hashed = pseudonym(user_id, key=key)
            if hashed in self.index:
                return hashed
        return None

    def score(self, user_id: str, *, with_reasons: bool) -> dict[str, Any] | None:
        """The user's current score as plain values, or None if not scored."""
        published = self.published_id(user_id)
        if published is None:
            return None
        row = self.index[published]
        as_of, version, status, tier, scored_at, segment, horizon, change = self.codes[row].tolist()
        spend, probability, power_index = self.figures[row].tolist()
        values = self.values
        return {
            "user_id": user_id,
            "as_of": values[0][as_of],
            "horizon_days": horizon,
            "model_version": values[1][version],
            "status": values[2][status],
            "predicted_spend": spend,
            "purchase_probability": probability,
            "power_index": power_index,
            "tier": values[3][tier],
            "segment": values[5][segment],
            "scored_at": values[4][scored_at],
            "reasons": self._reasons(row) if with_reasons else None,
            "last_change": self._change(change) if change >= 0 else None,
        }

    def _reasons(self, row: int) -> list[dict[str, Any]]:
        found = []
        figures = self.reason_figures[row].tolist()
        for rank, code in enumerate(self.reason_features[row].tolist()):
            if code < 0:
                continue
            name, description = self.features[code]
            value, contribution, multiplier = figures[rank]
            found.append(
                {
                    "rank": rank + 1,
                    "feature_name": name,
                    "description": description,
                    "feature_value": _float_or_none(value),
                    "contribution": contribution,
                    "spend_multiplier": multiplier,
                    "is_raising_spend": contribution > 0,
                }
            )
        return found

    def _change(self, change: int) -> dict[str, Any]:
        columns, values = self.change_columns, self.change_values
        rank_change = int(columns["tier_rank_change"][change])
        return {
            "as_of": values["as_of"][columns["as_of"][change]],
            "previous_as_of": values["previous_as_of"][columns["previous_as_of"][change]],
            "previous_model_version": values["previous_model_version"][
                columns["previous_model_version"][change]
            ],
            "is_model_changed": bool(columns["is_model_changed"][change]),
            "direction": values["direction"][columns["direction"][change]],
            "previous_power_index": float(columns["previous_power_index"][change]),
            "power_index_change": float(columns["power_index_change"][change]),
            "previous_tier": values["previous_tier"][columns["previous_tier"][change]],
            "is_tier_changed": bool(columns["is_tier_changed"][change]),
            "tier_rank_change": None if rank_change == _NO_RANK_CHANGE else rank_change,
            "previous_predicted_spend": float(columns["previous_predicted_spend"][change]),
        }

    def history_in_memory(self, user_id: str, *, limit: int) -> bool:
        """Whether ``history_of`` answers from memory alone (no query): the user is
        unknown, or memory holds ``limit`` of their entries, or the file no older ones."""
        published = self.published_id(user_id)
        if published is None or self.older_history is None:
            return True
        row = self.index[published]
        return int(self.history.offsets[row + 1] - self.history.offsets[row]) >= limit

    def history_of(self, user_id: str, *, limit: int) -> list[dict[str, Any]] | None:
        """The user's scores in the history, latest first (at most ``limit``), or None if
        the publication does not know the user. Entries older than memory holds are read
        from the file (a query: call it off the event loop unless ``history_in_memory``)."""
        published = self.published_id(user_id)
        if published is None:
            return None
        rows = self.history.rows(self.index[published], limit=limit)
        if len(rows) < limit and self.older_history is not None:
            rows += self.older_history.rows(published, limit=limit - len(rows))
        return rows


def _table(connection: duckdb.DuckDBPyConnection, sql: str, **params: object) -> pa.Table:
    return connection.sql(sql, params=params or None).to_arrow_table()


def load_snapshot(
    path: Path, *, pseudonym_key: bytes | None = None, history_days: int = HISTORY_DAYS_IN_MEMORY
) -> Snapshot:
    """Read the publication in the file at ``path`` into memory, the history of its latest
    ``history_days`` as_of dates included; the file is kept open for older ones if any."""
    if history_days < 1:
        raise ValueError(f"history_days must be at least 1, not {history_days}")
    start = time.perf_counter()
    if not path.is_file():
        raise PublicationError(f"no published BI copy at {path}")
    connection = in_memory(threads=2)
    try:
        escaped = str(path).replace("'", "''")
        connection.execute(f"attach '{escaped}' as published (read_only)")
        snapshot = _read(connection, path, pseudonym_key=pseudonym_key, history_days=history_days)
    except BaseException:
        connection.close()
        raise
    if snapshot.older_history is None:
        connection.close()  # everything is in memory: the file is let go
    else:  # point reads from here on: one thread each, and a bounded buffer pool
        connection.execute(f"set memory_limit = '{FILE_MEMORY_LIMIT}'")
        connection.execute("set threads = 1")
    snapshot.loaded_seconds = time.perf_counter() - start
    return snapshot


def _read(
    connection: duckdb.DuckDBPyConnection,
    path: Path,
    *,
    pseudonym_key: bytes | None,
    history_days: int,
) -> Snapshot:
    try:
        listed = connection.execute(
            f"select table_name, publication_id, published_at, is_pseudonymised"
            f" from published.main.{PUBLICATION_TABLE}"
        ).fetchall()
    except duckdb.Error as error:
        raise PublicationError(f"{path} is not a published BI copy: {error}") from error
    tables = {name.split(".")[-1]: name for name, *_ in listed}
    missing = [t for t in (SCORES, REASONS, CHANGES, HISTORY, EVALUATIONS) if t not in tables]
    if missing or len({row[1] for row in listed}) != 1:
        raise PublicationError(f"{path} lacks tables the API serves: {missing}")
    schema = tables[SCORES].split(".")[0]
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", schema):
        raise PublicationError(f"{path} names an unexpected schema {schema!r}")
    pseudonymised = {name.split(".")[-1]: flag for name, _, _, flag in listed}

    def name(table: str) -> str:
        return f"published.{schema}.{table}"

    # the user's segment where the publication has customer_segments (null otherwise)
    segments = (
        f"(select user_id, as_of, model_version, segment from {name(SEGMENTS)})"
        if SEGMENTS in tables
        else "(select null::varchar as user_id, null::date as as_of,"
        " null::varchar as model_version, null::varchar as segment where false)"
    )
    scores = _table(
        connection,
        f"select scores.user_id, scores.as_of, scores.horizon_days, scores.model_version,"
        f" scores.model_status, scores.predicted_spend, scores.purchase_probability,"
        f" scores.power_index, scores.tier, scores.scored_at, segments.segment"
        f" from {name(SCORES)} as scores left join {segments} as segments"
        f" using (user_id, as_of, model_version) order by scores.user_id",
    )
    user_ids = scores.column("user_id").to_pylist()
    index = {user_id: row for row, user_id in enumerate(user_ids)}
    if len(index) != len(user_ids):
        raise PublicationError(f"{path}: {SCORES} has more than one row for a user")
    coded = [_codes(scores.column(column)) for column in SCORE_CODES]
    values = [column_values for _, column_values in coded]
    figures = np.column_stack([_floats(scores.column(column)) for column in SCORE_FLOATS])
    horizon_days = scores.column("horizon_days").to_numpy().astype(np.int32)

    # the rows are numbered as in the ordered scores above: the same order by user_id
    numbered = (
        f"(select user_id, as_of, model_version, row_number() over (order by user_id) - 1"
        f" as user_row from {name(SCORES)})"
    )
    reasons = _table(
        connection,
        f"select numbered.user_row, reasons.reason_rank, reasons.feature_name,"
        f" reasons.feature_description, reasons.feature_value, reasons.contribution,"
        f" reasons.spend_multiplier from {name(REASONS)} as reasons"
        f" inner join {numbered} as numbered using (user_id, as_of, model_version)"
        f" where reasons.reason_rank >= 1",
    )
    users, ranks = len(user_ids), max(1, pc.max(reasons.column("reason_rank")).as_py() or 1)
    features = sorted(
        {
            (feature, description)
            for feature, description in zip(
                reasons.column("feature_name").to_pylist(),
                reasons.column("feature_description").to_pylist(),
                strict=True,
            )
        },
        key=lambda pair: (pair[0] or "", pair[1] or ""),
    )
    feature_code = {pair: code for code, pair in enumerate(features)}
    reason_features = np.full((users, ranks), -1, dtype=np.int16)
    reason_figures = np.full((users, ranks, len(REASON_FLOATS)), np.nan)
    rows = reasons.column("user_row").to_numpy()
    rank = reasons.column("reason_rank").to_numpy() - 1
    reason_features[rows, rank] = [
        feature_code[pair]
        for pair in zip(
            reasons.column("feature_name").to_pylist(),
            reasons.column("feature_description").to_pylist(),
            strict=True,
        )
    ]
    for number, column in enumerate(REASON_FLOATS):
        reason_figures[rows, rank, number] = _floats(reasons.column(column))

    changes = _table(
        connection,
        f"select numbered.user_row, changes.as_of, changes.previous_as_of,"
        f" changes.previous_model_version, changes.is_model_changed, changes.direction,"
        f" changes.previous_power_index, changes.power_index_change, changes.previous_tier,"
        f" changes.is_tier_changed, coalesce(changes.tier_rank_change, {_NO_RANK_CHANGE})"
        f" as tier_rank_change, changes.previous_predicted_spend"
        f" from {name(CHANGES)} as changes"
        f" inner join {numbered} as numbered using (user_id, as_of, model_version)",
    )
    change_of_user = np.full(users, -1, dtype=np.int32)
    change_of_user[changes.column("user_row").to_numpy()] = np.arange(
        changes.num_rows, dtype=np.int32
    )
    change_columns: dict[str, np.ndarray] = {}
    change_values: dict[str, list[Any]] = {}
    for column in ("as_of", "previous_as_of", "previous_model_version", "direction"):
        change_columns[column], change_values[column] = _codes(changes.column(column))
    change_columns["previous_tier"], change_values["previous_tier"] = _codes(
        changes.column("previous_tier")
    )
    for column in ("previous_power_index", "power_index_change", "previous_predicted_spend"):
        change_columns[column] = _floats(changes.column(column))
    for column in ("is_model_changed", "is_tier_changed"):
        change_columns[column] = changes.column(column).to_numpy(zero_copy_only=False)
    change_columns["tier_rank_change"] = changes.column("tier_rank_change").to_numpy()

    model_versions = pc.value_counts(scores.column("model_version")).to_pylist()
    model_version = max(model_versions, key=lambda item: item["counts"])["values"] or ""
    as_ofs = pc.max(scores.column("as_of")).as_py()
    ids = {row[1] for row in listed}
    publication = Publication(
        publication_id=ids.pop(),
        published_at=listed[0][2],
        as_of=as_ofs if as_ofs is not None else dt.date.min,
        model_version=model_version,
        is_pseudonymised=bool(pseudonymised.get(SCORES)),
        users=len(index),
    )
    model = _model_summary(
        connection, model_version, evaluations=name(EVALUATIONS),
        performance=name(PERFORMANCE) if PERFORMANCE in tables else None,
    )  # fmt: skip
    del scores, reasons, changes  # read the history, the largest part, with these gone
    # memory holds the latest history_days dates; the file answers for the rest, if any
    dated = [day for (day,) in connection.execute(
        f"select distinct as_of from {name(HISTORY)} order by as_of desc nulls last"
    ).fetchall()]  # fmt: skip
    has_undated = None in dated
    dated = [day for day in dated if day is not None]
    older = len(dated) > history_days or has_undated
    since = dated[min(history_days, len(dated)) - 1] if older and dated else None
    history = _history(
        connection, history=name(HISTORY), numbered=numbered, users=users, since=since,
        nothing=older and not dated,
    )  # fmt: skip
    return Snapshot(
        publication=publication,
        path=path,
        index=index,
        codes=np.column_stack(
            [*(codes for codes, _ in coded), horizon_days, change_of_user]
        ).astype(np.int32),
        values=values,
        figures=figures,
        reason_features=reason_features,
        reason_figures=reason_figures,
        features=features,
        change_columns=change_columns,
        change_values=change_values,
        history=history,
        model=model,
        pseudonym_key=pseudonym_key,
        older_history=(
            FileHistory(
                connection,
                table=name(HISTORY),
                before=since,
                dates=dated[history_days:],
                has_undated=has_undated,
            )
            if older
            else None
        ),
    )


def _history(
    connection: duckdb.DuckDBPyConnection,
    *,
    history: str,
    numbered: str,
    users: int,
    since: dt.date | None,
    nothing: bool = False,
) -> History:
    """The history of the users scored now (no other is asked for) from ``since`` on (all
    of it where None; none of it where ``nothing``), sorted by user and latest first; each
    row's as_of, model, status, tier and scored_at coded as one entry.

    The entries are numbered in the order a user's rows are answered in, reversed (as_of,
    then scored_at, then model version, nulls first), and a user has at most one row of
    an entry (its as_of and model version are the history's key with the user). So the
    rows are placed without a sort: entry by entry, latest first, each row goes to the
    next free slot of its user. Sorting them instead took DuckDB 5 GB and numpy 20 s at
    18.75 million rows."""
    keys = ("as_of", "model_version", "model_status", "tier", "scored_at")
    recent = "false" if nothing else "true" if since is None else "as_of >= $since"
    params = None if since is None else {"since": since}
    entries = connection.execute(
        f"select distinct {', '.join(keys)} from {history} where {recent}"
        f" order by as_of nulls first, scored_at nulls first, model_version nulls first,"
        f" model_status, tier",
        params,
    ).fetchall()
    coded = pa.table(
        {"entry": pa.array(range(len(entries)), pa.int32())}
        | {key: [entry[number] for entry in entries] for number, key in enumerate(keys)}
    )
    same = " and ".join(f"history.{key} is not distinct from coded.{key}" for key in keys)
    code_type = np.uint16 if len(entries) <= np.iinfo(np.uint16).max else np.uint32
    parts: dict[str, list[np.ndarray]] = {"user_row": [], "entry": []}
    parts |= {name: [] for name in HISTORY_FLOATS}
    connection.register("coded", coded)
    try:  # read in batches: the whole result at once took as much again as the arrays
        batches = connection.sql(
            f"select cast(numbered.user_row as integer) as user_row,"
            f" cast(coded.entry as integer) as entry, history.predicted_spend,"
            f" history.purchase_probability, history.power_index"
            f" from {history} as history"
            f" inner join {numbered} as numbered using (user_id)"
            f" inner join coded on {same}"
            f" where {recent.replace('as_of', 'history.as_of')}",
            params=params,
        ).to_arrow_reader(1 << 20)
        for batch in batches:
            parts["user_row"].append(batch.column("user_row").to_numpy())
            parts["entry"].append(
                (len(entries) - 1 - batch.column("entry").to_numpy()).astype(code_type)
            )
            for name in HISTORY_FLOATS:
                parts[name].append(_floats(batch.column(name)))
    finally:
        connection.unregister("coded")
    user_rows = np.concatenate(parts.pop("user_row") or [np.empty(0, np.int32)])
    latest_first = np.concatenate(parts.pop("entry") or [np.empty(0, code_type)])
    offsets = np.zeros(users + 1, dtype=np.int64)
    np.cumsum(np.bincount(user_rows, minlength=users), out=offsets[1:])
    by_entry = np.argsort(latest_first, kind="stable")  # a radix sort of small integers
    place = np.empty(len(user_rows), dtype=np.int64)
    free = offsets[:-1].copy()  # each user's next slot
    start = 0
    for count in np.bincount(latest_first, minlength=len(entries)).tolist():
        group = by_entry[start : start + count]  # one entry's rows: each user once
        start += count
        users_of_group = user_rows[group]
        place[group] = free[users_of_group]
        free[users_of_group] += 1
    del by_entry, free, user_rows
    codes = np.empty(len(place), dtype=code_type)
    codes[place] = len(entries) - 1 - latest_first
    floats = []
    for name in HISTORY_FLOATS:  # one at a time, each read freed once placed
        figures = np.empty(len(place))
        figures[place] = np.concatenate(parts.pop(name) or [np.empty(0)])
        floats.append(figures)
    return History(
        offsets=offsets,
        codes=codes,
        entries=[tuple(entry) for entry in entries],
        floats=tuple(floats),
    )


def _model_summary(
    connection: duckdb.DuckDBPyConnection,
    model_version: str,
    *,
    evaluations: str,
    performance: str | None,
) -> dict[str, Any]:
    """The active model's metrics against its baselines (their means over the folds,
    where the publication has them), the latest fold's validation cutoff, and its deciles
    (calibration and lift), as the model card and the marts hold them."""
    columns = {column[0] for column in connection.execute(
        f"select * from {evaluations} limit 0").description}  # fmt: skip
    # a publication from before the folds: one row per method and metric
    means = "is_mean_over_folds" in columns
    latest = (
        f"(select max(validation_cutoff_date) from {evaluations} where model_version = $version)"
        if means
        else "validation_cutoff_date"
    )
    metrics = connection.execute(
        f"select model_status, {latest}, method, is_model, metric, metric_value"
        f" from {evaluations} where model_version = $version"
        f"{' and is_mean_over_folds' if means else ''} order by is_model desc, method, metric",
        {"version": model_version},
    ).fetchall()
    by_method: dict[str, dict[str, float | None]] = {}
    for _, _, method, _, metric, value in metrics:
        number = None if value is None or math.isnan(value) else value
        by_method.setdefault(method, {})[metric] = number
    deciles = []
    if performance is not None:
        names = (
            "method", "decile", "user_count", "mean_predicted_spend", "mean_actual_spend",
            "calibration_ratio", "lift", "cumulative_user_share", "cumulative_spend_capture",
        )  # fmt: skip
        rows = connection.execute(
            f"select {', '.join(names)} from {performance} where model_version = $version"
            f" order by method, decile desc",
            {"version": model_version},
        ).fetchall()
        deciles = [dict(zip(names, row, strict=True)) for row in rows]
    return {
        "model_version": model_version,
        "status": metrics[0][0] if metrics else None,
        "validation_cutoff_date": metrics[0][1] if metrics else None,
        "metrics": by_method,
        "deciles": deciles,
    }


def _signature(path: Path) -> tuple[int, int, int, int] | None:
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return (stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns)


class Watcher:
    """Holds the current snapshot and swaps in each new publication, off the request path.

    ``current`` is one attribute read: atomic in Python, so a request that reads it once
    has one publication throughout. A file that cannot be loaded (yet) leaves the last
    snapshot in place and is tried again at the next poll.
    """

    def __init__(
        self,
        path: Path,
        *,
        poll_seconds: float,
        pseudonym_key: bytes | None = None,
        history_days: int = HISTORY_DAYS_IN_MEMORY,
        on_swap: Callable[[Snapshot], None] | None = None,
        also: Callable[[], None] | None = None,
    ) -> None:
        self.path = path
        self.poll_seconds = poll_seconds
        self.pseudonym_key = pseudonym_key
        self.history_days = history_days
        self.current: Snapshot | None = None
        self.last_error: str | None = None
        self._seen: tuple[int, int, int, int] | None = None
        self._on_swap = on_swap
        self._also = also
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def check(self) -> bool:
        """Load the file if it changed since the last look; True if a snapshot was swapped."""
        signature = _signature(self.path)
        if signature is None or signature == self._seen:
            return False
        try:
            snapshot = load_snapshot(
                self.path, pseudonym_key=self.pseudonym_key, history_days=self.history_days
            )
        except Exception as error:  # keep serving the last one; try again next poll
            self.last_error = f"{type(error).__name__}: {error}"
            log.warning("cannot load the publication at %s: %s", self.path, self.last_error)
            return False
        # a file renamed in while it was loaded is seen again, and loaded, next poll
        self._seen = signature if _signature(self.path) == signature else None
        self.last_error = None
        previous, self.current = self.current, snapshot
        if previous is not None and previous.publication == snapshot.publication:
            pass  # the same publication (a copy or a touch): nothing changes for callers
        else:
            log.info(
                "serving publication %s (as_of %s, %s users, loaded in %.2f s)",
                snapshot.publication.publication_id,
                snapshot.publication.as_of,
                f"{snapshot.users:,}",
                snapshot.loaded_seconds,
            )
        if self._on_swap is not None:
            self._on_swap(snapshot)
        return True

    def _run(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            try:
                if self._also is not None:
                    self._also()
                self.check()
            except Exception:  # the watcher must outlive any one bad poll
                log.exception("the publication watcher failed a poll")

    def start(self) -> None:
        self.check()
        self._thread = threading.Thread(target=self._run, name="publication-watcher", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)


def now_utc() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


__all__ = [
    "FileHistory",
    "Publication",
    "PublicationError",
    "Snapshot",
    "Watcher",
    "load_snapshot",
    "now_utc",
]
