"""``picky-mock wait``: exit 0 once a real server answers its health check, 1 with one line when the
timeout passes first, 2 for a URL or timeout it cannot use; never a traceback."""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from picky_mock import ServerThread
from picky_mock.cli import main
from picky_mock.errors import ConfigError
from picky_mock.readiness import NotReady, health_url, wait_until_ready


@contextmanager
def _scripted_server(answers: list[tuple[int, bytes]]) -> Iterator[tuple[str, list[str]]]:
    """A plain HTTP server that gives ``answers`` in turn (the last one forever); yields its URL and
    the paths it was asked for."""
    asked: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            asked.append(self.path)
            status, body = answers[min(len(asked), len(answers)) - 1]
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", asked
    finally:
        server.shutdown()
        server.server_close()


def _closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_wait_returns_at_once_for_a_running_server(capsys):
    with ServerThread() as server:
        started = time.monotonic()
        assert main(["wait", "--url", server.url, "--timeout", "10"]) == 0
        assert time.monotonic() - started < 5, "it returns at the first healthy answer, not at the timeout"
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


def test_wait_accepts_the_health_url_itself_and_a_trailing_slash():
    with ServerThread() as server:
        assert wait_until_ready(server.url + "/_picky/health", 5) == server.url + "/_picky/health"
        assert wait_until_ready(server.url + "/", 5) == server.url + "/_picky/health"


def test_wait_times_out_with_one_line_naming_what_it_saw(capsys):
    port = _closed_port()
    started = time.monotonic()
    assert main(["wait", "--url", f"http://127.0.0.1:{port}", "--timeout", "0.5"]) == 1
    elapsed = time.monotonic() - started
    assert 0.5 <= elapsed < 5, elapsed
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert err.startswith(f"picky-mock: http://127.0.0.1:{port}/_picky/health not ready after 0.5s (last: ")
    assert "refused" in err.lower()


def test_wait_keeps_polling_until_the_health_check_says_ok():
    answers = [(503, b"starting"), (200, b"<html>a proxy page</html>"), (200, b'{"status": "starting"}'),
               (200, json.dumps({"status": "ok", "mode": "strict"}).encode())]
    with _scripted_server(answers) as (url, asked):
        assert main(["wait", "--url", url, "--timeout", "10"]) == 0
    assert asked == ["/_picky/health"] * 4


@pytest.mark.parametrize(
    ("answer", "seen"),
    [
        ((503, b"busy"), "HTTP 503"),
        ((200, b"<html>not picky-mock</html>"), "not picky-mock's health JSON"),
        ((200, b"[1, 2]"), "not picky-mock's health JSON"),
        ((200, b'{"status": "down"}'), "status 'down'"),
    ],
)
def test_an_unhealthy_answer_is_not_ready(answer, seen):
    with _scripted_server([answer]) as (url, asked), pytest.raises(NotReady) as caught:
        wait_until_ready(url, 2, interval=0.2)  # each probe may take the 2 s on a loaded machine
    assert seen in str(caught.value)
    assert asked and set(asked) == {"/_picky/health"}


@pytest.mark.parametrize(
    "url", ["", "127.0.0.1:8080", "ftp://127.0.0.1:8080", "http://", "http://127.0.0.1:99999", "http://h:port"]
)
def test_a_url_it_cannot_use_exits_2_with_one_line(url, capsys):
    assert main(["wait", "--url", url, "--timeout", "1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("picky-mock: error: ") and err.count("\n") == 1, err
    with pytest.raises(ConfigError):
        health_url(url)


@pytest.mark.parametrize("timeout", ["-1", "nan"])
def test_a_timeout_it_cannot_use_exits_2(timeout, capsys):
    assert main(["wait", "--url", "http://127.0.0.1:8080", "--timeout", timeout]) == 2
    assert "timeout" in capsys.readouterr().err


def test_wait_help_says_what_the_exit_statuses_mean(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["wait", "--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    for needed in ("--url", "--timeout", "/_picky/health", "exit status: 0", "1 when --timeout", "serve --port 8080 &"):
        assert needed in out, needed
