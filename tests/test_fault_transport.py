"""Every fault kind, seen by real clients (httpx and requests) over a real socket.

Each test checks that the client meets the error it would meet in production, and what the mock
journaled about it. Client timeouts are always set; timing assertions are lower bounds only.
"""

from __future__ import annotations

import functools
import http.client
import json
import math
import random
import threading
import time
from urllib.parse import urlsplit

import httpx
import pytest
import requests
from pushing import channel_push, connect

from picky_mock.api import proxy_html
from picky_mock.config import Settings
from picky_mock.errors import STATUS_MESSAGES
from picky_mock.server import ServerThread

NUMBER = "5511987654321"
push_body = functools.partial(channel_push, text="hello from the transport tests")
OTHER = "5511900000002"
TIMEOUT = 5.0


@pytest.fixture
def client():
    with httpx.Client(timeout=TIMEOUT) as c:
        yield c


def _only_entry(picky_server):
    entries = picky_server.requests
    assert len(entries) == 1, entries
    return entries[0]


def _assert_fired(entry, kind: str) -> None:
    assert len(entry.faults) == 1, entry.faults
    assert kind in entry.faults[0], entry.faults


# -- connection-level faults: the client gets no usable answer ---------------------------------


def test_reset_httpx_read_error(picky_server, client):
    picky_server.add_fault("reset")
    with pytest.raises(httpx.ReadError) as info:
        client.post(picky_server.push_url, json=push_body())
    assert "reset" in str(info.value).lower() or "104" in str(info.value)
    entry = _only_entry(picky_server)
    _assert_fired(entry, "reset")
    assert entry.http_status == 0 and entry.answer is None and not entry.messages


def test_reset_requests_connection_error(picky_server):
    picky_server.add_fault("reset")
    with pytest.raises(requests.ConnectionError) as info:
        requests.post(picky_server.push_url, json=push_body(), timeout=TIMEOUT)
    assert "reset" in str(info.value).lower()
    assert picky_server.pushes() == []


def test_close_httpx_server_disconnected(picky_server, client):
    picky_server.add_fault("close")
    with pytest.raises(httpx.RemoteProtocolError, match="Server disconnected without sending a response"):
        client.post(picky_server.push_url, json=push_body())
    _assert_fired(_only_entry(picky_server), "close")
    assert picky_server.pushes() == []


def test_close_requests_connection_error(picky_server):
    picky_server.add_fault("close")
    with pytest.raises(requests.ConnectionError):
        requests.post(picky_server.push_url, json=push_body(), timeout=TIMEOUT)
    assert picky_server.pushes() == []


def test_garbage_httpx_protocol_error(picky_server, client):
    picky_server.add_fault("garbage")
    with pytest.raises(httpx.RemoteProtocolError):
        client.post(picky_server.push_url, json=push_body())
    _assert_fired(_only_entry(picky_server), "garbage")


def test_garbage_requests_connection_error(picky_server):
    picky_server.add_fault("garbage")
    with pytest.raises(requests.ConnectionError):
        requests.post(picky_server.push_url, json=push_body(), timeout=TIMEOUT)
    assert picky_server.pushes() == []


def test_truncate_httpx_incomplete_body(picky_server, client):
    picky_server.add_fault("truncate")
    with pytest.raises(httpx.RemoteProtocolError, match="complete message body"):
        client.post(picky_server.push_url, json=push_body())
    # truncate happens after judging: the push itself went through
    entry = _only_entry(picky_server)
    assert entry.accepted and len(entry.messages) == 1
    _assert_fired(entry, "truncate")


def test_truncate_requests(picky_server):
    picky_server.add_fault("truncate")
    with pytest.raises((requests.exceptions.ChunkedEncodingError, requests.ConnectionError)):
        r = requests.post(picky_server.push_url, json=push_body(), timeout=TIMEOUT)
        r.json()
    assert len(picky_server.pushes()) == 1


