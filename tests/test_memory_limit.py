"""The Python models run with DuckDB's memory limit lowered (macros/python_model_memory_limit.sql):
the statements the hooks render for a profile's limit, and the order they ran in a build."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from dbt_runner import DbtProject, make_project

pytestmark = pytest.mark.slow

PYTHON_MODELS = ("ml_models", "ml_scores", "ml_reasons")

# (profile's limit, Python models' limit) -> (hook before, hook after)
CASES = {
    ("'4.6 GiB'", "'1GB'"): ("set memory_limit = '1GB'", "set memory_limit = '4.6 GiB'"),
    ("'8GB'", "'512 MiB'"): ("set memory_limit = '512 MiB'", "set memory_limit = '8GB'"),
    ("'2 GB'", "'1.5gb'"): ("set memory_limit = '1.5gb'", "set memory_limit = '2 GB'"),
    # never raised: a profile's limit at or below the Python models' is left as it is
    ("'800MB'", "'1GB'"): ("", "set memory_limit = '800MB'"),
    ("'1000MB'", "'1GB'"): ("", "set memory_limit = '1000MB'"),
    ("'953 MiB'", "'1GB'"): ("", "set memory_limit = '953 MiB'"),
    ("'977 MiB'", "'1GB'"): ("set memory_limit = '1GB'", "set memory_limit = '977 MiB'"),
    # a profile's limit that is no size DuckDB writes (or none: DuckDB's default) is lowered
    ("'80%'", "'1GB'"): ("set memory_limit = '1GB'", "set memory_limit = '80%'"),
    ("none", "'1GB'"): ("set memory_limit = '1GB'", "reset memory_limit"),
}


def _compiled(project: DbtProject, inline: str, **run) -> str:
    """``inline`` as ``dbt compile --inline`` renders it."""
    result = project.run("compile", "--inline", inline, **run)
    assert "Compiled inline node is:" in result.stdout, result.stdout
    return result.stdout.split("Compiled inline node is:", 1)[1].strip()


@pytest.fixture
def project(tmp_path: Path) -> DbtProject:
    return make_project(tmp_path)


def test_hooks_lower_the_limit_only_below_the_profiles(project: DbtProject) -> None:
    cases = list(CASES.items())
    inline = "\n".join(
        f"{{{{ memory_limit_lowering({profile}, {python}) }}}}|"
        f"{{{{ memory_limit_restoring({profile}) }}}}"
        for (profile, python), _ in cases
    )
    # and the hooks themselves, with this project's profile (its limit from the env)
    inline += "\n{{ lower_memory_limit_for_python() }}|{{ restore_memory_limit_after_python() }}"
    compiled = _compiled(
        project,
        inline,
        vars={"python_model_memory_limit": "768MB"},
        env={"PURCHASING_POWER_MEMORY_LIMIT": "3GB"},
    )
    rendered = [tuple(line.strip().split("|")) for line in compiled.splitlines()]
    expected = [hooks for _, hooks in cases]
    expected.append(("set memory_limit = '768MB'", "set memory_limit = '3GB'"))
    assert rendered == expected


def test_a_python_limit_that_is_no_size_fails_naming_the_var(project: DbtProject) -> None:
    result = project.run(
        "compile",
        "--inline",
        "{{ lower_memory_limit_for_python() }}",
        vars={"python_model_memory_limit": "lots"},
        check=False,
    )
    assert result.returncode != 0
    assert "python_model_memory_limit: lots is not a memory size" in result.stdout


def test_python_models_run_between_lowering_and_restoring_the_limit(built: DbtProject) -> None:
    """In the shared build's log, each Python model's job runs after its pre-hook set the
    lowered limit and before its post-hook set the profile's again."""
    log = (built.work / "logs" / "dbt.log").read_text()
    profile_limit = os.environ.get("PURCHASING_POWER_MEMORY_LIMIT", "8GB")
    for model in PYTHON_MODELS:
        node = f"model.purchasing_power.{model}"
        start = log.index(f"Began executing node {node}")
        section = log[start : log.index(f"Finished running node {node}", start)]
        python = section.index(f'Writing runtime python for node "{node}"')
        limits = [(m.start(), m.group(0)) for m in re.finditer(r"(re)?set memory_limit.*", section)]
        assert [sql for at, sql in limits if at < python] == ["set memory_limit = '1GB'"], model
        assert [sql for at, sql in limits if at > python] == [
            f"set memory_limit = '{profile_limit}'"
        ], model
