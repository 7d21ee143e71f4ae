"""An at-once policy: pushes deferred with their moves, handed whole to the event webhook's queue.

A push whose messages all move the moment they are accepted is kept like a push without a policy
(one entry, records built when read) and its transitions are published as they happen. Everything a
reader, a subscriber or a webhook receiver sees must be what the message-by-message path gives.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from receiving import Receiver

from picky_mock.clock import VirtualClock
from picky_mock.event_batches import BatchingReporter
from picky_mock.journal import Message
from picky_mock.lifecycle import (
    Ledger,
    Lifecycle,
    LifecycleError,
    LifecyclePolicy,
    PlannedPush,
    State,
    Step,
    TrackedMessage,
    Transition,
)
from picky_mock.webhook_payloads import event_item
from picky_mock.webhooks import Dispatcher

START = 1_780_000_000.0

#: (policy, channel): delivered and read; delivered only (a phone channel); failed with an error.
CASES = [
    ({"deliver_after": 0, "read_after": 0}, 8),
    ({"deliver_after": 0, "read_after": 0}, 1),
    ({"deliver_after": 0}, 8),
    ({"deliver_after": 0, "fail_share": 1, "fail_error": "Number not on WhatsApp"}, 919737001155),
    ({"deliver_after": 0, "read_after": 0, "channels": {"1": {"deliver_after": 0, "fail_share": 1}}}, 1),
]


def messages(push_id: int, first: int, count: int, channel: int) -> list[Message]:
    return [
        Message(str(first + i), str(push_id), i, f"551199999{i:04d}", f"hello {i}", None, channel, 1, "0.005",
                f"ref-{i}" if i % 2 else None)
        for i in range(count)
    ]


def played(policy: LifecyclePolicy, pushes: list[list[Message]]) -> tuple[Ledger, list[Any]]:
    """The pushes through :meth:`Lifecycle.accept`, message by message, and what a subscriber saw."""
    clock = VirtualClock(start=START)
    ledger = Ledger(clock)
    seen: list[Any] = []
    ledger.subscribe(lambda t, m: seen.append((t, m)))
    lifecycle = Lifecycle(ledger, clock, policy)
    for push in pushes:
        for m in push:
            lifecycle.accept(m.msg_id, push_id=m.push_id, number=m.number, channel=m.channel, token="t",
                             credit=m.credit, text=m.text, media=m.media, reference_number=m.reference_number)
        clock.advance(5)
    return ledger, seen


def deferred(policy: LifecyclePolicy, pushes: list[list[Message]]) -> tuple[Ledger, list[Any]]:
    """The same pushes through :meth:`Ledger.defer` with the policy's immediate steps."""
    clock = VirtualClock(start=START)
    ledger = Ledger(clock)
    seen: list[Any] = []
    ledger.subscribe(lambda t, m: seen.append((t, m)))
    for push in pushes:
        steps = policy.immediate(push[0].channel)
        assert steps is not None
        ledger.defer(push[0].push_id, push, token="t", steps=steps)
        clock.advance(5)
    return ledger, seen


@pytest.mark.parametrize(("spec", "channel"), CASES)
def test_a_deferred_at_once_push_reads_as_if_played_message_by_message(spec: dict[str, Any], channel: int) -> None:
    policy = LifecyclePolicy.parse(spec)
    pushes = [messages(7000 + p, 100 + 10 * p, 1 + p % 3, channel) for p in range(6)]
    one_by_one, seen_one_by_one = played(policy, pushes)
    at_once, seen_at_once = deferred(policy, pushes)
    assert seen_at_once == seen_one_by_one  # the subscribers saw the same, as it happened
    assert len(seen_at_once) == sum(len(p) for p in pushes) * (1 + len(policy.immediate(channel) or ()))
    assert at_once.transitions() == one_by_one.transitions()  # seq, times, how: all the same
    assert at_once.messages() == one_by_one.messages()
    target = pushes[4][1]
    assert at_once.get(target.msg_id) == one_by_one.get(target.msg_id)
    assert at_once.messages(push_id="7002") == one_by_one.messages(push_id="7002")