@pytest.mark.parametrize("kind", ["reset", "close", "garbage"])
def test_connection_faults_reject_before_judging(picky_server, client, kind):
    """A push that never got an answer was not processed: no ids taken, next push gets the first id."""
    picky_server.fail_next(transport=kind)
    with pytest.raises(httpx.TransportError):
        client.post(picky_server.push_url, json=push_body())
    r = client.post(picky_server.push_url, json=push_body())
    assert r.json()["push_id"] == str(picky_server.backend.sequences.push_id_start)


# -- answers that arrive but are wrong or odd ------------------------------------------------


@pytest.mark.parametrize("flavour", ["httpx", "requests"])
def test_malformed_json_decode_error(picky_server, client, flavour):
    picky_server.add_fault("malformed")
    if flavour == "httpx":
        r = client.post(picky_server.push_url, json=push_body())
        status, ctype = r.status_code, r.headers["content-type"]
    else:
        r = requests.post(picky_server.push_url, json=push_body(), timeout=TIMEOUT)
        status, ctype = r.status_code, r.headers["content-type"]
    assert status == 200
    assert ctype.startswith("application/json")
    with pytest.raises(json.JSONDecodeError):
        r.json()
    entry = _only_entry(picky_server)
    assert entry.accepted  # the push was sent; only the answer is broken
    _assert_fired(entry, "malformed")


def test_dribble_httpx_complete_answer_in_chunks(picky_server, client):
    chunk, pause = 8, 0.03  # ~0.5 s in all: a starved client thread still reads it in pieces
    picky_server.add_fault("dribble", chunk=chunk, seconds=pause)
    started = time.monotonic()
    with client.stream("POST", picky_server.push_url, json=push_body()) as r:
        pieces = [piece for piece in r.iter_raw() if piece]
    elapsed = time.monotonic() - started
    raw = b"".join(pieces)
    answer = json.loads(raw)
    assert r.status_code == 200 and answer["status"] == 100
    assert answer == picky_server.requests[0].answer
    assert len(pieces) >= 2, "the answer came in one piece"
    sent = math.ceil(len(raw) / chunk)
    assert elapsed >= 0.8 * pause * (sent - 1)
    _assert_fired(picky_server.requests[0], "dribble")


def test_dribble_requests_valid_answer_slowly(picky_server):
    chunk, pause = 32, 0.03
    picky_server.add_fault("dribble", chunk=chunk, seconds=pause)
    started = time.monotonic()
    r = requests.post(picky_server.push_url, json=push_body(), timeout=TIMEOUT)
    elapsed = time.monotonic() - started
    assert r.status_code == 200 and r.json()["status"] == 100
    assert elapsed >= 0.8 * pause * (math.ceil(len(r.content) / chunk) - 1)
    assert len(picky_server.messages()) == 1


@pytest.mark.parametrize("flavour", ["httpx", "requests"])
def test_html_label_json_labelled_text_html(picky_server, client, flavour):
    picky_server.add_fault("html_label")
    if flavour == "httpx":
        r = client.post(picky_server.push_url, json=push_body())
    else:
        r = requests.post(picky_server.push_url, json=push_body(), timeout=TIMEOUT)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    answer = r.json()
    assert answer["status"] == 100 and answer["message"] == "Success"
    entry = _only_entry(picky_server)
    assert entry.accepted
    _assert_fired(entry, "html_label")


# -- api_error ----------------------------------------------------------------------------------


@pytest.mark.parametrize("code", sorted(STATUS_MESSAGES))
def test_api_error_every_documented_code(picky_server, client, code):
    handle = picky_server.fail_next(code)
    r = client.post(picky_server.push_url, json=push_body())
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/json")
    assert r.json() == {"status": code, "message": STATUS_MESSAGES[code]}
    entry = _only_entry(picky_server)
    assert entry.status == code and not entry.messages
    assert handle.hits == 1
    _assert_fired(entry, f"api_error {code}")


