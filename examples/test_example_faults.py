"""``send_bulk`` against the mock's error injection: every way the API fails, over a real socket.

Each test injects a fault into the ``picky_server`` fixture (``fail_next``, ``add_fault`` or the
``@pytest.mark.picky`` marker), lets the client meet it, then checks two things: what the client
did (retried, waited, raised which error) and what the mock saw (``picky_server.requests``, every
request; ``pushes()``, the accepted ones). The second is what tells a double send from a safe retry.

No test waits for real: ``send_bulk`` takes a ``sleep`` function and the tests pass
``delays.append``, so a backoff or a ``Retry-After`` is a value to assert on, not seconds lost.
Tests that need the client to time out give it a short timeout of its own.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from decimal import Decimal

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from picky_client import (
    AmbiguousSendError,
    AuthError,
    BalanceError,
    InvalidNumberError,
    PickyError,
    ProtocolError,
    RejectedError,
    UnavailableError,
    send_bulk,
)

from picky_mock.errors import STATUS_MESSAGES

NUMBER = "5511987654321"
#: A client timeout for the tests that wait for an answer that does not come: short, so nothing hangs.
SHORT = httpx.Timeout(0.25, connect=1.0)


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=httpx.Timeout(5.0, connect=2.0)) as client:
        yield client


@pytest.fixture
def delays() -> list[float]:
    """The waits ``send_bulk`` asked for (pass ``sleep=delays.append``)."""
    return []


def http_statuses(picky_server) -> list[int]:
    """The HTTP status of every request the mock received (0: a fault sent none)."""
    return [entry.http_status for entry in picky_server.requests]


# -- HTTP errors: the proxy in front of the API ---------------------------------------------------


@pytest.mark.parametrize("status", [502, 503])
def test_a_proxy_error_page_is_retried_and_the_message_sent_once(picky_server, http, delays, status):
    picky_server.fail_next(http=status, times=2)  # nginx's HTML page, twice

    result = send_bulk([NUMBER], "Hi", token="t", base_url=picky_server.url, client=http, sleep=delays.append)

    assert delays == [0.5, 1.0]  # exponential backoff
    assert http_statuses(picky_server) == [status, status, 200]
    assert len(result.messages) == 1
    picky_server.assert_pushed(number=NUMBER, text="Hi", count=1)


@pytest.mark.parametrize(("retry_after", "waited"), [(7, 7.0), (600, 60.0)])  # capped at MAX_RETRY_AFTER
def test_429_waits_as_told(picky_server, http, delays, retry_after, waited):
    picky_server.add_fault("http_error", status=429, retry_after=retry_after, times=1)

    send_bulk([NUMBER], "Hi", token="t", base_url=picky_server.url, client=http, sleep=delays.append)

    assert delays == [waited]
    picky_server.assert_pushed(number=NUMBER, count=1)


def test_a_proxy_that_stays_down_gives_up_with_unavailable_error(picky_server, http, delays):
    picky_server.fail_next(http=503, times=10)

    with pytest.raises(UnavailableError) as error:
        send_bulk([NUMBER], "Hi", token="t", base_url=picky_server.url, client=http, retries=2, sleep=delays.append)

    assert error.value.status == 503
    assert delays == [0.5, 1.0] and len(picky_server.requests) == 3
    assert picky_server.pushes() == []


def test_http_500_is_ambiguous_and_not_retried(picky_server, http, delays):
    picky_server.fail_next(http=500, times=10)

    with pytest.raises(AmbiguousSendError):
        send_bulk([NUMBER], "Hi", token="t", base_url=picky_server.url, client=http, sleep=delays.append)

    assert delays == [] and len(picky_server.requests) == 1


# -- the connection -------------------------------------------------------------------------------


def test_a_connection_refused_is_retried_then_gives_up(delays):
    with socket.socket() as closed:  # a bound port nobody listens on: the connection is refused
        closed.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{closed.getsockname()[1]}"
        with pytest.raises(UnavailableError, match="cannot connect"):
            send_bulk([NUMBER], "Hi", token="t", base_url=url, timeout=SHORT, sleep=delays.append)

    assert delays == [0.5, 1.0, 2.0]  # the request never left: retrying is safe


@pytest.mark.parametrize(
    ("fault", "accepted"),
    [
        ("reset", False),  # ECONNRESET before the push was judged: nothing sent
        ("close", False),  # closed without an answer
        ("garbage", False),  # bytes that are not HTTP
        ("truncate", True),  # half the answer: the push was accepted
        ("answer_lost", True),  # accepted, then ECONNRESET: looks exactly like "reset"
    ],
)
def test_a_broken_connection_is_ambiguous_and_never_retried(picky_server, http, delays, fault, accepted):
    picky_server.fail_next(transport=fault)

    with pytest.raises(AmbiguousSendError) as error:
        send_bulk([NUMBER], "Hi", token="t", base_url=picky_server.url, client=http, sleep=delays.append)

    # The client cannot tell "reset" from "answer_lost": both are ECONNRESET after the request went
    # out. Only the mock knows whether the push was taken; a retry would double-send in one case.
    assert delays == [] and len(picky_server.requests) == 1
    assert len(picky_server.pushes()) == (1 if accepted else 0)
    assert error.value.partial.messages == []
    picky_server.assert_no_duplicates()


def test_answer_lost_then_a_careless_resend_double_sends(picky_server, http):
    """What the test above protects against: the caller who resends after an ambiguous failure."""
    picky_server.fail_next(transport="answer_lost")
    with pytest.raises(AmbiguousSendError):
        send_bulk([NUMBER], "Hi", token="t", base_url=picky_server.url, client=http)
    send_bulk([NUMBER], "Hi", token="t", base_url=picky_server.url, client=http)  # "just try again"

    with pytest.raises(AssertionError, match="received the same text twice"):
        picky_server.assert_no_duplicates()


def test_a_hang_ends_in_the_clients_timeout(picky_server, delays):
    picky_server.fail_next(transport="hang")  # no answer until the client gives up

    with pytest.raises(AmbiguousSendError) as error:
        send_bulk([NUMBER], "Hi", token="t", base_url=picky_server.url, timeout=SHORT, sleep=delays.append)

    assert isinstance(error.value.__cause__, httpx.ReadTimeout)
    assert delays == [] and len(picky_server.requests) == 1


def test_an_answer_later_than_the_timeout_was_still_sent(picky_server, delays):
    picky_server.add_fault("latency", seconds=0.5, times=1)  # judged and accepted, answered too late

    with pytest.raises(AmbiguousSendError) as error:
        send_bulk([NUMBER], "Hi", token="t", base_url=picky_server.url, timeout=SHORT, sleep=delays.append)

    assert isinstance(error.value.__cause__, httpx.ReadTimeout)
    picky_server.assert_pushed(number=NUMBER, count=1)  # why ReadTimeout is never retried


@pytest.mark.parametrize(("fault", "options"), [("latency", {"seconds": 0.1}), ("dribble", {"seconds": 0.02})])
def test_a_slow_answer_within_the_timeout_is_read(picky_server, fault, options):
    picky_server.add_fault(fault, times=1, **options)

    result = send_bulk([NUMBER], "Hi", token="t", base_url=picky_server.url, timeout=httpx.Timeout(1.0))

    assert [m.number for m in result.messages] == [NUMBER]
    picky_server.assert_pushed(number=NUMBER, count=1)


# -- the answer -----------------------------------------------------------------------------------


def test_json_labelled_text_html_is_parsed(picky_server, http):
    picky_server.fail_next(transport="html_label")  # the real API's quirk

    result = send_bulk([NUMBER, "919876543210"], "Hi", token="t", base_url=picky_server.url, client=http)

    [push] = picky_server.pushes()
    assert result.push_ids == [push.push_id]
    assert [m.msg_id for m in result.messages] == [m.msg_id for m in push.messages]


def test_malformed_json_is_a_protocol_error_and_not_retried(picky_server, http, delays):
    picky_server.fail_next(transport="malformed")  # a complete HTTP answer, its JSON cut short

    with pytest.raises(ProtocolError, match="not JSON") as error:
        send_bulk([NUMBER], "Hi", token="t", base_url=picky_server.url, client=http, sleep=delays.append)

    assert error.value.status == 200
    # Not retried: an HTTP 200 that cannot be read may hide an accepted push, and here it does.
    assert delays == [] and len(picky_server.requests) == 1
    picky_server.assert_pushed(number=NUMBER, count=1)


def test_a_protocol_error_mid_bulk_reports_what_was_sent(picky_server, http):
    picky_server.add_fault("malformed", nth=2)  # the second batch's answer is unreadable
    numbers = [NUMBER, "5521912345678", "5531912345678"]

    with pytest.raises(ProtocolError) as error:
        send_bulk(numbers, "Hi", token="t", base_url=picky_server.url, client=http, batch_size=1)

    assert error.value.partial is not None
    assert [m.number for m in error.value.partial.messages] == [NUMBER]
    assert len(picky_server.pushes()) == 2  # the first batch, and the one whose answer was lost


@pytest.mark.parametrize(
    "body",
    [
        "<html><body><h1>502 Bad Gateway</h1></body></html>",  # a proxy's page, labelled 200
        '{"status": "100", "push_id": "1", "message": "Success", "data": []}',  # status as a string
        '{"status": 100, "message": "Success"}',  # success without a push_id
        "[]",
    ],
)
def test_an_answer_that_is_not_the_apis_is_a_protocol_error(picky_server, http, body):
    picky_server.add_fault("http_error", status=200, body=body, times=1)

    with pytest.raises(ProtocolError):
        send_bulk([NUMBER], "Hi", token="t", base_url=picky_server.url, client=http)


# -- API error codes: HTTP 200 with a status ------------------------------------------------------

EXPECTED_ERROR = {
    101: UnavailableError, 404: UnavailableError,
    401: AuthError, 405: AuthError, 408: AuthError, 409: AuthError,
    403: BalanceError, 406: InvalidNumberError,
    402: RejectedError, 407: RejectedError, 410: RejectedError, 801: RejectedError, 802: RejectedError,
    804: RejectedError,
}
RETRIED = {101, 404}


def test_the_codes_mapped_here_are_the_contracts():
    assert set(EXPECTED_ERROR) == set(STATUS_MESSAGES) - {100}, "a new code: decide how the client handles it"


@pytest.mark.parametrize("status", sorted(EXPECTED_ERROR))
def test_every_error_code_becomes_its_typed_error(picky_server, http, delays, status):
    rule = picky_server.fail_next(status, times=10)  # answered {"status": N, "message": ...} every time

    with pytest.raises(PickyError) as error:
        send_bulk([NUMBER], "Hi", token="t", base_url=picky_server.url, client=http, retries=2, sleep=delays.append)

    assert type(error.value) is EXPECTED_ERROR[status]
    assert (error.value.status, error.value.message) == (status, STATUS_MESSAGES[status])
    assert rule.hits == (3 if status in RETRIED else 1)  # only 101 and 404 are worth another try
    assert picky_server.pushes() == []


@pytest.mark.parametrize("status", sorted(RETRIED))
def test_a_transient_api_error_is_retried_then_sent_once(picky_server, http, delays, status):
    picky_server.fail_next(status)

    send_bulk([NUMBER], "Hi", token="t", base_url=picky_server.url, client=http, sleep=delays.append)

    assert delays == [0.5]
    picky_server.assert_pushed(number=NUMBER, count=1)


# -- accounts -------------------------------------------------------------------------------------


@pytest.mark.picky(accounts={"t": {"balance": "0.01"}})  # two WhatsApp messages at 0.005
def test_insufficient_balance_stops_the_bulk_and_reports_what_was_sent(picky_server, http):
    numbers = [NUMBER, "5521912345678", "5531912345678"]

    with pytest.raises(BalanceError) as error:
        send_bulk(numbers, "Hi", token="t", base_url=picky_server.url, client=http, batch_size=1)

    assert error.value.status == 403
    assert [m.number for m in error.value.partial.messages] == numbers[:2]
    assert error.value.partial.total_credit == Decimal("0.01")
    assert picky_server.balance("t") == Decimal("0")
    assert len(picky_server.requests) == 3  # the 403 was not retried
    picky_server.assert_not_pushed(number=numbers[2])


@pytest.mark.picky(rate_limit=2)  # the docs' limit is 90 push requests a minute; 2 here
def test_the_rate_limit_is_waited_out_then_given_up_on(picky_server, http, delays):
    numbers = [NUMBER, "5521912345678", "5531912345678"]

    with pytest.raises(UnavailableError) as error:
        send_bulk(numbers, "Hi", token="t", base_url=picky_server.url, client=http, batch_size=1, retries=1,
                  sleep=delays.append)

    # The mock's Retry-After is the time until the minute frees a slot; the fake sleep never lets it.
    assert error.value.status == 429
    assert len(delays) == 1 and 0 < delays[0] <= 60
    assert [m.number for m in error.value.partial.messages] == numbers[:2]
    assert http_statuses(picky_server) == [200, 200, 429, 429]


@pytest.mark.picky(accounts={"t": {"balance": "10"}})
def test_a_token_that_is_not_the_accounts_is_an_auth_error(picky_server, http):
    with pytest.raises(AuthError, match="401"):
        send_bulk([NUMBER], "Hi", token="not-t", base_url=picky_server.url, client=http)


# -- by chance: seeded faults ---------------------------------------------------------------------


def send_through_flaky_api(picky_server, http, seed: int) -> tuple[list[float], list[int]]:
    """Send 4 batches while 25% of pushes meet a proxy's 503 and 10% the API's 101, drawn from
    ``seed``; return the client's waits and what the mock answered (API status, else HTTP status)."""
    picky_server.reset()  # once per Hypothesis example, not only per test
    picky_server.seed(seed)
    picky_server.add_fault("http_error", status=503, probability=0.25)
    picky_server.add_fault("api_error", status=101, probability=0.1)
    delays: list[float] = []
    numbers = [f"55119876543{i:02d}" for i in range(8)]
    # A batch fails each try with p ~ 0.33: after 16 tries, p ~ 2e-8. Retries this patient belong
    # in a test of convergence, not in production.
    result = send_bulk(numbers, "Hi", token="t", base_url=picky_server.url, client=http, batch_size=2,
                       retries=15, sleep=delays.append)
    assert [m.number for m in result.messages] == numbers
    assert [m.msg_id for m in result.messages] == [m.msg_id for m in picky_server.messages()]
    return delays, [entry.status or entry.http_status for entry in picky_server.requests]


@settings(max_examples=30, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1))
def test_retries_converge_under_random_transient_faults(picky_server, http, seed):
    delays, answers = send_through_flaky_api(picky_server, http, seed)

    assert answers.count(100) == len(picky_server.pushes()) == 4  # every batch got through, once
    picky_server.assert_no_duplicates()
    assert len(delays) == len(answers) - 4  # one wait per failed try, nothing else


def test_the_same_seed_replays_the_same_faults(picky_server, http):
    first = send_through_flaky_api(picky_server, http, seed=7)
    assert first == send_through_flaky_api(picky_server, http, seed=7)
    assert {101, 503} <= set(first[1])  # this seed does meet both faults
