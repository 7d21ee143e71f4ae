"""Tests of ``send_bulk`` when the API works: against the running mock (``picky_server``), by
property, and with no server at all (``httpx.MockTransport`` fed by the answer strategies). When it
fails: test_example_faults.py.

The tests sit beside ``picky_client`` so that pytest (rootdir ``prepend`` import mode) puts this
directory on ``sys.path``; a team's own project would install its client instead. ``picky_server``
comes from picky-mock's pytest plugin: no import, no configuration.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from picky_client import AuthError, InvalidNumberError, normalise_number, send_bulk

from picky_mock.strategies import message_texts, phone_numbers, push_responses

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


# -- with no server at all ---------------------------------------------------------------------
#
# The mock's answers are one valid answer among many: sequential ids, one price table. The real API's
# ids are not contiguous and its credits vary; ``push_responses()`` draws them, and an
# ``httpx.MockTransport`` hands them to the client with no socket. Every error code, HTTP failure
# and broken connection is tested against the mock's faults instead: test_example_faults.py.


def answering(answer: dict) -> httpx.Client:
    """A client whose every request is answered ``answer`` (HTTP 200)."""
    return httpx.Client(transport=httpx.MockTransport(lambda request: httpx.Response(200, json=answer)))


@given(answer=push_responses())
def test_success_answers_are_parsed(answer):
    with answering(answer) as client:
        result = send_bulk(["5511987654321"], "Hi", token="t", client=client)

    assert result.push_ids == [answer["push_id"]]
    assert [(m.msg_id, m.number) for m in result.messages] == [(d["msg_id"], d["number"]) for d in answer["data"]]
    assert result.total_credit == sum((Decimal(d["credit"]) for d in answer["data"]), Decimal(0))
