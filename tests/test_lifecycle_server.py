"""The lifecycle wired into the server: every accepted message in the ledger, moves on demand and by
policy on the virtual clock, event webhooks POSTed to a real receiver, refunds, the 24-hour window on
the clock, and reset."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
from receiving import Receiver

from picky_mock.backend import Backend
from picky_mock.config import Settings
from picky_mock.lifecycle import IllegalTransition, LifecycleError, State, UnknownMessage
from picky_mock.server import ServerThread
from picky_mock.webhook_payloads import WebhookUrlError

NUMBER = "5511987654321"


def serve(**settings: Any) -> ServerThread:
    return ServerThread(Settings(clock="virtual", **settings))


def push(server: ServerThread, *numbers: str, token: str = "tok", application: int = 8, **more: Any) -> Any:
    body = {"token": token, "application": application, "data": [{"number": n, "message": "hi"} for n in numbers]}
    body.update(more)
    answer = httpx.post(server.push_url, json=body).json()
    return answer


def test_every_accepted_message_is_submitted_in_the_ledger() -> None:
    with serve() as server:
        answer = push(server, NUMBER, "5511987654322")
        backend = server.backend
        ids = [item["msg_id"] for item in answer["data"]]
        assert [m.msg_id for m in backend.ledger.messages(push_id=answer["push_id"])] == ids
        assert all(backend.ledger.state(i) is State.SUBMITTED for i in ids)
        assert backend.ledger.get(ids[0]).token == "tok"


def test_policy_moves_on_the_virtual_clock_and_posts_events(receiver: Receiver) -> None:
    policy = {"deliver_after": "5s", "read_after": "1m"}
    with serve(lifecycle=policy, event_webhook_url=receiver.url + "/events?x=1") as server:
        answer = push(server, NUMBER)
        msg_id = answer["data"][0]["msg_id"]
        backend = server.backend
        assert backend.ledger.state(msg_id) is State.SUBMITTED
        backend.advance(5)
        assert backend.ledger.state(msg_id) is State.DELIVERED
        backend.advance(60)
        assert backend.ledger.state(msg_id) is State.READ
        assert receiver.wait_for_items(2)
        bodies = receiver.bodies()
        assert [item["status"] for item in receiver.items()] == ["1", "3"]
        assert {path for path, _, _ in receiver.received} == {"/events?x=1"}
        assert all(b["project_id"] == "1" and b["event_id"] == 1 for b in bodies)
        attempts = backend.webhooks.attempts(kind="event")
        assert [a.status for a in attempts] == [200, 200]
        timeline = backend.ledger.get(msg_id).timeline
        assert [t.at - timeline[0].at for t in timeline] == [0, 5, 65]


def test_deliver_on_demand_by_msg_id_push_and_number(receiver: Receiver) -> None:
    with serve(event_webhook_url=receiver.url) as server:
        backend = server.backend
        first = push(server, NUMBER, "5511987654322")
        second = push(server, NUMBER)
        backend.deliver("delivered", msg_id=first["data"][1]["msg_id"])
        moved = backend.deliver(1, number=NUMBER)
        assert {t.msg_id for t in moved} == {first["data"][0]["msg_id"], second["data"][0]["msg_id"]}
        moved = backend.deliver("read", push_id=first["push_id"])
        assert [t.state for t in moved] == [State.READ, State.READ]
        assert receiver.wait_for_items(5)
        with pytest.raises(IllegalTransition) as refused:
            backend.deliver("delivered", msg_id=first["data"][0]["msg_id"])
        assert refused.value.field == "status"
        with pytest.raises(UnknownMessage):
            backend.deliver("read", msg_id="1")
        with pytest.raises(LifecycleError):
            backend.deliver("read", msg_id="1", number=NUMBER)


def test_read_refused_on_phone_channels() -> None:
    with serve() as server:
        answer = push(server, NUMBER, application=1)
        msg_id = answer["data"][0]["msg_id"]
        server.backend.deliver("delivered", msg_id=msg_id)
        with pytest.raises(IllegalTransition):
            server.backend.deliver("read", msg_id=msg_id)
        assert server.backend.ledger.state(msg_id) is State.DELIVERED


def test_refund_credits_the_balance_back() -> None:
    accounts = {"tok": {"balance": "1"}}
    with ServerThread(Settings(clock="virtual", extra={"accounts": accounts})) as server:
        answer = push(server, NUMBER, application=1)
        backend = server.backend
        assert backend.accounts.balance("tok") == Decimal("0.995")
        backend.deliver("failed", msg_id=answer["data"][0]["msg_id"])
        assert backend.accounts.balance("tok") == Decimal("0.995")
        backend.deliver("refunded", msg_id=answer["data"][0]["msg_id"])
        assert backend.accounts.balance("tok") == Decimal("1.000")
        message = backend.ledger.get(answer["data"][0]["msg_id"])
        assert message.error_message  # a default error message for a refund


def test_set_webhooks_and_lifecycle_then_reset(receiver: Receiver) -> None:
    with serve() as server:
        backend = server.backend
        backend.set_webhooks(event_url=receiver.url)
        backend.set_lifecycle({"deliver_after": 0})
        push(server, NUMBER)
        assert receiver.wait_for(1)
        with pytest.raises(WebhookUrlError) as refused:
            backend.set_webhooks(event_url="file:///etc/passwd")
        assert refused.value.field == "event_url"
        backend.set_webhooks(incoming_url=receiver.url + "/in")
        assert backend.event_webhook_url == receiver.url  # unchanged
        backend.advance(3600)
        backend.reset()
        assert backend.event_webhook_url is None and backend.incoming_webhook_url is None
        assert backend.lifecycle.policy is None
        assert len(backend.ledger) == 0 and backend.webhooks.attempts() == []
        assert backend.clock.pending() == 0
        answer = push(server, NUMBER)
        assert backend.ledger.state(answer["data"][0]["msg_id"]) is State.SUBMITTED


def test_the_24_hour_window_runs_on_the_clock() -> None:
    accounts = {"tok": {"balance": "10"}}
    backend = Backend(Settings(clock="virtual", extra={"accounts": accounts}))
    backend.accounts.open_session(NUMBER)
    assert backend.accounts.session_open(NUMBER)
    backend.advance(25 * 3600)
    assert not backend.accounts.session_open(NUMBER)


def test_bad_settings_are_refused() -> None:
    from picky_mock.errors import ConfigError

    with pytest.raises(ConfigError, match="event_webhook_url"):
        Settings(event_webhook_url="ftp://example.com/")
    with pytest.raises(ConfigError, match=r"lifecycle\.fail_share"):
        Settings(lifecycle={"fail_share": 2})
    with pytest.raises(ConfigError, match="clock"):
        Settings(clock="sundial")
    with pytest.raises(ConfigError, match="time_scale"):
        Settings(time_scale=0)


# -- the admin API --------------------------------------------------------------------------------


def admin(server: ServerThread, method: str, path: str, **kwargs: Any) -> httpx.Response:
    headers = {**server.admin_headers, **kwargs.pop("headers", {})}
    return httpx.request(method, server.url + "/_picky/" + path, headers=headers, **kwargs)


def test_admin_deliver_and_deliveries(receiver: Receiver) -> None:
    with serve(event_webhook_url=receiver.url) as server:
        answer = push(server, NUMBER, "5511987654322")
        first, second = (item["msg_id"] for item in answer["data"])
        moved = admin(server, "POST", "deliver", json={"status": "delivered", "push_id": answer["push_id"]})
        assert moved.status_code == 200
        assert [t["status"] for t in moved.json()["moved"]] == [1, 1]
        read = admin(server, "POST", "deliver", json={"status": 3, "msg_id": first}).json()
        assert read["moved"][0]["previous"] == 1
        one = admin(server, "GET", "deliveries", params={"msg_id": first}).json()
        assert [t["state"] for t in one["messages"][0]["timeline"]] == ["submitted", "delivered", "read"]
        everything = admin(server, "GET", "deliveries", params={"push_id": answer["push_id"], "limit": 1}).json()
        assert everything["total"] == 2 and everything["next"] == 1
        assert everything["messages"][0]["msg_id"] == first
        assert receiver.wait_for_items(3)
        del second


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"status": "delivered", "msg_id": "1"}, 404, "msg_id"),
        ({"status": "delivered", "push_id": "1"}, 404, "push_id"),
        ({"status": "delivered", "number": "1"}, 404, "number"),
        ({"status": "sent", "msg_id": "1"}, 400, "status"),
        ({"msg_id": "1"}, 400, "status"),
        ({"status": "read", "msg_id": "1", "number": "2"}, 400, "msg_id"),
        ({"status": "read", "msg_id": ["1"]}, 400, "msg_id"),
        ({"status": "failed", "msg_id": "1", "error_message": 7}, 400, "error_message"),
    ],
)
def test_admin_deliver_refuses_naming_the_field(body: Any, status: int, field: str) -> None:
    with serve() as server:
        response = admin(server, "POST", "deliver", json=body)
        assert response.status_code == status, response.text
        assert response.json()["field"] == field


def test_admin_illegal_move_names_from_and_to() -> None:
    with serve() as server:
        msg_id = push(server, NUMBER)["data"][0]["msg_id"]
        response = admin(server, "POST", "deliver", json={"status": "read", "msg_id": msg_id})
        assert response.status_code == 400
        error = response.json()
        assert (error["from"], error["to"], error["msg_id"]) == (4, 3, msg_id)
        assert "Delivered" in error["error"]
        assert server.backend.ledger.state(msg_id) is State.SUBMITTED  # nothing recorded
        bad = admin(server, "POST", "deliver", json={"status": "delivered", "msg_id": msg_id, "bogus": 1})
        assert bad.status_code == 400 and "bogus" in bad.json()["error"]


def test_admin_clock_and_lifecycle() -> None:
    with serve() as server:
        before = admin(server, "GET", "clock").json()
        assert before["clock"] == "virtual"
        policy = admin(server, "PUT", "lifecycle", json={"deliver_after": "10m"})
        assert policy.status_code == 200 and policy.json()["policy"] == {"deliver_after": "10m"}
        msg_id = push(server, NUMBER)["data"][0]["msg_id"]
        assert admin(server, "GET", "clock").json()["timers"] == 1
        after = admin(server, "POST", "clock", json={"advance": "15m"}).json()
        assert after["now"] == pytest.approx(before["now"] + 900)
        assert server.backend.ledger.state(msg_id) is State.DELIVERED
        for spec, field in (({"advance": "soon"}, "advance"), ({"advance": -1}, "advance"), ({}, "advance")):
            response = admin(server, "POST", "clock", json=spec)
            assert response.status_code == 400 and response.json()["field"] == field
        bad = admin(server, "PUT", "lifecycle", json={"fail_share": 3})
        assert bad.status_code == 400 and bad.json()["field"] == "lifecycle.fail_share"
        off = admin(server, "PUT", "lifecycle", content=b"null", headers={"content-type": "application/json"})
        assert off.status_code == 200 and off.json()["policy"] is None


def test_admin_webhooks(receiver: Receiver) -> None:
    with serve() as server:
        response = admin(server, "PUT", "webhooks", json={"event_url": receiver.url + "/e"})
        assert response.json()["event_url"] == receiver.url + "/e" and response.json()["dropped"] == 0
        for url in ("file:///etc/passwd", "gopher://x", "http://", "not a url", 7):
            refused = admin(server, "PUT", "webhooks", json={"incoming_url": url})
            assert refused.status_code == 400 and refused.json()["field"] == "incoming_url"
        assert admin(server, "PUT", "webhooks", json={"evnt_url": "http://x"}).status_code == 400
        msg_id = push(server, NUMBER)["data"][0]["msg_id"]
        server.backend.deliver("delivered", msg_id=msg_id)
        assert receiver.wait_for(1)
        server.backend.webhooks.wait_idle()
        attempts = admin(server, "GET", "webhooks/attempts", params={"kind": "event"}).json()
        assert attempts["total"] == 1 and attempts["attempts"][0]["status"] == 200
        assert attempts["attempts"][0]["key"] == msg_id
        assert admin(server, "GET", "webhooks/attempts", params={"kind": "x"}).status_code == 400
        cleared = admin(server, "PUT", "webhooks", json={"event_url": None}).json()
        assert cleared["event_url"] is None


def test_admin_changes_need_the_admin_marker() -> None:
    with serve() as server:
        refused = httpx.put(
            server.url + "/_picky/webhooks",
            json={"event_url": "http://127.0.0.1:1/"},
            headers={"origin": "http://evil.example"},
        )
        assert refused.status_code == 403
        assert server.backend.event_webhook_url is None


# -- delivery faults ------------------------------------------------------------------------------


def test_delivery_failed_fault_hits_the_named_number(receiver: Receiver) -> None:
    faults = [{"action": "delivery_failed", "error_message": "blocked by the user", "number": NUMBER, "fail_after": 30}]
    with serve(event_webhook_url=receiver.url, extra={"faults": faults}) as server:
        answer = push(server, NUMBER, "5511987654322")
        assert answer["status"] == 100  # the answer is the usual one
        hit, spared = (item["msg_id"] for item in answer["data"])
        backend = server.backend
        backend.advance(30)
        assert backend.ledger.state(hit) is State.FAILED
        assert backend.ledger.get(hit).error_message == "blocked by the user"
        assert backend.ledger.get(hit).timeline[-1].how.value == "fault"
        assert backend.ledger.state(spared) is State.SUBMITTED
        assert receiver.wait_for(1)
        assert receiver.items()[0]["error_message"] == "blocked by the user"
        assert backend.coverage.faults["delivery_failed"] == 1


@pytest.mark.parametrize(("kind", "reports"), [("report_never", 1), ("report_twice", 3)])
def test_report_faults_change_only_the_webhook(receiver: Receiver, kind: str, reports: int) -> None:
    faults = [{"action": kind, "states": ["delivered"]}]
    with serve(event_webhook_url=receiver.url, lifecycle={"deliver_after": 0}, extra={"faults": faults}) as server:
        msg_id = push(server, NUMBER)["data"][0]["msg_id"]
        server.backend.deliver("read", msg_id=msg_id)  # on demand: read is not a state the rule names
        server.backend.webhooks.wait_idle()
        assert server.backend.ledger.state(msg_id) is State.READ
        assert [item["status"] for item in receiver.items()].count("3") == 1
        assert len(receiver.items()) == reports


def test_report_out_of_order(receiver: Receiver) -> None:
    faults = [{"action": "report_out_of_order", "states": ["delivered"]}]
    with serve(event_webhook_url=receiver.url, extra={"faults": faults}) as server:
        msg_id = push(server, NUMBER)["data"][0]["msg_id"]
        server.backend.deliver("delivered", msg_id=msg_id)
        server.backend.deliver("read", msg_id=msg_id)
        server.backend.webhooks.wait_idle()
        assert [item["status"] for item in receiver.items()] == ["3", "1"]


@pytest.mark.parametrize(
    "spec",
    [
        {"action": "report_twice", "states": ["sent"]},
        {"action": "delivery_failed", "fail_after": -1},
        {"action": "report_never", "error_message": "x"},
        {"action": "delivery_failed", "error_message": "x" * 5000},
    ],
)
def test_bad_delivery_faults_are_refused(spec: Any) -> None:
    with serve() as server:
        response = httpx.post(server.url + "/_picky/faults", json=spec, headers=server.admin_headers)
        assert response.status_code == 400, response.text


# -- batching and the burst bound -----------------------------------------------------------------


def test_changes_batch_under_load_in_order_per_message(receiver: Receiver) -> None:
    with serve(event_webhook_url=receiver.url, lifecycle={"deliver_after": 0, "read_after": 0}) as server:
        numbers = [f"55119876{i:05d}" for i in range(300)]
        answer = push(server, *numbers)
        server.backend.webhooks.wait_idle()
        items = receiver.items()
        assert len(items) == 600
        order: dict[str, list[str]] = {}
        for item in items:
            order.setdefault(item["msg_id"], []).append(item["status"])
        assert set(order) == {item["msg_id"] for item in answer["data"]}
        assert all(statuses == ["1", "3"] for statuses in order.values())
        assert len(receiver.received) < 600  # several changes a POST
        stats = server.backend.lifecycle_state()["events"]
        assert stats["dropped"] == 0 and stats["queued"] == 0


def test_on_the_wall_clock_a_lane_lingers_under_load_for_fuller_posts(receiver: Receiver) -> None:
    """A lane that finishes a POST while changes wait holds them ``webhook_linger`` seconds more:
    fewer, fuller POSTs, the same changes in the same order, and wait_idle still waits for them."""
    posts = {}
    for linger in (0.0, 0.05):
        receiver.received.clear()
        settings = Settings(
            clock="wall", event_webhook_url=receiver.url, lifecycle={"deliver_after": 0}, webhook_linger=linger
        )
        with ServerThread(settings) as server:
            for chunk in range(20):  # changes arriving over time, not in one burst
                push(server, *[f"5511{chunk:03d}{i:06d}" for i in range(10)])
            assert server.backend.webhooks.wait_idle()
            items = receiver.items()
            assert len(items) == 200 and {item["status"] for item in items} == {"1"}
            posts[linger] = len(receiver.received)
    assert posts[0.05] < posts[0.0]


def test_one_change_a_post_with_batch_1(receiver: Receiver) -> None:
    with serve(event_webhook_url=receiver.url, lifecycle={"deliver_after": 0}, webhook_batch=1) as server:
        push(server, *[f"55119876{i:05d}" for i in range(50)])
        server.backend.webhooks.wait_idle()
        assert len(receiver.received) == 50 and all(len(b["data"]) == 1 for b in receiver.bodies())


@pytest.fixture
def hung() -> Iterator[str]:
    """A receiver that accepts connections (the kernel does) and never answers."""
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    sock.close()


def test_a_burst_to_a_hung_receiver_is_queued_and_counted(hung: str, caplog: pytest.LogCaptureFixture) -> None:
    with serve(event_webhook_url=hung + "/events", lifecycle={"deliver_after": 0}) as server:
        numbers = [f"5511{i:09d}" for i in range(10_000)]
        answer = push(server, *numbers)
        assert answer["status"] == 100
        state = admin(server, "GET", "state").json()
        assert state["delivery_messages"] == 10_000 and state["webhooks_dropped"] == 0
        # every change waits in its lane or rides in a POST to the hung receiver: none is lost
        assert state["events_queued"] + state["events_in_flight"] == 10_000
        assert 0 < state["webhooks_pending"] <= 8  # a POST in flight per lane
        # past the bound, changes are dropped, counted and logged
        server.backend.event_reporter.max_queued = state["events_queued"]
        caplog.set_level("WARNING", logger="picky_mock")
        server.backend.deliver("read", push_id=answer["push_id"])
        webhooks = admin(server, "GET", "webhooks").json()
        assert admin(server, "GET", "state").json()["webhooks_dropped"] == 10_000
        assert webhooks["events"]["dropped"] == 10_000
        assert any("dropped" in record.getMessage() for record in caplog.records)


def test_changes_for_a_new_url_are_not_held_behind_retries_to_the_old_one(hung: str, receiver: Receiver) -> None:
    """Every lane of a hung receiver ends waiting for a retry hours away; the URL set since gets its
    changes at once (each URL has lanes of its own)."""
    with serve(event_webhook_url=hung + "/events", lifecycle={"deliver_after": 0}, webhook_timeout=0.3) as server:
        backend = server.backend
        push(server, *[f"5511{i:09d}" for i in range(16)])
        deadline = time.monotonic() + 5
        while backend.webhooks.stats()["busy"] and time.monotonic() < deadline:
            time.sleep(0.02)  # each lane's first POST times out, and waits for its retry on the clock
        assert backend.webhooks.stats()["pending"] > 0
        backend.set_webhooks(event_url=receiver.url + "/events")
        answer = push(server, *[f"5512{i:09d}" for i in range(20)])
        assert receiver.wait_for_items(20, timeout=5)
        assert {item["push_id"] for item in receiver.items()} == {answer["push_id"]}
        assert backend.event_reporter.stats()["urls"] == 2


def test_a_burst_of_drops_is_told_in_full_even_when_no_drop_follows(
    hung: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The first drop is logged at once; the rest of a burst within the interval is logged when the
    interval is over, although nothing is dropped after it."""
    with serve(event_webhook_url=hung + "/events", lifecycle={"deliver_after": 0}) as server:
        reporter = server.backend.event_reporter
        reporter.max_queued = 10
        reporter.drop_log.interval = 0.2
        caplog.set_level("WARNING", logger="picky_mock")
        push(server, *[f"5511{i:09d}" for i in range(60)])
        dropped = reporter.stats()["dropped"]
        assert dropped >= 40
        told = [r.getMessage() for r in caplog.records if "dropped" in r.getMessage()]
        assert len(told) == 1
        deadline = time.monotonic() + 5
        while len(told) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
            told = [r.getMessage() for r in caplog.records if "dropped" in r.getMessage()]
        assert told[1] == f"event webhook: dropped {dropped - 1} more changes ({dropped} in all)", told


