"""The scoring API's answers against the published file, and its swap of publications,
over real HTTP. Fast: synthetic publications made by the real publish code."""

from __future__ import annotations

import asyncio
import datetime as dt
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import duckdb
import httpx
import pytest

from api_server import running_server, wait_for
from purchasing_power.api import ApiSettings, add_key, create_app, keys
from purchasing_power.api.dependencies import Caller
from purchasing_power.api.lookups import ScoreLookups
from purchasing_power.api.ratelimit import TokenBuckets
from purchasing_power.api.routers import scores
from purchasing_power.api.schemas import (
    BatchResponse,
    HistoryResponse,
    ModelSummary,
    Readiness,
    ScoreResponse,
)
from purchasing_power.api.snapshot import load_snapshot
from purchasing_power.api.state import ApiState
from purchasing_power.publish import pseudonym
from synthetic_publication import publish_synthetic

USERS, RUNS = 300, 3
FIRST = dt.date(2026, 1, 1)


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> Path:
    database = tmp_path_factory.mktemp("published") / "purchasing_power_bi.duckdb"
    publish_synthetic(database, users=USERS, runs=RUNS, first_as_of=FIRST)
    return database


@pytest.fixture(scope="module")
def client(published: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    keys_file = tmp_path_factory.mktemp("keys") / "keys.json"
    token = add_key(keys_file, name="all", scopes=keys.SCOPES, rate_per_second=1e6).token
    settings = ApiSettings(database=published, keys_file=keys_file, poll_seconds=0.1)
    with (
        running_server(settings) as running,
        httpx.Client(base_url=running.url, headers={"X-API-Key": token}) as http,
    ):
        yield http


def _one(path: Path, sql: str, *params: object) -> list[tuple]:
    with duckdb.connect() as connection:
        connection.execute(f"attach '{path}' as published (read_only)")
        return connection.execute(sql, list(params)).fetchall()


def test_a_score_is_the_published_row_with_its_reasons_and_publication(
    client: httpx.Client, published: Path
) -> None:
    answer = ScoreResponse.model_validate(client.get("/v1/users/u0000042/score").json())
    ((row,),) = [
        _one(published, "select * from published.marts.purchasing_power_scores where user_id = ?",
             "u0000042")
    ]  # fmt: skip
    user, as_of, horizon, version, status, spend, probability, index, tier, scored_at = row
    score = answer.score
    assert (score.user_id, score.as_of, score.horizon_days, score.model_version) == (
        user, as_of, horizon, version,
    )  # fmt: skip
    assert (score.status, score.predicted_spend, score.purchase_probability) == (
        status, spend, probability,
    )  # fmt: skip
    assert (score.power_index, score.tier, score.scored_at) == (index, tier, scored_at)
    segment = _one(
        published,
        "select segment from published.marts.customer_segments where user_id = ?",
        "u0000042",
    )
    assert [(score.segment,)] == segment
    reasons = _one(
        published,
        "select reason_rank, feature_name, feature_description, feature_value, contribution,"
        " spend_multiplier from published.marts.purchasing_power_reasons where user_id = ?"
        " order by reason_rank",
        "u0000042",
    )
    assert [
        (r.rank, r.feature_name, r.description, r.feature_value, r.contribution,
         r.spend_multiplier)
        for r in score.reasons
    ] == reasons  # fmt: skip
    ((publication_id,),) = _one(
        published, "select distinct publication_id from published.main.bi_publication"
    )
    assert answer.publication.publication_id == publication_id
    assert answer.publication.as_of == FIRST + dt.timedelta(days=RUNS - 1) == score.as_of
    assert answer.publication.model_version == version


def test_a_copy_published_before_segments_answers_a_null_segment(tmp_path: Path) -> None:
    database = tmp_path / "purchasing_power_bi.duckdb"
    publish_synthetic(database, users=20, runs=1, segments=False)
    keys_file = tmp_path / "keys.json"
    token = add_key(keys_file, name="all", scopes=keys.SCOPES).token
    settings = ApiSettings(database=database, keys_file=keys_file, poll_seconds=0.1)
    with (
        running_server(settings) as running,
        httpx.Client(base_url=running.url, headers={"X-API-Key": token}) as http,
    ):
        answer = ScoreResponse.model_validate(http.get("/v1/users/u0000003/score").json())
    assert answer.score.user_id == "u0000003"
    assert answer.score.segment is None


def test_the_last_change_is_the_published_change_or_null(
    client: httpx.Client, published: Path
) -> None:
    changed = dict(
        _one(
            published,
            "select user_id, power_index_change from published.marts."
            "purchasing_power_score_changes",
        )
    )
    unchanged = sorted({f"u{n:07d}" for n in range(USERS)} - set(changed))
    user = sorted(changed)[0]
    change = client.get(f"/v1/users/{user}/score").json()["score"]["last_change"]
    assert change["power_index_change"] == changed[user]
    assert change["previous_as_of"] == str(FIRST + dt.timedelta(days=RUNS - 2))
    assert client.get(f"/v1/users/{unchanged[0]}/score").json()["score"]["last_change"] is None


def test_a_batch_answers_each_user_in_order_with_a_status(client: httpx.Client) -> None:
    ids = ["u0000003", "nobody", "u0000001", "u0000003"]
    answer = BatchResponse.model_validate(
        client.post("/v1/scores/batch", json={"user_ids": ids}).json()
    )
    assert [(r.user_id, r.status) for r in answer.results] == [
        ("u0000003", "found"), ("nobody", "not_found"), ("u0000001", "found"),
        ("u0000003", "found"),
    ]  # fmt: skip
    single = client.get("/v1/users/u0000001/score").json()["score"]
    assert answer.results[2].score.model_dump(mode="json") == single
    assert answer.results[1].score is None


def test_score_lookups_answer_as_the_fastapi_route_does(published: Path, tmp_path: Path) -> None:
    """ScoreLookups answers GET /v1/users/{id}/score before FastAPI's routing: the same
    status, type and bytes as the route it stands in for, for every kind of answer."""
    keys_file = tmp_path / "keys.json"
    tokens = [
        add_key(keys_file, name=name, scopes=scopes, rate_per_second=1e6, burst=10**6).token
        for name, scopes in (("all", keys.SCOPES), ("scores", ["scores"]), ("probe", ["health"]))
    ]
    settings = ApiSettings(database=published, keys_file=keys_file, poll_seconds=0.1)
    plain = create_app(settings)
    plain.user_middleware = [m for m in plain.user_middleware if m.cls is not ScoreLookups]
    users = ("u0000042", "u0000299", "u9999999", "nobody", "a" * 128, "a" * 129, "bad%20id")
    seen = set()
    with running_server(settings) as fast, running_server(settings, app=plain) as slow:
        for token in tokens:
            for user in users:
                answers = [
                    httpx.get(f"{url}/v1/users/{user}/score", headers={"X-API-Key": token})
                    for url in (fast.url, slow.url)
                ]
                fast_answer, slow_answer = (
                    (a.status_code, a.headers["content-type"], a.content) for a in answers
                )
                assert fast_answer == slow_answer, (user, fast_answer)
                seen.add(fast_answer[0])
    assert seen == {200, 403, 404, 422}


def test_score_lookups_answer_without_fastapi_and_pass_the_rest_on(published: Path) -> None:
    settings = ApiSettings(database=published, keys_file=published.with_name("none.json"))
    state = ApiState(settings)
    state.start()
    passed_on: list[str] = []

    async def fastapi(scope, receive, send) -> None:
        passed_on.append(f"{scope['method']} {scope['path']}")

    route = next(route for route in scores.router.routes if route.endpoint is scores.get_score)
    lookups = ScoreLookups(fastapi, state=state, route=route)
    who = Caller("test", frozenset(keys.SCOPES))

    async def ask(method: str, path: str) -> list[dict]:
        sent: list[dict] = []

        async def send(message: dict) -> None:
            sent.append(message)

        async def receive() -> dict:
            return {"type": "http.request", "body": b"", "more_body": False}

        scope = {"type": "http", "method": method, "path": path, "headers": [],
                 "state": {"caller": who}}  # fmt: skip
        await lookups(scope, receive, send)
        return sent

    try:
        found = asyncio.run(ask("GET", "/v1/users/u0000042/score"))
        missing = asyncio.run(ask("GET", "/v1/users/u9999999/score"))
        for method, path in (("GET", "/v1/users/bad id/score"), ("POST", "/v1/users/u1/score"),
                             ("GET", f"/v1/users/{'a' * 129}/score"), ("GET", "/v1/users/u1"),
                             ("GET", "/v1/users/a/b/score"), ("GET", "/v1/model")):  # fmt: skip
            asyncio.run(ask(method, path))
    finally:
        state.stop()
    assert found[0]["status"] == 200
    assert ScoreResponse.model_validate_json(found[1]["body"]).score.user_id == "u0000042"
    assert missing[0]["status"] == 404
    assert passed_on == [
        "GET /v1/users/bad id/score", "POST /v1/users/u1/score",
        f"GET /v1/users/{'a' * 129}/score", "GET /v1/users/u1", "GET /v1/users/a/b/score",
        "GET /v1/model",
    ]  # fmt: skip


def test_an_unknown_user_is_a_404_problem(client: httpx.Client) -> None:
    response = client.get("/v1/users/u9999999/score")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["detail"] == ("User 'u9999999' has no score in the current publication.")


def test_the_history_is_every_published_score_latest_first(
    client: httpx.Client, published: Path
) -> None:
    answer = HistoryResponse.model_validate(client.get("/v1/users/u0000007/history").json())
    expected = _one(
        published,
        "select as_of, power_index from published.marts.purchasing_power_score_history"
        " where user_id = ? order by as_of desc",
        "u0000007",
    )
    assert [(entry.as_of, entry.power_index) for entry in answer.history] == expected
    assert len(expected) == RUNS
    limited = client.get("/v1/users/u0000007/history", params={"limit": 1}).json()
    assert [entry["as_of"] for entry in limited["history"]] == [str(expected[0][0])]
    assert client.get("/v1/users/u0000007/history", params={"limit": 0}).status_code == 422


@pytest.mark.parametrize("history_days", [1, 2, 30])
def test_the_history_index_answers_as_the_history_query_did(
    published: Path, tmp_path: Path, history_days: int
) -> None:
    """The latest history_days dates are sliced from an index built at load, the older
    ones read from the file; every user's answer, at every limit, is what the query per
    request gave (ties on as_of broken by model version), with a second model on one day,
    null tiers, a row without an as_of and users without history."""
    database = tmp_path / "purchasing_power_bi.duckdb"
    shutil.copy(published, database)
    table = "marts.purchasing_power_score_history"
    with duckdb.connect(str(database)) as connection:
        connection.execute(
            f"insert into {table} select user_id, as_of, horizon_days, 'pp-second',"
            f" 'unproven', predicted_spend * 2, purchase_probability / 2, power_index / 2,"
            f" null, execution_provider, scoring_graph, scored_at from {table}"
            f" where as_of = $day and user_id < 'u0000150'",
            {"day": FIRST + dt.timedelta(days=1)},
        )
        connection.execute(f"update {table} set tier = null where user_id like '%7'")
        connection.execute(f"delete from {table} where user_id in ('u0000203', 'u0000299')")
        connection.execute(
            f"insert into {table} select user_id, null, horizon_days, 'pp-undated', model_status,"
            f" 1.0, 0.5, 50.0, 'medium', execution_provider, scoring_graph, null from {table}"
            f" where user_id = 'u0000011' and as_of = $first",
            {"first": FIRST},
        )
    snapshot = load_snapshot(database, history_days=history_days)
    assert snapshot.older_history is not None  # the undated row, at least
    in_memory = min(history_days, RUNS)
    second_model = 150 if in_memory >= 2 else 0  # on the day before the last
    assert snapshot.history.row_count == (USERS - 2) * in_memory + second_model
    with duckdb.connect() as connection:
        connection.execute(f"attach '{database}' as published (read_only)")
        for number in range(USERS):
            user_id = f"u{number:07d}"
            for limit in (1, 2, RUNS + 1, 1000):
                rows = connection.execute(
                    "select as_of, model_version, model_status, predicted_spend,"
                    " purchase_probability, power_index, tier, scored_at"
                    f" from published.{table} where user_id = $user_id"
                    " order by as_of desc, scored_at desc, model_version desc limit $limit",
                    {"user_id": user_id, "limit": limit},
                ).fetchall()
                names = ("as_of", "model_version", "status", "predicted_spend",
                         "purchase_probability", "power_index", "tier", "scored_at")  # fmt: skip
                expected = [dict(zip(names, row, strict=True)) for row in rows]
                assert snapshot.history_of(user_id, limit=limit) == expected, (user_id, limit)
                assert snapshot.history_in_memory(user_id, limit=limit) == (
                    limit <= len(snapshot.history.rows(int(snapshot.index[user_id]), limit=limit))
                )
    assert snapshot.history_of("u0000011", limit=10)[-1]["model_version"] == "pp-undated"
    assert snapshot.history_of("u0000203", limit=10) == []
    assert snapshot.history_of("nobody", limit=10) is None


def test_the_model_summary_is_the_active_model_s_evaluations(
    client: httpx.Client, published: Path
) -> None:
    answer = ModelSummary.model_validate(client.get("/v1/model").json())
    expected = _one(
        published,
        "select method, metric, metric_value from published.marts.model_evaluations"
        " where is_mean_over_folds",
    )
    assert {(m, k, v) for m, values in answer.metrics.items() for k, v in values.items()} == set(
        expected
    )
    assert answer.status == "accepted"
    assert len(answer.deciles) == 20
    assert answer.model_version == answer.publication.model_version


def test_readyz_reports_the_publication_and_its_age(client: httpx.Client) -> None:
    ready = Readiness.model_validate(client.get("/readyz").json())
    assert ready.ready
    assert ready.users == USERS
    assert 0 <= ready.age_seconds < 600


def test_metrics_count_requests_by_route_and_report_the_publication(
    client: httpx.Client,
) -> None:
    for _ in range(3):
        client.get("/v1/users/u0000001/score")
    text = client.get("/metrics").text
    lines = {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1]) for line in
             text.splitlines() if line and not line.startswith("#")}  # fmt: skip
    route = 'method="GET",route="/v1/users/{user_id}/score"'
    assert lines[f'purchasing_power_api_requests_total{{{route},status="200"}}'] >= 3
    assert lines[f"purchasing_power_api_request_duration_seconds_count{{{route}}}"] >= 3
    assert 0 <= lines["purchasing_power_api_publication_age_seconds"] < 600
    assert lines["purchasing_power_api_publication_users"] == USERS
    assert not any("u0000001" in name for name in lines)  # no series per user