def test_a_message_of_a_deferred_push_moves_on_from_its_last_state() -> None:
    clock = VirtualClock(start=START)
    refunds: list[Any] = []
    ledger = Ledger(clock, on_refund=lambda m, credit: refunds.append((m.msg_id, credit)))
    policy = LifecyclePolicy.parse({"deliver_after": 0, "fail_share": 1})
    ledger.defer("1", messages(1, 500, 2, 8), token="t", steps=policy.immediate(8) or ())
    assert ledger.state("500") is State.FAILED
    moved = ledger.move("501", "refunded")
    assert moved.previous is State.FAILED and [r[0] for r in refunds] == ["501"]
    assert [t.state for t in ledger.get("501").timeline] == [State.SUBMITTED, State.FAILED, State.REFUNDED]


def test_immediate_is_only_for_policies_that_leave_nothing_for_later_or_to_chance() -> None:
    at_once = LifecyclePolicy.parse({"deliver_after": 0, "read_after": 0})
    assert [s.state for s in at_once.immediate(8) or ()] == [State.DELIVERED, State.READ]
    assert [s.state for s in at_once.immediate(2) or ()] == [State.DELIVERED]  # no read on a phone
    assert at_once.immediate(8) is at_once.immediate(8)  # remembered
    for spec in (
        {"deliver_after": 5},
        {"deliver_after": 0, "read_after": 60},
        {"deliver_after": [0, 10]},
        {"deliver_after": 0, "read_after": 0, "read_share": 0.5},
        {"deliver_after": 0, "refund_share": 1},  # the refund goes through on_refund, move by move
        {},  # nothing planned: nothing to make at once (the backend defers without steps)
    ):
        assert LifecyclePolicy.parse(spec).immediate(8) is None, spec
    mixed = LifecyclePolicy.parse({"deliver_after": 0, "channels": {"8": {"deliver_after": "1m"}}})
    assert mixed.immediate(8) is None and mixed.immediate(1) is not None


def test_defer_refuses_a_refund_among_the_steps() -> None:
    ledger = Ledger(VirtualClock(start=START))
    with pytest.raises(LifecycleError, match="refund"):
        ledger.defer("1", messages(1, 1, 1, 8), steps=(Step(0, State.FAILED), Step(0, State.REFUNDED)))
    assert len(ledger) == 0


def test_a_listener_takes_the_push_whole_or_each_transition_and_an_inactive_one_costs_nothing() -> None:
    ledger = Ledger(VirtualClock(start=START))
    whole: list[PlannedPush] = []
    each: list[Transition] = []
    gated: list[Transition] = []
    listening = [False]
    ledger.subscribe(lambda t, m: pytest.fail("a planned listener gets the push whole"), planned=whole.append)
    ledger.subscribe(lambda t, m: each.append(t), accepted=False)
    ledger.subscribe(lambda t, m: gated.append(t), accepted=False, active=lambda: listening[0])
    steps = LifecyclePolicy.at_once().immediate(8) or ()
    push = messages(1, 10, 2, 8)
    ledger.defer("1", push, token="t", at=START + 1, steps=steps)
    assert whole == [PlannedPush("1", "t", START + 1, push, steps)]
    assert [(t.msg_id, t.state) for t in each] == [
        ("10", State.DELIVERED), ("10", State.READ), ("11", State.DELIVERED), ("11", State.READ)
    ]
    assert gated == []
    listening[0] = True
    ledger.defer("2", messages(2, 20, 1, 8), token="t", steps=steps)
    assert [t.msg_id for t in gated] == ["20", "20"]


