"""A file or day whose rows are mostly rejected warns, in dbt's output, its run results and
`purchasing-power summary` (data_quality_rejected_shares, seeds/data_quality_thresholds.csv,
warn_rejected_shares_above_bound, summary.py); a clean build does not."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest

from dbt_runner import DbtProject, make_project

pytestmark = pytest.mark.slow

CLI = Path(sys.executable).with_name("purchasing-power")
BAD_ROWS = 60


@dataclass(frozen=True)
class Warned:
    """A build of a shop beside one file of prices written with a decimal comma."""

    project: DbtProject
    bad_file: Path
    bad_day: dt.date
    bad_day_rows: int  # raw rows of that day, the bad file's included
    output: str


def _test_results(project: DbtProject) -> dict[str, tuple[str, int]]:
    results = json.loads((project.work / "target" / "run_results.json").read_text())
    return {
        result["unique_id"].split(".")[2]: (result["status"], result["failures"])
        for result in results["results"]
        if result["unique_id"].startswith("test.")
    }


def _summary(project: DbtProject) -> str:
    result = subprocess.run(
        [str(CLI), "summary", "--db", str(project.warehouse)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return result.stdout


@pytest.fixture(scope="module")
def warned(tmp_path_factory: pytest.TempPathFactory) -> Warned:
    from purchasing_power.generate import GeneratorSettings, generate

    base = tmp_path_factory.mktemp("warned")
    shop = generate(
        base / "shop", settings=GeneratorSettings(users=150, days=150, seed=3, dirty_fraction=0)
    )
    events = base / "raw" / "events"
    events.mkdir(parents=True)
    shutil.copy(shop.events_path, events / "shop.parquet")
    bad_file = events / "late_delivery.parquet"
    with duckdb.connect() as connection:
        # priced rows again under new ids, all on the busiest day, prices written 46,99
        bad_day = connection.execute(
            f"select event_time::date from '{shop.events_path}'"
            " group by 1 order by count(*) desc, 1 limit 1"
        ).fetchone()[0]
        connection.execute(
            f"copy (select 'late-' || event_id as event_id,"
            " * exclude (event_id, event_time, price),"
            f" timestamp '{bad_day} 12:00:00' as event_time,"
            " replace(cast(round(price, 2) as varchar), '.', ',') as price"
            f" from '{shop.events_path}' where price is not null"
            f" order by event_id limit {BAD_ROWS}) to '{bad_file}'"
        )
        (day_rows,) = connection.execute(
            f"select count(*) from '{shop.events_path}' where event_time::date = '{bad_day}'"
        ).fetchone()
    project = make_project(base / "dbt")
    result = project.run(
        "build", "--select", "+purchasing_power_scores", "+model_evaluations",
        "+data_quality_rejected_shares", "+data_quality_summary", "+rejected_events",
        vars={"raw_path": str(base / "raw"), "horizon_days": 30, "cutoff_spacing_days": 15},
    )  # fmt: skip
    return Warned(project, bad_file, bad_day, day_rows + BAD_ROWS, result.stdout)


def test_a_file_of_rejected_rows_warns_naming_it(warned: Warned) -> None:
    """The build succeeds (check=True) with the warning test warning once per file or day
    above its bound, and dbt's output names each with its share and top reason."""
    status = _test_results(warned.project)["rejected_share_within_bound"]
    assert status == ("warn", 2)
    day_share = BAD_ROWS / warned.bad_day_rows
    assert 0.2 < day_share < 1
    assert (
        f"Data quality: file {warned.bad_file}: 100.0% of its {BAD_ROWS} raw rows rejected,"
        " most often unparseable_number" in warned.output
    )
    assert (
        f"Data quality: day {warned.bad_day}: {day_share:.1%} of its {warned.bad_day_rows}"
        " raw rows rejected, most often unparseable_number" in warned.output
    )
    with duckdb.connect(str(warned.project.warehouse), read_only=True) as connection:
        above = connection.execute(
            "select scope, source_file, event_date, rows_in, rows_rejected, top_reject_reason"
            " from marts.data_quality_rejected_shares where is_rejected_share_above_bound"
            " order by scope"
        ).fetchall()
        (judged,) = connection.execute(
            "select count(*) from marts.data_quality_rejected_shares where scope = 'day'"
        ).fetchone()
    assert above == [
        ("day", None, warned.bad_day, warned.bad_day_rows, BAD_ROWS, "unparseable_number"),
        ("file", str(warned.bad_file), None, BAD_ROWS, BAD_ROWS, "unparseable_number"),
    ]
    assert judged > 100  # every day is judged; only the bad one is above its bound


def test_the_summary_lists_the_warnings(warned: Warned) -> None:
    summary = _summary(warned.project)
    assert "WARNING: 2 files or days above the rejected share" in summary
    assert (
        f"file {warned.bad_file}: 100.0% of {BAD_ROWS} rows rejected,"
        " most often unparseable_number (bound 20%)" in summary
    )
    assert f"day {warned.bad_day}: {BAD_ROWS / warned.bad_day_rows:.1%} of" in summary


def test_a_clean_build_does_not_warn(built: DbtProject) -> None:
    """The shared small shop (1% of rows broken, spread over files and days) is below
    every bound: the test passes, dbt names no file or day and the summary shows no
    warning."""
    # its log, not run_results.json: other modules run more dbt commands in it
    log = (built.work / "logs" / "dbt.log").read_text()
    assert "PASS rejected_share_within_bound" in log
    assert "WARN 1 rejected_share_within_bound" not in log
    assert "Data quality:" not in log
    with duckdb.connect(str(built.warehouse), read_only=True) as connection:
        (files, days, above) = connection.execute(
            "select count(*) filter (where scope = 'file'), count(*) filter (where scope = 'day'),"
            " count(*) filter (where is_rejected_share_above_bound)"
            " from marts.data_quality_rejected_shares"
        ).fetchone()
    assert (files, above) == (1, 0)
    assert days > 250
    summary = _summary(built)
    assert "rejected by reason: " in summary
    assert "WARNING" not in summary
