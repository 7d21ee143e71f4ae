"""Regressions from the code review: inputs that crashed, mis-answered or mis-journaled."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import time

import httpx
import pytest
from pushing import TIMEOUT, clean_env, console_script, push_body

from picky_mock import Backend, ConfigError, FaultRule, Settings, load_settings
from picky_mock.app import InProcessFault, create_app


def test_in_process_transport_fault_reaches_the_client_not_the_server_errors():
    backend = Backend(Settings())
    backend.faults.add({"action": "reset"})

    async def go() -> None:
        transport = httpx.ASGITransport(app=create_app(backend))
        async with httpx.AsyncClient(transport=transport, base_url="http://mock") as client:
            with pytest.raises(InProcessFault):
                await client.post("/api/v2/push", json=push_body())

    asyncio.run(go())
    assert backend.take_server_errors() == []
    assert isinstance(InProcessFault("x"), ConnectionResetError)


@pytest.mark.parametrize(
    "criteria", [{"text": 5}, {"path": 5}, {"number_pattern": 7}, {"number": ""}, {"channel": "x"}]
)
def test_a_bad_criterion_is_refused_and_leaves_the_book_usable(client, picky_server, criteria):
    answer = client.post("/_picky/faults", json={"action": "api_error", "status": 403, **criteria})
    assert answer.status_code == 400 and "fault:" in answer.json()["error"]
    assert picky_server.faults == []
    assert client.post("/_picky/faults", json={"action": "api_error", "status": 403}).status_code == 201
    assert client.post("/api/v2/push", json=push_body()).json()["status"] == 403


@pytest.mark.parametrize(
    "options",
    [{"headers": {"x-a": 1}}, {"headers": "x"}, {"body": 5}, {"headers": {"x-a": "€"}}, {"headers": {"x": "a\nb"}}],
)
def test_http_error_options_are_checked_when_the_rule_is_made(options):
    with pytest.raises(ConfigError):
        FaultRule.from_dict({"action": "http_error", "status": 502, **options})


def test_dribble_chunk_and_retry_after_are_checked():
    with pytest.raises(ConfigError, match="chunk"):
        FaultRule.from_dict({"action": "dribble", "chunk": 0})
    with pytest.raises(ConfigError, match="retry_after"):
        FaultRule.from_dict({"action": "http_error", "status": 429, "retry_after": "soon"})


def test_a_listed_rule_can_be_posted_back(client):
    client.post("/_picky/faults", json={"action": "api_error", "status": 409, "number": "5511987654321"})
    [listed] = client.get("/_picky/faults").json()["rules"]
    client.delete("/_picky/faults")
    again = client.post("/_picky/faults", json=listed)
    assert again.status_code == 201, again.text


def test_a_huge_integer_application_is_refused_and_the_journal_stays_readable(client):
    answer = client.post("/api/v2/push", json={**push_body(), "application": 123456789012345678901234567890})
    assert answer.json()["status"] == 410
    assert client.get("/_picky/journal").status_code == 200


def test_the_drop_rate_limit_answers_even_a_body_it_never_judges(client, picky_server):
    picky_server.set_account("t")
    picky_server.set_rate_limit(1, action="drop")
    client.post("/api/v2/push", json=push_body(token="t"))
    answer = client.post("/api/v2/push", json={**push_body(token="t"), "data": [1, {"number": 1e300}]})
    assert answer.status_code == 200 and answer.json()["status"] == 100
    assert picky_server.rejected()[-1].dropped


def test_admin_paths_are_never_journaled_and_a_404_journals_what_it_sent(client, picky_server):
    wrong = client.get("/_picky/reset")
    assert wrong.status_code == 405 and wrong.headers["allow"] == "POST" and "allowed" in wrong.json()
    missing = client.get("/_picky/nothing")
    assert missing.status_code == 404 and "/_picky/health" in missing.json()["admin"]
    assert picky_server.requests == []
    client.get("/no/such/path")
    [entry] = picky_server.requests
    assert entry.http_status == 404 and entry.answer["error"] == "not found" and entry.status is None


def test_environment_values_are_read_whatever_their_case():
    settings = load_settings(environ={"PICKY_MOCK_LOG_LEVEL": "INFO", "PICKY_MOCK_MODE": "Lenient"})
    assert (settings.log_level, settings.mode) == ("info", "lenient")
    with pytest.raises(ConfigError, match="PICKY_MOCK_MODE='loose'"):
        load_settings(environ={"PICKY_MOCK_MODE": "loose"})


def test_check_balance_honours_the_html_label_fault(client, picky_server):
    picky_server.add_fault("html_label", path="/api/v2/check-balance")
    answer = client.post("/api/v2/check-balance", json={"token": "t"})
    assert answer.headers["content-type"].startswith("text/html")
    assert answer.json()["status"] == 100


def test_a_zero_second_hang_closes_at_once(picky_server):
    picky_server.add_fault("hang", seconds=0)
    started = time.monotonic()
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.post(picky_server.push_url, json=push_body(), timeout=10)
    assert time.monotonic() - started < 5  # not the 300 s cap


def test_account_keys_are_checked_over_http(client):
    answer = client.put("/_picky/accounts/x", json={"token": "y"})
    assert answer.status_code == 400 and "unknown key(s) token" in answer.json()["error"]


def _serve(*args: str) -> subprocess.CompletedProcess[str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return subprocess.run(
        [*console_script(), "serve", "--port", str(port), *args],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env=clean_env(),
        stdin=subprocess.DEVNULL,
    )


def test_rate_limit_action_alone_is_refused_in_one_line():
    done = _serve("--rate-limit-action", "drop")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "--rate-limit-action needs a rate limit" in done.stderr


def test_a_fault_list_on_the_command_line_is_explained():
    done = _serve("--fault", '[{"action": "reset"}]')
    assert done.returncode == 2 and "--fault takes one JSON object" in done.stderr
