"""Tests of ``send_bulk``: against the running mock (``picky_server``), and with no server at all
(``httpx.MockTransport`` fed by the answer strategies).

The tests sit beside ``picky_client`` so that pytest (rootdir ``prepend`` import mode) puts this
directory on ``sys.path``; a team's own project would install its client instead. ``picky_server``
comes from picky-mock's pytest plugin: no import, no configuration.
"""

from __future__ import annotations

import json
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
    normalise_number,
    send_bulk,
)

from picky_mock.errors import STATUS_MESSAGES
from picky_mock.strategies import error_responses, message_texts, phone_numbers, push_responses

#: ``picky_server`` is function-scoped and used inside ``@given``: each example resets it itself.
WITH_SERVER = settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    """The HTTP client the tests hand to ``send_bulk``: one per module, short timeouts."""
    with httpx.Client(timeout=httpx.Timeout(5.0, connect=2.0)) as client:
        yield client

# -- against the mock --------------------------------------------------------------------------


def test_send_bulk_sends_the_text_to_every_number(picky_server, http):
    result = send_bulk(
        ["5511987654321", "+91 98765 43210"], "Your order has shipped",
        token="PICKY_API_TOKEN", base_url=picky_server.url, client=http,
    )

    assert len(result.push_ids) == 1
    assert [m.number for m in result.messages] == ["5511987654321", "919876543210"]
    assert result.total_credit == Decimal("0.01")
    picky_server.assert_pushed(number="919876543210", text="Your order has shipped", count=1)
    picky_server.assert_pushed(number="5511987654321", text="Your order has shipped", count=1)


#: Numbers as a team's users type them: bare, or in one of the forms the client must repair.
typed_numbers = st.one_of(
    phone_numbers(json_integers=False),
    phone_numbers(json_integers=True),
    phone_numbers(malformed=["plus", "00", "spaces", "dashes", "international"]),
)


