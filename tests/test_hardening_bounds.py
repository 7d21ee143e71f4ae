"""Every resource bounded and every bound refused clearly: numeric settings (one line, exit 2),
admin input (400 naming the field, never a 500), caps on rules, accounts and sessions, and fault
patterns that run in linear time."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import httpx
import pytest
from pushing import TIMEOUT, clean_env, console_script, number, push_body

from picky_mock import ConfigError, FaultRule, Settings, load_settings
from picky_mock import accounts as accounts_module
from picky_mock.backend import parse_document
from picky_mock.config import BOUNDS
from picky_mock.errors import ApiError
from picky_mock.faults import MAX_RULES, FaultBook


def _serve(*argv: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*console_script(), "serve", "--port", "0", *argv],
        capture_output=True,
        text=True,
        env=env or clean_env(),
        cwd=cwd,
        timeout=TIMEOUT,
    )


def _one_line_exit_2(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["--retention", "99999999999999999999"], "retention must be from 1 to 10,000,000"),
        (["--retention", "0"], "retention"),
        (["--max-body-bytes", str(2**40)], "max_body_bytes"),
        (["--header-timeout", "nan"], "header_timeout"),
        (["--header-timeout", "0"], "header_timeout"),
        (["--keep-alive-timeout", "1e9"], "keep_alive_timeout"),
        (["--max-connections", "0"], "max_connections"),
        (["--rate-limit", "99999999999"], "per_minute must be at most"),
        (["--seed", "-1"], "seed"),
        (["--admin-token", "short"], "admin_token"),
        (["--port", "70000"], "port"),
    ],
)
def test_an_out_of_range_option_is_one_line_and_exit_2(argv, fragment):
    _one_line_exit_2(_serve(*argv), fragment)


def test_an_out_of_range_variable_names_the_variable():
    _one_line_exit_2(_serve(env=clean_env(PICKY_MOCK_RETENTION="99999999999999999999")), "PICKY_MOCK_RETENTION")


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        ('[prices]\ndefault = "1e999999999"\n', ["default", "at most 18 digits"]),
        ('[accounts.t]\nbalance = "1e999999999"\n', ["account 't'", "balance"]),
        ("retention = 99999999999999999999\n", ["retention"]),
        ("[server]\nheader_timeout = -1.0\n", ["header_timeout"]),
        (
            '[[faults]]\naction = "reset"\n[[faults]]\nname = "slow"\naction = "latency"\nseconds = 1e9\n',
            ["#2", "'slow'"],
        ),
        ('[[faults]]\naction = "reset"\ntext_pattern = "(a)\\\\1"\n', ["#1", "text_pattern", "RE2"]),
        ("seed = -5\n", ["seed"]),
        ("[rate_limit]\nper_minute = 9999999999\n", ["per_minute"]),
    ],
)
def test_a_config_error_names_the_file_and_the_entry(tmp_path, text, fragments):
    config = tmp_path / "picky.toml"
    config.write_text(text)
    result = _serve("--config", str(config))
    _one_line_exit_2(result, str(config), *fragments)
    with pytest.raises(ConfigError, match=r"picky\.toml"):
        load_settings(config, environ={})


def test_every_bound_is_enforced_by_settings():
    for name, (low, high) in BOUNDS.items():
        for bad in (low - 1, high * 2 + 1):
            with pytest.raises(ConfigError, match=name):
                Settings(**{name: bad})
        Settings(**{name: high})


# -- admin input: 400 naming the field, never a 500 ----------------------------------------------


@pytest.mark.parametrize("balance", ["1e999999999", "1e-999999999", "-1e999999999", "NaN", "Infinity", 1e308])
def test_an_overflowing_balance_is_a_400_naming_the_field(client, balance):
    answer = client.put("/_picky/accounts/t", json={"balance": balance})
    assert answer.status_code == 400, answer.text
    assert "balance" in answer.json()["error"]


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/_picky/sessions", {"number": number(1), "hours": 1e308}),
        ("/_picky/sessions", {"number": "9" * 5000}),
        ("/_picky/rate-limit", {"per_minute": 10**15}),
        ("/_picky/faults", {"action": "latency", "seconds": 1e308}),
        ("/_picky/faults", {"action": "api_error", "status": "9" * 5000}),
        ("/_picky/faults", {"action": "reset", "times": 2**62}),
        ("/_picky/faults", {"action": "reset", "text_pattern": "x" * 5000}),
        ("/_picky/faults", {"action": "reset", "channel": 2**40}),
        ("/_picky/state", {"mode": "x" * 10000}),
    ],
)
def test_out_of_range_admin_input_is_a_400(client, picky_server, path, body):
    answer = client.post(path, json=body)
    assert answer.status_code == 400, answer.text
    assert picky_server.backend.take_server_errors() == []


def test_an_account_token_too_long_is_a_400(client):
    assert client.put("/_picky/accounts/" + "t" * 2000, json={"balance": "1"}).status_code == 400


# -- caps -----------------------------------------------------------------------------------------


def test_fault_rules_are_capped_and_added_in_linear_time(client, picky_server):
    rules = [{"action": "api_error", "status": 403, "number": f"55{i:011d}"} for i in range(8000)]
    started = time.perf_counter()
    answer = client.post("/_picky/faults", json=rules)
    elapsed = time.perf_counter() - started
    assert answer.status_code == 201 and len(answer.json()["added"]) == 8000
    assert elapsed < 5.0, f"8,000 rules took {elapsed:.1f} s"
    over = client.post("/_picky/faults", json=rules[: MAX_RULES - 8000 + 1])
    assert over.status_code == 400 and f"limit of {MAX_RULES}" in over.json()["error"]
    assert len(picky_server.faults) == 8000  # all or none
    assert client.post("/api/v2/push", json=push_body("5500000000042")).json()["status"] == 403


def test_a_book_never_holds_more_than_the_cap():
    book = FaultBook(1)
    book.extend([{"action": "reset", "number": str(i)} for i in range(MAX_RULES)])
    with pytest.raises(ConfigError, match="limit"):
        book.add({"action": "reset"})


def test_accounts_and_sessions_are_capped(client, monkeypatch):
    monkeypatch.setattr(accounts_module, "MAX_ACCOUNTS", 3)
    monkeypatch.setattr(accounts_module, "MAX_SESSIONS", 2)
    for token in ("a", "b", "c"):
        assert client.put(f"/_picky/accounts/{token}", json={"balance": "1"}).status_code == 200
    refused = client.put("/_picky/accounts/d", json={"balance": "1"})
    assert refused.status_code == 400 and "limit" in refused.json()["error"]
    assert client.put("/_picky/accounts/a", json={"balance": "2"}).status_code == 200  # a change is no new account
    for i in (1, 2):
        assert client.post("/_picky/sessions", json={"number": number(i)}).status_code == 201
    full = client.post("/_picky/sessions", json={"number": number(3)})
    assert full.status_code == 400 and "limit" in full.json()["error"]


# -- patterns run in linear time --------------------------------------------------------------------

CATASTROPHIC = ["(a+)+$", "(a|a)*b", "(a|aa)+$", "([a-z]+)*!", "(x+x+)+y", "(\\d+)+a", "(.*a){12}"]


@pytest.mark.parametrize("pattern", CATASTROPHIC)
def test_a_catastrophic_pattern_does_not_stall_a_push(client, pattern):
    added = client.post("/_picky/faults", json={"action": "api_error", "status": 403, "text_pattern": pattern})
    if added.status_code == 400:  # refused as too complex: fine, as long as it says so
        assert "too complex" in added.json()["error"]
        return
    assert added.status_code == 201
    text = "a" * 100_000 + "!"
    started = time.perf_counter()
    answer = client.post("/api/v2/push", json=push_body(text=text))
    assert answer.status_code == 200
    assert time.perf_counter() - started < 1.0


def test_a_pattern_too_complex_is_refused_and_so_is_a_union_too_large(client):
    answer = client.post("/_picky/faults", json={"action": "reset", "text_pattern": "(.*a){12}"})
    assert answer.status_code == 400 and "too complex" in answer.json()["error"]
    rules = [{"action": "reset", "number_pattern": f"^55{i:05d}[0-9]{{6}}$"} for i in range(3000)]
    answer = client.post("/_picky/faults", json=rules)
    assert answer.status_code == 400 and "together are too complex" in answer.json()["error"]


@pytest.mark.parametrize("pattern", ["(a)\\1", "(?=a)a", "(?<!a)b", "((a{100}){100}){100}"])
def test_a_pattern_that_cannot_be_bounded_is_refused(client, pattern):
    answer = client.post("/_picky/faults", json={"action": "reset", "number_pattern": pattern})
    assert answer.status_code == 400
    assert "RE2" in answer.json()["error"] or "refused" in answer.json()["error"]


def test_patterns_still_match(client):
    client.post("/_picky/faults", json={"action": "api_error", "status": 406, "number_pattern": "^55119\\d+$"})
    assert client.post("/api/v2/push", json=push_body("5511987654321")).json()["status"] == 406
    assert client.post("/api/v2/push", json=push_body("919737001155")).json()["status"] == 100


# -- smaller points ---------------------------------------------------------------------------------


@pytest.mark.parametrize("raw", [b"[" * 100_000, b"[" * 100_000 + b"]" * 100_000], ids=["open", "closed"])
def test_deep_nesting_says_so(raw):
    """Nesting deeper than any parser here follows (orjson stops at 1,024 levels; how deep the
    standard library gets depends on the Python version), whether or not the document is complete."""
    with pytest.raises(ApiError, match="nesting too deep") as info:
        parse_document(raw)
    assert "allocate" not in str(info.value)


def test_a_non_scalar_channel_is_shown_as_json_in_the_log(client, caplog):
    with caplog.at_level("INFO", logger="picky_mock"):
        client.post("/api/v2/push", json={**push_body(), "application": {"id": 1}})
        client.post("/api/v2/push", json={**push_body(), "application": [1, 2]})
    logged = caplog.text
    assert "channel=dict" not in logged and "channel=list" not in logged
    assert 'channel={"id":1}' in logged and "channel=[1,2]" in logged


def test_a_rule_from_dict_refuses_oversize_strings():
    with pytest.raises(ConfigError, match="4096"):
        FaultRule.from_dict({"action": "api_error", "status": 403, "message": "m" * 5000})


def test_an_admin_error_is_json_with_a_hint(client):
    answer = httpx.post(client.base_url.join("/_picky/faults"), content=b"{", headers={"X-Picky-Admin": "1"})
    assert answer.status_code == 400 and answer.headers["content-type"] == "application/json"


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        (b'{"token": "t", "application": 1, "globalmessage": "hi", "data": [], "data": [{"number": "%s"}]}', "'data'"),
        (
            b'{"token": "t", "application": 1, "globalmessage": "hi", "data": [{"number": "1", "number": "%s"}]}',
            "'number'",
        ),
    ],
)
def test_duplicate_keys_get_a_quirk_note(client, picky_server, raw, key):
    answer = client.post("/api/v2/push", content=raw % number(1).encode(), headers={"Content-Type": "application/json"})
    assert answer.json()["status"] == 100
    [entry] = picky_server.requests[-1:]
    assert any("duplicate JSON keys" in note and key in note for note in entry.notes)


def test_no_duplicate_note_for_a_colon_inside_a_string(client, picky_server):
    client.post("/api/v2/push", json=push_body(text='say "a": b'))
    assert not any("duplicate" in note for note in picky_server.requests[-1].notes)
