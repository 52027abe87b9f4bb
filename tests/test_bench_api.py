"""The API load bench (bench/bench_api.py) on tiny data: what its figures rest on. No
timing is asserted; benchmarks never gate CI."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import bench_api


def test_the_api_bench_measures_every_request_and_renders_its_table(tmp_path: Path) -> None:
    runs, footprint = bench_api.bench_users(
        300, runs=2, seconds=0.4, work=tmp_path, concurrency=(1, 4)
    )
    assert [(run.kind, run.clients) for run in runs] == [
        ("single", 1), ("single", 4), ("batch", 1), ("batch", 4),
    ]  # fmt: skip
    for run in runs:
        assert run.requests > 0
        assert run.errors == 0  # every answer a 200 naming its publication
        assert 0 < run.p50_ms <= run.p95_ms <= run.p99_ms
        assert run.per_second == round(run.requests / run.seconds, 1)
        assert run.server_cpu_ms > 0
    assert footprint.users == 300
    assert footprint.history_rows == 600
    assert footprint.rss_mib_idle > 50
    result = {
        "date": "2026-01-01", "machine": {"cpus": 2, "memory_gib": 8}, "users": [300],
        "runs": 2, "seconds": 0.4, "load_before": 1.0,
        "runs_measured": [asdict(run) for run in runs], "footprints": [asdict(footprint)],
    }  # fmt: skip
    table = bench_api.render(result)
    assert table.count("| 300 | single lookup |") == 2
    assert table.count("| 300 | batch of 100 |") == 2
    assert "| 300 | 600 |" in table
