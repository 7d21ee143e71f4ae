"""The ``picky-mock`` command, run as its users run it: the console script in a subprocess."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest
from pushing import (
    ROOT,
    SEED_REQUEST,
    TOKEN,
    clean_env,
    console_script,
    expect_error,
    expect_success,
    number,
    push_body,
    with_real_numbers,
)

RUN_TIMEOUT = 30
URL = re.compile(r"(http://\S+?)/api/v2/push")
PUSH_LINE = re.compile(r"picky-mock: push (\d+) channel=(\d+) recipients=(\d+) status=(\d+)")


class Served:
    """``picky-mock serve`` in a subprocess; both output streams read as they come."""

    def __init__(self, *args: str, env: dict[str, str] | None = None, port: str | None = "0", cwd: Path | None = None,
                 command: list[str] | None = None) -> None:
        argv = [*(command or console_script()), "serve", *(["--port", port] if port is not None else []), *args]
        self.process = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env or clean_env(), cwd=cwd or ROOT
        )
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        self._readers = [
            threading.Thread(target=self._read, args=(self.process.stdout, self.stdout), daemon=True),
            threading.Thread(target=self._read, args=(self.process.stderr, self.stderr), daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    @staticmethod
    def _read(stream, into: list[str]) -> None:
        for line in iter(stream.readline, b""):
            into.append(line.decode("utf-8", "replace"))

    def url(self, timeout: float = RUN_TIMEOUT) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.stdout:
                found = URL.search(line)
                if found:
                    return found.group(1)
            if self.process.poll() is not None:
                break
            time.sleep(0.02)
        self.kill()
        raise AssertionError(f"no URL printed; stdout={self.stdout} stderr={self.stderr}")

    def stop(self, sig: int = signal.SIGTERM) -> int:
        self.process.send_signal(sig)
        try:
            code = self.process.wait(timeout=RUN_TIMEOUT)
        finally:
            self.kill()
        for reader in self._readers:
            reader.join(timeout=5)
        return code

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=RUN_TIMEOUT)

    def __enter__(self) -> Served:
        return self

    def __exit__(self, *exc: object) -> None:
        self.kill()


def run(*args: str, stdin: bytes | None = None, env: dict[str, str] | None = None, command: list[str] | None = None):
    return subprocess.run(
        [*(command or console_script()), *args],
        input=stdin, capture_output=True, timeout=RUN_TIMEOUT, env=env or clean_env(), cwd=ROOT,
    )


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_serve_answers_logs_each_push_and_exits_cleanly(sig):
    with Served() as served:
        url = served.url()
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", url)
        with httpx.Client(base_url=url, follow_redirects=False, timeout=RUN_TIMEOUT) as client:
            assert client.get("/_picky/health").json() == {"status": "ok", "mode": "strict"}
            sms = push_body(number(1), number(2), number(3), application=3)
            one = expect_success(client.post("/api/v2/push", json=sms))
            two = expect_success(client.post("/app/api/v2/push", json=push_body(number(4))))
            expect_error(client.post("/beta/api/v2/push", json=push_body("+1")), 406)
        code = served.stop(sig)
    stderr = "".join(served.stderr)
    assert code == 0, stderr
    assert "Traceback" not in stderr
    accepted = [PUSH_LINE.search(line).groups() for line in served.stderr if PUSH_LINE.search(line)]
    assert accepted == [(one["push_id"], "3", "3", "100"), (two["push_id"], "1", "1", "100")]
    rejected = [line for line in served.stderr if "push rejected" in line]
    assert len(rejected) == 1 and "status=406 channel=1 recipients=1 $.data[0].number" in rejected[0]
    assert len([line for line in served.stderr if "push" in line]) == 3, "one line a push"


def test_environment_variables_are_honoured():
    env = clean_env(PICKY_MOCK_MODE="lenient", PICKY_MOCK_PORT="0", PICKY_MOCK_RETENTION="2",
                    PICKY_MOCK_LOG_LEVEL="warning")
    with Served(env=env, port=None) as served:
        url = served.url()
        assert "lenient mode" in "".join(served.stdout)
        with httpx.Client(base_url=url, timeout=RUN_TIMEOUT) as client:
            assert client.get("/_picky/health").json()["mode"] == "lenient"
            reply = expect_success(client.post("/api/v2/push", json=push_body("+55 11 98765-4321")))
            assert reply["data"][0]["number"] == "5511987654321"
            state = client.get("/_picky/state").json()
        assert served.stop() == 0
    assert state["retention"] == 2 and state["mode"] == "lenient"
    assert not [line for line in served.stderr if PUSH_LINE.search(line)], "log level warning: no info lines"


def test_options_override_the_environment():
    with Served("--mode", "strict", env=clean_env(PICKY_MOCK_MODE="lenient")) as served:
        with httpx.Client(base_url=served.url(), timeout=RUN_TIMEOUT) as client:
            assert client.get("/_picky/health").json()["mode"] == "strict"
        assert served.stop() == 0


CONFIG = """\
mode = "lenient"
retention = 3

