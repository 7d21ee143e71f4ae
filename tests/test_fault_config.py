"""Ways to set faults and accounts: the TOML config and the ``picky-mock serve`` options (the real
command, as a subprocess), the admin HTTP API with curl, and from pytest (nothing leaks from one
test into the next)."""

from __future__ import annotations

import json
import os
import random
import selectors
import signal
import subprocess
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
from pushing import CURL, channel_push, console_script

from picky_mock.config import load_settings
from picky_mock.errors import ConfigError

pytest_plugins = ["pytester"]

NUMBER = "5511987654321"
push_body = channel_push
OTHER = "5511900000002"
TIMEOUT = 5.0
PICKY = console_script()


def _read_url(proc: subprocess.Popen, deadline: float = 20.0) -> str:
    """The base URL from the first stdout line ("... serving http://127.0.0.1:PORT/api/v2/push")."""
    assert proc.stdout is not None
    selector = selectors.DefaultSelector()
    selector.register(proc.stdout, selectors.EVENT_READ)
    end = time.monotonic() + deadline
    try:
        while time.monotonic() < end:
            if selector.select(timeout=0.1):
                line = proc.stdout.readline()
                if not line:
                    break
                if "serving http" in line:
                    url = line.split("serving ", 1)[1].strip()
                    assert url.endswith("/api/v2/push"), line
                    return url[: -len("/api/v2/push")]
            elif proc.poll() is not None:
                break
    finally:
        selector.close()
    proc.kill()
    _, err = proc.communicate(timeout=10)
    raise AssertionError(f"picky-mock serve did not announce its URL; stderr:\n{err}")


@contextmanager
def cli_server(*args: str) -> Iterator[tuple[str, subprocess.Popen]]:
    proc = subprocess.Popen(
        [*PICKY, "serve", "--port", "0", "--log-level", "warning", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield _read_url(proc), proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate(timeout=10)


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*PICKY, "serve", "--port", "0", *args], capture_output=True, text=True, timeout=30)


# -- TOML config + picky-mock serve --config -----------------------------------------------------

CONFIG = """\
seed = 1234

[accounts.tok]
balance = "0.02"
templates = ["welcome_v2"]
sessions = ["{number}"]

[accounts.official-less]
official = false

[[faults]]
action = "api_error"
status = 409
number = "{other}"
times = 1

[[faults]]
action = "http_error"
status = 502
number_prefix = "4477"
"""


def test_config_file_accounts_faults_and_seed(tmp_path):
    config = tmp_path / "picky.toml"
    config.write_text(CONFIG.format(number=NUMBER, other=OTHER), encoding="utf-8")
    with cli_server("--config", str(config)) as (url, proc), httpx.Client(timeout=TIMEOUT) as c:
        push = url + "/api/v2/push"
        assert c.get(url + "/_picky/state").json()["seed"] == 1234
        assert c.post(push, json=push_body(token="stranger")).json()["status"] == 401
        assert c.post(push, json=push_body(OTHER)).json()["status"] == 409  # fault, once
        assert c.post(push, json=push_body(OTHER)).json()["status"] == 100
        assert c.post(push, json=push_body("447700900123")).status_code == 502
        assert c.post(push, json=push_body(NUMBER, channel=8)).json()["status"] == 100  # configured session
        assert c.post(push, json=push_body(OTHER, channel=8)).json()["status"] == 802
        assert c.post(push, json=push_body(token="official-less", channel=8)).json()["status"] == 801
        assert c.post(url + "/api/v2/check-balance", json={"token": "tok"}).json()["balance"] == pytest.approx(0.01)
        assert c.post(push, json=push_body(NUMBER, OTHER, "5511900000003")).json()["status"] == 403
        rules = c.get(url + "/_picky/faults").json()["rules"]
        assert [(r["action"], r["hits"]) for r in rules] == [("api_error", 1), ("http_error", 1)]
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=10)
    assert proc.returncode == 0
    assert "Traceback" not in err


