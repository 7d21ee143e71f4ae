"""The failure-coverage report of the pytest plugin: printed at the end of a session that used
``picky_server``, written as JSON with ``--picky-coverage-json``, merged across xdist workers,
absent when the fixture was never used or ``--no-picky-coverage`` is given."""

from __future__ import annotations

import json
import os

import pytest

from picky_mock.coverage import FAULT_KINDS, merge, render, report
from picky_mock.errors import STATUS_MESSAGES

pytest_plugins = ["pytester"]

SECTION = "picky-mock failure coverage"

DRIVING_TESTS = """
import httpx
import pytest

BODY = {"token": "tok", "application": 1, "globalmessage": "hi", "data": [{"number": "5511987654321"}]}


def post(picky_server):
    with httpx.Client(timeout=5) as c:
        return c.post(picky_server.push_url, json=BODY)


def test_success(picky_server):
    assert post(picky_server).json()["status"] == 100


def test_injected_409(picky_server):
    picky_server.fail_next(409)
    assert post(picky_server).json()["status"] == 409


def test_closed_connection(picky_server):
    picky_server.fail_next(transport="close")
    with pytest.raises(httpx.TransportError):
        post(picky_server)


def test_rate_limited(picky_server):
    picky_server.set_rate_limit(1)
    post(picky_server)
    assert post(picky_server).status_code == 429
"""


@pytest.fixture
def clean_env(monkeypatch):
    for name in list(os.environ):
        if name.startswith(("PYTEST_XDIST", "PYTEST_ADDOPTS")):
            monkeypatch.delenv(name, raising=False)


def _line(lines: list[str], prefix: str) -> str:
    found = [line for line in lines if line.strip().startswith(prefix)]
    assert len(found) == 1, lines
    return found[0]


def _section(result) -> list[str]:
    lines = result.outlines
    starts = [i for i, line in enumerate(lines) if SECTION in line]
    assert len(starts) == 1, "\n".join(lines)
    return lines[starts[0] : starts[0] + 10]


def test_report_printed_and_json_written(pytester, clean_env):
    pytester.makepyfile(test_drive=DRIVING_TESTS)
    path = pytester.path / "cov.json"
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", f"--picky-coverage-json={path}", timeout=60)
    result.assert_outcomes(passed=4)
    section = _section(result)
    headline = _line(section, "the tests drove the client through")
    assert f"2 of {len(STATUS_MESSAGES)} API status codes and 3 of {len(FAULT_KINDS)} fault kinds" in headline
    answered = _line(section, "API codes answered:")
    assert "100 x2" in answered and "409 x1" in answered and "429 x1" in answered
    never = _line(section, "API codes never:")
    assert "101 Service Unavailable" in never and "802 Not Contactable 24 Hours Session Expired" in never
    assert "409" not in never and "100 " not in never
    fired = _line(section, "faults fired:")
    assert "api_error x1" in fired and "close x1" in fired and "rate_limit_429 x1" in fired
    faults_never = _line(section, "faults never:")
    assert "reset" in faults_never and "answer_lost" in faults_never and "api_error" not in faults_never
    result.stdout.fnmatch_lines([f"*report written to {path}*"])

    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["api_statuses"] == {"100": 2, "409": 1, "429": 1}
    assert data["api_statuses_never"] == {str(k): v for k, v in STATUS_MESSAGES.items() if k not in (100, 409)}
    assert data["faults"] == {"api_error": 1, "close": 1, "rate_limit_429": 1}
    assert data["faults_never"] == [k for k in FAULT_KINDS if k not in ("api_error", "close", "rate_limit_429")]
    assert data["http_statuses"] == {"0": 1, "200": 3, "429": 1}


def test_xdist_controller_prints_merged_report(pytester, clean_env):
    pytester.makepyfile(test_drive=DRIVING_TESTS)
    path = pytester.path / "cov.json"
    # --dist each: every worker runs every test, so the merged counts are twice one worker's
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-n", "2", "--dist", "each", f"--picky-coverage-json={path}", timeout=90
    )
    result.assert_outcomes(passed=8)
    answered = _line(_section(result), "API codes answered:")
    assert "100 x4" in answered and "409 x2" in answered and "429 x2" in answered
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["api_statuses"] == {"100": 4, "409": 2, "429": 2}
    assert data["faults"] == {"api_error": 2, "close": 2, "rate_limit_429": 2}


