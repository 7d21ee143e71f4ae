"""The fixture's side of the message lifecycle: deliver, advance, receive, set_webhooks, webhooks,
assert_webhook, mount and the marker's options, with webhooks received over real sockets by the
``picky_webhook_receiver`` fixture (or by an app mounted in-process)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from pushing import number, push_body

from picky_mock.coverage import lifecycle_counts
from picky_mock.lifecycle import IllegalTransition
from picky_mock.receiver import WebhookReceiver


def push(picky_server: Any, *numbers: str, application: int = 1, text: str = "hello") -> dict[str, Any]:
    answer = httpx.post(picky_server.push_url, json=push_body(*numbers, application=application, text=text), timeout=10)
    body: dict[str, Any] = answer.json()
    assert body["status"] == 100, body
    return body


def msg_ids(answer: dict[str, Any]) -> list[str]:
    return [str(item["msg_id"]) for item in answer["data"]]


def states(receiver: WebhookReceiver) -> list[tuple[str, str]]:
    return [(item["msg_id"], item["status"]) for body in receiver.json() for item in body["data"]]


# -- on demand, with a receiver ---------------------------------------------------------------------


def test_deliver_and_read_reach_the_receiver_in_order(
    picky_server: Any, picky_webhook_receiver: WebhookReceiver
) -> None:
    picky_server.set_webhooks(event_url=picky_webhook_receiver.url_for("/events"))
    [msg_id] = msg_ids(push(picky_server, number(1), application=8))

    moved = picky_server.deliver(msg_id)
    picky_server.deliver(msg_id, status="read")

    assert [t.state.name for t in moved] == ["DELIVERED"]
    picky_webhook_receiver.wait_for(2)
    assert states(picky_webhook_receiver) == [(msg_id, "1"), (msg_id, "3")]
    assert {r.path for r in picky_webhook_receiver.received} == {"/events"}
    picky_server.assert_webhook(msg_id=msg_id, status="read", count=1)
    picky_server.assert_webhook(msg_id=msg_id, status=1, number=number(1))


def test_deliver_by_push_and_by_number(picky_server: Any, picky_webhook_receiver: WebhookReceiver) -> None:
    picky_server.set_webhooks(event_url=picky_webhook_receiver.url)
    answer = push(picky_server, number(1), number(2))
    other = push(picky_server, number(3))

    assert len(picky_server.deliver(push_id=answer["push_id"])) == 2
    assert len(picky_server.deliver(number=number(3), status="failed", error_message="Not on WhatsApp")) == 1

    picky_webhook_receiver.wait_for(3)
    assert sorted(states(picky_webhook_receiver)) == sorted(
        [(m, "1") for m in msg_ids(answer)] + [(msg_ids(other)[0], "2")]
    )


def test_an_illegal_move_is_refused_and_sends_nothing(
    picky_server: Any, picky_webhook_receiver: WebhookReceiver
) -> None:
    picky_server.set_webhooks(event_url=picky_webhook_receiver.url)
    [msg_id] = msg_ids(push(picky_server, number(1), application=8))

    with pytest.raises(IllegalTransition, match="Read"):
        picky_server.deliver(msg_id, status="read")  # not delivered yet
    with pytest.raises(TypeError, match="exactly one"):
        picky_server.deliver(msg_id, number=number(1))

    assert picky_server.webhooks() == []


def test_assert_webhook_shows_the_near_misses(picky_server: Any, picky_webhook_receiver: WebhookReceiver) -> None:
    picky_server.set_webhooks(event_url=picky_webhook_receiver.url)
    [msg_id] = msg_ids(push(picky_server, number(1), application=8))
    picky_server.deliver(msg_id)

    with pytest.raises(AssertionError) as failure:
        picky_server.assert_webhook(msg_id=msg_id, status="read", timeout=0.5)

    message = str(failure.value)
    assert "expected a event webhook attempt(s) with msg_id=" in message
    assert "1 webhook attempt(s) recorded" in message
    assert "nearest:" in message and "differs: status '1' ≠ expected '3'" in message


def test_assert_webhook_without_a_url_says_so(picky_server: Any) -> None:
    [msg_id] = msg_ids(push(picky_server, number(1)))
    picky_server.deliver(msg_id)
    with pytest.raises(AssertionError, match=r"no event webhook URL is set"):
        picky_server.assert_webhook(msg_id=msg_id, timeout=0.2)


# -- time, retries --------------------------------------------------------------------------------


def test_a_receiver_down_is_retried_on_the_virtual_clock(
    picky_server: Any, picky_webhook_receiver: WebhookReceiver
) -> None:
    picky_server.set_webhooks(event_url=picky_webhook_receiver.url)
    picky_webhook_receiver.down(times=3)
    [msg_id] = msg_ids(push(picky_server, number(1)))
    start = picky_server.now()

    picky_server.deliver(msg_id)
    picky_server.assert_webhook(msg_id=msg_id, outcome="retrying", attempt=1)
    picky_server.advance(minutes=1)
    picky_server.advance(minutes=15)
    picky_server.assert_webhook(msg_id=msg_id, outcome="retrying", count=3)
    picky_server.advance(hours=2)

    attempts = picky_server.webhooks("event", key=msg_id)
    assert [a.outcome for a in attempts] == ["retrying", "retrying", "retrying", "delivered"]
    assert [round(a.at - start) for a in attempts] == [0, 60, 960, 8160]
    assert picky_server.now() == pytest.approx(start + 8160)
    picky_server.assert_webhook(msg_id=msg_id, attempt=4, status="delivered")
    counts = lifecycle_counts(picky_server.backend.ledger.transitions(), attempts)
    assert counts["webhook_paths"] == {"retried": 1, "delivered after retry": 1}


def test_advance_takes_units_and_returns_the_time(picky_server: Any) -> None:
    before = picky_server.now()
    assert picky_server.advance(days=1, hours=1, minutes=1, seconds=1) == pytest.approx(before + 90061)
    with pytest.raises(Exception, match=r"seconds|negative|duration"):
        picky_server.advance(-5)


@pytest.mark.picky(lifecycle={"deliver_after": "5m", "read_after": "1m"})
def test_the_markers_policy_plays_on_the_clock(picky_server: Any, picky_webhook_receiver: WebhookReceiver) -> None:
    picky_server.set_webhooks(event_url=picky_webhook_receiver.url)
    [msg_id] = msg_ids(push(picky_server, number(1), application=8))
    assert picky_server.webhooks() == []  # nothing before the clock moves

    picky_server.advance(minutes=5)
    picky_server.assert_webhook(msg_id=msg_id, status="delivered")
    picky_server.advance(minutes=1)
    picky_server.assert_webhook(msg_id=msg_id, status="read")
    assert states(picky_webhook_receiver) == [(msg_id, "1"), (msg_id, "3")]


@pytest.mark.picky(lifecycle="at_once", event_webhook="http://127.0.0.1:9/events")
def test_marker_at_once_and_an_event_webhook_nobody_listens_on(picky_server: Any) -> None:
    [msg_id] = msg_ids(push(picky_server, number(1), application=8))

    picky_server.assert_webhook(msg_id=msg_id, status="delivered", outcome="retrying", url="http://127.0.0.1:9/events")
    assert picky_server.backend.ledger.state(msg_id).name == "READ"
    picky_server.reset()  # the marker's options stay in force after a reset
    assert picky_server.backend.event_webhook_url == "http://127.0.0.1:9/events"


def test_the_lifecycle_is_off_by_default_and_the_clock_virtual(picky_server: Any) -> None:
    [msg_id] = msg_ids(push(picky_server, number(1)))
    assert picky_server.backend.ledger.state(msg_id).name == "SUBMITTED"
    assert type(picky_server.clock).__name__ == "VirtualClock"


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"lifecycle": {"fail_share": 2}}, "lifecycle.fail_share"),
        ({"lifecycle": "sometimes"}, "lifecycle"),
        ({"lifecycle": 3}, "lifecycle"),
        ({"event_webhook": "ftp://example.com/"}, "event_webhook"),
        ({"incoming_webhook": 42}, "incoming_webhook"),
    ],
)
def test_bad_marker_options_name_the_option(picky_server: Any, options: dict[str, Any], named: str) -> None:
    with pytest.raises(ValueError, match=rf"@pytest.mark.picky: .*{named}"):
        picky_server.apply_marker(options)


def test_set_webhooks_checks_urls_and_reset_forgets_them(picky_server: Any) -> None:
    with pytest.raises(Exception, match="incoming_url"):
        picky_server.set_webhooks(incoming_url="javascript:alert(1)")
    picky_server.set_webhooks(event_url="http://127.0.0.1:9/e", incoming_url="http://127.0.0.1:9/i")
    picky_server.set_lifecycle("at_once")
    picky_server.set_webhooks(incoming_url=None)  # one changed, the other kept
    assert (picky_server.backend.event_webhook_url, picky_server.backend.incoming_webhook_url) == (
        "http://127.0.0.1:9/e",
        None,
    )

    picky_server.reset()

    assert picky_server.backend.event_webhook_url is None
    [msg_id] = msg_ids(push(picky_server, number(1)))
    assert picky_server.backend.ledger.state(msg_id).name == "SUBMITTED"


# -- in-process apps -----------------------------------------------------------------------------


def test_mount_delivers_to_an_asgi_app_without_a_socket(picky_server: Any) -> None:
    got: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        got.append((scope["path"], json.loads(body)))
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    url = picky_server.mount(app, "asgi")
    picky_server.set_webhooks(event_url=url + "/hooks/events")
    [msg_id] = msg_ids(push(picky_server, number(1)))
    picky_server.deliver(msg_id)

    picky_server.assert_webhook(msg_id=msg_id, url=url + "/hooks/events")
    assert got[0][0] == "/hooks/events" and got[0][1]["data"][0]["msg_id"] == msg_id


def test_mount_delivers_to_a_wsgi_app_and_its_instant_reply_is_sent(picky_server: Any) -> None:
    def app(environ: Any, start_response: Any) -> list[bytes]:
        payload = json.loads(environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0)))
        answer = json.dumps({"message-out": f"echo {payload['message_in_raw']}", "delay": 0}).encode()
        start_response("200 OK", [("Content-Type", "application/json")])
        return [answer]

    url = picky_server.mount(app, "wsgi")
    picky_server.set_webhooks(incoming_url=url + "/incoming")
    picky_server.receive(number(7), "hello there", name="Ana")

    [attempt] = picky_server.assert_webhook("incoming", number=number(7), text="hello there")
    assert attempt.reply is not None and attempt.reply.text == "echo hello there"
    thread = picky_server.thread(number(7))
    assert sorted((item.direction, item.text, item.kind) for item in thread) == [
        ("in", "hello there", "customer"),
        ("out", "echo hello there", "instant reply"),
    ]
    # journaled as a message of its own: the assertion helpers and the admin API see it
    [message] = picky_server.assert_pushed(number=number(7), text="echo hello", count=1)
    assert message.msg_id == next(item.msg_id for item in thread if item.direction == "out")
    assert picky_server.pushes() == []  # not a push the app made
    with pytest.raises(AssertionError, match=r"received 1 message\(s\) in 0 accepted push\(es\) and 1 instant reply"):
        picky_server.assert_pushed(number=number(7), text="not what the bot said")
    headers = picky_server.admin_headers
    listed = httpx.get(picky_server.url + "/_picky/messages", params={"number": number(7)}, headers=headers).json()
    assert [m["text"] for m in listed["messages"]] == ["echo hello there"]
    journal = httpx.get(picky_server.url + "/_picky/journal", headers=headers).json()
    [entry] = [e for e in journal["entries"] if e["path"] == "instant reply"]
    assert entry["reply_to"] == attempt.json()["unique-id"] and entry["status"] == 100
    assert entry["messages"][0]["credit"] == message.credit
    picky_server.receive(number(7), "hello there")  # the bot says the same again: not a double-send
    picky_server.advance(seconds=0)  # the webhook answered, the reply sent
    picky_server.assert_pushed(number=number(7), text="echo hello there", count=2)
    picky_server.assert_no_duplicates()
    with pytest.raises(ValueError, match="interface"):
        picky_server.mount(app, "cgi")


def test_a_mount_ends_with_the_test(picky_server: Any) -> None:
    url = picky_server.mount(lambda environ, start_response: [], "wsgi")
    picky_server.reset()
    picky_server.set_webhooks(event_url=url + "/e")
    [msg_id] = msg_ids(push(picky_server, number(1)))
    picky_server.deliver(msg_id)
    [attempt] = picky_server.webhooks()
    assert attempt.status is None and attempt.error  # no app there any more: a real (failed) lookup


# -- the coverage part ---------------------------------------------------------------------------


def test_lifecycle_counts_states_and_paths(picky_server: Any, picky_webhook_receiver: WebhookReceiver) -> None:
    picky_server.set_webhooks(event_url=picky_webhook_receiver.url)
    picky_webhook_receiver.respond(500, times=5)
    [a, b] = msg_ids(push(picky_server, number(1), number(2)))
    picky_server.deliver(a, status="failed")
    picky_server.advance(hours=9)  # a: 5 failures, given up
    picky_server.deliver(b)  # b: at once
    picky_server.deliver(a, status="refunded")

    counts = lifecycle_counts(picky_server.backend.ledger.transitions(), picky_server.webhooks())
    assert counts["delivery_states"] == {"failed": 1, "delivered": 1, "refunded": 1}
    assert counts["webhook_paths"] == {"retried": 1, "given up": 1, "delivered at once": 2}


# -- reading attempts ----------------------------------------------------------------------------


def attempt(payload: bytes, *, kind: str = "event", outcome: str = "delivered", n: int = 1, reply: Any = None) -> Any:
    from picky_mock.webhooks import Attempt

    return Attempt(
        delivery=1,
        kind=kind,
        key="k",
        url="http://h.test/e",
        payload=payload,
        attempt=n,
        at=0.0,
        status=200 if outcome == "delivered" else 500,
        body=b"",
        latency=0.001,
        error=None if outcome == "delivered" else "HTTP 500, not 200",
        next_retry=None,
        outcome=outcome,
        reply=reply,
    )


@pytest.mark.parametrize("payload", [b"not json", b"[1, 2]", b'{"data": "x"}', b'{"data": [1, {"msg_id": 7}]}', b"{}"])
def test_odd_payloads_are_read_without_a_crash(payload: bytes) -> None:
    from picky_mock import webhook_assertions

    recorded = attempt(payload)
    assert webhook_assertions.views(recorded)[0]["kind"] == "event"
    assert "#1 try 1 event http://h.test/e -> 200 (delivered)" in webhook_assertions.describe(recorded)
    assert webhook_assertions.matching([recorded], {"msg_id": "8"}) == []


def test_status_criteria_take_names_and_numbers_and_refuse_others() -> None:
    from picky_mock import webhook_assertions
    from picky_mock.lifecycle import LifecycleError

    assert webhook_assertions.wanted({"status": "read", "msg_id": 5, "number": None}) == {"status": "3", "msg_id": "5"}
    with pytest.raises(LifecycleError, match="status"):
        webhook_assertions.wanted({"status": "sent"})  # there is no "sent" state


def test_lifecycle_counts_instant_replies_and_no_replies() -> None:
    from picky_mock.webhook_payloads import InstantReply, NoReply

    attempts = [
        attempt(b"{}", kind="incoming", reply=InstantReply("hi", 0, {})),
        attempt(b"{}", kind="incoming", reply=NoReply("not JSON")),
        attempt(b"{}", outcome="retrying"),
        attempt(b"{}", outcome="given up", n=5),
    ]
    counts = lifecycle_counts([], attempts)
    assert counts == {
        "delivery_states": {},
        "webhook_paths": {"delivered at once": 2, "instant reply": 1, "no reply": 1, "retried": 1, "given up": 1},
    }