def test_openapi_documents_the_v1_endpoints(client: httpx.Client) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/v1/users/{user_id}/score", "/v1/users/{user_id}/history", "/v1/scores/batch",
            "/v1/model", "/healthz", "/readyz", "/metrics"} <= set(paths)  # fmt: skip


def test_a_pseudonymised_copy_answers_raw_ids_only_with_the_key(tmp_path: Path) -> None:
    database = tmp_path / "purchasing_power_bi.duckdb"
    publish_synthetic(database, users=20, runs=2, pseudonym_key=b"secret")
    hashed = pseudonym("u0000005", key=b"secret")
    for key, raw_status in ((b"secret", 200), (None, 404)):
        settings = ApiSettings(
            database=database, keys_file=tmp_path / "none.json", allow_anonymous=True,
            pseudonym_key=key,
        )  # fmt: skip
        with running_server(settings) as running, httpx.Client(base_url=running.url) as http:
            by_pseudonym = http.get(f"/v1/users/{hashed}/score")
            raw = http.get("/v1/users/u0000005/score")
            history = http.get("/v1/users/u0000005/history")
        assert by_pseudonym.status_code == 200
        assert raw.status_code == raw_status
        assert history.status_code == raw_status
        if raw_status == 200:
            assert raw.json()["score"]["power_index"] == by_pseudonym.json()["score"]["power_index"]
            assert len(history.json()["history"]) == 2