def test_cli_fault_seed_and_rate_limit_options():
    fault = json.dumps({"action": "api_error", "status": 409, "number": OTHER, "probability": 0.5})
    http = json.dumps({"action": "http_error", "status": 503, "channel": 3})
    with (
        cli_server("--fault", fault, "--fault", http, "--seed", "99", "--rate-limit", "30") as (url, _),
        httpx.Client(timeout=TIMEOUT) as c,
    ):
        push = url + "/api/v2/push"
        state = c.get(url + "/_picky/state").json()
        assert state["seed"] == 99 and state["faults"] == 2
        assert state["rate_limit"] == {"per_minute": 30, "action": "429"}
        assert c.post(push, json=push_body(channel=3)).status_code == 503
        rng = random.Random(99)
        expected = [409 if rng.random() < 0.5 else 100 for _ in range(20)]
        assert [c.post(push, json=push_body(OTHER, token="t2")).json()["status"] for _ in range(20)] == expected
        for _ in range(30):
            assert c.post(push, json=push_body()).status_code == 200
        r = c.post(push, json=push_body())
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1


def test_cli_rate_limit_drop():
    with cli_server("--rate-limit", "1", "--rate-limit-action", "drop") as (url, _), httpx.Client(timeout=TIMEOUT) as c:
        push = url + "/api/v2/push"
        assert c.post(push, json=push_body(text="kept")).json()["status"] == 100
        assert c.post(push, json=push_body(text="gone")).json()["status"] == 100
        entries = c.get(url + "/_picky/journal").json()["entries"]
        assert [e["dropped"] for e in entries] == [False, True]
        assert [m["text"] for m in c.get(url + "/_picky/messages").json()["messages"]] == ["kept"]


BAD_CLI = [
    (["--fault", "not json"], "is not JSON"),
    (["--fault", '{"action": "explode"}'], "unknown action 'explode'"),
    (["--fault", '{"action": "api_error"}'], "api_error needs a status"),
    (["--fault", '{"action": "reset", "probability": 2}'], "probability must be between 0 and 1"),
    (["--fault", '{"action": "reset", "number_pattern": "("}'], "is refused: missing )"),
    (["--fault", '{"action": "reset", "colour": 1}'], "unknown key(s) colour"),
    (["--rate-limit", "0"], "per_minute must be >= 1"),
]

BAD_TOML = [
    ('[accounts.tok]\nbalance = "lots"\n', "balance = 'lots' is not a decimal number"),
    ("[accounts.tok]\ncolour = 1\n", "unknown key(s) colour"),
    ('[accounts.tok]\napi = "yes"\n', "api must be true or false"),
    ("accounts = {tok = 5}\n", "must be a table"),
    ('[[faults]]\naction = "explode"\n', "unknown action"),
    ('seed = "x"\n', "seed must be a whole number"),
    ('[rate_limit]\naction = "slow"\n', "rate_limit: action"),
]

BAD_TOML_BUGS = [
    pytest.param("[accounts.tok]\nsessions = 5\n", id="account-sessions-not-a-list"),
    pytest.param("accounts = 5\n", id="accounts-not-a-table"),
    pytest.param('[rate_limit]\nper_minute = "many"\n', id="rate-limit-not-a-number"),
    pytest.param("rate_limit = 5\n", id="rate-limit-not-a-table"),
    pytest.param('[[faults]]\naction = "reset"\nwhen = 5\n', id="fault-when-not-a-table"),
]


def _assert_one_line_exit_2(result: subprocess.CompletedProcess, fragment: str | None = None) -> None:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("picky-mock: error: ")
    if fragment is not None:
        assert fragment in lines[0]


@pytest.mark.parametrize(("args", "fragment"), BAD_CLI, ids=[a[-1] for a, _ in BAD_CLI])
def test_bad_cli_option_one_line_exit_2(args, fragment):
    _assert_one_line_exit_2(run_cli(*args), fragment)


@pytest.mark.parametrize(("toml", "fragment"), BAD_TOML, ids=[t.splitlines()[-1] for t, _ in BAD_TOML])
def test_bad_config_one_line_exit_2(tmp_path, toml, fragment):
    config = tmp_path / "bad.toml"
    config.write_text(toml, encoding="utf-8")
    _assert_one_line_exit_2(run_cli("--config", str(config)), fragment)


