"""The pytest plugin, as a project that installs picky-mock uses it: test files run by pytester in a
subprocess (the plugin comes from the ``pytest11`` entry point, nothing is imported by hand); and the
in-process ``picky_asgi`` fixture, used here directly."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from pushing import check_answer, expect_error, expect_success, number, push_body

pytest_plugins = ["pytester"]

RUN_TIMEOUT = 120

INNER = '''
import httpx
import pytest

BODY = {"token": "t", "application": 1, "globalmessage": "hi", "data": [{"number": "5511987000001"}]}


def test_push(picky_server):
    answer = httpx.post(picky_server.push_url, json=BODY)
    assert answer.json()["status"] == 100
    picky_server.assert_pushed(number="5511987000001", text="hi")


def test_a_leaves_state_behind(picky_server):
    for _ in range(3):
        httpx.post(picky_server.push_url, json=BODY)
    picky_server.set_mode("lenient")
    assert len(picky_server.pushes()) == 3


def test_b_starts_clean(picky_server):
    assert picky_server.requests == [] and picky_server.pushes() == []
    assert picky_server.backend.mode == "strict"
    answer = httpx.post(picky_server.push_url, json=BODY).json()
    assert answer["push_id"] == "7478630" and answer["data"][0]["msg_id"] == "9844217"


def test_assert_pushed_reports_what_came(picky_server):
    httpx.post(picky_server.push_url, json={**BODY, "globalmessage": "Your code is 1234"})
    httpx.post(picky_server.push_url, json={**BODY, "data": [{"number": "5511987000002"}], "globalmessage": "other"})
    httpx.post(picky_server.push_url, json={**BODY, "data": [{"number": "+1"}]})
    picky_server.assert_pushed(number="5511987000001", text="Your code is 1235")


def test_server_bug_fails_this_test(picky_server, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("boom inside the server")

    # a bug deep in the backend: taking the ids of an accepted push raises
    monkeypatch.setattr(picky_server.backend.sequences, "take", broken)
    answer = httpx.post(picky_server.push_url, json=BODY)
    assert answer.status_code == 500


def test_after_the_bug(picky_server):
    assert picky_server.requests == []
    assert httpx.post(picky_server.push_url, json=BODY).json()["status"] == 100
'''


@pytest.fixture
def inner_run(pytester):
    pytester.makepyfile(test_inner=INNER)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-v", "-rA", timeout=RUN_TIMEOUT)
    return result


def test_plugin_fixture_isolation_reports_and_server_errors(inner_run):
    result = inner_run
    result.assert_outcomes(passed=5, failed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*test_push PASSED*",
            "*test_a_leaves_state_behind PASSED*",
            "*test_b_starts_clean PASSED*",
            "*test_assert_pushed_reports_what_came FAILED*",
            "*test_after_the_bug PASSED*",
        ]
    )
    out = result.stdout.str()
    # the failure message shows what was expected, what was received and the nearest match
    failure = out[out.index("_ test_assert_pushed_reports_what_came _"):]
    assert "Your code is 1235" in failure, "what was expected"
    assert "received 2 message(s)" in failure, "what was received"
    assert "nearest" in failure and "Your code is 1234" in failure.split("nearest", 1)[1]
    assert "5511987000002" in failure and "'other'" in failure
    assert "rejected" in failure and "406" in failure, "and the rejected request"
    # an exception inside the server errors the test that caused it, with ServerError
    assert "ERROR at teardown of test_server_bug_fails_this_test" in out
    assert "ServerError" in out and "boom inside the server" in out


CUSTOM_SETTINGS = '''
import pytest
from picky_mock import Settings


@pytest.fixture(scope="session")
def picky_settings():
    return Settings(port=0, mode="lenient", push_id_start=1, msg_id_start=100, prices={"default": "0.5"})
'''

CUSTOM_TEST = '''
import httpx


def test_configured(picky_server):
    body = {"token": "t", "application": 1, "globalmessage": "x", "data": [{"number": "+55 11 98700-0001"}]}
    answer = httpx.post(picky_server.push_url, json=body).json()
    assert answer == {"status": 100, "push_id": "1", "message": "Success",
                      "data": [{"msg_id": "100", "number": "5511987000001", "credit": "0.5"}]}
'''


def test_picky_settings_can_be_overridden(pytester):
    pytester.makeconftest(CUSTOM_SETTINGS)
    pytester.makepyfile(test_custom=CUSTOM_TEST)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", timeout=RUN_TIMEOUT)
    result.assert_outcomes(passed=1)


CONFIG_FILE = """
mode = "lenient"
[server]
port = 8080          # ignored by the fixture: a free port
[ids]
push_id_start = 1
msg_id_start = 100
[prices]
default = "0.5"
"""


@pytest.mark.parametrize("how", ["option", "ini"])
def test_the_session_server_takes_the_cli_s_config_file(pytester, how, monkeypatch):
    """One TOML file for `picky-mock serve --config` and for the test suite: ``--picky-config`` or
    the ``picky_config`` ini option. Environment variables are not read by the fixture."""
    pytester.mkdir("conf")
    pytester.path.joinpath("conf", "picky.toml").write_text(CONFIG_FILE)
    pytester.makepyfile(test_custom=CUSTOM_TEST)
    monkeypatch.setenv("PICKY_MOCK_MODE", "strict")  # would make the lenient push fail if it were read
    if how == "ini":
        pytester.makeini("[pytest]\npicky_config = conf/picky.toml\n")
        result = pytester.runpytest_subprocess("-p", "no:cacheprovider", timeout=RUN_TIMEOUT)
    else:
        result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--picky-config", "conf/picky.toml",
                                               timeout=RUN_TIMEOUT)
    result.assert_outcomes(passed=1)


def test_a_bad_config_file_is_one_line_before_any_test(pytester):
    pytester.path.joinpath("bad.toml").write_text("mode = 'loose'\n")
    pytester.makepyfile(test_custom=CUSTOM_TEST)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--picky-config", "bad.toml",
                                           timeout=RUN_TIMEOUT)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*picky-mock: *mode must be one of strict, lenient*"])
    assert "Traceback" not in result.stderr.str() and "test_configured" not in result.stdout.str()


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ('[[faults]]\naction = "latncy"\n', "unknown action 'latncy'"),
        ('seed = "abc"\n', "seed"),
        ("[rate_limit]\nper_minute = 0\n", "per_minute"),
    ],
)
def test_a_bad_section_the_backend_reads_is_one_line_too(pytester, section, message):
    pytester.path.joinpath("bad.toml").write_text(section)
    pytester.makepyfile(test_custom=CUSTOM_TEST)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--picky-config", "bad.toml",
                                           timeout=RUN_TIMEOUT)
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stdout.str()
    assert "picky-mock: " in result.stderr.str() and message in result.stderr.str()
    assert "Traceback" not in result.stderr.str()


def test_help_prints_with_a_bad_config_file_named(pytester):
    pytester.makeini("[pytest]\npicky_config = missing.toml\n")
    result = pytester.runpytest_subprocess("--help", timeout=RUN_TIMEOUT)
    assert result.ret == 0
    result.stdout.fnmatch_lines(["*--picky-config=PATH*"])


CHDIR_TEST = """
import os