def test_api_error_custom_code_and_message_requests(picky_server):
    picky_server.add_fault("api_error", status=4711, message="Quota exceeded for today")
    r = requests.post(picky_server.push_url, json=push_body(), timeout=TIMEOUT)
    r.raise_for_status()  # business errors are HTTP 200: raise_for_status never sees them
    assert r.json() == {"status": 4711, "message": "Quota exceeded for today"}
    assert picky_server.pushes() == []


def test_api_error_documented_code_custom_message(picky_server, client):
    picky_server.fail_next(403, message="Saldo insuficiente")
    assert client.post(picky_server.push_url, json=push_body()).json() == {
        "status": 403,
        "message": "Saldo insuficiente",
    }


# -- http_error ---------------------------------------------------------------------------------


def test_http_429_default_retry_after(picky_server, client):
    picky_server.fail_next(http=429)
    r = client.post(picky_server.push_url, json=push_body())
    assert r.status_code == 429
    assert r.headers["retry-after"] == "60"
    assert "429 Too Many Requests" in r.text
    assert picky_server.requests[0].http_status == 429


def test_http_429_custom_retry_after_requests(picky_server):
    picky_server.add_fault("http_error", status=429, retry_after=7)
    r = requests.post(picky_server.push_url, json=push_body(), timeout=TIMEOUT)
    assert r.status_code == 429 and r.headers["Retry-After"] == "7"
    with pytest.raises(requests.HTTPError):
        r.raise_for_status()


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        (500, "Internal Server Error"),
        (502, "Bad Gateway"),
        (503, "Service Temporarily Unavailable"),
        (504, "Gateway Time-out"),
    ],
)
def test_http_5xx_nginx_page(picky_server, client, status, reason):
    picky_server.fail_next(http=status)
    r = client.post(picky_server.push_url, json=push_body())
    assert r.status_code == status
    assert r.headers["content-type"].startswith("text/html")
    assert f"<title>{status} {reason}</title>" in r.text
    assert "<center>nginx</center>" in r.text
    assert r.text == proxy_html(status)
    with pytest.raises(json.JSONDecodeError):
        r.json()
    with pytest.raises(httpx.HTTPStatusError):
        r.raise_for_status()
    assert picky_server.pushes() == []


def test_http_error_custom_body_and_headers(picky_server, client):
    picky_server.add_fault("http_error", status=418, body="short and stout", headers={"x-teapot": "yes"})
    r = client.post(picky_server.push_url, json=push_body())
    assert r.status_code == 418 and r.text == "short and stout" and r.headers["x-teapot"] == "yes"


def test_http_error_headers_replace_ours_and_are_never_doubled(picky_server):
    """A JSON error body labelled by the rule's own Content-Type: one content type, one length
    (http.client lists every header line as it came)."""
    body = '{"error": "maintenance"}'
    picky_server.add_fault("http_error", status=503, body=body, retry_after=30,
                           headers={"Content-Type": "application/json", "Content-Length": "999", "X-Up": "soon"})
    url = urlsplit(picky_server.url)
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=5)
    try:
        connection.request("POST", "/api/v2/push", json.dumps(push_body()), {"Content-Type": "application/json"})
        answer = connection.getresponse()
        lines = [(name.lower(), value) for name, value in answer.getheaders()]
        assert answer.status == 503 and json.loads(answer.read()) == {"error": "maintenance"}
    finally:
        connection.close()
    assert [v for n, v in lines if n == "content-type"] == ["application/json"]
    assert [v for n, v in lines if n == "content-length"] == [str(len(body))]
    assert dict(lines)["retry-after"] == "30" and dict(lines)["x-up"] == "soon"


@pytest.mark.parametrize("status", [204, 304])
def test_http_error_without_a_body(picky_server, client, status):
    picky_server.add_fault("http_error", status=status)
    r = client.post(picky_server.push_url, json=push_body())
    assert r.status_code == status and r.content == b""
    assert "content-length" not in r.headers and "content-type" not in r.headers
    assert client.post(picky_server.push_url, json=push_body()).status_code == status  # the connection still works


