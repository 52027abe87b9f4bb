"""Shared fixtures: real dbt runs into temporary warehouses on small generated data."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import settings

from dbt_runner import DbtProject, make_project

# Property tests (test_input_properties.py) run the same examples every time, with no
# deadline (each example is a dbt run), and keep no example database in the repo.
settings.register_profile("purchasing-power", derandomize=True, deadline=None, database=None)
settings.load_profile("purchasing-power")


@pytest.fixture(scope="session")
def small_raw(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small shop in the input contract: about 1,000 users over 300 days, with dirty rows."""
    from purchasing_power.generate import GeneratorSettings, generate

    out = tmp_path_factory.mktemp("raw")
    generate(out, settings=GeneratorSettings(users=1000, days=300, seed=7, dirty_fraction=0.01))
    return out


@pytest.fixture(scope="session")
def built(small_raw: Path, tmp_path_factory: pytest.TempPathFactory) -> DbtProject:
    """One full `dbt build` (seeds, models, Python steps, every dbt test) on the small shop."""
    project = make_project(tmp_path_factory.mktemp("build"))
    project.run("build", vars={"raw_path": str(small_raw), "horizon_days": 60})
    return project