@pytest.mark.parametrize("toml", BAD_TOML_BUGS)
def test_bad_config_wrong_type_one_line_exit_2(tmp_path, toml):
    config = tmp_path / "bad.toml"
    config.write_text(toml, encoding="utf-8")
    _assert_one_line_exit_2(run_cli("--config", str(config)))


def test_bad_cli_fault_when_one_line_exit_2():
    _assert_one_line_exit_2(run_cli("--fault", '{"action": "reset", "when": 5}'))


def test_top_level_sessions_in_config_apply_or_refused(tmp_path):
    from picky_mock.config import load_settings
    from picky_mock.errors import ConfigError
    from picky_mock.server import ServerThread

    config = tmp_path / "s.toml"
    config.write_text(f'sessions = ["{NUMBER}"]\n[accounts.tok]\n', encoding="utf-8")
    try:
        settings = load_settings(config, environ={}, port=0, log_level="critical")
        server = ServerThread(settings)
    except ConfigError:
        return  # refused: fine
    assert server.backend.accounts.session_open(NUMBER)


# -- the admin API with curl ---------------------------------------------------------------------


def curl(*args: str) -> tuple[int, str]:
    result = subprocess.run(
        [CURL, "-sS", "--max-time", "5", "-w", "\n%{http_code}", *args], capture_output=True, text=True, timeout=15
    )
    assert result.returncode == 0, result.stderr
    body, _, code = result.stdout.rpartition("\n")
    return int(code), body


@pytest.mark.skipif(not os.path.exists(CURL), reason="needs curl")
def test_admin_api_with_curl_full_scenario(picky_server):
    faults = picky_server.url + "/_picky/faults"
    push = ["-X", "POST", picky_server.push_url, "-H", "Content-Type: application/json", "-d", json.dumps(push_body())]
    rule_json = json.dumps({"action": "api_error", "status": 403, "number": NUMBER, "times": 1})
    code, body = curl("-X", "POST", faults, "-d", rule_json)  # curl's default: a form, as a cross-site page sends
    assert code == 400 and "Content-Type: application/json" in json.loads(body)["error"]
    code, body = curl("-X", "POST", faults, "-H", "Content-Type: application/json", "-d", rule_json)
    assert code == 201
    rule = json.loads(body)["added"][0]
    assert rule["action"] == "api_error" and rule["status"] == 403 and rule["times"] == 1
    code, body = curl(*push)
    assert (code, json.loads(body)) == (200, {"status": 403, "message": "Insufficient Balance"})
    code, body = curl(*push)
    assert json.loads(body)["status"] == 100
    code, body = curl(faults)
    listed = json.loads(body)["rules"]
    assert [(r["id"], r["seen"], r["hits"]) for r in listed] == [(rule["id"], 2, 1)]
    code, body = curl(picky_server.url + "/_picky/journal")
    entries = json.loads(body)["entries"]
    assert [bool(e["faults"]) for e in entries] == [True, False]
    code, body = curl("-X", "DELETE", faults)
    assert (code, json.loads(body)) == (200, {"cleared": True})
    assert json.loads(curl(faults)[1])["rules"] == []
    code, body = curl("-X", "POST", faults, "-H", "X-Picky-Admin: 1", "-d", '{"action": "api_error"}')
    assert code == 400 and "api_error needs a status" in json.loads(body)["error"]
    code, body = curl(
        "-X", "POST", picky_server.url + "/_picky/sessions", "--json", json.dumps({"number": NUMBER})
    )
    assert code == 201


# -- pytest: nothing leaks from one test into the next --------------------------------------------


@pytest.fixture
def clean_env(monkeypatch):
    for name in list(os.environ):
        if name.startswith(("PYTEST_XDIST", "PYTEST_ADDOPTS", "PICKY_MOCK_")):
            monkeypatch.delenv(name, raising=False)


