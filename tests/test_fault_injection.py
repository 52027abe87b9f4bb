"""Nothing lost, whatever happens to the build: `dbt build` is killed (SIGKILL, its whole
process group) at each stage in turn, and the next plain `dbt build` must end equal to a
clean build, the published BI copy must never show a partial state, and no temporary
file may be left behind.

The kill needs no hook in the project: dbt's JSON log (`--log-format json`) says when a
node starts, and the test kills dbt once the stage's node has started (and, where it is
long enough, has run for a moment), or once the publication has staged its first file.
dbt-duckdb runs Python models inside dbt's process, so the kill lands in them. A kill
that lands after the node finished fails the test: it would test nothing.

The stages before training are killed in a first build (an empty warehouse: what the
killed build committed is all there is), the later ones in a build over a complete one
(the clean build itself, compared before it is killed the first time), where the last
good scores, history and published copy must stay in place.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import duckdb
import pytest

from dbt_runner import DbtProject, make_project

pytestmark = pytest.mark.slow

VARS = {"horizon_days": 60}
BI_DATABASE = "purchasing_power_bi.duckdb"
BI_PARQUET = "purchasing_power_bi_parquet"
VOLATILE = {  # columns that a build sets to its own time: left out of the comparisons
    "marts.purchasing_power_scores": "scored_at",
    "marts.purchasing_power_score_history": "scored_at",
}
NODE = "model.purchasing_power."


@dataclass(frozen=True)
class KillPoint:
    """Where a build is killed: once `node` started, after `delay` seconds, or once the
    dbt log says `note` (then after `delay`), or once the publication staged a file."""

    stage: str
    node: str
    build: Literal["first", "over_complete"]
    delay: float = 0.0
    note: str | None = None
    when_staged: bool = False


KILL_POINTS = (
    KillPoint("validation", f"{NODE}int_events_validated", "first"),
    KillPoint("features", f"{NODE}user_features", "first"),
    # mid-training: training and registration take some 0.45 s after this note at this
    # size on the 2-core machine with other work beside it, and never less than 0.1 s
    KillPoint("training", f"{NODE}ml_models", "first", 0.1, note="training a new model"),
    KillPoint("scoring", f"{NODE}ml_scores", "over_complete"),
    KillPoint("reasons", f"{NODE}ml_reasons", "over_complete", 0.2),
    KillPoint("publication", f"{NODE}bi_publications", "over_complete", when_staged=True),
)


@dataclass(frozen=True)
class State:
    """What a build ends with, as far as a user sees it."""

    features: list[tuple]
    scores: list[tuple]
    reasons: list[tuple]
    history: list[tuple]
    published: dict[str, list[tuple]]  # every published mart, from the BI copy
    publication: list[tuple]  # tables listed by bi_publication, their rows, one id or not
    files: list[str]  # every file under the project's folder, but dbt's target and logs


@dataclass
class Killed:
    """A build killed at a kill point, as its log told it."""

    returncode: int
    lines: list[str] = field(default_factory=list)  # dbt's log messages, in order
    started: bool = False  # the kill point's node started
    finished: bool = False  # ... and finished before the kill
    staged: list[str] = field(default_factory=list)  # hidden BI files at the kill
    registered: list[str] = field(default_factory=list)  # model versions at the kill


@dataclass(frozen=True)
class Clean:
    project: DbtProject
    state: State


def _rows(connection: duckdb.DuckDBPyConnection, table: str, order: str) -> list[tuple]:
    volatile = VOLATILE.get(table)
    columns = f"* exclude ({volatile})" if volatile else "*"
    return connection.execute(f"select {columns} from {table} order by {order}").fetchall()


def _files(folder: Path) -> list[str]:
    return sorted(
        str(path.relative_to(folder))
        for path in folder.rglob("*")
        if path.relative_to(folder).parts[0] not in ("target", "logs") and not path.is_dir()
    )


def _published(project: DbtProject) -> dict[str, bytes]:
    """The published copy, file by file (not the hidden files a publication stages)."""
    bi = project.work / BI_DATABASE
    files = [bi, *sorted((project.work / BI_PARQUET).rglob("*.parquet"))]
    return {
        str(path.relative_to(project.work)): path.read_bytes()
        for path in files
        if path.is_file() and not path.name.startswith(".")
    }


def _state(project: DbtProject) -> State:
    with duckdb.connect(str(project.warehouse), read_only=True) as warehouse:
        features = warehouse.execute(
            "select * exclude (built_from) from features.user_features order by all"
        ).fetchall()
        scores = _rows(warehouse, "marts.purchasing_power_scores", "user_id")
        reasons = _rows(warehouse, "marts.purchasing_power_reasons", "user_id, reason_rank")
        history = _rows(warehouse, "marts.purchasing_power_score_history", "all")
    with duckdb.connect(str(project.work / BI_DATABASE), read_only=True) as bi:
        listed = bi.execute(
            "select table_name, row_count, count(distinct publication_id) over ()"
            " from bi_publication order by table_name"
        ).fetchall()
        published = {table: _rows(bi, table, "all") for table, _, _ in listed}
    return State(
        features=features,
        scores=scores,
        reasons=reasons,
        history=history,
        published=published,
        publication=listed,
        files=_files(project.work),
    )


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A smaller shop than the session's (200 users): the same code paths, in less time."""
    from purchasing_power.generate import GeneratorSettings, generate

    out = tmp_path_factory.mktemp("shop")
    generate(out, settings=GeneratorSettings(users=200, days=300, seed=11, dirty_fraction=0.01))
    return out


