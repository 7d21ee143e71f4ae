"""Bodies over ``max_body_bytes``: answered 413 with the API's 410 JSON error (never a reset), with
or without a content length, from every client, for a document in the query string too, and
journaled with the beginning of the body."""

from __future__ import annotations

import json

import httpx
import pytest
from pushing import CLIENTS, connect, encode, expect_error, expect_success, push_body, send

from picky_mock.config import Settings
from picky_mock.server import ServerThread

LIMIT = 1000


@pytest.fixture(scope="module")
def small_server():
    with ServerThread(Settings(port=0, max_body_bytes=LIMIT, log_level="warning")) as server:
        yield server


def _padded(size: int) -> bytes:
    raw = encode(push_body(text="limit"))
    return raw + b" " * (size - len(raw))


def _chunks(raw: bytes, size: int = 100):
    for start in range(0, len(raw), size):
        yield raw[start : start + size]


@pytest.mark.parametrize("client_name", CLIENTS)
def test_bodies_over_the_limit_are_413_json(small_server, client_name):
    small_server.backend.reset()
    url = small_server.push_url
    at_limit = send(client_name, url, content=_padded(LIMIT), headers={"Content-Type": "application/json"})
    expect_success(at_limit, recipients=1)
    for size in (LIMIT + 1, 50_000, 5_000_000):
        answer = send(client_name, url, content=_padded(size), headers={"Content-Type": "application/json"})
        error = expect_error(answer, 410, http_status=413)
        assert "max_body_bytes" in error
    expect_success(send(client_name, url, content=_padded(200), headers={"Content-Type": "application/json"}))
    entries = small_server.backend.journal.snapshot()
    assert [e.http_status for e in entries] == [200, 413, 413, 413, 200], "every request journaled"
    assert all(len(e.raw_body) <= LIMIT for e in entries)


def test_chunked_bodies_without_content_length(small_server):
    small_server.backend.reset()
    url = small_server.push_url
    with httpx.Client(timeout=30) as client:
        big = client.post(url, content=_chunks(_padded(20_000)))
        small = client.post(url, content=_chunks(_padded(900)))
    assert "content-length" not in big.request.headers and big.request.headers["transfer-encoding"] == "chunked"
    expect_error(big, 410, http_status=413)
    expect_success(small)
    import requests

    answer = requests.post(url, data=_chunks(_padded(20_000)), timeout=30)
    assert answer.request.headers.get("Transfer-Encoding") == "chunked"
    expect_error(answer, 410, http_status=413)
    curl_answer = send("curl", url, content=_padded(20_000), headers={"Transfer-Encoding": "chunked"})
    expect_error(curl_answer, 410, http_status=413)
    assert [e.http_status for e in small_server.backend.journal.snapshot()] == [413, 200, 413, 413]


def test_the_limit_holds_for_a_document_in_the_query_string(small_server):
    """``/push?data={...}`` (docs/contract.md §1's fallback) carries the document in the URL: the same
    limit applies to it as to a body, with a message that says where the document was."""
    from urllib.parse import quote

    small_server.backend.reset()
    with httpx.Client(timeout=30) as client:
        small = client.post(small_server.push_url + "?data=" + quote(encode(push_body(text="in the query"))))
        big = client.post(small_server.push_url + "?data=" + quote(_padded(LIMIT + 1)))
    expect_success(small)
    error = expect_error(big, 410, http_status=413)
    assert "data query parameter larger than the limit of 1000 bytes" in error
    assert [e.http_status for e in small_server.backend.journal.snapshot()] == [200, 413]


def test_the_limit_over_a_raw_socket_is_an_answer_not_a_reset(small_server):
    body = _padded(300_000)
    with connect(small_server.url) as sock:
        sock.sendall(
            b"POST /api/v2/push HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        received = b""
        while b"\r\n\r\n" not in received or not received.rstrip().endswith(b"}"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
    assert received.startswith(b"HTTP/1.1 413"), received[:200]
    assert json.loads(received.partition(b"\r\n\r\n")[2]) == {"status": 410, "message": "Invalid Request"}
