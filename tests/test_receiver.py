"""The webhook receiver of the fixture: what it records, what it answers, its bounds, its command."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import httpx
import pytest

from picky_mock.receiver import Answer, WebhookReceiver


def test_it_records_method_path_query_headers_and_json(picky_webhook_receiver: WebhookReceiver) -> None:
    answer = httpx.post(picky_webhook_receiver.url_for("/events?project=1&x=a&x=b"), json={"event_id": 1})

    assert (answer.status_code, answer.text) == (200, "ok")
    [got] = picky_webhook_receiver.wait_for(1)
    assert (got.method, got.path, got.query) == ("POST", "/events", {"project": ["1"], "x": ["a", "b"]})
    assert got.headers["content-type"] == "application/json"
    assert got.json == {"event_id": 1} and got.answered == 200
    assert picky_webhook_receiver.json() == [{"event_id": 1}]


def test_one_off_answers_then_the_default(picky_webhook_receiver: WebhookReceiver) -> None:
    picky_webhook_receiver.respond(503, "busy", times=2)
    picky_webhook_receiver.respond(json={"message-out": "Hi", "delay": 0}, times=1)

    with httpx.Client() as client:
        answers = [client.post(picky_webhook_receiver.url, content=b"{}") for _ in range(4)]

    assert [(a.status_code, a.text) for a in answers[:2]] == [(503, "busy")] * 2
    assert answers[2].json() == {"message-out": "Hi", "delay": 0}
    assert answers[3].status_code == 200
    assert [r.answered for r in picky_webhook_receiver.received] == [503, 503, 200, 200]


def test_down_closes_unanswered_and_up_answers_again(picky_webhook_receiver: WebhookReceiver) -> None:
    picky_webhook_receiver.down()
    with pytest.raises(httpx.TransportError):
        httpx.post(picky_webhook_receiver.url, content=b"x")
    picky_webhook_receiver.up()

    assert httpx.post(picky_webhook_receiver.url, content=b"x").status_code == 200
    assert [r.answered for r in picky_webhook_receiver.wait_for(2)] == [None, 200]


def test_a_delay_holds_the_answer(picky_webhook_receiver: WebhookReceiver) -> None:
    picky_webhook_receiver.respond(201, delay=0.2, times=1)
    started = time.monotonic()
    assert httpx.post(picky_webhook_receiver.url, content=b"x").status_code == 201
    assert time.monotonic() - started >= 0.2


def test_a_hung_request_is_let_go_on_close() -> None:
    receiver = WebhookReceiver().start()
    receiver.hang()
    started = time.monotonic()
    with pytest.raises(httpx.TransportError):
        with httpx.Client(timeout=5) as client:
            import threading

            threading.Timer(0.2, receiver.close).start()
            client.post(receiver.url, content=b"x")
    assert time.monotonic() - started < 4


def test_wait_for_says_what_arrived_when_it_times_out(picky_webhook_receiver: WebhookReceiver) -> None:
    httpx.post(picky_webhook_receiver.url_for("/a"), content=b"first")
    with pytest.raises(AssertionError, match=r"expected 2 request\(s\) .* got 1:\n  POST /a -> 200: b'first'"):
        picky_webhook_receiver.wait_for(2, timeout=0.1)
    with pytest.raises(AssertionError, match="to /b"):
        picky_webhook_receiver.wait_for(1, timeout=0.05, path="/b")


def test_bounds_body_and_kept_requests() -> None:
    with WebhookReceiver(keep=2, body_limit=10) as receiver, httpx.Client() as client:
        assert client.post(receiver.url, content=b"x" * 11).status_code == 413
        for i in range(3):
            client.post(receiver.url, content=str(i).encode())
        assert [r.body for r in receiver.received] == [b"1", b"2"]
        assert (receiver.count, receiver.forgotten) == (4, 2)
        receiver.clear()
        assert receiver.received == [] and receiver.count == 0


def test_chunked_bodies_are_read() -> None:
    with WebhookReceiver() as receiver:
        answer = httpx.post(receiver.url, content=iter([b'{"a":', b"1}"]))
        assert answer.status_code == 200
        assert receiver.wait_for(1)[0].json == {"a": 1}


@pytest.mark.parametrize(
    "kwargs", [{"status": 99}, {"status": True}, {"delay": -1}, {"delay": 3601}], ids=["99", "bool", "neg", "long"]
)
def test_bad_answers_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        Answer(**kwargs)  # type: ignore[arg-type]


def test_times_must_be_positive(picky_webhook_receiver: WebhookReceiver) -> None:
    with pytest.raises(ValueError, match="times"):
        picky_webhook_receiver.respond(500, times=0)


def test_the_command_prints_its_url_then_one_line_per_request() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "picky_mock.receiver", "--status", "202", "--down-first", "1"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        assert first.startswith("listening http://127.0.0.1:")
        url = first.split()[1]
        with pytest.raises(httpx.TransportError):
            httpx.post(url, json={"n": 1})
        assert httpx.post(url + "hook", json={"n": 2}).status_code == 202
        lines = [json.loads(process.stdout.readline()) for _ in range(2)]
        assert [(line["path"], line["json"], line["answered"]) for line in lines] == [
            ("/", {"n": 1}, None),
            ("/hook", {"n": 2}, 202),
        ]
    finally:
        process.terminate()
        process.wait(5)