# -- latency ------------------------------------------------------------------------------------

SLACK = 0.01  # timer granularity; lower bounds only


def test_latency_fixed_not_earlier(picky_server, client):
    picky_server.add_fault("latency", seconds=0.2)
    started = time.monotonic()
    r = client.post(picky_server.push_url, json=push_body())
    elapsed = time.monotonic() - started
    assert r.json()["status"] == 100
    assert elapsed >= 0.2 - SLACK
    _assert_fired(picky_server.requests[0], "latency 0.2s")


def test_latency_uniform_is_the_seeded_draw(picky_server, client):
    picky_server.seed(7)
    picky_server.add_fault("latency", low=0.05, high=0.15)
    expected = random.Random(7).uniform(0.05, 0.15)
    started = time.monotonic()
    r = requests.post(picky_server.push_url, json=push_body(), timeout=TIMEOUT)
    elapsed = time.monotonic() - started
    assert r.json()["status"] == 100
    assert elapsed >= expected - SLACK
    _assert_fired(picky_server.requests[0], "latency uniform 0.05-0.15s")


def test_latency_lognormal_is_the_seeded_draw(picky_server, client):
    picky_server.seed(2024)
    picky_server.add_fault("latency", median=0.05, sigma=0.5)
    rng = random.Random(2024)
    expected = [0.05 * math.exp(0.5 * rng.gauss(0, 1)) for _ in range(3)]
    for want in expected:
        started = time.monotonic()
        assert client.post(picky_server.push_url, json=push_body()).json()["status"] == 100
        assert time.monotonic() - started >= want - SLACK
    assert all("latency lognormal median=0.05s sigma=0.5" in e.faults[0] for e in picky_server.requests)


def test_latency_does_not_delay_other_requests(picky_server):
    picky_server.add_fault("latency", seconds=1.0, number=NUMBER)
    done: list[float] = []

    def slow() -> None:
        with httpx.Client(timeout=TIMEOUT) as c:
            c.post(picky_server.push_url, json=push_body(NUMBER))
        done.append(time.monotonic())

    thread = threading.Thread(target=slow, daemon=True)
    thread.start()
    _wait_for_requests(picky_server, 1)  # judged and journaled; the answer waits
    with httpx.Client(timeout=TIMEOUT) as c:
        fast = c.post(picky_server.push_url, json=push_body(OTHER))
    fast_done = time.monotonic()
    thread.join(TIMEOUT + 1)
    assert fast.json()["status"] == 100
    assert done and fast_done < done[0]


def test_latency_ends_when_its_client_gives_up(caplog):
    """A client whose own timeout fires while a latency holds its answer has left: the server stops
    holding the request (as a real server's write would fail) instead of keeping it for the whole
    delay, and says so in its log; the journal keeps the request."""
    caplog.set_level("INFO", logger="picky_mock")
    server = ServerThread(Settings(log_level="warning")).start()
    try:
        server.backend.faults.add({"action": "latency", "seconds": 60})
        with httpx.Client(timeout=0.3) as c, pytest.raises(httpx.ReadTimeout):
            c.post(server.push_url, json=push_body())
        deadline = time.monotonic() + 5
        while "client left" not in caplog.text and time.monotonic() < deadline:
            time.sleep(0.01)
        server.backend.faults.clear()
        with httpx.Client(timeout=TIMEOUT) as c:
            assert c.post(server.push_url, json=push_body()).json()["status"] == 100
    finally:
        server.stop()
    assert "client left during a 60 s latency, request 1 unanswered" in caplog.text
    assert "the server is stopping" not in caplog.text  # nothing was still held at shutdown
    assert [e.delay for e in server.backend.journal.snapshot()] == [60.0, 0.0]
    assert server.backend.take_server_errors() == []


