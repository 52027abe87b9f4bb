"""Run dbt from the repo root into a warehouse, artifacts and target folder of a test's own."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DBT = Path(sys.executable).with_name("dbt")


@dataclass(frozen=True)
class DbtProject:
    """A place to run dbt from the repo root into a warehouse and artifacts of its own."""

    root: Path
    warehouse: Path
    artifacts: Path
    work: Path

    def run(
        self,
        *args: str,
        vars: dict | None = None,
        check: bool = True,
        env: dict[str, str] | None = None,
    ):
        """``dbt <args>``; ``env`` adds to (or overrides) the environment dbt runs in."""
        result = subprocess.run(
            self._command(args, vars),
            cwd=self.root,
            env=self._environment(env),
            capture_output=True,
            text=True,
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"dbt {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
        return result

    def start(
        self, *args: str, vars: dict | None = None, env: dict[str, str] | None = None
    ) -> subprocess.Popen:
        """``dbt <args>`` started, not waited for: in a process group of its own (kill it
        whole with ``os.killpg(process.pid, ...)``), stdout and stderr in one text pipe."""
        return subprocess.Popen(
            self._command(args, vars),
            cwd=self.root,
            env=self._environment(env),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )

    def _environment(self, env: dict[str, str] | None) -> dict[str, str]:
        return {
            **os.environ,
            "DO_NOT_TRACK": "1",
            # a partial build runs only the tests whose parents it all builds
            "DBT_INDIRECT_SELECTION": "cautious",
            "DBT_PROFILES_DIR": str(self.root),
            "PURCHASING_POWER_DB": str(self.warehouse),
            **(env or {}),
        }

    def _command(self, args: tuple[str, ...], vars: dict | None) -> list[str]:
        all_vars = {"artifacts_path": str(self.artifacts), **(vars or {})}
        return [
            str(DBT),
            *args,
            "--vars",
            json.dumps(all_vars),
            "--target-path",
            str(self.work / "target"),
            "--log-path",
            str(self.work / "logs"),
            "--no-use-colors",
        ]


def make_project(base: Path, *, root: Path = REPO) -> DbtProject:
    base.mkdir(parents=True, exist_ok=True)
    return DbtProject(
        root=root,
        warehouse=base / "warehouse.duckdb",
        artifacts=base / "artifacts",
        work=base,
    )


def copy_project(destination: Path) -> Path:
    """The files git lists (tracked, and untracked but not ignored), copied."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO, capture_output=True, check=True,
    ).stdout  # fmt: skip
    for name in filter(None, listed.decode().split("\0")):
        source = REPO / name
        if source.is_file():  # listed but deleted in the working tree: skip
            target = destination / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return destination
