"""The lifecycle wired into the server: every accepted message in the ledger, moves on demand and by
policy on the virtual clock, event webhooks POSTed to a real receiver, refunds, the 24-hour window on
the clock, and reset."""

from __future__ import annotations

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


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


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
        assert receiver.wait_for(2)
        bodies = receiver.bodies()
        assert [b["data"][0]["status"] for b in bodies] == ["1", "3"]
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
        assert receiver.wait_for(5)
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