def test_latency_ends_quietly_when_a_pipelining_client_gives_up(caplog):
    """Two pushes pipelined on one connection, the first held by a latency, and the client leaves:
    uvicorn tells only the second request's cycle. The held one must still end without writing to
    the closed connection (that error used to reach picky_server.check() as a server bug)."""
    caplog.set_level("INFO", logger="picky_mock")
    server = ServerThread(Settings(log_level="warning")).start()
    try:
        server.backend.faults.add({"action": "latency", "seconds": 0.5, "times": 1})
        body = json.dumps(push_body()).encode()
        request = b"POST /api/v2/push HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
        with connect(server.url) as sock:
            sock.sendall(request + request)
            time.sleep(0.1)
        deadline = time.monotonic() + 5
        while "client left" not in caplog.text and time.monotonic() < deadline:
            time.sleep(0.01)
        with httpx.Client(timeout=TIMEOUT) as c:
            assert c.post(server.push_url, json=push_body()).json()["status"] == 100
    finally:
        server.stop()
    assert "client left during a 0.5 s latency, request 1 unanswered" in caplog.text
    assert server.backend.take_server_errors() == []


# -- hang ---------------------------------------------------------------------------------------


def _wait_for_requests(picky_server, count: int, deadline: float = 5.0) -> None:
    end = time.monotonic() + deadline
    while len(picky_server.requests) < count:
        assert time.monotonic() < end, f"the server did not journal {count} request(s)"
        time.sleep(0.005)


def test_hang_with_seconds_then_closed(picky_server, client):
    picky_server.add_fault("hang", seconds=0.3)
    started = time.monotonic()
    with pytest.raises(httpx.RemoteProtocolError):
        client.post(picky_server.push_url, json=push_body())
    assert time.monotonic() - started >= 0.3 - SLACK
    entry = _only_entry(picky_server)
    _assert_fired(entry, "hang 0.3s")
    assert not entry.accepted


def test_hang_with_seconds_requests(picky_server):
    picky_server.add_fault("hang", seconds=0.2)
    started = time.monotonic()
    with pytest.raises(requests.ConnectionError):
        requests.post(picky_server.push_url, json=push_body(), timeout=TIMEOUT)
    assert time.monotonic() - started >= 0.2 - SLACK


def test_hang_forever_httpx_read_timeout(picky_server):
    picky_server.add_fault("hang")
    with httpx.Client(timeout=httpx.Timeout(0.3)) as c, pytest.raises(httpx.ReadTimeout):
        c.post(picky_server.push_url, json=push_body())
    _assert_fired(_only_entry(picky_server), "hang until the client gives up")


def test_hang_forever_requests_read_timeout(picky_server):
    picky_server.add_fault("hang")
    with pytest.raises(requests.ReadTimeout):
        requests.post(picky_server.push_url, json=push_body(), timeout=(TIMEOUT, 0.3))


def test_server_keeps_serving_while_one_request_hangs(picky_server):
    picky_server.add_fault("hang", number=NUMBER)
    outcome: list[BaseException] = []

    def hung() -> None:
        try:
            with httpx.Client(timeout=httpx.Timeout(2.0)) as c:
                c.post(picky_server.push_url, json=push_body(NUMBER))
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=hung, daemon=True)
    thread.start()
    _wait_for_requests(picky_server, 1)
    with httpx.Client(timeout=TIMEOUT) as c:
        answers = [c.post(picky_server.push_url, json=push_body(OTHER, text=f"m{i}")).json() for i in range(3)]
        balance = c.post(picky_server.url + "/api/v2/check-balance", json={"token": "tok"}).json()
    assert thread.is_alive(), "the hanging request was answered before the others"
    assert [a["status"] for a in answers] == [100, 100, 100]
    assert balance["status"] == 100
    thread.join(5)
    assert not thread.is_alive()
    assert len(outcome) == 1 and isinstance(outcome[0], httpx.ReadTimeout)
    assert len(picky_server.messages(number=OTHER)) == 3
    assert picky_server.messages(number=NUMBER) == []


# -- answer_lost --------------------------------------------------------------------------------


def _post_with_retry(send, errors, attempts: int = 3):
    """A naive client: retry the same push on a transport error."""
    for attempt in range(attempts):
        try:
            return send()
        except errors:
            if attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


