"""Properties of the emulator, over a real socket, with the strategies of :mod:`picky_mock.strategies`.

* every valid push is answered 100, one ``data[]`` entry per recipient in order, contiguous
  ``msg_id`` s and the credits of the price table;
* every invalid push is answered the code the strategy states, and a missing token or an empty
  recipient list outranks the other rules (docs/contract.md §4.1, ``STATUS_PRECEDENCE``);
* whatever JSON (or not-JSON) arrives, the answer is a contract answer, never a 500.

``picky_server`` is function-scoped and reset before each test, not between the examples of one
test: the properties that count ids call ``picky_server.reset()`` first. Hypothesis's
``function_scoped_fixture`` health check is suppressed for exactly that reason, and only here.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from picky_mock.contract import STATUS_PRECEDENCE, validate_response
from picky_mock.errors import STATUS_MESSAGES
from picky_mock.pricing import GSM7_BASIC, GSM7_EXTENSION, PriceTable, segment
from picky_mock.strategies import (
    BODY_STATUSES,
    invalid_push_requests,
    message_texts,
    phone_numbers,
    push_requests,
)

SCHEMAS = Path(__file__).resolve().parents[1] / "schemas"
RESPONSE = jsonschema.Draft202012Validator(json.loads((SCHEMAS / "push-response.schema.json").read_text("utf-8")))
ERROR = jsonschema.Draft202012Validator(json.loads((SCHEMAS / "error-response.schema.json").read_text("utf-8")))
SMS = 3


def over_socket(max_examples: int) -> settings:
    """Settings of a property that uses the function-scoped ``picky_server`` inside ``@given``."""
    return settings(max_examples=max_examples, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10) as client:
        yield client


def post(http: httpx.Client, url: str, body: Any) -> httpx.Response:
    return http.post(url, content=json.dumps(body).encode("utf-8"), headers={"content-type": "application/json"})


# -- independent expectations ------------------------------------------------------------------


def reference_segments(text: str) -> int:
    """SMS segments of ``text``, counted from scratch: GSM-7 septets (extension characters two) or
    UTF-16 code units; 160/153 or 70/67 a part; a two-unit character never split."""
    gsm = all(ch in GSM7_BASIC or ch in GSM7_EXTENSION for ch in text)
    if gsm:
        units = [2 if ch in GSM7_EXTENSION else 1 for ch in text]
        single, part = 160, 153
    else:
        units = [len(ch.encode("utf-16-le")) // 2 for ch in text]
        single, part = 70, 67
    if sum(units) <= single:
        return 1
    parts, room = 1, part
    for size in units:
        if size > room:
            parts, room = parts + 1, part
        room -= size
    return parts


def resolved_text(body: dict[str, Any], item: dict[str, Any]) -> str:
    """docs/contract.md §2: the recipient's own non-empty ``message``, else ``globalmessage``."""
    return item.get("message") or body.get("globalmessage") or ""


def echoed(item: dict[str, Any]) -> str:
    """docs/contract.md §3: the recipient as digits (``messenger_id`` for Messenger)."""
    return str(item["number"] if "number" in item else item["messenger_id"])


# -- valid pushes ------------------------------------------------------------------------------


@over_socket(60)
@given(body=push_requests(), path=st.integers(0, 2))
def test_every_valid_push_is_accepted_as_the_contract_says(picky_server, http, body, path):
    picky_server.reset()
    config = picky_server.backend.settings
    response = post(http, picky_server.push_urls[path], body)

    assert response.status_code == 200
    answer = response.json()
    assert list(RESPONSE.iter_errors(answer)) == []
    assert type(answer["status"]) is int and answer["status"] == 100
    assert answer["push_id"] == str(config.push_id_start)
    assert [entry["number"] for entry in answer["data"]] == [echoed(item) for item in body["data"]]
    first = config.msg_id_start
    assert [entry["msg_id"] for entry in answer["data"]] == [str(first + i) for i in range(len(body["data"]))]

    prices, channel = PriceTable(config.prices), int(body["application"])
    for item, entry in zip(body["data"], answer["data"], strict=True):
        parts = reference_segments(resolved_text(body, item)) if channel == SMS else 1
        assert Decimal(entry["credit"]) == prices.unit_price(channel) * parts, (item, entry)

    messages = picky_server.messages(push_id=answer["push_id"])
    assert [m.text for m in messages] == [resolved_text(body, item) for item in body["data"]]
    assert [(m.msg_id, m.number) for m in messages] == [(e["msg_id"], e["number"]) for e in answer["data"]]
    picky_server.check()


@over_socket(40)
@given(bodies=st.lists(push_requests(max_recipients=4), min_size=2, max_size=4))
def test_ids_keep_increasing_across_pushes(picky_server, http, bodies):
    picky_server.reset()
    answers = [post(http, picky_server.push_url, body).json() for body in bodies]
    push_ids = [int(a["push_id"]) for a in answers]
    msg_ids = [int(entry["msg_id"]) for a in answers for entry in a["data"]]
    assert push_ids == list(range(push_ids[0], push_ids[0] + len(bodies)))
    assert msg_ids == list(range(msg_ids[0], msg_ids[0] + len(msg_ids)))