def test_the_event_queue_sends_planned_pushes_and_single_changes_in_order_to_the_right_url(
    receiver: Receiver,
) -> None:
    """Planned messages and changes one by one, a URL changed between them, a batch of one: every
    item reaches its URL once, each message's in order, and a planned message's items are the ones
    the one-by-one path makes."""
    clock = VirtualClock(start=START)
    dispatcher = Dispatcher(clock, timeout=5.0)
    url = [receiver.url + "/first"]
    reporter = BatchingReporter(dispatcher, url=lambda: url[0], project_id=lambda: "42", batch=3, shards=2)
    ledger = Ledger(clock)
    ledger.subscribe(reporter, accepted=False, planned=reporter.planned)
    expected: dict[str, list[tuple[str, dict[str, str]]]] = {}
    ledger.subscribe(
        lambda t, m: expected.setdefault(t.msg_id, []).append((url[0], event_item(m, t))), accepted=False
    )
    steps = LifecyclePolicy.at_once().immediate(8) or ()
    failing = LifecyclePolicy.parse({"deliver_after": 0, "fail_share": 1}).immediate(8) or ()
    ledger.defer("1", messages(1, 100, 4, 8), token="t", steps=steps)  # queued while the dispatcher is not started
    ledger.defer("2", messages(2, 200, 3, 8), token="t", steps=failing)
    ledger.move("201", "refunded")  # one by one, behind the planned Failed of the same message
    url[0] = receiver.url + "/second"
    ledger.defer("3", messages(3, 300, 2, 8), token="t", steps=steps)
    reporter.batch = 1  # from now on, a planned message with two moves goes out in two POSTs
    ledger.defer("4", messages(4, 400, 2, 8), token="t", steps=steps)
    total = sum(len(v) for v in expected.values())
    assert reporter.stats()["queued"] + reporter.stats()["in_flight"] == total == 4 * 2 + 3 + 1 + 2 * 2 + 2 * 2
    with dispatcher:
        assert receiver.wait_for_items(total, timeout=10)
        assert dispatcher.wait_idle(5)
    got: dict[str, list[tuple[str, dict[str, str]]]] = {}
    for path, body, _ in receiver.received:
        payload = json.loads(body)
        assert payload["project_id"] == "42" and payload["event_id"] == 1 and len(payload["data"]) <= 3
        for item in payload["data"]:
            got.setdefault(item["msg_id"], []).append((receiver.url + path, item))
    assert got == expected
    assert all(len(json.loads(body)["data"]) == 1 for path, body, _ in receiver.received
               if "/second" in path and json.loads(body)["data"][0]["push_id"] == "4")
    assert reporter.stats()["queued"] == reporter.stats()["in_flight"] == 0


def test_an_at_once_server_posts_what_the_one_by_one_path_posts(receiver: Receiver) -> None:
    """Through the backend: an at-once policy's pushes are deferred, and the event webhook gets,
    per message, the same items as under a policy that plays the same moves on the clock."""
    import httpx

    from picky_mock.config import Settings
    from picky_mock.server import ServerThread

    seen: dict[str, list[dict[str, str]]] = {}
    for name, policy, advance in (
        ("at once", {"deliver_after": 0, "read_after": 0}, 0),
        ("on the clock", {"deliver_after": 1, "read_after": 1}, 5),
    ):
        receiver.received.clear()
        settings = Settings(event_webhook_url=receiver.url + "/events", lifecycle=policy, clock="virtual")
        with ServerThread(settings) as server:
            body = {"token": "t", "application": 8, "globalmessage": "hi",
                    "data": [{"number": "5511987654321", "reference_number": "r1"}, {"number": "5511987654322"}]}
            answer = httpx.post(server.push_url, json=body).json()
            assert answer["status"] == 100
            server.backend.advance(advance)
            assert receiver.wait_for_items(4) and server.backend.webhooks.wait_idle()
            assert server.backend.ledger.get(answer["data"][0]["msg_id"]).state is State.READ
            items = receiver.items()
        seen[name] = sorted(items, key=lambda item: (item["number"], item["status"]))
        for item in seen[name]:
            del item["msg_id"], item["push_id"]  # a fresh server numbers alike, but say so plainly
    assert seen["at once"] == seen["on the clock"]
    assert [item["status"] for item in seen["at once"]] == ["1", "3", "1", "3"]
    assert seen["at once"][0]["reference_number"] == "r1" and "reference_number" not in seen["at once"][2]


def test_tracked_message_of_a_deferred_push_keeps_the_journal_fields() -> None:
    ledger = Ledger(VirtualClock(start=START))
    push = messages(9, 900, 2, 8)
    ledger.defer("9", push, token="tok", steps=LifecyclePolicy.at_once().immediate(8) or ())
    message = ledger.get("901")
    assert isinstance(message, TrackedMessage)
    assert (message.push_id, message.number, message.text, message.reference_number, message.token) == (
        "9", push[1].number, "hello 1", "ref-1", "tok"
    )
    assert message.state is State.READ and all(t.at == START for t in message.timeline)