def test_not_ready_until_a_publication_appears_then_served(tmp_path: Path) -> None:
    database = tmp_path / "purchasing_power_bi.duckdb"
    settings = ApiSettings(
        database=database, keys_file=tmp_path / "none.json", allow_anonymous=True,
        poll_seconds=0.05,
    )  # fmt: skip
    with running_server(settings) as running, httpx.Client(base_url=running.url) as http:
        assert http.get("/readyz").status_code == 503
        waiting = http.get("/v1/users/u0000001/score")
        assert waiting.status_code == 503
        assert waiting.headers["retry-after"] == "5"
        assert http.get("/healthz").status_code == 200
        publish_synthetic(database, users=10, runs=1)
        wait_for(lambda: http.get("/readyz").status_code == 200)
        assert http.get("/v1/users/u0000001/score").status_code == 200


def test_a_new_publication_is_swapped_in_between_requests(tmp_path: Path) -> None:
    """16 clients query while publications replace each other (scores, batches, and
    histories whose older day is read from the publication's file): no request fails,
    none mixes two publications, and the answers move to the last one."""
    database = tmp_path / "purchasing_power_bi.duckdb"
    first = publish_synthetic(database, users=2000, runs=2, first_as_of=FIRST)
    settings = ApiSettings(
        database=database, keys_file=tmp_path / "none.json", allow_anonymous=True,
        poll_seconds=0.05, rate_per_second=1e6, burst=10**6, history_days=1,
    )  # fmt: skip
    answers: list[tuple[str, str, str, bool]] = []
    failures: list[str] = []
    stop = threading.Event()

    def query(url: str, number: int) -> None:
        with httpx.Client(base_url=url, timeout=30) as http:
            while not stop.is_set():
                if number % 2:
                    response = http.get(f"/v1/users/u{number:07d}/score")
                    body = response.json() if response.status_code == 200 else None
                    scores = [body["score"]] if body else []
                elif number % 4 == 0:  # the day before the last is read from the file
                    response = http.get(f"/v1/users/u{number:07d}/history?limit=2")
                    if response.status_code != 200:
                        failures.append(f"{response.status_code} {response.text}")
                        continue
                    body = response.json()
                    publication, (latest, before) = body["publication"], body["history"]
                    day_before = dt.date.fromisoformat(publication["as_of"]) - dt.timedelta(1)
                    answers.append(
                        (publication["publication_id"], publication["as_of"], latest["as_of"],
                         before["as_of"] == str(day_before))
                    )  # fmt: skip
                    continue
                else:
                    ids = [f"u{n:07d}" for n in range(number, 2000, 97)]
                    response = http.post("/v1/scores/batch", json={"user_ids": ids})
                    body = response.json() if response.status_code == 200 else None
                    scores = [r["score"] for r in body["results"]] if body else []
                if body is None:
                    failures.append(f"{response.status_code} {response.text}")
                    continue
                publication = body["publication"]
                answers.extend(
                    (publication["publication_id"], publication["as_of"], score["as_of"],
                     score["model_version"] == publication["model_version"])
                    for score in scores
                )  # fmt: skip

    with running_server(settings) as running:
        threads = [threading.Thread(target=query, args=(running.url, n)) for n in range(16)]
        for thread in threads:
            thread.start()
        ids = [first]
        for day in (10, 20):
            enough = len(answers) + 50
            wait_for(lambda enough=enough: len(answers) > enough)
            first_as_of = FIRST + dt.timedelta(days=day)
            ids.append(publish_synthetic(database, users=2000, runs=2, first_as_of=first_as_of))
        last = str(FIRST + dt.timedelta(days=21))
        wait_for(lambda: answers[-1][1] == last)
        seen_after = len(answers)
        wait_for(lambda: len(answers) > seen_after + 50)
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
    assert failures == []
    as_of_of = {ids[0]: str(FIRST + dt.timedelta(days=1)),
                ids[1]: str(FIRST + dt.timedelta(days=11)), ids[2]: last}  # fmt: skip
    mixed = [a for a in answers if a[0] not in as_of_of or a[1] != as_of_of[a[0]] or a[2] != a[1]
             or not a[3]]  # fmt: skip
    assert mixed == []
    assert {a[0] for a in answers} >= {ids[0], ids[2]}
    assert {a[0] for a in answers[-50:]} == {ids[2]}  # in flight at the swap: not this late


