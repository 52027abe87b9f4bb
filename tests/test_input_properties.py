"""Property-based input tests: random mixtures of valid rows and every kind of bad value,
written as CSV or as Parquet (one format per example) over several files, validated by
real dbt runs (`+int_events_validated`).

For every example: the run never fails on a value; every raw row is counted once
(raw rows = clean + rejected + exact duplicates dropped); each row ends with the reject
reason planted in it (first match wins, in the order of int_events_validated: a
conflicting copy of an id outranks every reason after missing_event_type); clean rows
keep the time planted (epoch numbers included). Each example plants at most one bad
value per row, so the planted reason is the one expected. In Parquet each file stores a
column in its own type where its values allow (timestamps, integers, doubles) or as
text, drawn per file, so files of one table disagree on types.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import math
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

from dbt_runner import REPO

pytestmark = pytest.mark.slow

COLUMNS = (
    "event_id", "user_id", "event_time", "event_type", "item_id", "category", "price",
    "quantity", "amount", "order_id", "session_id", "rating", "review_text", "channel",
)  # fmt: skip
REQUIRED = COLUMNS[:4]
# int_events_validated's order (no as_of is set, so event_time_not_before_as_of never applies)
REASONS = (
    "missing_event_id", "missing_user_id", "unparseable_event_time", "missing_event_time",
    "missing_event_type", "conflicting_duplicate_event_id", "unknown_event_type",
    "unparseable_number", "invalid_price", "invalid_amount", "invalid_quantity",
    "invalid_rating",
)  # fmt: skip
OUTRANKS_A_CONFLICT = set(REASONS[: REASONS.index("conflicting_duplicate_event_id")])
EVENT_TYPES = tuple(
    line.split(",")[0] for line in (REPO / "seeds" / "event_types.csv").read_text().splitlines()[1:]
)
EPOCH = dt.datetime(1970, 1, 1)
BLANK = st.sampled_from([None, "", "   "])


@dataclass(frozen=True)
class Row:
    """One distinct raw row, the reason planted in it and the time it must keep if clean."""

    values: dict[str, object]
    reason: str | None
    event_at: dt.datetime | None
    copies: int = 0  # exact copies beside it

    @property
    def tag(self) -> str:
        return str(self.values["item_id"])

    @property
    def event_id(self) -> str | None:
        value = self.values["event_id"]
        return value.strip() or None if isinstance(value, str) else None


@dataclass(frozen=True)
class Example:
    file_format: str
    rows: list[Row]
    files: list[list[dict[str, object]]]  # the raw rows of each file, copies included
    natives: list[dict[str, bool]]  # per Parquet file: store the column in its own type
    drops: list[set[str]]  # per file: optional columns left out (all null there)
    has_empty_file: bool = False


@st.composite
def valid_times(draw: st.DrawFn) -> tuple[object, dt.datetime]:
    """A raw event_time in one of the forms the contract reads, and the UTC time it is."""
    at = EPOCH + dt.timedelta(seconds=draw(st.integers(1_600_000_000, 1_900_000_000)))
    seconds = int((at - EPOCH).total_seconds())
    form = draw(st.sampled_from(["timestamp", "text", "offset", "s", "ms", "s_fraction"]))
    if form == "timestamp":
        return at, at
    if form == "text":
        return at.isoformat(sep=draw(st.sampled_from([" ", "T"]))), at
    if form == "offset":
        zone = dt.timezone(dt.timedelta(minutes=draw(st.sampled_from([-300, 60, 330]))))
        return at.replace(tzinfo=dt.UTC).astimezone(zone).isoformat(), at
    if form == "s":
        return seconds, at
    if form == "ms":
        millis = draw(st.integers(0, 999))
        return seconds * 1000 + millis, at + dt.timedelta(milliseconds=millis)
    fraction = draw(st.sampled_from([0.25, 0.5]))
    return seconds + fraction, at + dt.timedelta(seconds=fraction)


def money() -> st.SearchStrategy[float]:
    return st.integers(0, 100_000).map(lambda cents: cents / 100)


@st.composite
def valid_rows(draw: st.DrawFn, index: int) -> Row:
    time, event_at = draw(valid_times())
    event_type = draw(st.sampled_from(EVENT_TYPES))
    values = {
        "event_id": draw(st.sampled_from([f"e{index}", f" e{index} "])),
        "user_id": f"u{draw(st.integers(1, 5))}",
        "event_time": time,
        "event_type": draw(st.sampled_from([event_type, event_type.upper(), f" {event_type}"])),
        "item_id": f"r{index}",
        "category": draw(st.sampled_from([None, "shoes", "books"])),
        "price": draw(st.none() | money()),
        "quantity": draw(st.none() | st.integers(1, 5) | st.sampled_from([2.0, "3", "1"])),
        "amount": draw(st.none() | money()),
        "order_id": None,
        "session_id": draw(st.sampled_from([None, "s1"])),
        "rating": draw(st.none() | st.integers(1, 5) | st.just("4")),
        "review_text": None,
        "channel": draw(st.sampled_from([None, "web", "app"])),
    }
    return Row(values, None, event_at)


# each kind of bad value: the column it goes in, the values it may take, its reason
UNPARSEABLE = "unparseable_number"
BAD_VALUES: dict[str, tuple[str, st.SearchStrategy, str]] = {
    "missing_event_id": ("event_id", BLANK, "missing_event_id"),
    "missing_user_id": ("user_id", BLANK, "missing_user_id"),
    "unparseable_event_time": (
        "event_time",
        st.sampled_from([
            "not-a-time", "2025-13-45 25:61:00", "31/02/2025 10:00", "yesterday", "NaT",
            "infinity", "-infinity", 20250301, 1_740_823_200_000_000, -1_740_823_200,
            17_408_232_000, "1740823200,5",
        ]),
        "unparseable_event_time",
    ),
    "missing_event_time": ("event_time", BLANK, "missing_event_time"),
    "missing_event_type": ("event_type", BLANK, "missing_event_type"),
    "unknown_event_type": (
        "event_type", st.sampled_from(["wishlist_add_v2", "teleport"]), "unknown_event_type"
    ),
    "unparseable_price": ("price", st.sampled_from(["46,99", "abc", "1.2.3"]), UNPARSEABLE),
    "unparseable_amount": ("amount", st.sampled_from(["1.234,50", "n/a"]), UNPARSEABLE),
    "fractional_quantity": ("quantity", st.sampled_from([2.5, "2,5", "two", 0.5]), UNPARSEABLE),
    "fractional_rating": ("rating", st.sampled_from([4.5, "five"]), UNPARSEABLE),
    "invalid_price": (
        "price", st.sampled_from([-0.01, -46.99, math.nan, math.inf, -math.inf]), "invalid_price"
    ),
    "invalid_amount": ("amount", st.sampled_from([-1.0, math.nan, math.inf]), "invalid_amount"),
    "invalid_quantity": ("quantity", st.sampled_from([0, -1, -3, "0"]), "invalid_quantity"),
    "invalid_rating": ("rating", st.sampled_from([0, 6, 10, -1, "7"]), "invalid_rating"),
}  # fmt: skip
KINDS = ["clean"] * 6 + sorted(BAD_VALUES)


@st.composite
def examples(draw: st.DrawFn, file_format: str) -> Example:
    rows: list[Row] = []
    for index in range(draw(st.integers(8, 40))):
        row = draw(valid_rows(index))
        kind = draw(st.sampled_from(KINDS))
        if kind != "clean":
            column, bad_values, reason = BAD_VALUES[kind]
            row = replace(row, values={**row.values, column: draw(bad_values)}, reason=reason)
        rows.append(row)
    # a second version of some ids: the same row with another tag
    with_ids = [row for row in rows if row.event_id is not None]
    twins = (
        draw(st.lists(st.sampled_from(with_ids), unique_by=Row.tag.fget, max_size=3))
        if with_ids
        else []
    )
    rows += [replace(row, values={**row.values, "item_id": row.tag + "b"}) for row in twins]
    rows = [replace(row, copies=draw(st.sampled_from([0, 0, 0, 1, 2]))) for row in rows]

    n_files = draw(st.integers(1, 3))
    files: list[list[dict[str, object]]] = [[] for _ in range(n_files)]
    for row in rows:
        for _ in range(row.copies + 1):
            files[draw(st.integers(0, n_files - 1))].append(row.values)
    natives = [{column: draw(st.booleans()) for column in COLUMNS} for _ in files]
    drops = [
        {
            column
            for column in COLUMNS[4:]
            if all(values[column] is None for values in file) and draw(st.booleans())
        }
        for file in files
    ]
    return Example(file_format, rows, files, natives, drops, draw(st.booleans()))


def _text(value: object) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    return repr(value) if isinstance(value, float) else str(value)


def _arrow_column(values: list[object], native: bool) -> pa.Array:
    """The column in its own type where every value has one (and ``native`` is drawn),
    else as text."""
    kinds = {type(value) for value in values if value is not None}
    if native and kinds == {dt.datetime}:
        return pa.array(values, pa.timestamp("us"))
    if native and kinds == {int}:
        return pa.array(values, pa.int64())
    if native and kinds and kinds <= {int, float}:
        return pa.array([None if v is None else float(v) for v in values], pa.float64())
    return pa.array([_text(value) for value in values], pa.string())


def _write(example: Example, folder: Path) -> None:
    for old in folder.iterdir():
        old.unlink()
    for number, (file, natives, drops) in enumerate(
        zip(example.files, example.natives, example.drops, strict=True)
    ):
        columns = [column for column in COLUMNS if column not in drops]
        path = folder / f"part-{number}.{example.file_format}"
        if example.file_format == "parquet":
            table = {
                column: _arrow_column([values[column] for values in file], natives[column])
                for column in columns
            }
            pq.write_table(pa.table(table), path)
        else:
            with path.open("w", newline="") as handle:
                writer = csv.writer(handle)
                writer.writerow(columns)
                writer.writerows([[_text(values[column]) for column in columns] for values in file])
    if example.has_empty_file:
        (folder / f"part-9-empty.{example.file_format}").write_bytes(b"")


def _expected(example: Example) -> Counter:
    """(tag, reject_reason, duplicate_rows_dropped) of every validated row."""
    versions = Counter(row.event_id for row in example.rows if row.event_id is not None)
    expected: Counter = Counter()
    for row in example.rows:
        reason = row.reason
        if row.event_id is None:  # rows without an id are never collapsed
            expected[(row.tag, reason, 0)] += row.copies + 1
            continue
        if versions[row.event_id] > 1 and reason not in OUTRANKS_A_CONFLICT:
            reason = "conflicting_duplicate_event_id"
        expected[(row.tag, reason, row.copies)] += 1
    return expected


TOTALS: Counter = Counter()


@dataclass(frozen=True)
class InProcessDbt:
    """dbt run in this process (dbt's Python API): an example then costs its run, about
    3 s, not also the 10 s a fresh process spends importing dbt on this machine. The
    warehouse stays open in this process between runs, so it is read with the same
    (default) configuration."""

    warehouse: Path
    raw: Path
    work: Path

    def run(self, *args: str) -> list[str]:
        """``dbt <args>`` on the raw folder; the messages dbt logged at warn level."""
        from dbt.cli.main import dbtRunner

        logged: list[tuple[str, str]] = []
        result = dbtRunner(callbacks=[lambda event: logged.append(
            (event.info.level, event.info.msg)
        )]).invoke([
            *args, "--vars", json.dumps({"raw_path": str(self.raw)}),
            "--project-dir", str(REPO), "--profiles-dir", str(REPO),
            "--target-path", str(self.work / "target"), "--log-path", str(self.work / "logs"),
            "--log-level-file", "none", "--no-use-colors", "--quiet",
        ])  # fmt: skip
        if not result.success:
            errors = "\n".join(message for level, message in logged if level == "error")
            raise AssertionError(f"dbt {' '.join(args)} failed: {result.exception}\n{errors}")
        return [message for level, message in logged if level == "warn"]


@pytest.fixture(scope="module")
def validator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessDbt]:
    """A warehouse with the event-type seed, and the raw folder every example rewrites
    (one raw_path for all: dbt reuses its parse of the project). Prints what was
    checked (pytest -s shows it)."""
    base = tmp_path_factory.mktemp("properties")
    dbt = InProcessDbt(warehouse=base / "warehouse.duckdb", raw=base / "raw", work=base)
    (dbt.raw / "events").mkdir(parents=True)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DO_NOT_TRACK", "1")
        patch.setenv("PURCHASING_POWER_DB", str(dbt.warehouse))
        dbt.run("seed", "--select", "event_types")
        yield dbt
    print(f"\ninput properties checked: {dict(TOTALS)}")


def _check(example: Example, dbt: InProcessDbt) -> None:
    _write(example, dbt.raw / "events")
    warned = dbt.run("run", "--select", "+int_events_validated", "--full-refresh")
    with duckdb.connect(str(dbt.warehouse)) as connection:
        (raw_rows,) = connection.execute("select count(*) from staging.stg_raw__events").fetchone()
        validated = connection.execute(
            "select item_id, reject_reason, duplicate_rows_dropped, event_at"
            " from intermediate.int_events_validated"
        ).fetchall()
    # nothing lost: every raw row is a validated row (clean or rejected) or a dropped copy
    dropped = sum(row[2] for row in validated)
    assert len(validated) + dropped == raw_rows == sum(len(file) for file in example.files)
    assert Counter(row[:3] for row in validated) == _expected(example)
    clean = [row for row in validated if row[1] is None]
    planted_times = {row.tag: row.event_at for row in example.rows}
    assert {row[0]: row[3] for row in clean} == {row[0]: planted_times[row[0]] for row in clean}
    empty = dbt.raw / "events" / f"part-9-empty.{example.file_format}"
    assert any(f"{empty} is empty" in message for message in warned) == example.has_empty_file
    TOTALS.update(examples=1, raw_rows=raw_rows, validated_rows=len(validated))


# Each example is a dbt run (about 3 s here): 15 examples a format, and no shrinking
# (a failure is reported as drawn; drop `phases` to shrink it while debugging).
PROPERTY_SETTINGS = settings(max_examples=15, phases=[Phase.explicit, Phase.generate])


@PROPERTY_SETTINGS
@given(example=examples("csv"))
def test_csv_rows_end_clean_rejected_for_their_reason_or_dropped(example, validator) -> None:
    _check(example, validator)


@PROPERTY_SETTINGS
@given(example=examples("parquet"))
def test_parquet_rows_end_clean_rejected_for_their_reason_or_dropped(example, validator) -> None:
    _check(example, validator)