def test_messages_follow_acceptance_order_even_when_a_later_push_was_read_first() -> None:
    ledger = Ledger(VirtualClock(start=START))
    for push_id, first in (("1", 10), ("2", 20), ("3", 30)):
        ledger.defer(push_id, messages(int(push_id), first, 2, 8), token="t")
    ledger.get("30")  # read first: its records are built first
    ledger.get("21")
    everyone = [m.msg_id for m in ledger.messages()]
    assert everyone == ["10", "11", "20", "21", "30", "31"]
    moved = ledger.move_number(messages(0, 0, 1, 8)[0].number, "delivered")  # the first of each push
    assert [(t.msg_id, t.seq) for t in moved] == sorted((t.msg_id, t.seq) for t in moved)
    assert [t.msg_id for t in moved] == ["10", "20", "30"]


def test_a_subscriber_of_submitted_records_gets_them_at_acceptance_in_order() -> None:
    ledger = Ledger(VirtualClock(start=START))
    seen: list[Transition] = []
    ledger.subscribe(lambda t, m: seen.append(t))  # accepted=True: Submitted records too
    ledger.defer("1", messages(1, 10, 2, 8), token="t")  # no policy
    ledger.accept("15", push_id="5", number="55", channel=8, token="t", credit="0.005", text="x")
    ledger.defer("2", messages(2, 20, 1, 8), token="t", steps=LifecyclePolicy.at_once().immediate(8) or ())
    assert [(t.msg_id, t.state) for t in seen] == [
        ("10", State.SUBMITTED), ("11", State.SUBMITTED), ("15", State.SUBMITTED),
        ("20", State.SUBMITTED), ("20", State.DELIVERED), ("20", State.READ),
    ]
    assert [t.seq for t in seen] == sorted(t.seq for t in seen) == list(range(1, 7))
    ledger.messages()  # building them publishes nothing again
    assert len(seen) == 6 and ledger.transitions() == seen


def test_the_app_delivers_webhooks_again_after_a_second_lifespan(receiver: Receiver) -> None:
    """Under a server that runs the ASGI lifespan (as ``picky-mock serve`` does), the dispatcher
    joins the server's loop at each startup and lets it go at each shutdown: one backend served
    twice, one server after the other, delivers both times."""
    import socket
    import threading
    import time

    import httpx
    import uvicorn

    from picky_mock.app import create_app
    from picky_mock.backend import Backend
    from picky_mock.config import Settings

    backend = Backend(Settings(event_webhook_url=receiver.url + "/events", lifecycle={"deliver_after": 0}))
    app = create_app(backend)
    body = {"token": "t", "application": 8, "data": [{"number": "5511987654321", "message": "hi"}]}
    for cycle in (1, 2):
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        server = uvicorn.Server(uvicorn.Config(app, lifespan="on", log_level="warning"))
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        deadline = time.monotonic() + 10
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.01)
        try:
            assert backend.webhooks.attached
            url = f"http://127.0.0.1:{sock.getsockname()[1]}/api/v2/push"
            assert httpx.post(url, json=body).json()["status"] == 100
            assert receiver.wait_for_items(cycle, timeout=5), cycle
        finally:
            server.should_exit = True
            thread.join(10)
            sock.close()
        assert not backend.webhooks.attached
    assert [item["status"] for item in receiver.items()] == ["1", "1"]


def test_a_reset_forgets_the_changes_waiting_in_a_resting_lane(receiver: Receiver) -> None:
    """On the wall clock a lane rests after each POST; changes queued meanwhile belong to the
    session a reset ends: they are not POSTed after it."""
    import time

    import httpx

    from picky_mock.config import Settings
    from picky_mock.server import ServerThread

    settings = Settings(clock="wall", lifecycle={"deliver_after": 0}, event_webhook_url=receiver.url + "/events",
                        webhook_linger=0.4)
    with ServerThread(settings) as server:
        def push() -> Any:
            numbers = [{"number": f"55119876543{i:02d}", "message": "hi"} for i in range(16)]
            return httpx.post(server.push_url, json={"token": "t", "application": 8, "data": numbers}).json()

        first = push()
        assert receiver.wait_for_items(16, timeout=5)  # every lane POSTed at once, and rests
        second = push()  # queued in the resting lanes
        assert server.backend.event_reporter.stats()["queued"] > 0
        assert httpx.post(server.url + "/_picky/reset", headers=server.admin_headers).status_code == 200
        time.sleep(0.8)  # the lanes' rest is over
        sent = {item["push_id"] for item in receiver.items()}
        assert sent == {first["push_id"]} and second["push_id"] not in sent