def test_token_buckets_refill_at_the_rate_up_to_the_burst() -> None:
    now = [0.0]
    buckets = TokenBuckets(clock=lambda: now[0])
    assert [buckets.take("a", rate=2, burst=3) for _ in range(4)] == [0, 0, 0, 0.5]
    assert buckets.take("b", rate=2, burst=3) == 0  # a bucket per caller
    now[0] = 0.5
    assert buckets.take("a", rate=2, burst=3) == 0
    assert buckets.take("a", rate=2, burst=3) == 0.5
    now[0] = 100.0
    assert [buckets.take("a", rate=2, burst=3) for _ in range(4)] == [0, 0, 0, 0.5]


def test_keys_are_stored_hashed_owner_only_and_revocable(tmp_path: Path) -> None:
    path = tmp_path / "config" / "api_keys.json"
    made = keys.add_key(path, name="crm", scopes=["scores", "history"], burst=5)
    assert path.stat().st_mode & 0o777 == 0o600
    assert made.token not in path.read_text()
    stored = keys.read_keys(path)
    assert keys.verify(stored, made.token).name == "crm"
    assert stored[made.record.key_id].scopes == ("scores", "history")
    with pytest.raises(ValueError, match="exists"):
        keys.add_key(path, name="crm", scopes=["scores"])
    with pytest.raises(ValueError, match="scopes must be"):
        keys.parse_scopes("scores,admin")
    keys.revoke_key(path, name="crm")
    assert keys.verify(keys.read_keys(path), made.token) is None
    again = keys.add_key(path, name="crm", scopes=["scores"])  # the name is free again
    assert keys.verify(keys.read_keys(path), again.token).scopes == ("scores",)