@pytest.fixture(scope="module")
def clean(shop: Path, tmp_path_factory: pytest.TempPathFactory) -> Clean:
    """One clean build of the shop; the builds killed over a complete one start from it."""
    project = make_project(tmp_path_factory.mktemp("clean"))
    project.run("build", vars={"raw_path": str(shop), **VARS})
    state = _state(project)
    assert state.scores
    assert state.history
    return Clean(project=project, state=state)


def _build_and_kill(project: DbtProject, shop: Path, point: KillPoint) -> Killed:
    """`dbt build`, killed with SIGKILL at `point`."""
    process = project.start("build", "--log-format", "json", vars={"raw_path": str(shop), **VARS})
    killed = Killed(returncode=0)
    started, noted = threading.Event(), threading.Event()

    def read() -> None:
        for line in process.stdout:
            try:
                event = json.loads(line)
            except json.JSONDecodeError:  # what a Python model prints itself
                killed.lines.append(line.rstrip())
                continue
            killed.lines.append(event["info"]["msg"])
            node = (event["data"].get("node_info") or {}).get("unique_id")
            name = event["info"]["name"]
            if node == point.node and name == "LogStartLine":
                killed.started = True
                started.set()
            if node == point.node and name in ("LogModelResult", "NodeFinished"):
                killed.finished = True
            if point.note and point.note in event["info"]["msg"]:
                noted.set()
        started.set()  # the build ended: stop waiting
        noted.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert started.wait(timeout=600)
        if point.note:
            assert noted.wait(timeout=600)
        time.sleep(point.delay)
        deadline = time.monotonic() + 60
        while point.when_staged and not _hidden(project.work) and process.poll() is None:
            assert time.monotonic() < deadline, "the publication staged nothing in 60 s"
            time.sleep(0.002)
        killed.staged = _hidden(project.work)
        killed.registered = sorted(p.name for p in project.artifacts.glob("pp-*"))
    finally:
        with_group = process.poll() is None
        if with_group:
            os.killpg(process.pid, signal.SIGKILL)
        killed.returncode = process.wait(timeout=60)
        reader.join(timeout=60)
        process.stdout.close()
    return killed


def _hidden(folder: Path) -> list[str]:
    return sorted(
        str(path.relative_to(folder))
        for path in folder.rglob(".*")
        if path.relative_to(folder).parts[0] not in ("target", "logs")
    )


@pytest.mark.parametrize("point", KILL_POINTS, ids=[point.stage for point in KILL_POINTS])
def test_a_build_killed_at_each_stage_is_made_whole_by_the_next(
    point: KillPoint, clean: Clean, shop: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    if point.build == "first":
        project = make_project(tmp_path_factory.mktemp(point.stage))
    else:
        project = clean.project
        assert _state(project) == clean.state  # the build over a complete one starts whole
    published = _published(project)

    killed = _build_and_kill(project, shop, point)

    log = "\n".join(killed.lines)
    assert killed.started, f"the build ended before {point.node} started:\n{log}"
    assert killed.returncode == -signal.SIGKILL, f"the build was not killed:\n{log}"
    assert not killed.finished, (
        f"the kill landed after {point.node} finished: it tests nothing (make it earlier)"
    )
    if point.note:  # mid-training: nothing registered yet
        assert not killed.registered, f"the kill landed after training: {killed.registered}"
    if point.when_staged:  # mid-publication: its staged files are there
        assert any(name.endswith(".tmp") for name in killed.staged), killed.staged
    # the BI copy: none on a first build, else the last complete one, file for file
    assert _published(project) == published
    if point.build == "over_complete":  # the last good scores and history stay
        with duckdb.connect(str(project.warehouse), read_only=True) as warehouse:
            assert _rows(warehouse, "marts.purchasing_power_scores", "user_id") == (
                clean.state.scores
            )
            assert _rows(warehouse, "marts.purchasing_power_score_history", "all") == (
                clean.state.history
            )

    project.run("build", vars={"raw_path": str(shop), **VARS})

    state = _state(project)
    assert state.features == clean.state.features
    assert state.scores == clean.state.scores
    assert state.reasons == clean.state.reasons
    assert state.history == clean.state.history
    assert state.published == clean.state.published
    assert state.publication == clean.state.publication
    assert state.files == clean.state.files  # nothing temporary left, nothing missing
