"""The scoring API while `dbt build` publishes a new copy: 16 clients keep querying; no
request fails, no answer mixes two publications, and the answers move to the new as_of."""

from __future__ import annotations

import datetime as dt
import shutil
import threading
from pathlib import Path

import duckdb
import httpx
import pytest

from api_server import running_server, wait_for
from dbt_runner import DbtProject, make_project
from purchasing_power.api import ApiSettings, add_key

pytestmark = pytest.mark.slow
CLIENTS = 16


def _published(path: Path) -> tuple[str, dt.date, list[str]]:
    with duckdb.connect() as connection:
        connection.execute(f"attach '{path}' as published (read_only)")
        ((publication_id,),) = connection.execute(
            "select distinct publication_id from published.main.bi_publication"
        ).fetchall()
        ((as_of,),) = connection.execute(
            "select distinct as_of from published.marts.purchasing_power_scores"
        ).fetchall()
        users = [
            user
            for (user,) in connection.execute(
                "select user_id from published.marts.purchasing_power_scores order by user_id"
            ).fetchall()
        ]
    return publication_id, as_of, users


def _copy(built: DbtProject, base: Path) -> DbtProject:
    project = make_project(base)
    shutil.copy(built.warehouse, project.warehouse)
    bi = built.warehouse.with_name("purchasing_power_bi.duckdb")
    shutil.copy(bi, base / bi.name)
    shutil.copytree(
        built.work / "purchasing_power_bi_parquet", base / "purchasing_power_bi_parquet"
    )
    shutil.copytree(built.artifacts, project.artifacts)
    return project


def test_clients_see_whole_publications_while_dbt_build_publishes(
    built: DbtProject, small_raw: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    project = _copy(built, tmp_path_factory.mktemp("api-under-build"))
    bi = project.warehouse.with_name("purchasing_power_bi.duckdb")
    before_id, before_as_of, users = _published(bi)
    keys_file = project.work / "api_keys.json"
    token = add_key(keys_file, name="under-build", scopes=["scores", "reasons"],
                    rate_per_second=1e6, burst=10**6).token  # fmt: skip
    settings = ApiSettings(database=bi, keys_file=keys_file, poll_seconds=0.2)
    answers: list[tuple[str, str, str, bool]] = []  # publication id, its as_of, score's, model
    failures: list[str] = []
    not_found: list[str] = []  # must be users the new as_of no longer scores
    stop = threading.Event()

    def query(url: str, number: int) -> None:
        with httpx.Client(base_url=url, headers={"X-API-Key": token}, timeout=30) as http:
            step = 0
            while not stop.is_set():
                step += 1
                try:
                    if step % 2:
                        response = http.get(
                            f"/v1/users/{users[(number * 37 + step) % len(users)]}/score"
                        )
                    else:
                        batch = users[number::CLIENTS][:50]
                        response = http.post("/v1/scores/batch", json={"user_ids": batch})
                except httpx.HTTPError as error:
                    failures.append(repr(error))
                    continue
                if response.status_code == 404 and step % 2:
                    not_found.append(response.url.path.split("/")[3])
                    continue
                if response.status_code != 200:
                    failures.append(f"{response.status_code} {response.text}")
                    continue
                body = response.json()
                results = [body] if "score" in body else body["results"]
                not_found.extend(r["user_id"] for r in results if r.get("status") == "not_found")
                scores = [r["score"] for r in results if r["score"] is not None]
                publication = body["publication"]
                answers.extend(
                    (publication["publication_id"], publication["as_of"], score["as_of"],
                     score["model_version"] == publication["model_version"]
                     and bool(score["reasons"]))
                    for score in scores
                )  # fmt: skip
                stop.wait(0.01)  # leave the build some of the two cores

    new_as_of = before_as_of - dt.timedelta(days=1)
    with running_server(settings) as running:
        threads = [threading.Thread(target=query, args=(running.url, n)) for n in range(CLIENTS)]
        for thread in threads:
            thread.start()
        try:
            wait_for(lambda: len(answers) > 100)
            build = project.run(
                "build",
                vars={"raw_path": str(small_raw), "horizon_days": 60, "as_of": str(new_as_of)},
                check=False,
            )
            after_id, after_as_of, users_after = _published(bi)
            wait_for(lambda: answers[-1][0] == after_id, timeout=30)
            switched = len(answers)
            wait_for(lambda: len(answers) > switched + 200, timeout=30)
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=30)
    assert build.returncode == 0, build.stdout[-3000:]
    assert after_id != before_id
    assert after_as_of == new_as_of
    assert failures == []
    # a user whose first event came on the day dropped is not scored at the earlier as_of
    assert not set(not_found) & set(users_after)
    as_of_of = {before_id: str(before_as_of), after_id: str(after_as_of)}
    mixed = [
        answer for answer in answers
        if as_of_of.get(answer[0]) != answer[1] or answer[2] != answer[1] or not answer[3]
    ]  # fmt: skip
    assert mixed == []
    seen = [answer[0] for answer in answers]
    assert seen[0] == before_id
    assert seen.count(after_id) > 200
    # threads append in the order their answers came back, not the order they were read:
    # a request in flight at the swap may land just after the first new answer, not later
    assert set(seen[-100:]) == {after_id}