def test_answer_lost_push_accepted_connection_dropped(picky_server, client):
    handle = picky_server.fail_next(transport="answer_lost")
    with pytest.raises(httpx.ReadError):
        client.post(picky_server.push_url, json=push_body(NUMBER, OTHER))
    entry = _only_entry(picky_server)
    assert entry.accepted and entry.push_id == str(picky_server.backend.sequences.push_id_start)
    assert [m.number for m in entry.messages] == [NUMBER, OTHER]
    _assert_fired(entry, "answer_lost")
    assert handle.hits == 1
    # ids were taken: the next push continues after them
    nxt = client.post(picky_server.push_url, json=push_body(text="next")).json()
    assert int(nxt["push_id"]) == int(entry.push_id) + 1
    assert int(nxt["data"][0]["msg_id"]) == int(entry.messages[-1].msg_id) + 1


def test_answer_lost_retrying_httpx_client_double_sends(picky_server, client):
    picky_server.fail_next(transport="answer_lost")
    body = push_body(text="your code is 1234")
    r = _post_with_retry(lambda: client.post(picky_server.push_url, json=body), httpx.TransportError)
    assert r.json()["status"] == 100
    assert len(picky_server.pushes()) == 2
    with pytest.raises(AssertionError) as info:
        picky_server.assert_no_duplicates()
    message = str(info.value)
    assert "1 recipient(s) received the same text twice" in message
    assert f"number={NUMBER}" in message and "your code is 1234" in message
    first, second = picky_server.pushes()
    assert f"push {first.push_id}" in message and f"push {second.push_id}" in message


def test_answer_lost_retrying_requests_client_double_sends(picky_server):
    picky_server.fail_next(transport="answer_lost")
    body = push_body(NUMBER, OTHER, text="dup")

    def send():
        return requests.post(picky_server.push_url, json=body, timeout=TIMEOUT)

    assert _post_with_retry(send, requests.ConnectionError).json()["status"] == 100
    with pytest.raises(AssertionError, match="2 recipient\\(s\\) received the same text twice") as info:
        picky_server.assert_no_duplicates()
    assert NUMBER in str(info.value) and OTHER in str(info.value)


def test_no_duplicates_passes_without_retry(picky_server, client):
    for i in range(3):
        client.post(picky_server.push_url, json=push_body(text=f"distinct {i}"))
    picky_server.assert_no_duplicates()


@pytest.mark.parametrize("rule", [{"action": "hang"}, {"action": "latency", "seconds": 60}])
def test_stopping_the_server_while_a_fault_holds_a_request_closes_it_quietly(caplog, rule):
    """Past uvicorn's grace period the held request is cancelled: its client sees the connection
    closed (as when a real server goes away), not an HTTP 500, and no traceback is logged."""
    caplog.set_level("INFO")
    server = ServerThread(Settings(log_level="warning")).start()
    try:
        server.backend.faults.add(rule)
        body = json.dumps(push_body()).encode()
        with connect(server.url) as sock:
            sock.sendall(b"POST /api/v2/push HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                         b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
            deadline = time.monotonic() + 5
            while not server.backend.journal.snapshot() and time.monotonic() < deadline:
                time.sleep(0.01)
            server.stop()
            try:
                received = sock.recv(65536)
            except ConnectionResetError:
                received = b""
    finally:
        server.stop()
    assert received == b"", received
    assert "Exception in ASGI application" not in caplog.text and "Traceback" not in caplog.text
    assert "ASGI callable returned without" not in caplog.text
    assert "connection closed unanswered, the server is stopping" in caplog.text
    assert server.backend.take_server_errors() == []


def test_a_zero_second_hang_closes_at_once(picky_server):
    picky_server.add_fault("hang", seconds=0)
    started = time.monotonic()
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.post(picky_server.push_url, json=push_body(), timeout=10)
    assert time.monotonic() - started < 5  # not the 300 s cap