def test_xdist_load_distribution_sums_workers(pytester, clean_env):
    pytester.makepyfile(test_drive=DRIVING_TESTS)
    path = pytester.path / "cov.json"
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-n", "2", f"--picky-coverage-json={path}", timeout=90
    )
    result.assert_outcomes(passed=4)
    _section(result)
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["api_statuses"] == {"100": 2, "409": 1, "429": 1}
    assert data["faults"] == {"api_error": 1, "close": 1, "rate_limit_429": 1}


def test_no_report_without_the_fixture(pytester, clean_env):
    pytester.makepyfile(test_plain="def test_nothing():\n    assert True\n")
    path = pytester.path / "cov.json"
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", f"--picky-coverage-json={path}", timeout=60)
    result.assert_outcomes(passed=1)
    assert SECTION not in result.stdout.str()
    assert not path.exists()


def test_no_picky_coverage_suppresses_the_section(pytester, clean_env):
    pytester.makepyfile(test_drive=DRIVING_TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--no-picky-coverage", timeout=60)
    result.assert_outcomes(passed=4)
    assert SECTION not in result.stdout.str()
    assert "API codes answered" not in result.stdout.str()


# -- the report functions ------------------------------------------------------------------------


def test_merge_report_render():
    parts = [
        {"api_statuses": {"100": 2, "403": 1}, "http_statuses": {"200": 3}, "faults": {"api_error": 1}},
        {"api_statuses": {"100": 1, "802": 1}, "http_statuses": {"200": 2, "0": 1}, "faults": {"reset": 1}},
        {},
    ]
    merged = merge(parts)
    assert merged["api_statuses"] == {"100": 3, "403": 1, "802": 1}
    assert merged["http_statuses"] == {"0": 1, "200": 5}
    assert merged["faults"] == {"api_error": 1, "reset": 1}
    data = report(merged)
    assert set(data["api_statuses_never"]) == {str(k) for k in STATUS_MESSAGES} - {"100", "403", "802"}
    assert "reset" not in data["faults_never"] and "hang" in data["faults_never"]
    lines = render(merged)
    assert lines[0].startswith(f"the tests drove the client through 3 of {len(STATUS_MESSAGES)} API status codes")
    assert f"2 of {len(FAULT_KINDS)} fault kinds" in lines[0]
    assert json.loads(json.dumps(data)) == data


def test_admin_coverage_endpoint(picky_server):
    import httpx

    body = {"token": "tok", "application": 1, "globalmessage": "hi", "data": [{"number": "5511987654321"}]}
    with httpx.Client(timeout=5) as c:
        before = c.get(picky_server.url + "/_picky/coverage").json()
        picky_server.fail_next(804)
        c.post(picky_server.push_url, json=body)
        after = c.get(picky_server.url + "/_picky/coverage").json()
    assert after["api_statuses"].get("804", 0) == before["api_statuses"].get("804", 0) + 1
    assert after["faults"].get("api_error", 0) == before["faults"].get("api_error", 0) + 1


def test_the_session_report_shows_states_and_paths(pytester, clean_env):
    pytester.makepyfile(
        test_drive="""
import httpx

def test_drive(picky_server, picky_webhook_receiver):
    picky_server.set_webhooks(event_url=picky_webhook_receiver.url)
    picky_webhook_receiver.respond(503, times=1)
    body = {"token": "t", "application": 8, "globalmessage": "hi", "data": [{"number": "5511987000001"}]}
    msg_id = str(httpx.post(picky_server.push_url, json=body).json()["data"][0]["msg_id"])
    picky_server.deliver(msg_id)
    picky_server.advance(minutes=1)
    picky_server.deliver(msg_id, status="read")
    picky_server.assert_webhook(msg_id=msg_id, status="read")
"""
    )
    path = pytester.path / "cov.json"
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", f"--picky-coverage-json={path}", timeout=60)
    result.assert_outcomes(passed=1)
    out = result.stdout.str()
    assert "delivery states:    Delivered x1, Read x1 (2 of 5; never: Unknown, Failed, Refunded)" in out
    assert "webhook paths:      delivered at once x1, retried x1, delivered after retry x1 (3 of 6" in out
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["delivery_states"] == {"delivered": 1, "read": 1}
    assert data["webhook_paths_never"] == ["given up", "instant reply", "no reply"]
