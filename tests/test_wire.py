"""API answers written in one piece (``picky_mock/wire.py``): byte for byte what uvicorn's own two
ASGI messages write, with keep-alive, ``Connection: close``, HTTP/1.0 and pipelining intact."""

from __future__ import annotations

import re
import socket
from collections import Counter

import pytest
from pushing import encode, number, push_body

import picky_mock.app
from picky_mock import wire
from picky_mock.config import Settings
from picky_mock.server import ServerThread

TIMEOUT = 5.0


@pytest.fixture(scope="module")
def server():
    with ServerThread(Settings(port=0, log_level="warning", mode="lenient")) as thread:
        yield thread


def _request(body: bytes, path: str = "/api/v2/push", *, version: str = "1.1", extra: str = "") -> bytes:
    head = (
        f"POST {path} HTTP/{version}\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n{extra}\r\n"
    )
    return head.encode() + body


def _exchange(url: str, raw: bytes, answers: int = 1) -> tuple[list[bytes], bool]:
    """Send ``raw`` on a fresh connection; the ``answers`` raw HTTP answers, and whether the server
    closed the connection after them."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=TIMEOUT) as sock:
        sock.sendall(raw)
        data = b""
        found: list[bytes] = []
        while len(found) < answers:
            chunk = sock.recv(65536)
            assert chunk, f"connection closed after {len(found)} answer(s): {data!r}"
            data += chunk
            while True:
                head_end = data.find(b"\r\n\r\n")
                if head_end < 0:
                    break
                length = int(re.search(rb"content-length: (\d+)", data[:head_end], re.I).group(1))
                end = head_end + 4 + length
                if len(data) < end:
                    break
                found.append(data[:end])
                data = data[end:]
        sock.settimeout(0.2)
        try:
            closed = sock.recv(1) == b""
        except TimeoutError:
            closed = False
    return found, closed


def _without_date(answer: bytes) -> bytes:
    """The answer less what changes from one request to the next (request ids go on after a reset)."""
    return re.sub(rb"(date|x-picky-request-id): [^\r]*\r\n", b"", answer)


def test_available_with_the_installed_uvicorn():
    """The end-to-end tests go through the one-write path only if it is available: say so loudly."""
    assert wire.AVAILABLE, "uvicorn's RequestResponseCycle changed: picky_mock/wire.py falls back to ASGI"


CASES = {
    "success": _request(encode(push_body(number(1), number(2)))),
    "rejected": _request(encode({"token": "t", "application": 1, "data": [{"number": "12ab"}]})),
    "lenient deviation": _request(encode(push_body("+55 11 98765-4321"))),
    "not json": _request(b"{nope"),
    "balance": _request(encode({"token": "t"}), "/api/v2/check-balance"),
    "trailing slash": _request(encode(push_body(number(3))), "/app/api/v2/push/"),
    "connection close": _request(encode(push_body(number(3))), extra="Connection: close\r\n"),
    "http/1.0": _request(encode(push_body(number(3))), version="1.0"),
    "http/1.0 keep-alive": _request(encode(push_body(number(3))), version="1.0", extra="Connection: keep-alive\r\n"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_same_bytes_as_uvicorn_writes(server, monkeypatch, case):
    server.backend.reset()
    (fast,), fast_closed = _exchange(server.url, CASES[case])
    server.backend.reset()
    monkeypatch.setattr(picky_mock.app, "write_answer", lambda *args: False)
    (slow,), slow_closed = _exchange(server.url, CASES[case])
    assert _without_date(fast) == _without_date(slow)
    assert fast.startswith(b"HTTP/1.1 200 OK\r\n") and b"\r\ndate: " in fast
    assert fast_closed is slow_closed


def test_push_answers_bypass_asgi_send_admin_answers_do_not(server, monkeypatch):
    """Proof that the path is taken: uvicorn's cycle ``send`` is never called for a push answer."""
    sent: Counter[str] = Counter()
    original = wire._Cycle.send

    async def counting(self, message):  # type: ignore[no-untyped-def]
        sent[message["type"]] += 1
        await original(self, message)

    monkeypatch.setattr(wire._Cycle, "send", counting)
    _exchange(server.url, CASES["success"])
    assert sent == Counter()
    _exchange(server.url, b"GET /_picky/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    assert sent == Counter({"http.response.start": 1, "http.response.body": 1})


@pytest.mark.parametrize(
    ("version", "extra"), [("1.1", "Connection: close\r\n"), ("1.0", ""), ("1.0", "Connection: close\r\n")]
)
def test_connection_closes_when_not_kept_alive(server, version, extra):
    (answer,), closed = _exchange(server.url, _request(encode(push_body(number(4))), version=version, extra=extra))
    assert b'"status":100' in answer
    assert b"\r\nconnection: close\r\n" in answer.lower()
    assert closed


def test_keep_alive_and_pipelined_requests_answered_in_order(server):
    server.backend.reset()
    bodies = [encode(push_body(number(10 + i))) for i in range(5)]
    answers, closed = _exchange(server.url, b"".join(_request(b) for b in bodies), answers=5)
    ids = [int(re.search(rb"x-picky-request-id: (\d+)", a).group(1)) for a in answers]
    assert ids == sorted(ids) and len(set(ids)) == 5
    for i, answer in enumerate(answers):
        assert number(10 + i).encode() in answer
    assert not closed
    assert [e.status for e in server.backend.journal.entries()] == [100] * 5