def test_moves_away(tmp_path):
    os.chdir(tmp_path)  # and does not come back


def test_configured(picky_server):
    assert picky_server.backend.mode == "lenient"
"""


def test_the_config_path_is_relative_to_where_pytest_started(pytester):
    pytester.path.joinpath("picky.toml").write_text('mode = "lenient"\n')
    pytester.makepyfile(test_chdir=CHDIR_TEST)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:randomly",
                                           "--picky-config", "picky.toml", timeout=RUN_TIMEOUT)
    result.assert_outcomes(passed=2)


XDIST_TEST = '''
import json
import os
from pathlib import Path

import httpx


def _record(picky_server, name):
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    answer = httpx.post(picky_server.push_url, json={"token": "t", "application": 1, "globalmessage": name,
                                                      "data": [{"number": "5511987000001"}]}).json()
    assert answer["push_id"] == "7478630", "a fresh server state for each test"
    out = Path(os.environ["PICKY_TEST_OUT"]) / f"{worker}-{name}.json"
    out.write_text(json.dumps({"worker": worker, "url": picky_server.url, "pid": os.getpid()}))


def test_one(picky_server):
    _record(picky_server, "one")


def test_two(picky_server):
    _record(picky_server, "two")
'''


OVERRIDE_WITHOUT_PORT = '''
import pytest
from picky_mock import Settings


@pytest.fixture(scope="session")
def picky_settings():
    return Settings(log_level="warning")
'''


def test_each_xdist_worker_has_its_own_server(pytester, tmp_path, monkeypatch):
    out = tmp_path / "out"
    out.mkdir()
    monkeypatch.setenv("PICKY_TEST_OUT", str(out))
    # settings overridden without a port (Settings defaults to the command's 8080): each worker's
    # server still gets a free port of its own
    pytester.makeconftest(OVERRIDE_WITHOUT_PORT)
    pytester.makepyfile(test_workers=XDIST_TEST)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-n", "2", "--dist", "each", timeout=RUN_TIMEOUT)
    result.assert_outcomes(passed=4)  # --dist each: both tests on both workers
    records = [json.loads(p.read_text()) for p in sorted(out.iterdir())]
    assert len(records) == 4
    by_worker: dict[str, set[str]] = {}
    for record in records:
        by_worker.setdefault(record["worker"], set()).add(record["url"])
    assert sorted(by_worker) == ["gw0", "gw1"]
    assert all(len(urls) == 1 for urls in by_worker.values()), "one server per worker, for the whole session"
    assert by_worker["gw0"] != by_worker["gw1"], "each worker its own server"


# -- in-process ASGI ---------------------------------------------------------------------------


def test_picky_asgi_with_an_async_client(picky_asgi):
    async def scenario() -> list[httpx.Response]:
        async with httpx.AsyncClient(transport=picky_asgi, base_url="http://picky.test") as client:
            return [
                await client.post("/api/v2/push", json=push_body(number(1), number(2))),
                await client.post("/app/api/v2/push/", json=push_body("+1")),
                await client.get("/api/v2/push"),
                await client.get("/_picky/health"),
            ]

    ok, bad, wrong_method, health = asyncio.run(scenario())
    reply = expect_success(ok, recipients=2)
    assert reply["push_id"] == "7478630"
    expect_error(bad, 406)
    assert wrong_method.status_code == 405 and check_answer(wrong_method)["status"] != 100
    assert health.json()["status"] == "ok"
    backend = picky_asgi.app.state.backend
    assert [e.status for e in backend.journal.snapshot()] == [100, 406, 410]
    assert [m.number for m in backend.journal.messages()] == [number(1), number(2)]


def test_picky_asgi_is_fresh_for_each_test(picky_asgi):
    async def scenario() -> httpx.Response:
        async with httpx.AsyncClient(transport=picky_asgi, base_url="http://picky.test") as client:
            return await client.post("/api/v2/push", json=push_body())

    assert expect_success(asyncio.run(scenario()))["push_id"] == "7478630"
    assert len(picky_asgi.app.state.backend.journal) == 1


def test_asgi_transport_shares_the_socket_servers_backend(picky_server, client):
    async def scenario() -> httpx.Response:
        async with httpx.AsyncClient(transport=picky_server.asgi_transport(), base_url="http://picky.test") as inner:
            return await inner.post("/api/v2/push", json=push_body(number(2)))

    first = expect_success(client.post("/api/v2/push", json=push_body(number(1))))
    second = expect_success(asyncio.run(scenario()))
    assert int(second["push_id"]) == int(first["push_id"]) + 1
    assert [m.number for m in picky_server.messages()] == [number(1), number(2)]


def test_picky_server_starts_each_test_clean(picky_server):
    assert picky_server.requests == [] and picky_server.backend.mode == "strict"
    assert picky_server.backend.sequences.take(0) == (7478630, 9844217)
    picky_server.reset()


# -- the fault seed ----------------------------------------------------------------------------

SEEDED_TEST = '''
import os
from pathlib import Path

import httpx


def test_pattern(picky_server):
    picky_server.add_fault("http_error", status=503, probability=0.5)
    with httpx.Client() as client:
        pattern = "".join("X" if client.post(picky_server.push_url, json={
            "token": "t", "application": 1, "globalmessage": "x", "data": [{"number": "5511987000001"}]
        }).status_code == 503 else "." for _ in range(40))
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    Path(os.environ["PICKY_TEST_OUT"], f"{worker}.txt").write_text(pattern)
'''


def _seeded_run(pytester, out, *args):
    for old in out.iterdir():
        old.unlink()
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", *args, timeout=RUN_TIMEOUT)
    result.assert_outcomes(passed=len(list(out.iterdir())) or 1)
    seeds = [line for line in result.outlines if "fault seed" in line]
    assert len(seeds) == 1, result.outlines
    patterns = {p.read_text() for p in out.iterdir()}
    return seeds[0], patterns


def test_a_run_s_faults_repeat_with_the_seed_it_prints(pytester, tmp_path, monkeypatch):
    """A run prints its seed; the same seed repeats the same faults, in another process, and every
    xdist worker draws from it."""
    out = tmp_path / "out"
    out.mkdir()
    monkeypatch.setenv("PICKY_TEST_OUT", str(out))
    pytester.makepyfile(test_seeded=SEEDED_TEST)
    line, first = _seeded_run(pytester, out)
    seed = int(line.split("fault seed ")[1].split()[0])
    assert f"--picky-seed {seed}" in line
    _, again = _seeded_run(pytester, out, f"--picky-seed={seed}")
    assert again == first and len(first) == 1 and "X" in next(iter(first)) and "." in next(iter(first))
    _, other = _seeded_run(pytester, out, "--picky-seed=1")
    assert other != first or seed == 1
    # without --picky-seed, the controller draws one seed and hands it to every worker
    line, workers = _seeded_run(pytester, out, "-n", "2", "--dist", "each")
    assert len(workers) == 1, "both workers drew the same faults"
    seed = int(line.split("fault seed ")[1].split()[0])
    _, alone = _seeded_run(pytester, out, f"--picky-seed={seed}")
    assert alone == workers


ASGI_SEED_TEST = '''
def test_asgi_seed(picky_asgi):
    assert picky_asgi.app.backend.seed == 4242
'''


def test_the_in_process_app_draws_from_the_session_seed_too(pytester):
    pytester.makepyfile(test_asgi_seed=ASGI_SEED_TEST)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--picky-seed=4242", timeout=RUN_TIMEOUT)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*fault seed 4242 (--picky-seed 4242*"])


def test_a_failing_run_prints_its_seed_with_the_report_off(pytester):
    pytester.makepyfile(test_fails="def test_fails(picky_server):\n    assert False\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--no-picky-coverage", "--picky-seed=77",
                                           timeout=RUN_TIMEOUT)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["picky-mock: fault seed 77 (--picky-seed 77 repeats this run's faults)"])
    assert "failure coverage" not in result.stdout.str()


# -- the marker survives a reset -----------------------------------------------------------------


@pytest.mark.picky(faults={"action": "api_error", "status": 409, "number": "5511900000001"})
def test_marker_takes_a_single_fault_rule(picky_server, client):
    body = {"token": "t", "application": 1, "globalmessage": "x", "data": [{"number": "5511900000001"}]}
    assert client.post("/api/v2/push", json=body).json()["status"] == 409


@pytest.mark.picky(accounts={"t": {"balance": "0"}}, sessions="5511987654321", rate_limit={})
def test_reset_keeps_the_marker_state(picky_server, client):
    body = {"token": "t", "application": 1, "globalmessage": "x", "data": [{"number": "5511987654321"}]}
    for _ in range(2):  # as between two Hypothesis examples
        assert client.post("/api/v2/push", json=body).json()["status"] == 403
        assert picky_server.backend.accounts.session_open("5511987654321")
        assert not picky_server.backend.accounts.session_open("5")  # a string is one number, not its digits
        assert picky_server.backend.accounts.rate_limit is None  # {}: off, as PUT /_picky/rate-limit {}
        picky_server.reset()
        assert picky_server.requests == []
