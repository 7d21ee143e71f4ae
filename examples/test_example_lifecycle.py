"""The webhook handlers of ``picky_webhooks_app`` tested end to end against the mock: what becomes of
a message after the push (delivered, read, failed and refunded), a customer who writes in (the bot's
instant reply, the 24-hour window it opens) and a handler that was down when the reports came.

The mock's clock is virtual under the fixture: ``picky_server.advance(hours=6)`` plays six hours of
timers (policy moves, webhook retries, the end of the window) in milliseconds.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from picky_client import RejectedError, send_bulk
from picky_webhooks_app import create_app

HERE = Path(__file__).resolve().parent
NUMBER = "5511987654321"
SHOP = "shop-token"
WHATSAPP_API = 8  # the official WhatsApp channel: read receipts, refunds, the 24-hour window


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=httpx.Timeout(5.0, connect=2.0)) as client:
        yield client


@pytest.fixture
def handlers(picky_server):
    """The handlers' app, mounted in the mock's process (no socket): the mock POSTs its webhooks
    straight to it."""
    app = create_app()
    url = picky_server.mount(app, "asgi")
    picky_server.set_webhooks(event_url=url + "/picky/events", incoming_url=url + "/picky/incoming")
    return app


def test_a_message_is_delivered_then_read(picky_server, http, handlers):
    sent = send_bulk(
        [NUMBER], "Your order has shipped", token=SHOP, application=WHATSAPP_API, base_url=picky_server.url, client=http
    )
    msg_id = sent.messages[0].msg_id

    picky_server.deliver(msg_id)
    picky_server.assert_webhook(msg_id=msg_id, status="delivered")
    assert handlers.state.book.state(msg_id) == "delivered"

    picky_server.deliver(msg_id, status="read")
    picky_server.assert_webhook(msg_id=msg_id, status="read")
    assert handlers.state.book.messages[str(msg_id)].history == ["delivered", "read"]


@pytest.mark.picky(accounts={SHOP: {"balance": "1.00", "window": False}})
def test_a_failed_message_is_refunded_and_the_balance_comes_back(picky_server, http, handlers):
    sent = send_bulk(
        [NUMBER], "Flash sale", token=SHOP, application=WHATSAPP_API, base_url=picky_server.url, client=http
    )
    msg_id = sent.messages[0].msg_id
    assert picky_server.balance(SHOP) == Decimal("1.00") - sent.total_credit

    picky_server.deliver(msg_id, status="failed", error_message="Not a WhatsApp number")
    picky_server.deliver(msg_id, status="refunded")

    picky_server.assert_webhook(msg_id=msg_id, status="refunded")
    tracked = handlers.state.book.messages[str(msg_id)]
    assert (tracked.state, tracked.history) == ("refunded", ["failed", "refunded"])
    assert tracked.error == "Not a WhatsApp number"
    assert picky_server.balance(SHOP) == Decimal("1.00")  # the credit came back


@pytest.mark.picky(lifecycle={"deliver_after": [1, 5], "read_after": "30s", "seed": 7})
def test_a_lifecycle_policy_delivers_and_reads_every_message_on_the_clock(picky_server, http, handlers):
    numbers = [str(5511987000000 + i) for i in range(5)]
    sent = send_bulk(
        numbers, "Weekly digest", token=SHOP, application=WHATSAPP_API, base_url=picky_server.url, client=http
    )

    picky_server.advance(seconds=40)

    assert {handlers.state.book.state(m.msg_id) for m in sent.messages} == {"read"}
    assert handlers.state.book.duplicates == handlers.state.book.out_of_order == 0


@pytest.mark.picky(accounts={SHOP: {"balance": "10"}})
def test_a_customer_who_writes_opens_the_24_hour_window(picky_server, http, handlers):
    def free_text() -> None:
        send_bulk(
            [NUMBER], "Any questions?", token=SHOP, application=WHATSAPP_API, base_url=picky_server.url, client=http
        )

    with pytest.raises(RejectedError) as refused:
        free_text()
    assert refused.value.status == 802  # no window: free text is refused

    picky_server.receive(NUMBER, "Hello, is my order on its way?", name="Ana", application=WHATSAPP_API)

    [attempt] = picky_server.assert_webhook("incoming", number=NUMBER)
    assert attempt.reply is not None
    # the bot's answer became a message of its own (its delay is 0: it went out at once)
    [bot] = [item for item in picky_server.thread(NUMBER) if item.direction == "out"]
    assert bot.kind == "instant reply"
    assert bot.text == "Thanks Ana, you wrote: Hello, is my order on its way?"
    free_text()  # the window is open

    picky_server.advance(hours=25)
    with pytest.raises(RejectedError):
        free_text()  # and closed again a day later


def test_stop_opts_out_and_the_bot_goes_quiet(picky_server, handlers):
    picky_server.receive(NUMBER, "STOP")
    picky_server.receive(NUMBER, "hello?")

    attempts = picky_server.webhooks("incoming")
    assert [type(a.reply).__name__ for a in attempts] == ["InstantReply", "NoReply"]
    assert handlers.state.bot.opted_out == {NUMBER}


# -- a handler that was down, in its own process -------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def handler_port() -> Iterator[int]:
    port = free_port()
    yield port


def start_handlers(port: int) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "picky_webhooks_app", "--port", str(port)],
        cwd=HERE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    assert process.stdout.readline().startswith("serving http://127.0.0.1:")
    return process


def test_a_handler_that_was_down_gets_the_report_at_the_six_hour_retry(picky_server, http, handler_port):
    base = f"http://127.0.0.1:{handler_port}"
    picky_server.set_webhooks(event_url=base + "/picky/events")
    sent = send_bulk(
        [NUMBER], "Your code is 1234", token=SHOP, application=WHATSAPP_API, base_url=picky_server.url, client=http
    )
    msg_id = sent.messages[0].msg_id
    start = picky_server.now()

    picky_server.deliver(msg_id)  # the handler is down: nobody listens on its port
    for wait in ({"minutes": 1}, {"minutes": 15}, {"hours": 2}):
        picky_server.advance(**wait)
    picky_server.assert_webhook(msg_id=msg_id, outcome="retrying", count=4)

    process = start_handlers(handler_port)  # back up, before the last retry
    try:
        picky_server.advance(hours=6)

        [delivered] = picky_server.assert_webhook(msg_id=msg_id, status="delivered")
        assert delivered.attempt == 5
        assert delivered.at - start == pytest.approx(60 + 900 + 7200 + 21600)
        state = http.get(base + "/picky/state").json()
        assert state["messages"][str(msg_id)]["state"] == "delivered"
    finally:
        process.terminate()
        process.wait(5)