@settings(max_examples=300)
@given(message_texts())
def test_the_price_table_counts_segments_as_the_reference_does(text):
    assert segment(text).segments == reference_segments(text)


# -- invalid pushes ----------------------------------------------------------------------------


@over_socket(100)
@given(case=invalid_push_requests())
def test_every_invalid_push_gets_its_code(picky_server, http, case):
    response = post(http, picky_server.push_url, case.body)

    assert response.status_code == 200
    answer = response.json()
    assert answer == {"status": case.status, "message": STATUS_MESSAGES[case.status]}, case.rule
    assert list(ERROR.iter_errors(answer)) == []
    assert response.headers["x-picky-error"].startswith(f"{case.status} ")
    entry = picky_server.requests[-1]
    assert entry.status == case.status and not entry.accepted
    picky_server.check()


def test_invalid_push_requests_cover_every_code_the_body_decides():
    assert set(BODY_STATUSES) == set(STATUS_PRECEDENCE)


@over_socket(40)
@given(case=invalid_push_requests(statuses=[402, 406, 407, 410]))
def test_a_missing_token_outranks_every_other_rule(picky_server, http, case):
    assume(isinstance(case.body, dict))
    body = {key: value for key, value in case.body.items() if key != "token"}
    assert post(http, picky_server.push_url, body).json()["status"] == 401


@over_socket(40)
@given(case=invalid_push_requests(statuses=[406, 407, 410]))
def test_an_empty_recipient_list_outranks_the_shape_and_the_recipients(picky_server, http, case):
    assume(isinstance(case.body, dict))
    body = {**case.body, "data": []}
    assert post(http, picky_server.push_url, body).json()["status"] == 402


# -- anything at all ---------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=10), children, max_size=3),
    max_leaves=8,
)


@st.composite
def damaged_pushes(draw: st.DrawFn) -> Any:
    """A valid push with one value anywhere replaced by any JSON value."""
    body = draw(push_requests(max_recipients=3))
    places: list[tuple[Any, Any]] = [(body, key) for key in body]
    places += [(item, key) for item in body["data"] for key in item]
    where, key = draw(st.sampled_from(places))
    where[key] = draw(json_values)
    return body


@over_socket(80)
@given(body=st.one_of(damaged_pushes(), json_values))
def test_never_a_500_whatever_json_arrives(picky_server, http, body):
    response = post(http, picky_server.push_url, body)
    assert response.status_code == 200
    answer = response.json()
    assert answer["status"] in (100, *BODY_STATUSES)
    assert validate_response(answer) == []
    picky_server.check()


@over_socket(20)
@given(raw=st.binary(max_size=64))
def test_never_a_500_whatever_bytes_arrive(picky_server, http, raw):
    response = http.post(picky_server.push_url, content=raw, headers={"content-type": "application/json"})
    assert response.status_code == 200
    assert response.json()["status"] in (100, *BODY_STATUSES)
    picky_server.check()


def test_a_del_character_in_a_bad_value_is_still_answered(picky_server, http):
    """Regression: DEL (U+007F) in the offending value once reached the X-Picky-Error header as it
    was (json.dumps leaves it, and it is ASCII); uvicorn refused the header and dropped the
    connection without an answer. Found by ``test_never_a_500_whatever_json_arrives``."""
    body = {"token": "t", "application": 1, "globalmessage": "Hi", "data": [{"number": "5511\x7f987654321"}]}
    assert post(http, picky_server.push_url, body).json()["status"] == 406


# -- lenient mode ------------------------------------------------------------------------------


@over_socket(30)
@given(number=phone_numbers(malformed=["plus", "00", "spaces", "dashes", "international"]))
def test_lenient_mode_repairs_the_numbers_strict_mode_rejects(picky_server, http, number):
    body = {"token": "t", "application": 1, "globalmessage": "Hi", "data": [{"number": number}]}
    picky_server.reset()
    assert post(http, picky_server.push_url, body).json()["status"] == 406
    picky_server.set_mode("lenient")
    answer = post(http, picky_server.push_url, body).json()
    assert answer["status"] == 100
    digits = "".join(ch for ch in number if ch.isdigit())
    assert answer["data"][0]["number"] == (digits[2:] if number.startswith("00") else digits)


def test_lenient_mode_defaults_a_missing_application(picky_server, http):
    picky_server.set_mode("lenient")
    body = {"token": "t", "globalmessage": "Hi", "data": [{"number": "5511987654321"}]}
    assert post(http, picky_server.push_url, body).json()["status"] == 100


def test_lenient_mode_repairs_a_00_prefix(picky_server, http):
    """Regression: an all-digit ``0055…`` once skipped the lenient repair (``str.isdigit``) and was
    answered 406, although docs/contract.md §2.3 lists ``00`` among the forms lenient mode repairs."""
    picky_server.set_mode("lenient")
    body = {"token": "t", "application": 1, "globalmessage": "Hi", "data": [{"number": "005511987654321"}]}
    answer = post(http, picky_server.push_url, body).json()
    assert answer["status"] == 100 and answer["data"][0]["number"] == "5511987654321"
