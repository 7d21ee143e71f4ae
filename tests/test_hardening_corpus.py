"""A hostile corpus against one server: malformed and oversize API bodies, bad admin input of every
endpoint, rebinding and cross-site requests, odd methods and paths, and raw bytes uvicorn's parser
refuses. Whatever comes, no 5xx, no traceback, no internal error recorded, and the server still serves."""

from __future__ import annotations

import itertools
import json
import socket
from typing import Any

import httpx
import pytest
from pushing import connect, push_body, read_until_closed

from picky_mock import Settings
from picky_mock.server import ServerThread

LIMIT = 65536
Request = tuple[str, str, dict[str, str], bytes]
JSON = {"Content-Type": "application/json"}


def _api_bodies() -> list[bytes]:
    good = push_body()
    bodies: list[bytes] = [
        b"",
        b" ",
        b"null",
        b"[]",
        b"{}",
        b"{",
        b"[" * 1000,
        b"{" * 1000,
        b'{"a":' * 600,
        b"\xef\xbb\xbf{}",
        b"\xff\xfe{}",
        b"\x00" * 64,
        b'{"token": "\\ud800"}',
        b'{"token": NaN}',
        b'{"token": Infinity}',
        b"1" * 5000,
        b'{"data": [], "data": [{"number": "1"}]}',
        b'{"token": "t", "token": 5}',
        b'{"application": 1e999999}',
        b'{"application": -1e-999999}',
        b'{"application": ' + b"9" * 5000 + b"}",
        b'"' + b"a" * 10000 + b'"',
        json.dumps({**good, "data": [{"number": "1" * 10000}]}).encode(),
        json.dumps({**good, "data": [good] * 50}).encode(),
        json.dumps({**good, "data": "x"}).encode(),
        json.dumps({**good, "data": [[[[]]]]}).encode(),
        b"data=%7B%7D",
        b"data=" + b"%ff" * 100,
    ]
    for key, value in itertools.product(
        ["token", "application", "globalmessage", "data", "template_id", "media_url"],
        [None, True, -1, 2**70, 1.5e308, "", "\x00", "é" * 3, [], {}, [None], {"a": {"b": []}}],
    ):
        bodies.append(json.dumps({**good, key: value}).encode())
    return bodies


def _admin_requests() -> list[Request]:
    requests: list[Request] = []
    values: list[Any] = [None, True, -1, 0, 2**63, 1e308, "", "x" * 5000, [], {}, [1, [2]], {"a": None}, "1e999999999"]
    fault_keys = ["action", "status", "seconds", "median", "sigma", "chunk", "times", "nth", "probability", "headers"]
    for key, value in itertools.product(fault_keys, values):
        requests.append(("POST", "/_picky/faults", JSON, json.dumps({"action": "latency", key: value}).encode()))
    for key, value in itertools.product(["balance", "api", "templates", "sessions"], values):
        requests.append(("PUT", "/_picky/accounts/t", JSON, json.dumps({key: value}).encode()))
    for value in values:
        requests.append(("POST", "/_picky/sessions", JSON, json.dumps({"number": "1", "hours": value}).encode()))
        requests.append(("POST", "/_picky/seed", JSON, json.dumps({"seed": value}).encode()))
        requests.append(("PUT", "/_picky/rate-limit", JSON, json.dumps({"per_minute": value}).encode()))
        requests.append(("PUT", "/_picky/state", JSON, json.dumps({"mode": value}).encode()))
    for path in ("/_picky/faults", "/_picky/accounts/t", "/_picky/state", "/_picky/sessions", "/_picky/seed"):
        requests.append(("POST", path, JSON, b"{not json"))
        requests.append(("POST", path, JSON, b"[" * 2000))
        requests.append(("POST", path, {"Content-Type": "text/plain"}, b"{}"))
        requests.append(("POST", path, {**JSON, "Origin": "http://evil.example"}, b"{}"))
    for query in ("status=abc", "accepted=maybe", "channel=-1", "status=" + "9" * 5000, "text=%00"):
        requests.append(("GET", "/_picky/journal?" + query, {}, b""))
        requests.append(("GET", "/_picky/messages?" + query, {}, b""))
    requests.append(("DELETE", "/_picky/faults/999999999999999999999", {}, b""))
    requests.append(("DELETE", "/_picky/faults/" + "9" * 5000, {}, b""))
    requests.append(("PUT", "/_picky/accounts/" + "t" * 5000, JSON, b"{}"))
    requests.append(("POST", "/_picky/faults", JSON, b"[" + b"{}," * 100 + b"{}]"))
    requests.append(("POST", "/_picky/faults", JSON, b" " * (9 * 1024 * 1024)))
    return requests