# -- records built when first asked for ---------------------------------------------------------


def test_without_a_policy_records_are_built_on_first_use() -> None:
    with serve() as server:
        backend = server.backend
        first = push(server, NUMBER, "5511987654322")
        at = backend.clock.now()
        backend.advance(3600)
        second = push(server, NUMBER)
        assert len(backend.ledger) == 3
        message = backend.ledger.get(first["data"][1]["msg_id"])
        assert message.state is State.SUBMITTED and message.timeline[0].at == at  # the acceptance time
        assert message.token == "tok" and message.channel == 8 and message.text == "hi"
        moved = backend.deliver("delivered", number=NUMBER)
        assert sorted(t.msg_id for t in moved) == sorted([first["data"][0]["msg_id"], second["data"][0]["msg_id"]])
        assert first["data"][0]["msg_id"] in backend.ledger
        assert "1" not in backend.ledger


def test_deferred_pushes_are_bounded_by_the_retention() -> None:
    from picky_mock.clock import VirtualClock
    from picky_mock.journal import Message
    from picky_mock.lifecycle import Ledger

    ledger = Ledger(VirtualClock(), retention=10)
    for push_id in range(5):
        rows = [
            Message(str(100 + 4 * push_id + i), str(push_id), i, f"55{i}", "t", None, 1, 1, "0.01", None)
            for i in range(4)
        ]
        ledger.defer(str(push_id), rows)
    assert len(ledger) <= 10 and ledger.evicted == 12
    with pytest.raises(UnknownMessage):
        ledger.get("100")
    assert ledger.get("119").push_id == "4"
    assert [m.msg_id for m in ledger.messages(push_id="3")] == ["112", "113", "114", "115"]


