"""The scoring API is closed by default: keys, scopes, rate limits and input limits,
against a real server over real HTTP."""

from __future__ import annotations

import dataclasses
import hmac
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from api_server import Running, running_server, wait_for
from purchasing_power.api import ApiSettings, add_key, keys, revoke_key
from purchasing_power.api.settings import MAX_BATCH, MAX_HISTORY
from synthetic_publication import publish_synthetic

USERS = 200
ENDPOINTS = [
    ("GET", "/v1/users/u0000001/score", None),
    ("POST", "/v1/scores/batch", {"user_ids": ["u0000001"]}),
    ("GET", "/v1/users/u0000001/history", None),
    ("GET", "/v1/model", None),
    ("GET", "/healthz", None),
    ("GET", "/readyz", None),
    ("GET", "/metrics", None),
    ("GET", "/openapi.json", None),
    ("GET", "/docs", None),
]
INJECTIONS = [
    "' or 1=1 --",
    "u0000001'; drop table purchasing_power_scores; --",
    'u0000001" or "1"="1',
    "u0000001) union select * from bi_publication --",
    "../../etc/passwd",
    "u0000001%00",
    "u0000001\n",
    "ü0000001",
    "$(id)",
    "{{7*7}}",
]


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> Path:
    database = tmp_path_factory.mktemp("published") / "purchasing_power_bi.duckdb"
    publish_synthetic(database, users=USERS, runs=2)
    return database


@pytest.fixture(scope="module")
def keys_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("keys") / "api_keys.json"


@pytest.fixture(scope="module")
def tokens(keys_file: Path) -> dict[str, str]:
    every = ",".join(keys.SCOPES)
    made = {
        "all": add_key(keys_file, name="all", scopes=every.split(","), rate_per_second=1e6,
                       burst=10**6),
        "scores": add_key(keys_file, name="scores-only", scopes=["scores"], rate_per_second=1e6,
                          burst=10**6),
        "slow": add_key(keys_file, name="slow", scopes=["scores"], rate_per_second=0.2, burst=3),
        "revoked": add_key(keys_file, name="revoked", scopes=every.split(",")),
        "probe": add_key(keys_file, name="load-balancer", scopes=["health"]),
    }  # fmt: skip
    return {name: key.token for name, key in made.items()}


@pytest.fixture(scope="module")
def server(published: Path, keys_file: Path, tokens: dict[str, str]) -> Iterator[Running]:
    settings = ApiSettings(database=published, keys_file=keys_file, poll_seconds=0.1)
    with running_server(settings) as running:
        yield running


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _call(server: Running, method: str, path: str, body: object, **kwargs) -> httpx.Response:
    return httpx.request(method, server.url + path, json=body, timeout=10, **kwargs)


