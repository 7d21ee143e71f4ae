"""Hostile input: garbage, invalid UTF-8, deep nesting, wrong types, integers beyond 64 bits or
too long for ``int``, lone surrogates and bytes that are not HTTP. The mock always answers (never a
500, never a dropped connection), the answer meets the response contract, the next request is served
as usual, and the journal records every request."""

from __future__ import annotations

import json
import random

import pytest
from pushing import (
    TOKEN,
    check_answer,
    connect,
    encode,
    expect_error,
    expect_still_serving,
    expect_success,
    number,
    push_body,
)

from picky_mock.contract import validate_request
from picky_mock.journal import BODY_PREFIX_BYTES


def _garbage() -> list[bytes]:
    rnd = random.Random(20261122)
    blobs = [bytes(rnd.randrange(256) for _ in range(size)) for size in (1, 7, 100, 4096)]
    blobs += [
        b"\x00" * 64,
        b"\xc3\x28",  # invalid continuation byte
        b"\xc0\xaf",  # overlong encoding
        b"\xed\xa0\x80",  # an encoded surrogate
        b"\xf8\x88\x80\x80\x80",  # five-byte sequence
        b'{"token": "\xff\xfe", "application": 1, "data": []}',  # invalid UTF-8 inside JSON strings
        b'{"token": "t", "application": 1, "globalmessage": "caf\xe9", "data": [{"number": "5511987000000"}]}',
        b"\xef\xbb\xbf",  # a BOM and nothing else
        b"\xef\xbb\xbf\xef\xbb\xbf{}",  # two BOMs
        b"GET / HTTP/1.1\r\n\r\n",
        bytes(rnd.randrange(256) for _ in range(300_000)),  # judged in a worker thread
    ]
    return blobs


@pytest.mark.parametrize("content_type", [None, "application/json", "text/plain", "application/x-www-form-urlencoded"])
def test_garbage_and_invalid_utf8_are_410(client, picky_server, content_type):
    headers = {"content-type": content_type} if content_type else {}
    blobs = _garbage()
    for blob in blobs:
        expect_error(client.post("/api/v2/push", content=blob, headers=headers), 410)
    entries = picky_server.journal.snapshot()
    assert len(entries) == len(blobs), "every request is journaled"
    assert all(e.status == 410 and e.error for e in entries)
    assert [e.raw_body for e in entries] == [blob[:BODY_PREFIX_BYTES] for blob in blobs], "a long body: its beginning"
    assert [e.body_size for e in entries] == [len(blob) for blob in blobs]
    expect_still_serving(client)


BROKEN_MULTIPART = {"content-type": "multipart/form-data; boundary=x"}


def test_garbage_in_the_data_field_fallbacks(client, picky_server):
    answers = [
        client.post("/api/v2/push", data={"data": "not json"}),
        client.post("/api/v2/push", data={"data": ""}),
        client.post("/api/v2/push", files={"data": (None, b"\xff\xfe\x00")}),
        client.post("/api/v2/push", files={"data": ("push.json", b"{}", "application/json")}),
        client.post("/api/v2/push", content=b"--x\r\nbroken", headers=BROKEN_MULTIPART),
        client.post("/api/v2/push", params={"data": "[" * 5000}),
        client.post("/api/v2/push", params={"data": "null"}),
    ]
    for answer in answers:
        expect_error(answer, 410)
    assert len(picky_server.journal) == len(answers)
    expect_still_serving(client)


@pytest.mark.parametrize(
    "raw",
    [
        b"[" * 100_000,
        b"[" * 100_000 + b"]" * 100_000,
        b'{"a":' * 100_000,
        b'{"a":' * 100_000 + b"1" + b"}" * 100_000,
        b'{"token": "t", "application": 1, "contact": ' + b"[" * 50_000 + b"]" * 50_000 + b', "data": []}',
    ],
    ids=["open-arrays", "closed-arrays", "open-objects", "closed-objects", "deep-field"],
)
def test_deeply_nested_json_is_410(client, picky_server, raw):
    expect_error(client.post("/api/v2/push", content=raw), 410)
    (entry,) = picky_server.journal.snapshot()
    assert entry.status == 410
    expect_still_serving(client)