LEAK_TESTS = """
import httpx
import pytest

NUMBER = "5511987654321"
BODY = {"token": "tok", "application": 8, "globalmessage": "hi", "data": [{"number": NUMBER}]}


def test_one_sets_everything(picky_server):
    picky_server.add_fault("api_error", status=409, number="4915000000001")
    picky_server.fail_next(403)
    picky_server.set_account("tok", balance="1", official=False)
    picky_server.open_session(NUMBER)
    picky_server.set_mode("lenient")
    picky_server.set_rate_limit(1)
    with httpx.Client(timeout=5) as c:
        assert c.post(picky_server.push_url, json=BODY).json()["status"] == 403
        assert c.post(picky_server.push_url, json=BODY).json()["status"] == 801


@pytest.mark.picky(mode="lenient", faults=[{"action": "close"}], accounts={"tok": {"api": False}},
                   sessions=["5511900000002"], rate_limit=1)
def test_two_marker_sets_everything(picky_server):
    assert picky_server.backend.mode == "lenient" and picky_server.faults


def test_three_sees_defaults(picky_server):
    b = picky_server.backend
    assert picky_server.faults == []
    assert b.accounts.open and b.accounts.accounts() == []
    assert b.accounts.sessions() == {}
    assert b.accounts.rate_limit is None
    assert b.mode == "strict"
    assert picky_server.requests == []
    with httpx.Client(timeout=5) as c:
        for _ in range(3):
            r = c.post(picky_server.push_url, json=BODY)
            assert r.status_code == 200 and r.json()["status"] == 100
    assert r.json()["push_id"] == str(b.sequences.push_id_start + 2)
"""


def test_nothing_leaks_between_tests(pytester, clean_env):
    pytester.makepyfile(test_leak=LEAK_TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--no-picky-coverage", timeout=60)
    result.assert_outcomes(passed=3)


SEED_LEAK = """
def test_one_reseeds(picky_server):
    picky_server.seed(99)


def test_two_has_the_configured_seed(picky_server):
    assert picky_server.backend.faults.seed == 7
"""

SEED_CONFTEST = """
import pytest
from picky_mock.config import Settings


@pytest.fixture(scope="session")
def picky_settings():
    return Settings(host="127.0.0.1", port=0, log_level="warning", extra={"seed": 7})
"""


def test_seed_does_not_leak_between_tests(pytester, clean_env):
    pytester.makeconftest(SEED_CONFTEST)
    pytester.makepyfile(test_seed=SEED_LEAK)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--no-picky-coverage", timeout=60)
    result.assert_outcomes(passed=2)


def test_picky_settings_override_applies_config(pytester, clean_env):
    pytester.makeconftest(
        textwrap.dedent(
            """
            import pytest
            from picky_mock.config import Settings

            @pytest.fixture(scope="session")
            def picky_settings():
                return Settings(host="127.0.0.1", port=0, log_level="warning", extra={
                    "seed": 7,
                    "accounts": {"tok": {"balance": "0.005"}},
                    "faults": [{"action": "api_error", "status": 409, "number": "5511900000002"}],
                })
            """
        )
    )
    pytester.makepyfile(
        test_cfg=textwrap.dedent(
            """
            import httpx

            def body(n):
                return {"token": "tok", "application": 1, "globalmessage": "x", "data": [{"number": n}]}

            def test_a(picky_server):
                with httpx.Client(timeout=5) as c:
                    assert c.post(picky_server.push_url, json=body("5511900000002")).json()["status"] == 409
                    assert c.post(picky_server.push_url, json=body("5511987654321")).json()["status"] == 100
                    assert c.post(picky_server.push_url, json=body("5511987654321")).json()["status"] == 403
                picky_server.clear_faults()

            def test_b_configured_state_back(picky_server):
                assert picky_server.backend.faults.seed == 7
                assert len(picky_server.faults) == 1 and picky_server.faults[0].hits == 0
                assert str(picky_server.balance("tok")) == "0.005"
            """
        )
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--no-picky-coverage", timeout=60)
    result.assert_outcomes(passed=2)


def test_environment_values_are_read_whatever_their_case():
    settings = load_settings(environ={"PICKY_MOCK_LOG_LEVEL": "INFO", "PICKY_MOCK_MODE": "Lenient"})
    assert (settings.log_level, settings.mode) == ("info", "lenient")
    with pytest.raises(ConfigError, match="PICKY_MOCK_MODE='loose'"):
        load_settings(environ={"PICKY_MOCK_MODE": "loose"})
