"""The API load bench (bench/bench_api.py) on tiny data: what its figures rest on. No
timing is asserted; benchmarks never gate CI."""

from __future__ import annotations

import shutil
from dataclasses import asdict
from pathlib import Path

import pytest

import bench_api


@pytest.mark.parametrize(
    ("generator", "workers"),
    [
        ("python", 1),
        ("python", 2),
        pytest.param("wrk", 1, marks=pytest.mark.skipif(not shutil.which("wrk"), reason="no wrk")),
    ],
)
def test_the_api_bench_measures_every_request_and_renders_its_table(
    tmp_path: Path, generator: str, workers: int
) -> None:
    runs, footprint = bench_api.bench_users(
        300, runs=2, seconds=0.4, work=tmp_path, concurrency=(1, 4), generator=generator,
        workers=workers,
    )  # fmt: skip
    assert [(run.kind, run.clients) for run in runs] == [
        ("single", 1), ("single", 4), ("batch", 1), ("batch", 4), ("history", 1), ("history", 4),
    ]  # fmt: skip
    for run in runs:
        assert run.requests > 0
        assert run.errors == 0  # every answer a 200 (naming its publication)
        assert 0 < run.p50_ms <= run.p95_ms <= run.p99_ms
        assert run.per_second == round(run.requests / run.seconds, 1)
        assert run.server_cpu_ms > 0
    assert footprint.users == 300
    assert footprint.history_rows == 600
    assert footprint.rss_mib_idle > 50 * workers  # each worker holds the publication
    assert footprint.rss_mib_peak_loading >= footprint.rss_mib_idle
    result = {
        "date": "2026-01-01", "machine": {"cpus": 2, "memory_gib": 8}, "users": [300],
        "runs": 2, "seconds": 0.4, "load_generator": generator, "workers": workers,
        "load_before": 1.0, "runs_measured": [asdict(run) for run in runs],
        "footprints": [asdict(footprint)],
    }  # fmt: skip
    table = bench_api.render(result)
    assert f"--client {generator}" in table
    assert ("the server one process" in table) == (workers == 1)
    assert table.count("| 300 | single lookup |") == 2
    assert table.count("| 300 | batch of 100 |") == 2
    assert table.count("| 300 | history (limit 100) |") == 2
    assert f"| 300 | 600 | {footprint.rss_mib_idle:.0f} | " in table


def test_the_load_generator_is_wrk_where_installed_else_the_python_client(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(bench_api.shutil, "which", lambda name: None)
    assert bench_api.load_generator("auto") == "python"
    with pytest.raises(SystemExit, match="wrk is not installed"):
        bench_api.load_generator("wrk")
    monkeypatch.setattr(bench_api.shutil, "which", lambda name: f"/usr/bin/{name}")
    assert bench_api.load_generator("auto") == "wrk"
    assert bench_api.load_generator("python") == "python"