@WITH_SERVER
@given(
    numbers=st.lists(typed_numbers, min_size=1, max_size=25, unique_by=normalise_number),
    text=message_texts(),
    batch_size=st.integers(1, 10),
    application=st.sampled_from([1, 3, 8]),
)
def test_send_bulk_reaches_each_number_once_in_batches(picky_server, http, numbers, text, batch_size, application):
    picky_server.reset()
    result = send_bulk(
        numbers, text, token="PICKY_API_TOKEN", application=application,
        base_url=picky_server.url, client=http, batch_size=batch_size,
    )

    expected = [normalise_number(n) for n in numbers]
    assert [m.number for m in result.messages] == expected
    assert len(result.push_ids) == -(-len(numbers) // batch_size)
    sent = picky_server.messages()
    assert [m.number for m in sent] == expected
    assert {m.text for m in sent} == {text}
    assert {m.channel for m in sent} == {application}
    picky_server.assert_no_duplicates()
    assert result.total_credit == sum((Decimal(m.credit) for m in sent), Decimal(0))


def test_a_national_number_is_refused_and_nothing_is_sent(picky_server, http):
    with pytest.raises(InvalidNumberError) as error:
        send_bulk(["09876543210"], "Hi", token="t", base_url=picky_server.url, client=http)
    assert error.value.status == 406
    assert picky_server.pushes() == []


def test_a_blank_token_is_an_auth_error(picky_server, http):
    with pytest.raises(AuthError, match="401 Authentication Failed"):
        send_bulk(["5511987654321"], "Hi", token=" ", base_url=picky_server.url, client=http)


class FlakyTransport(httpx.BaseTransport):
    """Fails the first ``failures`` requests with ``error`` before they reach the server, or, with
    ``after_sending``, lets them reach it and loses the answer."""

    def __init__(self, error: type[httpx.TransportError], failures: int, *, after_sending: bool = False) -> None:
        self.inner = httpx.HTTPTransport()
        self.error, self.failures, self.after_sending = error, failures, after_sending
        self.calls = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        if self.calls <= self.failures:
            if self.after_sending:
                self.inner.handle_request(request).read()
            raise self.error("simulated", request=request)
        return self.inner.handle_request(request)


def test_a_connection_that_never_opened_is_retried_without_double_sending(picky_server):
    delays: list[float] = []
    transport = FlakyTransport(httpx.ConnectError, failures=2)
    with httpx.Client(transport=transport) as client:
        result = send_bulk(["5511987654321"], "Hi", token="t", base_url=picky_server.url, client=client,
                           sleep=delays.append)

    assert transport.calls == 3 and delays == [0.5, 1.0]
    assert len(result.messages) == 1
    assert len(picky_server.pushes()) == 1
    picky_server.assert_no_duplicates()


def test_a_lost_answer_is_not_retried(picky_server):
    transport = FlakyTransport(httpx.ReadTimeout, failures=1, after_sending=True)
    with httpx.Client(transport=transport) as client, pytest.raises(AmbiguousSendError):
        send_bulk(["5511987654321"], "Hi", token="t", base_url=picky_server.url, client=client, sleep=lambda s: None)

    assert transport.calls == 1
    # The push was accepted although the client never saw the answer: a retry would send it twice.
    assert len(picky_server.pushes()) == 1


def test_retries_give_up_with_unavailable_error(picky_server):
    transport = FlakyTransport(httpx.ConnectError, failures=10)
    with httpx.Client(transport=transport) as client, pytest.raises(UnavailableError):
        send_bulk(["5511987654321"], "Hi", token="t", base_url=picky_server.url, client=client, retries=2,
                  sleep=lambda s: None)
    assert transport.calls == 3
    assert picky_server.pushes() == []


# -- with no server at all ---------------------------------------------------------------------

EXPECTED_ERROR = {
    101: UnavailableError, 404: UnavailableError,
    401: AuthError, 405: AuthError, 408: AuthError, 409: AuthError,
    403: BalanceError, 406: InvalidNumberError,
    402: RejectedError, 407: RejectedError, 410: RejectedError, 801: RejectedError, 802: RejectedError,
    804: RejectedError,
}


def answering(*bodies: dict, content_type: str = "application/json", http_status: int = 200) -> httpx.Client:
    """A client whose requests are answered ``bodies`` in turn (the last one again and again)."""
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        body = bodies[min(len(calls), len(bodies)) - 1]
        return httpx.Response(http_status, content=json.dumps(body).encode(), headers={"content-type": content_type})

    client = httpx.Client(transport=httpx.MockTransport(handler))
    client.calls = calls  # type: ignore[attr-defined]
    return client


def test_the_codes_mapped_here_are_the_contracts():
    assert set(EXPECTED_ERROR) == set(STATUS_MESSAGES) - {100}, "a new code: decide how the client handles it"


@given(answer=error_responses())
def test_error_answers_become_typed_errors(answer):
    with answering(answer) as client, pytest.raises(PickyError) as error:
        send_bulk(["5511987654321"], "Hi", token="t", client=client, retries=2, sleep=lambda s: None)

    assert type(error.value) is EXPECTED_ERROR[answer["status"]]
    assert (error.value.status, error.value.message) == (answer["status"], answer["message"])
    retried = answer["status"] in (101, 404)
    assert len(client.calls) == (3 if retried else 1)


@given(answer=push_responses(), content_type=st.sampled_from(["application/json", "text/html; charset=UTF-8"]))
def test_success_answers_are_parsed_whatever_their_label(answer, content_type):
    with answering(answer, content_type=content_type) as client:
        result = send_bulk(["5511987654321"], "Hi", token="t", client=client)

    assert result.push_ids == [answer["push_id"]]
    assert [(m.msg_id, m.number) for m in result.messages] == [(d["msg_id"], d["number"]) for d in answer["data"]]
    assert result.total_credit == sum((Decimal(d["credit"]) for d in answer["data"]), Decimal(0))


@given(answer=push_responses(), error=error_responses(statuses=[101]))
def test_service_unavailable_then_success(answer, error):
    with answering(error, answer) as client:
        result = send_bulk(["5511987654321"], "Hi", token="t", client=client, sleep=lambda s: None)
    assert len(client.calls) == 2 and result.push_ids == [answer["push_id"]]


def test_rate_limited_requests_wait_as_told():
    delays: list[float] = []
    answers = iter([httpx.Response(429, headers={"retry-after": "7"}),
                    httpx.Response(200, json={"status": 100, "push_id": "1", "message": "Success", "data": []})])
    with httpx.Client(transport=httpx.MockTransport(lambda request: next(answers))) as client:
        send_bulk(["5511987654321"], "Hi", token="t", client=client, sleep=delays.append)
    assert delays == [7.0]


@pytest.mark.parametrize("payload", [b"<html>502 Bad Gateway</html>", b'{"status": "100"}', b"[]"])
def test_answers_that_are_not_the_apis_are_protocol_errors(payload):
    transport = httpx.MockTransport(lambda request: httpx.Response(200, content=payload))
    with httpx.Client(transport=transport) as client, pytest.raises(ProtocolError):
        send_bulk(["5511987654321"], "Hi", token="t", client=client)


@given(numbers=st.lists(phone_numbers(malformed=["plus", "00", "spaces", "dashes", "international"]), min_size=1))
def test_the_client_sends_bare_digits(numbers):
    sent: list[dict] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(json.loads(request.content))
        body = sent[-1]
        data = [{"msg_id": str(i), "number": item["number"], "credit": "0.005"} for i, item in enumerate(body["data"])]
        return httpx.Response(200, json={"status": 100, "push_id": "1", "message": "Success", "data": data})

    with httpx.Client(transport=httpx.MockTransport(handler)) as client:
        send_bulk(numbers, "Hi", token="t", client=client)
    for item in sent[0]["data"]:
        assert item["number"].isdigit() and not item["number"].startswith("0")