def test_many_deferred_pushes_past_the_retention_stay_findable_by_msg_id() -> None:
    """Forgetting the oldest deferred pushes, thousands of times, keeps every lookup right."""
    from picky_mock.clock import VirtualClock
    from picky_mock.journal import Message
    from picky_mock.lifecycle import Ledger

    ledger = Ledger(VirtualClock(), retention=10)
    for push_id in range(5000):
        message = Message(str(10_000 + push_id), str(push_id), 0, "55", "t", None, 1, 1, "0.01", None)
        ledger.defer(str(push_id), [message])
    assert ledger.evicted == 4990
    for forgotten in ("10000", "12500", "14989"):
        with pytest.raises(UnknownMessage):
            ledger.get(forgotten)
    assert [ledger.get(str(10_000 + p)).push_id for p in range(4990, 5000)] == [str(p) for p in range(4990, 5000)]


def test_event_webhook_retried_on_the_documented_schedule(receiver: Receiver) -> None:
    receiver.status = 503
    with serve(event_webhook_url=receiver.url, lifecycle={"deliver_after": 0}) as server:
        backend = server.backend
        msg_id = push(server, NUMBER)["data"][0]["msg_id"]
        backend.webhooks.wait_idle()
        backend.advance(60 + 900)  # the 2nd and 3rd attempts
        receiver.status = 200
        backend.advance(7200)  # the 4th succeeds
        attempts = backend.webhooks.attempts(kind="event")
        assert [a.status for a in attempts] == [503, 503, 503, 200]
        gaps = [round(b.at - a.at) for a, b in itertools.pairwise(attempts)]
        assert gaps == [60, 900, 7200]
        assert attempts[-1].outcome == "delivered" and attempts[-1].key == msg_id
        assert [item["msg_id"] for item in receiver.items()] == [msg_id] * 4  # the same report each time


def test_a_number_lookup_builds_only_the_pushes_to_it() -> None:
    with serve() as server:
        backend = server.backend
        mine = push(server, NUMBER)
        others = [push(server, f"55119876{i:05d}") for i in range(20)]
        assert [m.msg_id for m in backend.ledger.messages(number=NUMBER)] == [mine["data"][0]["msg_id"]]
        assert backend.ledger.messages(push_id=others[3]["push_id"])[0].number == "5511987600003"
        assert len(backend.ledger) == 21
        assert len(backend.ledger.messages()) == 21
