"""Incoming messages over real sockets: the payload POSTed to a real receiver, the 24-hour window it
opens (the 802 flow on the virtual clock), the instant reply that becomes a message of its own, "no
reply" with its reason, the documented retry schedule, the thread, and refused input."""

from __future__ import annotations

import itertools
import json
import urllib.parse
from typing import Any

import httpx
import pytest
from receiving import Receiver

from picky_mock.config import Settings
from picky_mock.contract import default_contract
from picky_mock.lifecycle import LifecycleError, State
from picky_mock.server import ServerThread
from picky_mock.webhook_payloads import NoReply

NUMBER = "5511987654321"


def official(**settings: Any) -> ServerThread:
    accounts = {"tok": {"balance": "10"}}
    return ServerThread(Settings(clock="virtual", extra={"accounts": accounts}, **settings))


def free_text(server: ServerThread) -> Any:
    body = {"token": "tok", "application": 8, "data": [{"number": NUMBER, "message": "are you there?"}]}
    return httpx.post(server.push_url, json=body).json()


def test_the_802_flow_on_the_clock() -> None:
    with official() as server:
        assert free_text(server)["status"] == 802
        server.backend.receive(number=NUMBER, text="hi, it's me")
        assert free_text(server)["status"] == 100
        server.backend.advance(23 * 3600)
        assert free_text(server)["status"] == 100
        server.backend.advance(2 * 3600)
        assert free_text(server)["status"] == 802
        server.backend.receive(number=NUMBER, text="still there?")  # renews it
        assert free_text(server)["status"] == 100


def test_the_payload_reaches_a_real_receiver(receiver: Receiver) -> None:
    with official(incoming_webhook_url=receiver.url + "/in?project=a%20b&x=1") as server:
        record = server.backend.receive(number=NUMBER, text="Olá & bem-vindo", name="Ana")
        assert receiver.wait_for(1)
        path, body, headers = receiver.received[0]
        assert path == "/in?project=a%20b&x=1"  # the user's query string, as written
        assert headers["Content-Type"].startswith("application/json")
        payload = json.loads(body)
        assert payload["message_in_raw"] == "Olá & bem-vindo"
        assert urllib.parse.unquote_plus(payload["message-in"]) == "Olá & bem-vindo"
        assert payload["unique-id"] == record.unique_id and payload["name"] == "Ana"
        assert default_contract().is_valid("incoming_webhook", payload)
        server.backend.webhooks.wait_idle()
        assert record.outcome == "delivered"
        assert isinstance(record.reply, NoReply)  # "ok" is not JSON


def test_media_and_button_payloads(receiver: Receiver) -> None:
    with official(incoming_webhook_url=receiver.url) as server:
        server.backend.receive(number=NUMBER, type=2, media="https://cdn.example/p.jpg", text="look")
        server.backend.receive(number=NUMBER, type=9, payload="YES_PLEASE", text="Yes")
        assert receiver.wait_for(2)
        image, button = receiver.bodies()
        assert image["media-url"] == "https://cdn.example/p.jpg" and image["type"] == "2"
        assert button["payload"] == "YES_PLEASE"
        for payload in (image, button):
            assert default_contract().is_valid("incoming_webhook", payload)


