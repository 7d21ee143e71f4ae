"""API answers on the wire, read as raw bytes: the status line, the headers the HTTP layer adds
(content type and length, request id, error and deviation notes), a body that is the journaled
answer, keep-alive, ``Connection: close``, HTTP/1.0 and pipelined requests, also while a latency
holds one of them."""

from __future__ import annotations

import json
import re
import time

import pytest
from pushing import connect, encode, number, push_body

from picky_mock.config import Settings
from picky_mock.server import ServerThread

TIMEOUT = 5.0


@pytest.fixture(scope="module")
def server():
    with ServerThread(Settings(port=0, log_level="warning", mode="lenient")) as thread:
        yield thread


@pytest.fixture
def fresh(server):
    server.backend.reset()
    return server


def _request(body: bytes, path: str = "/api/v2/push", *, version: str = "1.1", extra: str = "") -> bytes:
    head = (
        f"POST {path} HTTP/{version}\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n{extra}\r\n"
    )
    return head.encode() + body


def _exchange(url: str, raw: bytes, answers: int = 1) -> tuple[list[bytes], bool]:
    """Send ``raw`` on a fresh connection; the ``answers`` raw HTTP answers, and whether the server
    closed the connection after them."""
    with connect(url, timeout=TIMEOUT) as sock:
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


def _parse(answer: bytes) -> tuple[bytes, dict[bytes, list[bytes]], bytes]:
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *lines = head.split(b"\r\n")
    headers: dict[bytes, list[bytes]] = {}
    for line in lines:
        name, _, value = line.partition(b": ")
        headers.setdefault(name.lower(), []).append(value)
    return status_line, headers, body


CASES = {
    "success": (_request(encode(push_body(number(1), number(2)))), 100),
    "rejected": (_request(encode({"token": "t", "application": 1, "data": [{"number": "12ab"}]})), 406),
    "lenient deviation": (_request(encode(push_body("+55 11 98765-4321"))), 100),
    "not json": (_request(b"{nope"), 410),
    "balance": (_request(encode({"token": "t"}), "/api/v2/check-balance"), 100),
    "trailing slash": (_request(encode(push_body(number(3))), "/app/api/v2/push/"), 100),
}


@pytest.mark.parametrize("case", list(CASES))
def test_answer_bytes(fresh, case):
    raw, status = CASES[case]
    (answer,), closed = _exchange(fresh.url, raw)
    status_line, headers, body = _parse(answer)
    assert status_line == b"HTTP/1.1 200 OK" and not closed
    assert headers[b"content-type"] == [b"application/json"]
    assert headers[b"content-length"] == [str(len(body)).encode()]
    assert len(headers[b"date"]) == 1 and b"server" not in headers
    (entry,) = fresh.backend.journal.entries()
    assert headers[b"x-picky-request-id"] == [str(entry.seq).encode()]
    assert json.loads(body) == entry.answer and entry.answer["status"] == status
    assert (b"x-picky-error" in headers) is (status != 100)
    assert (b"x-picky-deviation" in headers) is (case == "lenient deviation")
    for values in headers.values():
        assert all(value.isascii() and b"\n" not in value for value in values)


def test_success_answer_is_compact_json_in_the_real_api_s_key_order(fresh):
    (answer,), _ = _exchange(fresh.url, _request(encode(push_body(number(1)))))
    _, _, body = _parse(answer)
    (entry,) = fresh.backend.journal.entries()
    push_id, (item,) = entry.answer["push_id"], entry.answer["data"]
    msg_id, credit = item["msg_id"], item["credit"]
    assert body == (
        f'{{"status":100,"push_id":"{push_id}","message":"Success","data":[{{"msg_id":"{msg_id}",'
        f'"number":"{number(1)}","credit":"{credit}"}}]}}'
    ).encode()


def test_rate_limited_answer_says_when_to_retry(fresh):
    fresh.backend.accounts.set_rate_limit({"per_minute": 1})
    raw = _request(encode(push_body(number(1))))
    answers, _ = _exchange(fresh.url, raw + raw, answers=2)
    status_line, headers, body = _parse(answers[1])
    assert status_line == b"HTTP/1.1 429 Too Many Requests"
    assert int(headers[b"retry-after"][0]) >= 1 and b"rate limit" in headers[b"x-picky-error"][0]
    assert json.loads(body) == {"status": 429, "message": "Too Many Requests"}


def test_wrong_method_is_405_with_allow(fresh):
    (answer,), _ = _exchange(fresh.url, b"GET /api/v2/push HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    status_line, headers, body = _parse(answer)
    assert status_line == b"HTTP/1.1 405 Method Not Allowed" and headers[b"allow"] == [b"POST"]
    assert json.loads(body)["status"] == 410


@pytest.mark.parametrize(
    ("version", "extra"), [("1.1", "Connection: close\r\n"), ("1.0", ""), ("1.0", "Connection: close\r\n")]
)
def test_connection_closes_when_not_kept_alive(server, version, extra):
    (answer,), closed = _exchange(server.url, _request(encode(push_body(number(4))), version=version, extra=extra))
    assert b'"status":100' in answer
    if version == "1.1":  # HTTP/1.0 closes by default: uvicorn releases differ on saying so
        assert b"\r\nconnection: close\r\n" in answer.lower()
    assert closed


def test_keep_alive_and_pipelined_requests_answered_in_order(fresh):
    bodies = [encode(push_body(number(10 + i))) for i in range(5)]
    answers, closed = _exchange(fresh.url, b"".join(_request(b) for b in bodies), answers=5)
    ids = [int(re.search(rb"x-picky-request-id: (\d+)", a).group(1)) for a in answers]
    assert ids == sorted(ids) and len(set(ids)) == 5
    for i, answer in enumerate(answers):
        assert number(10 + i).encode() in answer
    assert not closed
    assert [e.status for e in fresh.backend.journal.entries()] == [100] * 5


def test_pipelined_requests_wait_for_the_one_a_latency_holds(fresh):
    fresh.backend.faults.add({"action": "latency", "seconds": 0.3, "times": 1})
    bodies = [encode(push_body(number(20 + i))) for i in range(3)]
    began = time.monotonic()
    answers, closed = _exchange(fresh.url, b"".join(_request(b) for b in bodies), answers=3)
    assert time.monotonic() - began >= 0.3
    for i, answer in enumerate(answers):
        assert answer.startswith(b"HTTP/1.1 200 OK\r\n") and number(20 + i).encode() in answer
    assert not closed
    assert [e.delay for e in fresh.backend.journal.entries()] == [0.3, 0.0, 0.0]
    assert fresh.backend.take_server_errors() == []