def test_moderately_deep_values_in_an_open_field(client, picky_server):
    """``contact`` may be any array: nesting a JSON parser takes is judged like any value."""
    for depth in (10, 200, 1000, 3000):
        raw = b'{"token": "t", "application": 1, "contact": ' + b"[" * depth + b"]" * depth
        raw += b', "data": [{"number": "5511987000000"}]}'
        check_answer(client.post("/api/v2/push", content=raw))
    assert len(picky_server.journal) == 4
    for entry in picky_server.journal.snapshot():  # the admin view of each entry stays JSON
        json.dumps(entry.to_json())
    assert client.get("/_picky/journal").status_code == 200
    expect_still_serving(client)


@pytest.mark.parametrize(
    "where",
    ["token", "application", "globalmessage", "data[0]", "data[0].message", "data[0].media",
     "data[0].reference_number"],
)
def test_deep_values_where_a_string_or_number_is_due(client, picky_server, where):
    """jsonschema recurses into a wrong value, and so does repr() of it in its error message: a
    value nested near JSON parsers' limit (1024 for orjson) used to end in a RecursionError, a 500.
    It is now answered as a shallow wrong value at the same place is, and the error says where and
    how deep."""

    def push(depth: int) -> tuple[int, str]:
        deep = "[" * depth + "]" * depth
        item = '{"number": "5511987000000"}'
        if where == "data[0]":
            item = deep
        elif where.startswith("data[0]."):
            item = f'{{"number": "5511987000000", "{where.split(".")[1]}": {deep}}}'
        top = {"token": '"t"', "application": "1", "globalmessage": '"hi"'}
        if where in top:
            top[where] = deep
        raw = "{" + ", ".join(f'"{k}": {v}' for k, v in top.items()) + f', "data": [{item}]}}'
        code = check_answer(client.post("/api/v2/push", content=raw.encode()))["status"]
        entry = picky_server.journal.snapshot()[-1]
        assert entry.status == code and entry.error.startswith(f"$.{where}: expected "), entry.error
        return code, entry.error

    shallow, _ = push(2)
    assert shallow != 100
    for depth in (300, 995, 1020):
        code, error = push(depth)
        assert code == shallow, f"depth {depth}: {code}, {shallow} when shallow ({error})"
        if depth > 990:  # too deep for the checker (it recurses): the value is shown so
            assert "found arrays and objects nested more than 100 levels deep" in error, error
    assert any("nested" in e.error for e in picky_server.journal.snapshot()), "the deep path was not tried"
    assert client.get("/_picky/journal").status_code == 200
    expect_still_serving(client)


def test_a_deep_value_that_is_allowed_does_not_take_the_blame(client, picky_server):
    """A deep token (401 when shallow) beside a deep value where any value is allowed: the answer
    is the token's, as with both shallow."""
    deep = "[" * 1000 + "]" * 1000
    item = f'{{"number": "{number(1)}", "zz": {deep}}}'
    raw = f'{{"token": {deep}, "application": 1, "globalmessage": "hi", "data": [{item}]}}'
    error = expect_error(client.post("/api/v2/push", content=raw.encode()), 401)
    assert error.startswith("401 $.token: expected ") and "nested more than 100 levels deep" in error, error
    expect_still_serving(client)


def test_deep_values_among_many_recipients(client, picky_server):
    """Past 64 recipients the failing ones are grouped by their JSON text first, which also
    recursed; the error names the first deep recipient by its index in the request."""
    deep = "[" * 1000 + "]" * 1000
    items = [f'{{"number": "{number(i)}"}}' for i in range(100)]
    for i in (70, 80):
        items[i] = f'{{"number": "{number(i)}", "message": {deep}}}'
    raw = '{"token": "t", "application": 1, "globalmessage": "hi", "data": [' + ", ".join(items) + "]}"
    error = expect_error(client.post("/api/v2/push", content=raw.encode()), 410)
    assert error.startswith("410 $.data[70].message: expected "), error
    expect_still_serving(client)


