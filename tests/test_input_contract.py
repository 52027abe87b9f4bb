"""The input contract's typed columns and empty files, Parquet and CSV alike: no value and
no file stops the build; each bad value is quarantined with its reason (read_raw_table,
describe_raw_files, parse_timestamp, parse_whole_number, stg_raw__events)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dbt_runner import make_project

pytestmark = pytest.mark.slow

MARCH_1 = dt.datetime(2025, 3, 1, 10, 0)
MARCH_1_MS = 1_740_823_200_000  # MARCH_1 as Unix epoch milliseconds
NOON_AT_PLUS_2 = dt.datetime(2025, 3, 1, 12, 0, tzinfo=dt.timezone(dt.timedelta(hours=2)))

# Five files, each storing a typed column as another kind of value than the others
# do: (column, arrow type, values) per file, one value per row. Every row is an event
# of user u1; its id says what it holds.
FILES: dict[str, list[tuple[str, pa.DataType, list]]] = {
    "a": [
        ("event_id", pa.string(), ["a_clean", "a_purchase"]),
        ("event_time", pa.timestamp("us"), [MARCH_1, MARCH_1]),
        ("event_type", pa.string(), ["page_view", "purchase"]),
        ("price", pa.float64(), [None, 10.0]),
        ("quantity", pa.int64(), [None, 2]),
    ],
    # epoch numbers beside the timestamps of file a: the build used to stop here
    "b": [
        ("event_id", pa.string(), ["b_epoch_ms", "b_epoch_s", "b_epoch_us", "b_yyyymmdd"]),
        (
            "event_time",
            pa.int64(),
            [MARCH_1_MS, MARCH_1_MS // 1000, MARCH_1_MS * 1000, 20250301],
        ),
        ("event_type", pa.string(), ["page_view"] * 4),
        ("price", pa.float64(), [1.5, None, None, None]),
    ],
    # epoch seconds with a fraction, as doubles
    "e": [
        ("event_id", pa.string(), ["e_epoch_s_fraction"]),
        ("event_time", pa.float64(), [MARCH_1_MS / 1000 + 0.25]),
        ("event_type", pa.string(), ["page_view"]),
    ],
    # prices as text, one of them with a decimal comma; quantities as doubles
    "c": [
        ("event_id", pa.string(), ["c_comma", "c_text_price", "c_half_quantity", "c_whole_double"]),
        ("event_time", pa.timestamp("us"), [MARCH_1] * 4),
        ("event_type", pa.string(), ["purchase"] * 4),
        ("price", pa.string(), ["46,99", "12.5", "3", "4"]),
        ("quantity", pa.float64(), [1.0, 1.0, 2.5, 3.0]),
    ],
    # ratings as text, amounts as decimals
    "d": [
        ("event_id", pa.string(), ["d_rating", "d_rating_word", "d_decimal_amount"]),
        ("event_time", pa.timestamp("us", tz="UTC"), [NOON_AT_PLUS_2] * 3),
        ("event_type", pa.string(), ["review", "review", "purchase"]),
        ("rating", pa.string(), ["4", "five", None]),
        ("amount", pa.decimal128(10, 2), [None, None, Decimal("19.90")]),
    ],
}

# the verdict of every row: (event_at, price, quantity, rating, amount, reject_reason)
EXPECTED = {
    "a_clean": (MARCH_1, None, 1, None, None, None),
    "a_purchase": (MARCH_1, 10.0, 2, None, 20.0, None),
    "b_epoch_ms": (MARCH_1, 1.5, 1, None, None, None),
    "b_epoch_s": (MARCH_1, None, 1, None, None, None),
    "b_epoch_us": (None, None, 1, None, None, "unparseable_event_time"),
    "b_yyyymmdd": (None, None, 1, None, None, "unparseable_event_time"),
    "e_epoch_s_fraction": (MARCH_1 + dt.timedelta(seconds=0.25), None, 1, None, None, None),
    "c_comma": (MARCH_1, None, 1, None, 0.0, "unparseable_number"),
    "c_text_price": (MARCH_1, 12.5, 1, None, 12.5, None),
    # a rejected row keeps the defaults: the value as it arrived is in raw_values
    "c_half_quantity": (MARCH_1, 3.0, 1, None, 3.0, "unparseable_number"),
    "c_whole_double": (MARCH_1, 4.0, 3, None, 12.0, None),
    "d_rating": (MARCH_1, None, 1, 4, None, None),
    "d_rating_word": (MARCH_1, None, 1, None, None, "unparseable_number"),
    "d_decimal_amount": (MARCH_1, None, 1, None, 19.9, None),
}


def _columns(name: str) -> list[tuple[str, pa.DataType, list]]:
    rows = len(FILES[name][0][2])
    return [("user_id", pa.string(), ["u1"] * rows), *FILES[name]]


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    return str(value)


def _write(raw: Path, file_format: str) -> Path:
    """FILES under raw/events/ in one format, with an empty file beside them (and, in
    CSV, a file of blank lines and one of a header only)."""
    folder = raw / "events"
    folder.mkdir(parents=True)
    for name in FILES:
        columns = _columns(name)
        if file_format == "parquet":
            arrays = {column: pa.array(values, kind) for column, kind, values in columns}
            pq.write_table(pa.table(arrays), folder / f"{name}.parquet")
        else:
            values = [list(map(_text, column[2])) for column in columns]
            lines = [",".join(f'"{cell}"' if "," in cell else cell for cell in row)
                     for row in zip(*values, strict=True)]  # fmt: skip
            header = ",".join(column for column, _, _ in columns)
            (folder / f"{name}.csv").write_text("\n".join([header, *lines]) + "\n")
    (folder / f"empty.{file_format}").write_bytes(b"")
    if file_format == "csv":
        (folder / "blank.csv").write_text("\n\n")
        (folder / "header_only.csv").write_text("event_id,user_id,event_time,event_type\n")
    return raw


@pytest.fixture(scope="module", params=["parquet", "csv"])
def validated(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[str, Path, dict[str, tuple], str]:
    """FILES in one format, validated: (format, raw folder, verdict by event_id, dbt's output)."""
    file_format = request.param
    raw = _write(tmp_path_factory.mktemp("raw") / "raw", file_format)
    project = make_project(tmp_path_factory.mktemp("dbt"))
    result = project.run("build", "--select", "+int_events_validated",
                         vars={"raw_path": str(raw)})  # fmt: skip
    with duckdb.connect(str(project.warehouse), read_only=True) as connection:
        rows = connection.execute(
            "select event_id, event_at, price, quantity, rating, amount, reject_reason"
            " from intermediate.int_events_validated"
        ).fetchall()
    return file_format, raw, {row[0]: tuple(row[1:]) for row in rows}, result.stdout


def test_typed_columns_of_any_kind_are_validated_not_failed(validated) -> None:
    """A file storing event_time as epoch numbers, price or rating as text, quantity as
    doubles or amount as decimals beside files that do not: the build reads every file,
    10-digit epoch seconds and 13-digit milliseconds are times, and what is not a value
    of its column is quarantined as unparseable, the same in Parquet and CSV."""
    _, _, verdicts, _ = validated
    assert verdicts == EXPECTED


def test_empty_files_are_skipped_with_a_warning_naming_them(validated) -> None:
    """A zero-byte file (either format) or a CSV of blank lines has no header and no rows:
    the build skips it, says so naming it, and reads the other files (above); a
    header-only CSV is an empty delivery, read without a warning."""
    file_format, raw, _, output = validated
    skipped = ["empty.parquet"] if file_format == "parquet" else ["empty.csv", "blank.csv"]
    for name in skipped:
        assert f"Input contract: {raw / 'events' / name} is empty" in output
    assert "header_only.csv" not in output
