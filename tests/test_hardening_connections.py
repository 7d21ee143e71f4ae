"""Connection hygiene (picky_mock/watchdog.py): idle and trickling connections are closed after
the header timeout, oversize headers get 431, and the connection cap keeps room for real clients."""

from __future__ import annotations

import socket
import time

import httpx
import pytest
from pushing import connect, push_body, read_until_closed

from picky_mock import Settings
from picky_mock.server import MAX_HEADER_BYTES, ServerThread


def _closed(sock: socket.socket, within: float) -> bool:
    """Whether the server closed ``sock`` within ``within`` seconds (EOF or reset)."""
    sock.settimeout(within)
    try:
        while True:
            data = sock.recv(65536)
            if not data:
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except TimeoutError:
        return False


def _served(url: str) -> bool:
    answer = httpx.post(url + "/api/v2/push", json=push_body(), timeout=5)
    return answer.json()["status"] == 100


def test_connections_that_send_nothing_are_closed_after_the_header_timeout():
    with ServerThread(Settings(header_timeout=1.5, log_level="warning")) as server:
        idle = [connect(server.url, timeout=5) for _ in range(50)]
        assert not _closed(idle[-1], 0.05)  # not before the timeout
        assert _served(server.url)
        assert all(_closed(sock, 4.0) for sock in idle)
        assert server.connections.closed_idle >= 50
        assert _served(server.url)
        for sock in idle:
            sock.close()


def test_headers_sent_a_byte_at_a_time_are_cut_off():
    with ServerThread(Settings(header_timeout=0.6, log_level="warning")) as server:
        sock = connect(server.url, timeout=5)
        request = b"POST /api/v2/push HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 100
        started = time.monotonic()
        closed = False
        for byte in request:
            try:
                sock.sendall(bytes([byte]))
            except OSError:
                closed = True
                break
            time.sleep(0.05)
            if time.monotonic() - started > 3:
                break
        assert closed or _closed(sock, 1.0)
        assert time.monotonic() - started < 3
        sock.close()


def test_a_later_request_on_a_kept_alive_connection_has_the_same_deadline():
    with ServerThread(Settings(header_timeout=0.5, keep_alive_timeout=30, log_level="warning")) as server:
        sock = connect(server.url, timeout=5)
        sock.sendall(b"GET /_picky/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert b"200 OK" in sock.recv(65536)
        sock.sendall(b"GET /_picky/health HTTP/1.1\r\n")  # and then nothing
        assert _closed(sock, 2.0)
        sock.close()


def test_a_keep_alive_connection_idle_between_requests_is_uvicorns_to_close():
    with ServerThread(Settings(header_timeout=1.0, keep_alive_timeout=5, log_level="warning")) as server:
        sock = connect(server.url, timeout=5)
        for _ in range(2):
            sock.sendall(b"GET /_picky/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            assert b"200 OK" in sock.recv(65536)
            time.sleep(1.3)  # longer than the header timeout, shorter than keep-alive
        sock.close()


def test_oversize_headers_get_431_and_are_closed():
    with ServerThread(Settings(log_level="warning")) as server:
        sock = connect(server.url, timeout=5)
        head = b"GET /_picky/health HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        try:
            sock.sendall(head + b"X-Big: " + b"a" * (MAX_HEADER_BYTES + 10))
        except OSError:
            pass
        answer = read_until_closed(sock)
        assert answer.startswith(b"HTTP/1.1 431")
        sock.close()
        assert _served(server.url)


def test_the_connection_cap_keeps_room_for_a_real_client():
    with ServerThread(Settings(max_connections=20, log_level="warning")) as server:
        idle = [connect(server.url, timeout=5) for _ in range(40)]
        time.sleep(0.2)
        assert _served(server.url)
        assert len(server.connections.open) <= 20
        assert server.connections.evicted >= 20
        for sock in idle:
            sock.close()


def test_a_hung_request_outlives_the_header_timeout():
    """The deadline is for headers only: a fault that holds an answer is not cut short."""
    with ServerThread(Settings(header_timeout=1.0, log_level="warning")) as server:
        server.backend.faults.add({"action": "latency", "seconds": 1.5})
        assert _served(server.url)


def test_a_dribbled_answer_is_not_cut_short_by_the_header_timeout():
    with ServerThread(Settings(header_timeout=1.0, log_level="warning")) as server:
        server.backend.faults.add({"action": "dribble", "seconds": 1.2, "chunk": 100})
        answer = httpx.post(server.url + "/api/v2/push", json=push_body(), timeout=30)
        assert answer.json()["status"] == 100


@pytest.mark.slow
def test_a_thousand_idle_connections_beside_a_normal_client():
    with ServerThread(Settings(header_timeout=1.0, log_level="warning")) as server:
        idle = [connect(server.url, timeout=5) for _ in range(1000)]
        started = time.monotonic()
        served = sum(_served(server.url) for _ in range(20))
        worst = time.monotonic() - started
        assert served == 20 and worst < 10
        time.sleep(1.5)
        closed = sum(_closed(sock, 0.5) for sock in idle)
        assert closed == 1000
        for sock in idle:
            sock.close()