def test_older_history_is_read_from_the_snapshot_s_own_file_after_a_swap(
    tmp_path: Path,
) -> None:
    """A snapshot that reads older history from its file keeps reading its own
    publication when a new one is renamed over the path, and lets it go when dropped."""
    database = tmp_path / "purchasing_power_bi.duckdb"
    publish_synthetic(database, users=50, runs=4, first_as_of=FIRST)
    old = load_snapshot(database, history_days=2)
    assert old.older_history is not None
    assert old.older_history.dates == [FIRST + dt.timedelta(days=1), FIRST]
    before = old.history_of("u0000007", limit=10)
    later = FIRST + dt.timedelta(days=100)
    publish_synthetic(database, users=50, runs=4, first_as_of=later)
    assert old.history_of("u0000007", limit=10) == before
    assert [entry["as_of"] for entry in before] == [FIRST + dt.timedelta(days=day)
                                                    for day in (3, 2, 1, 0)]  # fmt: skip
    new = load_snapshot(database, history_days=2)
    assert new.history_of("u0000007", limit=10)[-1]["as_of"] == later
    assert load_snapshot(database, history_days=4).older_history is None  # all in memory
    with pytest.raises(ValueError, match="at least 1"):
        load_snapshot(database, history_days=0)


def test_a_history_deeper_than_memory_answers_over_http_as_one_all_in_memory(
    client: httpx.Client, published: Path, tmp_path: Path
) -> None:
    token = add_key(tmp_path / "keys.json", name="h", scopes=["history"]).token
    settings = ApiSettings(database=published, keys_file=tmp_path / "keys.json",
                           history_days=1)  # fmt: skip
    with (
        running_server(settings) as running,
        httpx.Client(base_url=running.url, headers={"X-API-Key": token}) as http,
    ):
        for user in ("u0000000", "u0000123", "u0000299"):
            for limit in (1, 2, RUNS, 100):
                path = f"/v1/users/{user}/history?limit={limit}"
                shallow, deep = client.get(path), http.get(path)
                assert deep.status_code == 200
                assert HistoryResponse.model_validate(deep.json()).history
                assert deep.json() == shallow.json(), (user, limit)
        assert http.get("/v1/users/nobody/history").status_code == 404


def test_the_history_days_in_memory_come_from_the_flag_then_the_environment(
    tmp_path: Path,
) -> None:
    environ = {"PURCHASING_POWER_DB": str(tmp_path / "warehouse.duckdb")}
    assert ApiSettings.from_environment(environ=environ).history_days == 30
    environ["PURCHASING_POWER_API_HISTORY_DAYS"] = "7"
    settings = ApiSettings.from_environment(environ=environ)
    assert settings.history_days == 7
    assert ApiState(settings).watcher.history_days == 7  # what the loads are given
    assert ApiSettings.from_environment(environ=environ, history_days=90).history_days == 90
    environ["PURCHASING_POWER_API_HISTORY_DAYS"] = "a week"
    with pytest.raises(ValueError, match="whole number of days, not 'a week'"):
        ApiSettings.from_environment(environ=environ)
    with pytest.raises(ValueError, match="at least 1"):
        ApiSettings(database=tmp_path / "bi.duckdb", keys_file=tmp_path / "k", history_days=0)