def _is_problem(response: httpx.Response, status: int) -> str:
    """The problem document's one sentence, after checking its shape."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == status
    assert problem["title"]
    assert re.fullmatch(r"[^\n]+[.]", problem["detail"]), problem["detail"]
    return problem["detail"]


@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS)
def test_every_endpoint_refuses_a_request_without_a_key(
    server: Running, method: str, path: str, body: object
) -> None:
    response = _call(server, method, path, body)
    assert "API key is required" in _is_problem(response, 401)
    assert response.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS)
def test_every_endpoint_answers_a_valid_key(
    server: Running, tokens: dict[str, str], method: str, path: str, body: object
) -> None:
    response = _call(server, method, path, body, headers=_bearer(tokens["all"]))
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    "header",
    [
        {"Authorization": "Bearer ppk_00000000_" + "A" * 43},  # well formed, unknown
        {"Authorization": "Bearer not-a-key"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"X-API-Key": "ppk_00000000_" + "A" * 43},
    ],
)
def test_a_wrong_key_is_refused(server: Running, header: dict[str, str]) -> None:
    response = _call(server, "GET", "/v1/users/u0000001/score", None, headers=header)
    assert response.status_code == 401


def test_a_key_with_its_secret_changed_is_refused(server: Running, tokens: dict[str, str]) -> None:
    token = tokens["all"]
    tampered = token[:-1] + ("A" if token[-1] != "A" else "B")
    for header in (_bearer(tampered), {"X-API-Key": tampered}):
        response = _call(server, "GET", "/v1/users/u0000001/score", None, headers=header)
        assert "not valid or has been revoked" in _is_problem(response, 401)
    right = _call(server, "GET", "/v1/users/u0000001/score", None, headers={"X-API-Key": token})
    assert right.status_code == 200


def test_a_key_revoked_while_the_server_runs_is_refused(
    server: Running, keys_file: Path, tokens: dict[str, str]
) -> None:
    def status() -> int:
        return _call(
            server, "GET", "/v1/model", None, headers=_bearer(tokens["revoked"])
        ).status_code

    assert status() == 200
    revoke_key(keys_file, name="revoked")
    wait_for(lambda: status() == 401)
    stored = keys_file.read_text()
    assert tokens["revoked"] not in stored  # only hashes are stored
    assert tokens["revoked"].split("_")[2] not in stored


@pytest.mark.parametrize(
    ("key", "path", "scope"),
    [
        ("scores", "/v1/users/u0000001/history", "history"),
        ("scores", "/v1/model", "model"),
        ("scores", "/metrics", "metrics"),
        ("scores", "/healthz", "health"),
        ("scores", "/readyz", "health"),
        ("probe", "/v1/users/u0000001/score", "scores"),
        ("probe", "/v1/users/nobody/score", "scores"),  # says nothing of who is scored
        ("probe", "/v1/users/u0000001/history", "history"),
        ("probe", "/metrics", "metrics"),
    ],
)
def test_a_key_without_the_scope_is_forbidden(
    server: Running, tokens: dict[str, str], key: str, path: str, scope: str
) -> None:
    response = _call(server, "GET", path, None, headers=_bearer(tokens[key]))
    assert f"lacks the '{scope}' scope" in _is_problem(response, 403)


def test_a_probe_key_tells_up_and_ready_and_nothing_else(
    server: Running, tokens: dict[str, str]
) -> None:
    headers = _bearer(tokens["probe"])
    assert _call(server, "GET", "/healthz", None, headers=headers).json() == {"status": "ok"}
    ready = _call(server, "GET", "/readyz", None, headers=headers).json()
    assert ready["ready"] is True
    assert ready["users"] == USERS
    batch = _call(server, "POST", "/v1/scores/batch", {"user_ids": ["u0000001"]}, headers=headers)
    assert "lacks the 'scores' scope" in _is_problem(batch, 403)
    assert _call(server, "GET", "/v1/model", None, headers=headers).status_code == 403


def test_an_unknown_path_is_refused_without_a_key_and_not_found_with_one(
    server: Running, tokens: dict[str, str]
) -> None:
    assert "API key is required" in _is_problem(_call(server, "GET", "/v2/users", None), 401)
    found = _call(server, "GET", "/v2/users", None, headers=_bearer(tokens["all"]))
    assert "No such endpoint" in _is_problem(found, 404)


def test_reasons_are_given_only_to_a_key_with_the_reasons_scope(
    server: Running, tokens: dict[str, str]
) -> None:
    path = "/v1/users/u0000001/score"
    without = _call(server, "GET", path, None, headers=_bearer(tokens["scores"])).json()
    with_reasons = _call(server, "GET", path, None, headers=_bearer(tokens["all"])).json()
    assert without["score"]["reasons"] is None
    assert len(with_reasons["score"]["reasons"]) == 3
    batch = _call(
        server, "POST", "/v1/scores/batch", {"user_ids": ["u0000001"]},
        headers=_bearer(tokens["scores"]),
    ).json()  # fmt: skip
    assert batch["results"][0]["score"]["reasons"] is None


@pytest.mark.parametrize("user_id", INJECTIONS)
def test_injection_strings_get_a_4xx_and_change_nothing(
    server: Running, tokens: dict[str, str], user_id: str
) -> None:
    headers = _bearer(tokens["all"])
    quoted = quote(user_id, safe="")
    for path in (f"/v1/users/{quoted}/score", f"/v1/users/{quoted}/history"):
        response = httpx.get(server.url + path, headers=headers, timeout=10)
        assert 400 <= response.status_code < 500, (path, response.text)
        assert response.headers["content-type"] == "application/problem+json"
    batch = _call(
        server, "POST", "/v1/scores/batch", {"user_ids": ["u0000001", user_id]}, headers=headers
    )
    assert "user_ids[1]" in _is_problem(batch, 422)
    ready = _call(server, "GET", "/readyz", None, headers=headers).json()
    assert ready["users"] == USERS


def test_an_id_of_a_valid_charset_is_looked_up_not_interpreted(
    server: Running, tokens: dict[str, str]
) -> None:
    response = _call(
        server, "POST", "/v1/scores/batch",
        {"user_ids": ["u0000001--", "u0000001:or:1", "u0000001"]},
        headers=_bearer(tokens["all"]),
    )  # fmt: skip
    statuses = [result["status"] for result in response.json()["results"]]
    assert statuses == ["not_found", "not_found", "found"]


def test_an_id_too_long_is_refused(server: Running, tokens: dict[str, str]) -> None:
    headers = _bearer(tokens["all"])
    response = _call(server, "GET", f"/v1/users/{'u' * 129}/score", None, headers=headers)
    assert "at most 128 characters" in _is_problem(response, 422)
    fits = _call(server, "GET", f"/v1/users/{'u' * 128}/score", None, headers=headers)
    assert fits.status_code == 404


def test_a_batch_over_max_batch_users_is_refused(server: Running, tokens: dict[str, str]) -> None:
    headers = _bearer(tokens["all"])
    ids = [f"u{number:07d}" for number in range(MAX_BATCH + 1)]
    response = _call(server, "POST", "/v1/scores/batch", {"user_ids": ids}, headers=headers)
    assert f"at most {MAX_BATCH} items" in _is_problem(response, 422)
    full = _call(server, "POST", "/v1/scores/batch", {"user_ids": ids[:MAX_BATCH]},
                 headers=headers)  # fmt: skip
    assert len(full.json()["results"]) == MAX_BATCH


def test_a_history_limit_over_max_history_is_refused(
    server: Running, tokens: dict[str, str]
) -> None:
    headers = _bearer(tokens["all"])
    path = "/v1/users/u0000001/history?limit="
    over = _call(server, "GET", f"{path}{MAX_HISTORY + 1}", None, headers=headers)
    assert f"less than or equal to {MAX_HISTORY}" in _is_problem(over, 422)
    assert _call(server, "GET", f"{path}{MAX_HISTORY}", None, headers=headers).status_code == 200


def test_the_input_limits_are_one_source_the_schema_and_docs_state(
    server: Running, tokens: dict[str, str]
) -> None:
    """MAX_BATCH and MAX_HISTORY are what the OpenAPI schema shows and docs/api.md says;
    the settings carry no second copy that nothing reads."""
    schema = httpx.get(f"{server.url}/openapi.json", headers=_bearer(tokens["all"])).json()
    batch = schema["components"]["schemas"]["BatchRequest"]["properties"]["user_ids"]
    assert (batch["minItems"], batch["maxItems"]) == (1, MAX_BATCH)
    history = schema["paths"]["/v1/users/{user_id}/history"]["get"]["parameters"]
    (limit,) = [parameter for parameter in history if parameter["name"] == "limit"]
    assert (limit["schema"]["minimum"], limit["schema"]["maximum"]) == (1, MAX_HISTORY)
    assert f"{MAX_BATCH:,}" in schema["paths"]["/v1/scores/batch"]["post"]["description"]
    fields = {field.name for field in dataclasses.fields(ApiSettings)}
    assert not fields & {"max_batch", "max_history"}
    docs = (Path(__file__).parents[1] / "docs" / "api.md").read_text()
    assert f"up to {MAX_BATCH:,} users" in docs
    assert f"(limit 1\N{EN DASH}{MAX_HISTORY:,})" in docs


def test_an_oversized_body_is_refused(server: Running, tokens: dict[str, str]) -> None:
    headers = {**_bearer(tokens["all"]), "Content-Type": "application/json"}
    body = json.dumps({"user_ids": ["u" * 100] * 3000}).encode()
    assert len(body) > 256 * 1024
    declared = httpx.post(server.url + "/v1/scores/batch", content=body, headers=headers)
    assert "larger than the limit" in _is_problem(declared, 413)

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted while it is read
        for start in range(0, len(body), 16_384):
            yield body[start : start + 16_384]

    streamed = httpx.post(server.url + "/v1/scores/batch", content=chunks(), headers=headers)
    assert "larger than the limit" in _is_problem(streamed, 413)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b'{"user_ids": ["u0000001"', "not valid JSON"),
        (b"\xff\xfe", "not valid JSON"),
        (b'{"user_ids": "u0000001"}', "user_ids"),
        (b'{"user_ids": []}', "at least 1 item"),
        (b'{"user_ids": [1, 2]}', "user_ids[0]"),
        (b'{"user_ids": ["u0000001"], "extra": 1}', "extra"),
        (b"[]", "request body"),
        (b"", "request body"),
    ],
)
def test_a_malformed_body_gets_a_422_with_one_sentence(
    server: Running, tokens: dict[str, str], content: bytes, expected: str
) -> None:
    headers = {**_bearer(tokens["all"]), "Content-Type": "application/json"}
    response = httpx.post(server.url + "/v1/scores/batch", content=content, headers=headers)
    assert expected in _is_problem(response, 422)


def test_the_rate_limit_answers_429_with_retry_after(
    server: Running, tokens: dict[str, str]
) -> None:
    headers = _bearer(tokens["slow"])
    with httpx.Client(base_url=server.url, headers=headers, timeout=10) as client:
        statuses = [client.get("/v1/users/u0000001/score").status_code for _ in range(6)]
        limited = client.get("/v1/users/u0000001/score")
    assert statuses[:3] == [200, 200, 200]  # the burst
    assert statuses[3:] == [429, 429, 429]
    assert "Rate limit of 0.2 requests a second" in _is_problem(limited, 429)
    assert 1 <= int(limited.headers["retry-after"]) <= 5
    other = _call(server, "GET", "/v1/users/u0000001/score", None, headers=_bearer(tokens["all"]))
    assert other.status_code == 200  # each key has a bucket of its own


def test_an_unknown_key_id_is_still_compared_in_constant_time(
    monkeypatch: pytest.MonkeyPatch, tokens: dict[str, str], keys_file: Path
) -> None:
    compared, original = [], hmac.compare_digest

    def recording(a: bytes, b: bytes) -> bool:
        compared.append((len(a), len(b)))
        return original(a, b)

    monkeypatch.setattr(keys.hmac, "compare_digest", recording)
    stored = keys.read_keys(keys_file)
    assert keys.verify(stored, tokens["all"]) is not None
    assert keys.verify(stored, "ppk_00000000_" + "A" * 43) is None
    assert keys.verify(stored, "garbage") is None
    assert compared == [(32, 32)] * 3


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_serve_allow_anonymous_warns_and_answers_without_a_key(
    published: Path, tmp_path: Path
) -> None:
    port = _free_port()
    command = Path(sys.executable).with_name("purchasing-power")
    server = subprocess.Popen(
        [str(command), "serve", "--bi-db", str(published), "--port", str(port),
         "--keys-file", str(tmp_path / "none.json"), "--allow-anonymous"],
        stderr=subprocess.PIPE, text=True, env={**os.environ, "COLUMNS": "200"},
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}/v1/users/u0000001/score"
        deadline = time.monotonic() + 60
        while True:
            try:
                response = httpx.get(url, timeout=5)
                break
            except httpx.TransportError:
                assert server.poll() is None
                assert time.monotonic() < deadline
                time.sleep(0.2)
        assert response.status_code == 200
        assert response.json()["score"]["reasons"]  # every scope
    finally:
        server.send_signal(signal.SIGINT)
        _, stderr = server.communicate(timeout=30)
    assert "warning: --allow-anonymous" in stderr


def test_serve_without_keys_warns_and_refuses(published: Path, tmp_path: Path) -> None:
    settings = ApiSettings(database=published, keys_file=tmp_path / "none.json")
    with running_server(settings) as running:
        response = httpx.get(running.url + "/healthz")
    assert response.status_code == 401


def test_a_declared_oversized_body_is_refused_before_it_is_sent(
    server: Running, tokens: dict[str, str]
) -> None:
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as connection:
        connection.sendall(
            f"POST /v1/scores/batch HTTP/1.1\r\nHost: {host}\r\nX-API-Key: {tokens['all']}\r\n"
            "Content-Type: application/json\r\nContent-Length: 100000000\r\n\r\n".encode()
        )  # and no body: the server must answer without waiting for it
        head = connection.recv(4096).decode()
    assert head.startswith("HTTP/1.1 413 ")
