"""Webhooks: payload shapes against the schemas, and the dispatcher over real sockets (retries on the
virtual clock, a hung receiver's isolation, the queue bound, order per message, in-process apps)."""

from __future__ import annotations

import itertools
import json
import logging
import shutil
import socket
import subprocess
import threading
import time
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from picky_mock.clock import VirtualClock, WallClock
from picky_mock.errors import ConfigError
from picky_mock.lifecycle import DeliveryFault, How, Ledger, Lifecycle, Report, State, TrackedMessage, Transition
from picky_mock.webhook_payloads import (
    InstantReply,
    NoReply,
    WebhookUrlError,
    check_url,
    event_item,
    event_payload,
    incoming_payload,
    message_type,
    parse_instant_reply,
)
from picky_mock.webhooks import DEFAULT_RETRY_SCHEDULE, Attempt, Dispatcher, EventReporter

SCHEMAS = Path(__file__).resolve().parent.parent / "schemas"


def schema(name: str) -> Any:
    return json.loads((SCHEMAS / f"{name}.schema.json").read_text())


def validate(document: Any, name: str) -> None:
    jsonschema.Draft202012Validator(schema(name)).validate(document)


# -- a real receiver ------------------------------------------------------------------------------


class Receiver:
    """A threaded HTTP server on a real socket that records what it is POSTed and answers ``status``."""

    def __init__(self, port: int = 0, *, status: int = 200, answer: bytes = b"ok") -> None:
        self.status = status
        self.answer = answer
        self.received: list[tuple[str, bytes, dict[str, str]]] = []
        self.answered: list[int] = []
        """The status each request in ``received`` was answered."""
        self.arrived = threading.Condition()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                status = owner.status
                with owner.arrived:
                    owner.received.append((self.path, body, dict(self.headers.items())))
                    owner.answered.append(status)
                    owner.arrived.notify_all()
                self.send_response(status)
                self.send_header("Content-Length", str(len(owner.answer)))
                self.end_headers()
                self.wfile.write(owner.answer)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            request_queue_size = 1024  # the default 5 drops connections under a burst (SYN retried after 1 s)

        self.server = Server(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def wait_for(self, count: int, timeout: float = 5.0) -> bool:
        with self.arrived:
            return self.arrived.wait_for(lambda: len(self.received) >= count, timeout)

    def bodies(self) -> list[Any]:
        return [json.loads(body) for _, body, _ in self.received]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


@pytest.fixture
def hung() -> Iterator[str]:
    """A receiver that accepts connections (the kernel does) and never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    sock.close()


def free_port() -> int:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port: int = sock.getsockname()[1]
    sock.close()
    return port


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(start=1_780_000_000.0)


@pytest.fixture
def dispatcher(clock: VirtualClock) -> Iterator[Dispatcher]:
    with Dispatcher(clock, timeout=2.0) as running:
        yield running


# -- payloads -------------------------------------------------------------------------------------


def tracked(**overrides: Any) -> TrackedMessage:
    fields: dict[str, Any] = {
        "msg_id": "9844217", "push_id": "7478630", "number": "5511999990000", "channel": 8, "token": "t",
        "credit": "0.005", "text": "Olá, seu pedido saiu", "media": None, "reference_number": None,
    }
    fields.update(overrides)
    return TrackedMessage(**fields)


def transition(state: State, error_message: str = "") -> Transition:
    return Transition(1, "9844217", "7478630", "5511999990000", state, State.SUBMITTED, 0.0, How.DEMAND,
                      error_message)


@pytest.mark.parametrize("state", list(State))
def test_event_payload_matches_the_schema_and_every_data_value_is_a_string(state: State) -> None:
    message = tracked(media="https://cdn.test/a/photo.JPG?x=1", reference_number="order-77")
    failed = state in (State.FAILED, State.REFUNDED)  # only a failure carries an error message
    payload = event_payload("4242", [event_item(message, transition(state, "boom" if failed else ""))])
    validate(payload, "event-webhook")
    assert payload["project_id"] == "4242" and payload["event_id"] == 1
    (item,) = payload["data"]
    assert all(isinstance(value, str) for value in item.values())
    assert item["status"] == str(int(state))
    assert item["reference_number"] == "order-77"
    assert item["message_type"] == "image" and item["channel_id"] == "8"
    assert item["error_message"] == ("boom" if failed else "")  # Official channel: filled
    assert item["message"] == "Olá, seu pedido saiu"


def test_event_item_leaves_out_what_the_contract_says_is_absent() -> None:
    item = event_item(tracked(channel=2), transition(State.FAILED, "boom"))
    assert "reference_number" not in item
    assert item["error_message"] == ""  # phone automation: not filled
    assert item["media"] == "" and item["message_type"] == "text" and item["error_code"] == ""
    validate(event_payload("1", [item]), "event-webhook")
    assert event_item(tracked(channel=919737001155), transition(State.FAILED, "x"))["error_message"] == "x"


def test_the_event_schema_refuses_what_the_contract_forbids() -> None:
    good = event_payload("1", [event_item(tracked(), transition(State.READ))])
    for broken in (
        {**good, "event_id": "1"},
        {**good, "project_id": 1},
        {**good, "data": [{**good["data"][0], "status": 3}]},
        {**good, "data": [{**good["data"][0], "status": "6"}]},
        {**good, "data": [{**good["data"][0], "message_type": "Text"}]},
    ):
        with pytest.raises(jsonschema.ValidationError):
            validate(broken, "event-webhook")


@pytest.mark.parametrize(
    ("media", "word"),
    [(None, "text"), ("https://x.test/v.mp4", "video"), ("https://x.test/v.ogg", "audio"),
     ("https://x.test/file.pdf", "document"), ("https://x.test/noext", "document"), ("a.png", "image")],
)
def test_message_type_words(media: str | None, word: str) -> None:
    assert message_type(media) == word


def test_incoming_payload_encodes_the_text_and_matches_the_schema() -> None:
    text = "Olá mundo & 50% off? sim+não"
    payload = incoming_payload(number="5511999990000", text=text, application=8, unique_id="u-1", project_id="42",
                               name="Ana", context_msg_id="9844217")
    validate(payload, "incoming-webhook")
    assert payload["message-in"] == "Ol%C3%A1+mundo+%26+50%25+off%3F+sim%2Bn%C3%A3o"
    assert urllib.parse.unquote_plus(payload["message-in"]) == text
    assert payload["message_in_raw"] == text
    assert (payload["type"], payload["application"]) == ("1", "8")
    numeric = incoming_payload(number="55", text="x", application=8, unique_id="u", project_id="1",
                               numbers_as_strings=False)
    validate(numeric, "incoming-webhook")
    assert (numeric["type"], numeric["application"]) == (1, 8)


def test_incoming_payload_by_type() -> None:
    image = incoming_payload(number="55", text="", application=101, unique_id="u", project_id="1", type=2,
                             media_url="https://x.test/p.jpg")
    validate(image, "incoming-webhook")
    assert image["media-url"] == "https://x.test/p.jpg"
    button = incoming_payload(number="55", text="Yes", application=8, unique_id="u", project_id="1", type=9,
                              payload="CONFIRM_ORDER")
    validate(button, "incoming-webhook")
    assert button["payload"] == "CONFIRM_ORDER"
    long = incoming_payload(number="55", text="a" * 3000, application=1, unique_id="u", project_id="1")
    assert len(long["message-in"]) == 2500 and len(long["message_in_raw"]) == 3000
    with pytest.raises(ConfigError, match="media"):
        incoming_payload(number="55", text="", application=8, unique_id="u", project_id="1", type=2)
    with pytest.raises(ConfigError, match="type"):
        incoming_payload(number="55", text="", application=8, unique_id="u", project_id="1", type=8)
    with pytest.raises(jsonschema.ValidationError):
        validate({k: v for k, v in image.items() if k != "media-url"}, "incoming-webhook")


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'{"message-out": "Hi there", "delay": 5}', InstantReply("Hi there", 5, {})),
        (b'{"message-out": "Hi", "delay": "30"}', InstantReply("Hi", 30, {})),
        (b'{"message-out": "Hi"}', InstantReply("Hi", 0, {})),
        (b'{"message-out": "Hi", "delay": 0, "application": "8"}', InstantReply("Hi", 0, {"application": "8"})),
        (b"OK", NoReply("not JSON")),
        (b"", NoReply("empty answer")),
        (b"[1]", NoReply("not a JSON object")),
        (b'{"reply": "Hi"}', NoReply("no 'message-out'")),
        (b'{"message-out": 5}', NoReply("not a string")),
        (b'{"message-out": "  "}', NoReply("empty")),
        (b'{"message-out": "Hi", "delay": 3601}', NoReply("outside 0..3600")),
        (b'{"message-out": "Hi", "delay": -1}', NoReply("outside 0..3600")),
        (b'{"message-out": "Hi", "delay": true}', NoReply("not a whole number")),
        (b'{"message-out": "Hi", "delay": 1.5}', NoReply("not a whole number")),
    ],
)
def test_instant_reply_parsing_agrees_with_its_schema(body: bytes, expected: InstantReply | NoReply) -> None:
    got = parse_instant_reply(body)
    if isinstance(expected, NoReply):
        assert isinstance(got, NoReply) and expected.reason in got.reason
    else:
        assert got == expected
    valid = True
    try:
        validate(json.loads(body), "instant-reply")
    except (ValueError, jsonschema.ValidationError):
        valid = False
    assert valid is isinstance(expected, InstantReply)


def test_a_reply_answered_with_another_status_is_no_reply() -> None:
    assert parse_instant_reply(b'{"message-out": "Hi"}', status=500) == NoReply("the answer was HTTP 500, not 200")


@pytest.mark.parametrize(
    "url", ["ftp://x.test/", "file:///etc/passwd", "http://", "x.test/hook", "http://a b/", "http://x:99999/", 5, ""]
)
def test_webhook_urls_must_be_http(url: object) -> None:
    with pytest.raises(WebhookUrlError, match="event_webhook"):
        check_url(url, field="event_webhook")


def test_a_webhook_url_keeps_its_query_string() -> None:
    assert check_url("https://app.test/hook?key=a%20b&x=1+2") == "https://app.test/hook?key=a%20b&x=1+2"


# -- the dispatcher -------------------------------------------------------------------------------


def test_a_delivery_arrives_as_given_and_is_recorded(dispatcher: Dispatcher, receiver: Receiver) -> None:
    url = f"{receiver.url}/hook?secret=a%2Fb&user=me+you"
    payload = {"project_id": "1", "event_id": 1, "data": [{"status": "1"}]}
    done: list[Attempt] = []
    assert dispatcher.submit("event", url, payload, key="9844217", on_done=done.append) is not None
    assert receiver.wait_for(1)
    assert dispatcher.wait_idle(5)
    path, body, headers = receiver.received[0]
    assert path == "/hook?secret=a%2Fb&user=me+you"
    assert json.loads(body) == payload
    assert headers["Content-Type"] == "application/json"
    (attempt,) = dispatcher.attempts(kind="event")
    assert attempt.url == url and attempt.payload == body and attempt.status == 200 and attempt.body == b"ok"
    assert attempt.attempt == 1 and attempt.outcome == "delivered" and attempt.next_retry is None
    assert attempt.error is None and 0 < attempt.latency < 5 and attempt.key == "9844217"
    assert done == [attempt]
    assert dispatcher.attempts(url=f"{receiver.url}/*") == [attempt]
    assert dispatcher.attempts(kind="incoming") == []
    json.dumps(attempt.to_json())


def test_retries_follow_the_schedule_on_the_virtual_clock_until_the_receiver_is_up(
    clock: VirtualClock, dispatcher: Dispatcher
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/events"
    start = clock.now()
    dispatcher.submit("event", url, {"n": 1}, key="m1")
    clock.advance(minutes=1)  # second attempt: refused too
    assert [a.attempt for a in dispatcher.attempts()] == [1, 2]
    first, second = dispatcher.attempts()
    assert first.at == start and first.next_retry == start + 60 and first.outcome == "retrying"
    assert second.at == start + 60 and second.next_retry == start + 60 + 900
    assert first.status is None and first.error
    up = Receiver(port)
    try:
        clock.advance(minutes=14)
        assert len(dispatcher.attempts()) == 2  # not yet: the retry is 15 minutes after the 2nd attempt
        clock.advance(minutes=1)
        third = dispatcher.attempts()[-1]
        assert (third.attempt, third.at, third.status, third.outcome) == (3, start + 960, 200, "delivered")
        assert up.bodies() == [{"n": 1}]
        clock.advance(hours=9)
        assert len(dispatcher.attempts()) == 3
    finally:
        up.close()


def test_a_receiver_that_never_answers_200_is_given_up_after_the_last_retry(
    clock: VirtualClock, dispatcher: Dispatcher, receiver: Receiver
) -> None:
    receiver.status = 500
    start = clock.now()
    dispatcher.submit("event", receiver.url + "/down", b'{"x": 1}')
    began = time.perf_counter()
    clock.advance(hours=9)  # 1 min + 15 min + 2 h + 6 h of retries
    assert time.perf_counter() - began < 3
    attempts = dispatcher.attempts()
    gaps = [b.at - a.at for a, b in itertools.pairwise(attempts)]
    assert gaps == list(DEFAULT_RETRY_SCHEDULE)
    assert [a.outcome for a in attempts] == ["retrying"] * 4 + ["given up"]
    assert all(a.status == 500 and a.error == "HTTP 500, not 200" for a in attempts)
    assert attempts[-1].next_retry is None and attempts[-1].at == start + sum(DEFAULT_RETRY_SCHEDULE)
    assert len(receiver.received) == 5
    assert dispatcher.stats()["given_up"] == 1


def test_only_200_counts_as_received(clock: VirtualClock, dispatcher: Dispatcher, receiver: Receiver) -> None:
    receiver.status = 204
    receiver.answer = b""
    dispatcher.submit("event", receiver.url, b"{}")
    clock.advance(0)
    assert dispatcher.attempts()[0].outcome == "retrying"


def test_a_hung_receiver_delays_only_its_own_deliveries(clock: VirtualClock, receiver: Receiver, hung: str) -> None:
    # The hung receiver holds all its workers for 5 s; the other destination's 200 deliveries must all
    # arrive before the first of those could even time out.
    with Dispatcher(clock, timeout=5.0, per_destination=4) as dispatcher:
        for i in range(8):
            dispatcher.submit("event", hung, {"i": i}, key=f"h{i}")
        for i in range(200):
            dispatcher.submit("event", receiver.url, {"i": i}, key=f"ok{i}")
        assert receiver.wait_for(200, timeout=4.5), len(receiver.received)
        destinations = dispatcher.stats()["destinations"]
        assert destinations[hung]["active"] == 4 and destinations[hung]["pending"] == 8
        assert dispatcher.attempts(url=hung) == []


def test_a_receiver_that_never_answers_times_out(clock: VirtualClock, hung: str) -> None:
    with Dispatcher(clock, timeout=0.3) as dispatcher:
        dispatcher.submit("event", hung, b"{}")
        assert dispatcher.wait_idle(5)
        (attempt,) = dispatcher.attempts()
    assert attempt.status is None and attempt.error == "no answer within 0.3 s" and attempt.outcome == "retrying"
    assert 0.3 <= attempt.latency < 3


def test_a_burst_past_the_queue_bound_is_dropped_counted_and_logged(
    clock: VirtualClock, hung: str, caplog: pytest.LogCaptureFixture
) -> None:
    with Dispatcher(clock, timeout=0.2, queue_limit=100) as dispatcher, caplog.at_level(
        logging.WARNING, logger="picky_mock"
    ):
        began = time.perf_counter()
        ids = [dispatcher.submit("event", hung, b'{"event_id": 1}', key=str(i)) for i in range(10_000)]
        elapsed = time.perf_counter() - began
        assert elapsed < 2.0  # never blocks: about 10 us a submit
        assert sum(i is not None for i in ids) == 100
        assert dispatcher.dropped == 9_900
        assert dispatcher.stats()["destinations"][hung]["dropped"] == 9_900
        assert "queue full" in caplog.text and "dropped" in caplog.text


def test_deliveries_of_one_message_arrive_in_order_even_across_retries(
    clock: VirtualClock, dispatcher: Dispatcher
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/events"
    for state in ("1", "3"):
        dispatcher.submit("event", url, {"status": state}, key="m1")
    dispatcher.submit("event", url, {"status": "2"}, key="m2")
    clock.advance(0)
    # The first of m1 failed and waits for its retry; the second of m1 waits behind it.
    assert sorted((a.key, a.payload) for a in dispatcher.attempts()) == [
        ("m1", b'{"status":"1"}'), ("m2", b'{"status":"2"}')
    ]
    up = Receiver(port)
    try:
        clock.advance(minutes=1)
        assert up.bodies() == [{"status": "2"}, {"status": "1"}, {"status": "3"}] or up.bodies() == [
            {"status": "1"}, {"status": "2"}, {"status": "3"}
        ]
        m1 = [json.loads(a.payload)["status"] for a in dispatcher.attempts(key="m1") if a.delivered]
        assert m1 == ["1", "3"]
    finally:
        up.close()


def test_submit_before_start_waits_for_the_loop(clock: VirtualClock, receiver: Receiver) -> None:
    dispatcher = Dispatcher(clock)
    dispatcher.submit("event", receiver.url, b"{}")
    with dispatcher:
        assert receiver.wait_for(1)


async def echo_asgi(scope: dict[str, Any], receive: Any, send: Any) -> None:
    message = await receive()
    body = json.dumps({"message-out": f"{scope['path']}?{scope['query_string'].decode()}", "delay": 2,
                       "got": json.loads(message["body"])}).encode()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body})


def echo_wsgi(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    got = json.loads(environ["wsgi.input"].read(int(environ["CONTENT_LENGTH"])))
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps({"message-out": f"{environ['PATH_INFO']} {got['message_in_raw']}"}).encode()]


def starlette_app() -> Any:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def inbound(request: Request) -> JSONResponse:
        got = await request.json()
        query = request.url.query
        return JSONResponse({"message-out": f"{request.url.path}?{query}", "delay": 2, "echo": got["number"]})

    return Starlette(routes=[Route("/in", inbound, methods=["POST"])])


@pytest.mark.parametrize(
    ("app", "interface"), [(echo_asgi, "asgi"), (starlette_app(), "asgi"), (echo_wsgi, "wsgi")]
)
def test_in_process_apps_get_deliveries_without_a_socket(
    dispatcher: Dispatcher, app: Any, interface: Any
) -> None:
    dispatcher.mount("http://handler.test", app, interface=interface)
    payload = incoming_payload(number="55", text="oi", application=8, unique_id="u1", project_id="1")
    dispatcher.submit("incoming", "http://handler.test/in?k=v", payload, key="55")
    assert dispatcher.wait_idle(5)
    (attempt,) = dispatcher.attempts(kind="incoming")
    assert attempt.status == 200 and attempt.delivered
    assert isinstance(attempt.reply, InstantReply)
    expected = "/in?k=v" if interface == "asgi" else "/in oi"
    assert attempt.reply.text == expected
    assert attempt.reply.delay == (2 if interface == "asgi" else 0)


def test_an_incoming_delivery_records_no_reply_with_the_reason(dispatcher: Dispatcher, receiver: Receiver) -> None:
    receiver.answer = b"thanks!"
    done: list[Attempt] = []
    dispatcher.submit("incoming", receiver.url, {"number": "55"}, on_done=done.append)
    assert dispatcher.wait_idle(5)
    assert isinstance(done[0].reply, NoReply) and "not JSON" in done[0].reply.reason


# -- the event reporter ---------------------------------------------------------------------------


def test_the_event_reporter_posts_each_change_once_with_report_faults(
    clock: VirtualClock, dispatcher: Dispatcher, receiver: Receiver
) -> None:
    ledger = Ledger(clock)
    reporter = EventReporter(dispatcher, url=lambda m: receiver.url + "/events?token=abc", project_id=lambda m: "42")
    ledger.subscribe(reporter)
    lifecycle = Lifecycle(ledger, clock)
    lifecycle.accept("1", push_id="7478630", number="5511", channel=8, reference_number="r1")
    lifecycle.accept("2", push_id="7478630", number="5512", channel=8, fault=DeliveryFault(report=Report.NEVER))
    lifecycle.accept("3", push_id="7478630", number="5513", channel=8)
    ledger.move("1", "delivered")
    ledger.move("1", "read")
    ledger.move("2", "delivered", report=Report.NEVER)
    ledger.move("3", "delivered", report=Report.OUT_OF_ORDER)
    ledger.move("3", "read", report=Report.TWICE)
    clock.advance(0)
    assert receiver.wait_for(5)
    assert dispatcher.wait_idle(5)
    for body in receiver.bodies():
        validate(body, "event-webhook")
    sent = [(b["data"][0]["msg_id"], b["data"][0]["status"]) for b in receiver.bodies()]
    assert [s for s in sent if s[0] == "1"] == [("1", "1"), ("1", "3")]
    assert [s for s in sent if s[0] == "2"] == []
    assert [s for s in sent if s[0] == "3"] == [("3", "3"), ("3", "3"), ("3", "1")]
    assert reporter.suppressed == 1
    assert all(path == "/events?token=abc" for path, _, _ in receiver.received)
    items = {b["data"][0]["msg_id"]: b["data"][0] for b in receiver.bodies()}
    assert items["1"]["reference_number"] == "r1" and "reference_number" not in items["3"]


def test_a_held_report_is_sent_after_the_hold_if_nothing_follows(
    clock: VirtualClock, dispatcher: Dispatcher, receiver: Receiver
) -> None:
    ledger = Ledger(clock)
    ledger.subscribe(EventReporter(dispatcher, url=lambda m: receiver.url, project_id=lambda m: "1", hold=30))
    ledger.accept("1", push_id="7478630", number="55", channel=3)
    ledger.move("1", "delivered", report=Report.OUT_OF_ORDER)
    clock.advance(29)
    assert receiver.received == []
    clock.advance(1)
    assert receiver.wait_for(1)


NODE_RECEIVER = r"""
const http = require("http");
let failures = Number(process.argv[1] || 0);
const server = http.createServer((req, res) => {
  let body = "";
  req.on("data", (chunk) => { body += chunk; });
  req.on("end", () => {
    const status = failures > 0 ? 503 : 200;
    if (failures > 0) failures -= 1;
    process.stdout.write(JSON.stringify({status, url: req.url, type: req.headers["content-type"], body}) + "\n");
    res.writeHead(status, {"Content-Type": "text/plain"});
    res.end(status === 200 ? "ok" : "busy");
  });
});
server.listen(0, "127.0.0.1", () => process.stdout.write("PORT " + server.address().port + "\n"));
"""


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_a_node_receiver_gets_the_events_after_its_failures(clock: VirtualClock, dispatcher: Dispatcher) -> None:
    process = subprocess.Popen(["node", "-e", NODE_RECEIVER, "2"], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        assert first.startswith("PORT "), first
        url = f"http://127.0.0.1:{first.split()[1]}/picky/events?project=42&sig=a%20b"
        ledger = Ledger(clock)
        ledger.subscribe(EventReporter(dispatcher, url=lambda m: url, project_id=lambda m: "42"))
        ledger.accept("9844217", push_id="7478630", number="5511987654321", channel=101, text="Seu código: 1234")
        ledger.move("9844217", "delivered")
        clock.advance(0)  # first POST: 503
        clock.advance(minutes=1)  # second: 503
        clock.advance(minutes=15)  # third: 200
        lines = [json.loads(process.stdout.readline()) for _ in range(3)]
    finally:
        process.kill()
        process.wait(5)
    assert [line["status"] for line in lines] == [503, 503, 200]
    assert all(line["url"] == "/picky/events?project=42&sig=a%20b" for line in lines)
    assert all(line["type"] == "application/json" for line in lines)
    body = json.loads(lines[-1]["body"])
    validate(body, "event-webhook")
    assert body["data"][0]["message"] == "Seu código: 1234" and body["data"][0]["status"] == "1"
    attempts = dispatcher.attempts(key="9844217")
    assert [(a.attempt, a.status, a.outcome) for a in attempts] == [
        (1, 503, "retrying"), (2, 503, "retrying"), (3, 200, "delivered")
    ]
    assert attempts[2].at - attempts[0].at == 960


def test_retries_run_on_a_scaled_wall_clock(receiver: Receiver) -> None:
    clock = WallClock(scale=1200).start()  # the 1-minute retry comes after 50 ms
    try:
        with Dispatcher(clock, timeout=2.0) as dispatcher:
            receiver.status = 500
            dispatcher.submit("event", receiver.url, b"{}")
            assert receiver.wait_for(1)
            receiver.status = 200
            assert receiver.wait_for(2, timeout=5)
            deadline = time.monotonic() + 5
            while dispatcher.stats()["delivered"] < 1 and time.monotonic() < deadline:
                time.sleep(0.01)
            attempts = dispatcher.attempts()
            assert [a.outcome for a in attempts] == ["retrying", "delivered"]
            assert attempts[1].at - attempts[0].at >= 60
    finally:
        clock.close()


# -- property: exactly once, in order per message, whatever the receiver's failures ----------------

_STEPS = st.one_of(
    st.tuples(st.just("move"), st.integers(0, 3), st.sampled_from([State.DELIVERED, State.READ, State.FAILED,
                                                                  State.REFUNDED, State.UNKNOWN])),
    st.tuples(st.just("advance"), st.sampled_from([0, 30, 60, 900, 3600, 7200])),
    st.tuples(st.just("down"), st.sampled_from([500, 503, 204])),
    st.tuples(st.just("up")),
)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(_STEPS, max_size=25))
def test_every_state_change_arrives_exactly_once_in_order_per_message(
    receiver: Receiver, steps: list[tuple[Any, ...]]
) -> None:
    receiver.received.clear()
    receiver.answered.clear()
    receiver.status = 200
    clock = VirtualClock(start=1_780_000_000.0)
    with Dispatcher(clock, timeout=2.0) as dispatcher:
        ledger = Ledger(clock)
        ledger.subscribe(EventReporter(dispatcher, url=lambda m: receiver.url + "/e", project_id=lambda m: "1"))
        for i in range(4):
            ledger.accept(str(9000 + i), push_id="7000", number=str(5500 + i), channel=(8, 3, 101, 1)[i])
        spent = 0.0
        for step in steps:
            if step[0] == "move":
                msg_id = str(9000 + step[1])
                if ledger.check(msg_id, step[2]) is None:
                    ledger.move(msg_id, step[2])
            elif step[0] == "advance" and spent + step[1] <= 6 * 3600:  # down at most 6 h: under the 8 h 16 min
                spent += step[1]
                clock.advance(step[1])
            elif step[0] in ("down", "up"):
                assert dispatcher.wait_idle(5)  # what was sent before reached the receiver as it was
                receiver.status = step[1] if step[0] == "down" else 200
        receiver.status = 200
        clock.advance(hours=9)
        assert dispatcher.wait_idle(5)
        assert dispatcher.stats()["pending"] == 0 and dispatcher.given_up == 0
    got: dict[str, list[str]] = {}
    for (_, body, _), status in zip(receiver.received, receiver.answered, strict=True):
        if status == 200:
            item = json.loads(body)["data"][0]
            got.setdefault(item["msg_id"], []).append(item["status"])
    for message in ledger.messages():
        expected = [str(int(t.state)) for t in message.timeline[1:]]
        assert got.get(message.msg_id, []) == expected


def test_an_in_process_handler_may_advance_the_clock(clock: VirtualClock, dispatcher: Dispatcher) -> None:
    """A handler that moves time (a test's bot waiting a minute) must not wait for its own delivery."""
    seen: list[float] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        clock.advance(minutes=1)
        seen.append(clock.now())
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    dispatcher.mount("http://bot.test", app)
    start = clock.now()
    began = time.perf_counter()
    dispatcher.submit("event", "http://bot.test/", b"{}")
    assert dispatcher.wait_idle(5)
    assert time.perf_counter() - began < 3
    assert seen == [start + 60]


# -- on a loop it joins ---------------------------------------------------------------------------


def test_an_attached_dispatcher_delivers_from_the_loop_it_joined(
    clock: VirtualClock, receiver: Receiver, hung: str
) -> None:
    """``attach`` runs the deliveries on the caller's running loop, not a thread of its own: submits
    from the loop and from other threads arrive, one key stays in order, a hung destination delays
    only its own, ``wait_idle`` from another thread waits (from the loop it cannot, and does not
    hang), and ``detach`` ends what is in flight and lets the loop go."""
    import asyncio

    dispatcher = Dispatcher(clock, timeout=30.0)
    threads_before = threading.active_count()

    async def main() -> None:
        assert dispatcher.attach() is dispatcher and dispatcher.attached
        assert dispatcher.attach() is dispatcher  # idempotent
        assert dispatcher.start() is dispatcher  # and start() is then nothing: no thread
        assert threading.active_count() == threads_before
        dispatcher.submit("event", hung, {"i": -1}, key="stuck")
        for i in range(5):
            dispatcher.submit("event", receiver.url, {"i": i}, key="one")  # from the loop
        others = [
            threading.Thread(target=dispatcher.submit, args=("event", receiver.url, {"i": 100 + i}))
            for i in range(5)
        ]
        for other in others:
            other.start()
        for other in others:
            other.join()
        assert dispatcher.wait_idle(0.01) is False  # on the loop: answers at once, never waits for itself
        idle = await asyncio.to_thread(lambda: receiver.wait_for(10, timeout=5))
        assert idle
        assert [b["i"] for b in receiver.bodies() if b["i"] < 100] == [0, 1, 2, 3, 4]
        assert sorted(b["i"] for b in receiver.bodies() if b["i"] >= 100) == [100, 101, 102, 103, 104]
        for _ in range(500):  # the last attempt is recorded once its answer is read
            if len(dispatcher.attempts(kind="event")) == 10:
                break
            await asyncio.sleep(0.01)
        assert len(dispatcher.attempts(kind="event")) == 10
        assert dispatcher.stats()["destinations"][hung]["active"] == 1  # still waiting, alone
        await dispatcher.detach()
        assert not dispatcher.attached and dispatcher.stats()["pending"] == 0

    asyncio.run(main())
    assert dispatcher.attempts(url=hung) == []  # cancelled by detach, never answered
    dispatcher.close()  # after detach: nothing left to do


def test_close_of_an_attached_dispatcher_lets_the_loop_run_on(
    clock: VirtualClock, receiver: Receiver, hung: str
) -> None:
    """A reset replaces a dispatcher that has deliveries under way: the old one, attached, ends its
    work on the shared loop without waiting, and a fresh one attached ``like`` it delivers there."""
    import asyncio

    async def main() -> None:
        old = Dispatcher(clock, timeout=30.0).attach()
        old.submit("event", hung, {"i": 0})
        await asyncio.sleep(0.05)
        fresh = Dispatcher(clock, timeout=5.0).attach(like=old)
        await asyncio.to_thread(old.close)  # from another thread, as a reset in a worker thread does
        assert not old.attached and old.stats()["pending"] == 0
        fresh.submit("event", receiver.url, {"i": 1})
        assert await asyncio.to_thread(receiver.wait_for, 1)
        await fresh.detach()

    asyncio.run(main())
    assert receiver.bodies() == [{"i": 1}]