def test_instant_reply_becomes_an_outbound_message(receiver: Receiver) -> None:
    receiver.answer = json.dumps({"message-out": "Thanks, we'll call you", "delay": 30}).encode()
    with official(incoming_webhook_url=receiver.url, event_webhook_url=receiver.url + "/events") as server:
        backend = server.backend
        backend.set_lifecycle({"deliver_after": 0})
        record = backend.receive(number=NUMBER, text="call me", application=8)
        backend.webhooks.wait_idle()
        assert record.reply_msg_id is None  # 30 s on the clock still to go
        backend.advance(30)
        assert record.reply_msg_id is not None
        message = backend.ledger.get(record.reply_msg_id)
        assert message.text == "Thanks, we'll call you" and message.channel == 8
        assert message.state is State.DELIVERED
        assert message.credit == backend.pricing.charge(8, message.text)[2]
        assert receiver.wait_for(2)
        assert receiver.items("/events")[0]["msg_id"] == record.reply_msg_id
        thread = backend.thread(NUMBER)
        assert [(item.direction, item.kind) for item in thread] == [("in", "customer"), ("out", "instant reply")]
        over_http = httpx.get(server.url + "/_picky/thread", params={"number": NUMBER}).json()
        assert [item["direction"] for item in over_http["messages"]] == ["in", "out"]


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (b"not json", "not JSON"),
        (b'{"message-out": "hi", "delay": 7200}', "outside"),
        (b'{"message-out": ""}', "empty"),
        (b'{"reply": "hi"}', "message-out"),
        (b"", "empty answer"),
    ],
)
def test_no_reply_is_recorded_with_its_reason(receiver: Receiver, answer: bytes, reason: str) -> None:
    receiver.answer = answer
    with official(incoming_webhook_url=receiver.url) as server:
        record = server.backend.receive(number=NUMBER, text="hello")
        server.backend.webhooks.wait_idle()
        assert isinstance(record.reply, NoReply) and reason in record.reply.reason
        assert record.reply_msg_id is None
        server.backend.advance(7200)
        assert len(server.backend.ledger) == 0


def test_a_receiver_that_is_down_is_retried_on_the_documented_schedule(receiver: Receiver) -> None:
    receiver.status = 503
    with official(incoming_webhook_url=receiver.url) as server:
        backend = server.backend
        record = backend.receive(number=NUMBER, text="anyone?")
        backend.advance(9 * 3600)
        attempts = backend.webhooks.attempts(kind="incoming")
        assert [a.attempt for a in attempts] == [1, 2, 3, 4, 5]
        gaps = [round(b.at - a.at) for a, b in itertools.pairwise(attempts)]
        assert gaps == [60, 900, 7200, 21600]
        assert attempts[-1].outcome == "given up" and record.outcome == "given up"


def test_the_handler_comes_back_on_the_retry(receiver: Receiver) -> None:
    receiver.status = 500
    with official(incoming_webhook_url=receiver.url) as server:
        backend = server.backend
        record = backend.receive(number=NUMBER, text="hello?")
        backend.webhooks.wait_idle()
        receiver.status = 200
        receiver.answer = b'{"message-out": "back now"}'
        backend.advance(60)
        assert record.outcome == "delivered" and record.reply_msg_id is not None
        assert [a.status for a in backend.webhooks.attempts()] == [500, 200]


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"number": ""}, "number"),
        ({"number": True}, "number"),
        ({"number": NUMBER, "text": 5}, "text"),
        ({"number": NUMBER, "type": 8}, "type"),
        ({"number": NUMBER, "type": 2}, "media"),
        ({"number": NUMBER, "media": "https://x.example/a.png"}, "media"),
        ({"number": NUMBER, "type": 2, "media": "javascript:alert(1)"}, "media"),
        ({"number": NUMBER, "application": "eight"}, "application"),
        ({"number": NUMBER, "name": "x" * 5000}, "name"),
    ],
)
def test_bad_inbound_is_refused_naming_the_field(spec: Any, field: str) -> None:
    with official() as server:
        with pytest.raises(LifecycleError) as refused:
            server.backend.receive(**spec)
        assert refused.value.field == field
        response = httpx.post(server.url + "/_picky/inbound", json=spec, headers=server.admin_headers)
        assert response.status_code == 400 and response.json()["field"] == field
        assert len(server.backend.inbound) == 0


def test_inbound_over_the_admin_api(receiver: Receiver) -> None:
    with official(incoming_webhook_url=receiver.url) as server:
        response = httpx.post(
            server.url + "/_picky/inbound", json={"number": NUMBER, "text": "hi"}, headers=server.admin_headers
        )
        assert response.status_code == 201 and response.json()["number"] == NUMBER
        assert receiver.wait_for(1)
        listed = httpx.get(server.url + "/_picky/inbound", params={"number": NUMBER}).json()
        assert [i["text"] for i in listed["inbound"]] == ["hi"]
        assert server.backend.accounts.session_open(NUMBER)