[ids]
push_id_start = 1000
msg_id_start = 50

[prices]
default = "0.25"
3 = "0.07"
"""


@pytest.mark.parametrize("how", ["option", "environment"])
def test_config_file(tmp_path, how):
    config = tmp_path / "picky.toml"
    config.write_text(CONFIG)
    if how == "option":
        served = Served("--config", str(config))
    else:
        served = Served(env=clean_env(PICKY_MOCK_CONFIG=str(config)))
    with served:
        with httpx.Client(base_url=served.url(), timeout=RUN_TIMEOUT) as client:
            sms = expect_success(client.post("/api/v2/push", json=push_body(number(1), number(2), text="x" * 200,
                                                                             application=3)))
            whatsapp = expect_success(client.post("/api/v2/push", json=push_body("+55 11 98765 4321")))
            for _ in range(3):
                expect_success(client.post("/api/v2/push", json=push_body()))
            state = client.get("/_picky/state").json()
        assert served.stop() == 0
    assert sms["push_id"] == "1000" and [d["msg_id"] for d in sms["data"]] == ["50", "51"]
    assert [d["credit"] for d in sms["data"]] == ["0.14", "0.14"]
    assert whatsapp["push_id"] == "1001" and whatsapp["data"][0] == {"msg_id": "52", "number": "5511987654321",
                                                                     "credit": "0.25"}
    assert state["mode"] == "lenient" and state["retention"] == 3
    assert state["journal_entries"] == 3 and state["journal_dropped"] == 2
    assert state["push_id_start"] == 1000 and state["msg_id_start"] == 50


def _one_clear_line(done: subprocess.CompletedProcess[bytes], *words: str) -> str:
    stderr = done.stderr.decode()
    assert done.returncode != 0
    assert "Traceback" not in stderr and "Traceback" not in done.stdout.decode()
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    for word in words:
        assert word in lines[0], lines[0]
    assert "http://" not in done.stdout.decode(), "nothing served"
    return lines[0]


def test_port_in_use():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = run("serve", "--port", str(port))
    _one_clear_line(done, str(port), "in use")


@pytest.mark.parametrize("what", ["missing", "directory"])
def test_unreadable_config(tmp_path, what):
    path = tmp_path / "absent.toml" if what == "missing" else tmp_path
    done = run("serve", "--port", "0", "--config", str(path))
    _one_clear_line(done, str(path))


@pytest.mark.parametrize(
    ("text", "word"),
    [
        ("mode = \n", "TOML"),
        ("mode = 'bogus'\n", "bogus"),
        ("colour = 1\n", "colour"),
        ("[ids]\npush_id_start = 'abc'\n", "push_id_start"),
        ("[ids]\nmsg_id_start = 0\n", "msg_id_start"),
        ("[prices]\n3 = 'abc'\n", "prices"),
        ("[prices]\nsms = '0.1'\n", "sms"),
        ("retention = 0\n", "retention"),
        ("[server]\nport = 70000\n", "port"),
        ("[server]\nlog_level = 'loud'\n", "log level"),
    ],
    ids=[
        "syntax", "mode", "unknown-key", "ids-type", "ids-zero", "price", "price-key", "retention", "port", "log-level"
    ],
)
def test_invalid_config(tmp_path, text, word):
    config = tmp_path / "bad.toml"
    config.write_text(text)
    _one_clear_line(run("serve", "--port", "0", "--config", str(config)), word)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("PICKY_MOCK_MODE", "bogus"),
        ("PICKY_MOCK_PORT", "abc"),
        ("PICKY_MOCK_RETENTION", "-5"),
        ("PICKY_MOCK_RETENTION", "\u00b2"),  # "²".isdigit() is True, int("²") raises
        ("PICKY_MOCK_PORT", "--80"),
    ],
)
def test_invalid_environment(variable, value):
    port = [] if variable == "PICKY_MOCK_PORT" else ["--port", "0"]  # an option given wins over the variable
    _one_clear_line(run("serve", *port, env=clean_env(**{variable: value})))


def test_invalid_port_option():
    _one_clear_line(run("serve", "--port", "99999"), "99999")


# -- validate ------------------------------------------------------------------------------------


def test_validate_a_valid_file(tmp_path):
    path = tmp_path / "push.json"
    path.write_text(json.dumps(with_real_numbers(SEED_REQUEST)))
    done = run("validate", str(path))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "valid" in done.stdout.decode()


def test_validate_an_invalid_file_prints_each_violation_with_its_path(tmp_path):
    path = tmp_path / "push.json"
    body = {"application": "x", "data": [{"number": "+5511"}, {"number": number()}, {"number": "12"}]}
    path.write_text(json.dumps(body))
    done = run("validate", str(path))
    out = done.stdout.decode()
    assert done.returncode == 1, out
    for where in ("$.token", "$.application", "$.data[0].number", "$.data[2].number", "$.data[1]"):
        assert where in out, where
    assert "Traceback" not in out + done.stderr.decode()


def test_validate_the_unmodified_doc_sample_names_the_placeholders(tmp_path):
    path = tmp_path / "sample.json"
    path.write_text(json.dumps(SEED_REQUEST))
    done = run("validate", str(path))
    assert done.returncode == 1
    assert all(f"$.data[{i}].number" in done.stdout.decode() for i in range(5))


def test_validate_stdin():
    good = run("validate", "-", stdin=json.dumps(push_body()).encode())
    assert good.returncode == 0, good.stdout
    bad = run("validate", "-", stdin=json.dumps({"token": TOKEN, "application": 1, "data": []}).encode())
    assert bad.returncode == 1 and "$.data" in bad.stdout.decode()
    garbage = run("validate", "-", stdin=b"\xff not json")
    assert garbage.returncode == 1 and "$" in garbage.stdout.decode()
    assert "Traceback" not in garbage.stdout.decode() + garbage.stderr.decode()


def test_validate_json_output():
    done = run("validate", "--json", "-", stdin=json.dumps(push_body("+1")).encode())
    assert done.returncode == 1
    report = json.loads(done.stdout)
    assert report["valid"] is False
    assert report["violations"][0]["path"] == "$.data[0].number" and report["violations"][0]["status"] == 406
    ok = json.loads(run("validate", "--json", "-", stdin=json.dumps(push_body()).encode()).stdout)
    assert ok == {"valid": True, "violations": []}


DEVIATING = push_body("+55 11 98765-4321")


def test_validate_strict_rejects_a_deviation_and_lenient_repairs_it_with_a_note():
    stdin = json.dumps(DEVIATING).encode()
    strict = run("validate", "-", stdin=stdin)
    assert strict.returncode == 1
    assert strict.stdout.decode().splitlines() == [
        '-: $.data[0].number: expected 7 to 15 digits with the country code, no "+", no leading 0 or 00, no spaces '
        '(e.g. "55123456789"), found "+55 11 98765-4321" (status 406)',
        "1 violation(s); the API answers status 406",
    ]
    assert run("validate", "--mode", "strict", "-", stdin=stdin).stdout == strict.stdout, "strict is the default"
    lenient = run("validate", "--mode", "lenient", "-", stdin=stdin)
    assert lenient.returncode == 0, lenient.stdout + lenient.stderr
    assert lenient.stdout.decode().splitlines() == [
        "-: note: data[0].number '+55 11 98765-4321' is not bare digits: repaired (lenient mode)",
        "-: valid in lenient mode (1 deviation(s) repaired; strict mode rejects them)",
    ]
    assert not lenient.stderr


@pytest.mark.parametrize(
    "body",
    [
        {"token": TOKEN, "application": 1, "number": "0055 (11) 98765-4321", "message": "no data[]"},
        {"token": TOKEN, "globalmessage": "which channel?", "data": [{"number": number(2)}]},
    ],
    ids=["top-level-number-and-message", "application-missing"],
)
def test_validate_lenient_accepts_each_deviation_the_lenient_server_accepts(body):
    stdin = json.dumps(body).encode()
    assert run("validate", "-", stdin=stdin).returncode == 1
    done = run("validate", "--mode", "lenient", "-", stdin=stdin)
    lines = done.stdout.decode().splitlines()
    assert done.returncode == 0, lines
    assert lines[-1].startswith("-: valid in lenient mode")
    notes = lines[:-1]
    assert notes and all(line.startswith("-: note: ") and line.endswith("(lenient mode)") for line in notes), notes


def test_validate_lenient_still_reports_what_it_cannot_repair():
    body = {"token": TOKEN, "globalmessage": "x", "data": [{"number": "+1"}, {"number": number(1), "message": 5}]}
    done = run("validate", "--mode", "lenient", "-", stdin=json.dumps(body).encode())
    out = done.stdout.decode()
    assert done.returncode == 1, out
    assert "-: note: application missing: defaulted to 1 (lenient mode)" in out
    assert "-: note: data[0].number '+1' is not bare digits: repaired (lenient mode)" in out
    assert '-: $.data[0].number: expected 7 to 15 digits' in out and 'found "+1", read as "1" (lenient mode)' in out
    assert "-: $.data[1].message: expected a JSON string, found 5 (status 410)" in out
    assert out.splitlines()[-1] == "2 violation(s); the API answers status 410 (lenient mode)"


def test_validate_json_output_in_lenient_mode_carries_the_notes():
    done = run("validate", "--json", "--mode", "lenient", "-", stdin=json.dumps(DEVIATING).encode())
    assert done.returncode == 0
    assert json.loads(done.stdout) == {
        "valid": True,
        "violations": [],
        "mode": "lenient",
        "notes": ["deviation: data[0].number '+55 11 98765-4321' is not bare digits: repaired (lenient mode)"],
    }
    bad = run("validate", "--json", "--mode", "lenient", "-", stdin=json.dumps(push_body("+1")).encode())
    report = json.loads(bad.stdout)
    assert bad.returncode == 1 and report["valid"] is False and report["mode"] == "lenient"
    assert [(v["path"], v["status"]) for v in report["violations"]] == [("$.data[0].number", 406)]
    assert len(report["notes"]) == 1
    garbage = run("validate", "--json", "--mode", "lenient", "-", stdin=b"not json")
    assert garbage.returncode == 1
    assert json.loads(garbage.stdout)["notes"] == [] and json.loads(garbage.stdout)["violations"][0]["path"] == "$"


def test_validate_reads_the_mode_from_the_environment_as_serve_does():
    stdin = json.dumps(DEVIATING).encode()
    assert run("validate", "-", stdin=stdin, env=clean_env(PICKY_MOCK_MODE="Lenient")).returncode == 0
    overridden = run("validate", "--mode", "strict", "-", stdin=stdin, env=clean_env(PICKY_MOCK_MODE="lenient"))
    assert overridden.returncode == 1 and "(status 406)" in overridden.stdout.decode()
    _one_clear_line(run("validate", "-", stdin=stdin, env=clean_env(PICKY_MOCK_MODE="loose")), "PICKY_MOCK_MODE")
    # the option wins, even over a variable that is not a mode; a variable's spaces do not count
    junk = run("validate", "--mode", "lenient", "-", stdin=stdin, env=clean_env(PICKY_MOCK_MODE="loose"))
    assert junk.returncode == 0, junk.stderr
    assert run("validate", "-", stdin=stdin, env=clean_env(PICKY_MOCK_MODE=" lenient ")).returncode == 0


def test_validate_into_a_closed_pipe_ends_quietly(tmp_path):
    """`picky-mock validate big.json | head -1`: the reader leaves early; no traceback."""
    path = tmp_path / "push.json"
    path.write_text(json.dumps(push_body(*[f"+55119{i:08d}" for i in range(5000)])))
    command = [*console_script(), "validate", str(path)]
    done = subprocess.run(f"{' '.join(command)} | head -1", shell=True, capture_output=True, timeout=60)
    assert done.stdout.decode().count("\n") == 1
    assert b"Traceback" not in done.stderr and b"BrokenPipe" not in done.stderr, done.stderr


def test_validate_an_integer_too_long_for_int_is_judged_as_a_number(tmp_path):
    path = tmp_path / "push.json"
    path.write_text(json.dumps(push_body()).replace(f'"{number()}"', "5" * 5000))
    done = run("validate", str(path))
    out = done.stdout.decode()
    assert done.returncode == 1, out
    assert out.startswith(f"{path}: $.data[0].number: expected 7 to 15 digits"), out
    assert "(an integer of 5000 digits, too long to read) (status 406)" in out and "5" * 100 not in out


def test_validate_a_number_beyond_a_double_is_not_shown_as_infinity(tmp_path):
    """1e400 is JSON, but no double holds it: Python reads it as inf. The violation says what the
    client sent, rather than a bare "Infinity" the client never wrote."""
    path = tmp_path / "push.json"
    path.write_text(json.dumps(push_body()).replace('"application": 1', '"application": 1' + "9" * 400 + ".5"))
    done = run("validate", str(path))
    out = done.stdout.decode()
    assert done.returncode == 1, out
    assert "$.application: expected a channel id" in out, out
    assert "found a number beyond the range of a double (read as inf) (status 410)" in out, out


def test_validate_a_missing_file(tmp_path):
    _one_clear_line(run("validate", str(tmp_path / "nope.json")), "nope.json")


# -- help ----------------------------------------------------------------------------------------


def _commands() -> list[str]:
    text = run("--help").stdout.decode()
    section = text.split("COMMAND", 2)[-1]
    return re.findall(r"^ {4}(\w[\w-]*)\s", section, re.MULTILINE)


def test_every_command_has_help():
    commands = _commands()
    assert {"serve", "validate"} <= set(commands)
    for args in [["-h"], *[[command, "--help"] for command in commands]]:
        done = run(*args)
        out = done.stdout.decode()
        assert done.returncode == 0, (args, done.stderr)
        assert out.startswith("usage: picky-mock"), (args, out)
    serve_help = run("serve", "--help").stdout.decode()
    for option in ("--port", "--host", "--mode", "--config", "PICKY_MOCK_MODE", "/api/v2/push"):
        assert option in serve_help
    validate_help = run("validate", "--help").stdout.decode()
    for option in ("--mode", "strict", "lenient", "--json", "PICKY_MOCK_MODE"):
        assert option in validate_help


def test_no_command_prints_help_and_fails():
    done = run()
    assert done.returncode != 0 and "usage: picky-mock" in done.stdout.decode() + done.stderr.decode()


def test_version():
    import picky_mock

    done = run("--version")
    assert done.returncode == 0 and done.stdout.decode().strip() == f"picky-mock {picky_mock.__version__}"


def test_python_dash_m_is_the_same_command():
    import sys

    done = run("--help", command=[sys.executable, "-m", "picky_mock"])
    assert done.returncode == 0 and "serve" in done.stdout.decode()


def test_rate_limit_action_alone_is_refused_in_one_line():
    done = run("serve", "--port", "0", "--rate-limit-action", "drop")
    stderr = done.stderr.decode()
    assert done.returncode == 2 and "Traceback" not in stderr
    assert "--rate-limit-action needs a rate limit" in stderr


def test_a_fault_list_on_the_command_line_is_explained():
    done = run("serve", "--port", "0", "--fault", '[{"action": "reset"}]')
    assert done.returncode == 2 and "--fault takes one JSON object" in done.stderr.decode()