def _corpus() -> list[Request]:
    corpus: list[Request] = []
    for body in _api_bodies():
        corpus.append(("POST", "/api/v2/push", JSON, body))
    for body in _api_bodies()[:20]:
        corpus.append(("POST", "/api/v2/check-balance", {"Content-Type": "application/x-www-form-urlencoded"}, body))
    corpus += _admin_requests()
    for host in ("evil.example", "", "a" * 300, "[::1", "127.0.0.1:99999", "localhost.:1", "xn--80ak6aa92e.com"):
        corpus.append(("GET", "/_picky/journal", {"Host": host}, b""))
        corpus.append(("POST", "/api/v2/push", {**JSON, "Host": host}, json.dumps(push_body()).encode()))
    for method in ("PROPFIND", "TRACE", "OPTIONS", "PATCH", "DELETE", "PUT", "HEAD"):
        corpus.append((method, "/api/v2/push", {}, b""))
        corpus.append((method, "/_picky/reset", {}, b""))
    for path in ("/%00", "/..%2f..%2fetc/passwd", "/_picky/" + "a" * 4000, "/_picky", "/_pickyx", "/api/v2/push//"):
        corpus.append(("GET", path, {}, b""))
    for size in (LIMIT + 1, 2 * LIMIT, 10 * LIMIT, 100 * LIMIT):
        corpus.append(("POST", "/api/v2/push", JSON, b"[" + b" " * size + b"]"))
    return corpus


RAW = [
    b"POST /api/v2/push HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: abc\r\n\r\n{}",
    b"POST /api/v2/push HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: -1\r\n\r\n{}",
    b"POST /api/v2/push HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 99999999999999999999\r\n\r\n{}",
    b"POST /api/v2/push HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Nul: a\x00b\r\n\r\n",
    b"POST /api/v2/push HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    b"POST /api/v2/push HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}",
    b"GARBAGE\r\n\r\n",
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
    b"GET / HTTP/9.9\r\n\r\n",
    b"GET /_picky/health HTTP/1.1\r\nHost: 127.0.0.1\r\n" + b"X: y\r\n" * 2000 + b"\r\n",
]


@pytest.fixture(scope="module")
def server():
    with ServerThread(Settings(max_body_bytes=LIMIT, log_level="critical")) as thread:
        yield thread


def test_the_corpus_is_large_enough():
    assert len(_corpus()) + len(RAW) >= 300


def test_no_request_of_the_corpus_gets_a_5xx_or_a_traceback(server):
    outcomes: dict[int, int] = {}
    with httpx.Client(base_url=server.url, timeout=30) as client:
        for method, path, headers, body in _corpus():
            answer = client.request(method, path, headers=headers, content=body)
            outcomes[answer.status_code] = outcomes.get(answer.status_code, 0) + 1
            assert answer.status_code < 500, (method, path, body[:80], answer.text[:300])
            assert "Traceback" not in answer.text
            if path.startswith("/_picky/faults") and answer.status_code == 201:
                server.backend.faults.clear()  # a latency rule of the corpus must not slow the rest
        assert server.backend.take_server_errors() == []
        assert client.get("/_picky/health").status_code == 200
    assert outcomes.get(200, 0) > 0 and outcomes.get(400, 0) > 0 and outcomes.get(403, 0) > 0


@pytest.mark.parametrize("raw", RAW, ids=range(len(RAW)))
def test_bytes_the_parser_refuses_get_no_traceback(server, raw):
    with connect(server.url, timeout=5) as sock:
        try:
            sock.sendall(raw)
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        answer = read_until_closed(sock)
    assert b"Traceback" not in answer
    assert not answer.startswith(b"HTTP/1.1 5")
    assert server.backend.take_server_errors() == []
    assert httpx.get(server.url + "/_picky/health").status_code == 200


def test_64_concurrent_clients_get_contiguous_ids_a_complete_journal_and_exact_credits():
    import threading
    from decimal import Decimal

    workers, each = 64, 5
    with ServerThread(Settings(log_level="critical")) as server:
        server.backend.accounts.set("t", balance="100")
        answers: list[dict[str, Any]] = []
        lock = threading.Lock()

        def work(index: int) -> None:
            with httpx.Client(timeout=60) as client:
                for i in range(each):
                    body = push_body(f"55119{index:04d}{i:04d}", token="t")
                    answer = client.post(server.push_url, json=body).json()
                    with lock:
                        answers.append(answer)

        threads = [threading.Thread(target=work, args=(n,)) for n in range(workers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        total = workers * each
        push_ids = sorted(int(a["push_id"]) for a in answers)
        msg_ids = sorted(int(a["data"][0]["msg_id"]) for a in answers)
        assert push_ids == list(range(push_ids[0], push_ids[0] + total))
        assert msg_ids == list(range(msg_ids[0], msg_ids[0] + total))
        assert len(server.backend.journal.pushes()) == total
        assert server.backend.accounts.balance("t") == Decimal("100") - Decimal("0.005") * total