VALUES = [None, True, False, 0, -1, 1.5, 10**20, "", " ", "x", "\u0000", "😀", [], {}, [None], {"a": []}, [[[]]]]
TOP_KEYS = [
    "token", "application", "globalmessage", "globalmedia", "globalmedia_code", "media_name", "priority",
    "priority ", "template_id", "language", "template_globalmessage", "template_header", "voice", "sticker",
    "action", "location", "contact", "data",
]
ITEM_KEYS = ["number", "messenger_id", "message", "template_message", "language", "media", "media_code",
             "reference_number"]


def _expected_status(body: dict[str, object]) -> int:
    violations = validate_request(body)
    return violations[0].status if violations else 100


def test_wrong_types_at_every_level(client, picky_server):
    """Every JSON type in every known key, top level and data[]: each answer meets the response
    contract and is the status the contract gives the body offline."""
    sent = 0
    for key in TOP_KEYS:
        for value in VALUES:
            body = {**push_body(), key: value}
            answer = client.post("/api/v2/push", content=encode(body))
            assert check_answer(answer)["status"] == _expected_status(body), (key, value)
            sent += 1
    for key in ITEM_KEYS:
        for value in VALUES:
            body = push_body()
            body["data"] = [{"number": number(1)}, {"number": number(2), key: value}]
            answer = client.post("/api/v2/push", content=encode(body))
            assert check_answer(answer)["status"] == _expected_status(body), (key, value)
            sent += 1
    for value in VALUES:  # the whole body, and each data[] item, of every type
        for body in (value, {**push_body(), "data": [value]}, {**push_body(), "data": [value, {"number": number()}]}):
            check_answer(client.post("/api/v2/push", content=encode(body)))
            sent += 1
    assert len(picky_server.journal) == sent
    expect_still_serving(client)


def _raw_push(top: bytes, number_json: bytes) -> bytes:
    return b'{"token": "t", ' + top + b', "globalmessage": "x", "data": [{"number": ' + number_json + b"}]}"


def test_numbers_beyond_64_bits(client, picky_server):
    big = b"123456789012345678901234567890"
    good = b"5511987000000"
    expect_error(client.post("/api/v2/push", content=_raw_push(b'"application": 1', big)), 406)
    check_answer(client.post("/api/v2/push", content=_raw_push(b'"application": 100000000000000000000000', good)))
    expect_error(client.post("/api/v2/push", content=_raw_push(b'"application": 1, "priority": 1e400', good)), 410)
    assert len(picky_server.journal) == 3



def test_a_huge_integer_application_is_refused_and_the_journal_stays_readable(client):
    answer = client.post("/api/v2/push", json={**push_body(), "application": 123456789012345678901234567890})
    assert answer.json()["status"] == 410
    assert client.get("/_picky/journal").status_code == 200

LONG = b"1" * 5000  # more digits than int() converts (sys.get_int_max_str_digits(), 4300 by default)
GOOD_JSON = b'"5511987000000"'

# (id, raw body, status, JSON path of the violation)
LONG_INTEGERS = [
    ("number", _raw_push(b'"application": 1', LONG), 406, "$.data[0].number"),
    ("negative-number", _raw_push(b'"application": 1', b"-" + LONG), 406, "$.data[0].number"),
    ("application", _raw_push(b'"application": ' + LONG, GOOD_JSON), 410, "$.application"),
    ("token", _raw_push(b'"application": 1, "token": ' + LONG, GOOD_JSON), 401, "$.token"),
    ("reference-number", _raw_push(b'"application": 1', GOOD_JSON + b', "reference_number": ' + LONG), 410,
     "$.data[0].reference_number"),
    ("template-message", _raw_push(b'"application": 1', GOOD_JSON + b', "template_message": [' + LONG + b"]"), 410,
     "$.data[0].template_message[0]"),
]


@pytest.mark.parametrize(("raw", "code", "path"), [c[1:] for c in LONG_INTEGERS], ids=[c[0] for c in LONG_INTEGERS])
def test_an_integer_too_long_for_int_is_json_and_judged_where_it_is(client, picky_server, caplog, raw, code, path):
    """json.loads refuses to convert an integer of more than 4,300 digits (a guard against quadratic
    time), but the body is JSON: the contract answers for the field, not 410 "not valid JSON"."""
    with caplog.at_level("WARNING", logger="picky_mock"):
        error = expect_error(client.post("/api/v2/push", content=raw), code)
    assert error.startswith(f"{code} {path}: expected "), error
    assert "5000 digits" in error and "1" * 100 not in error and len(error) <= 1000, error
    (entry,) = picky_server.journal.snapshot()
    assert (entry.violations[0].path, entry.violations[0].status) == (path, code)
    assert len(entry.violations[0].found) < 100 and "1" * 100 not in entry.error
    assert entry.body is not None, "the journal reads the body back"
    logged = [record.getMessage() for record in caplog.records if "push rejected" in record.getMessage()]
    assert logged and all("1" * 100 not in line for line in logged), logged


def test_an_integer_too_long_for_int_where_any_value_goes_is_accepted(client, picky_server):
    expect_success(client.post("/api/v2/push", content=_raw_push(b'"application": 1, "sleep": ' + LONG, GOOD_JSON)))
    (entry,) = picky_server.pushes()
    assert entry.push.unknown_keys == ("sleep",)
    assert str(entry.body["sleep"]) == LONG.decode()


def test_an_integer_too_long_for_int_among_many_recipients(client, picky_server):
    items = [b'{"number": "' + number(i).encode() + b'"}' for i in range(100)]
    items[70] = b'{"number": ' + LONG + b"}"
    raw = b'{"token": "t", "application": 1, "globalmessage": "x", "data": [' + b", ".join(items) + b"]}"
    error = expect_error(client.post("/api/v2/push", content=raw), 406)
    assert error.startswith("406 $.data[70].number: expected "), error
    (entry,) = picky_server.journal.snapshot()
    assert [(v.path, v.status) for v in entry.violations] == [("$.data[70].number", 406)]
    expect_still_serving(client)


def test_duplicate_keys_the_last_one_wins(client):
    raw = _raw_push(b'"token": "", "application": 1', b"5511987000000")
    expect_error(client.post("/api/v2/push", content=raw), 401)


def test_not_http_at_all_then_served_as_usual(picky_server, client):
    for garbage in (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 50, b"HELLO\r\n\r\n", b"\xff" * 1000):
        with connect(picky_server.url) as sock:
            sock.sendall(garbage)
            sock.settimeout(5)
            try:
                reply = sock.recv(4096)
            except (TimeoutError, ConnectionResetError):
                reply = b""
        assert not reply.startswith(b"HTTP/1.1 5"), reply[:100]
    expect_still_serving(client)


def test_lone_surrogate_in_an_echoed_value_is_not_a_500(client, picky_server):
    raw = b'{"token": "' + TOKEN.encode() + b'", "application": 5, "globalmessage": "a", '
    raw += b'"data": [{"messenger_id": "\\udc00"}]}'
    check_answer(client.post("/api/v2/push", content=raw))
    assert client.get("/_picky/journal").status_code == 200


def test_lone_surrogate_in_a_text_keeps_the_admin_api_working(client, picky_server):
    raw = encode(push_body()).replace(b'"hello"', b'"\\ud800"')
    check_answer(client.post("/api/v2/push", content=raw))
    assert client.get("/_picky/journal").status_code == 200
    assert client.get("/_picky/messages").status_code == 200
