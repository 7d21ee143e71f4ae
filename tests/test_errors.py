"""Every failure a body alone can cause maps to its status code (docs/contract.md §4), answered as the real
API does: HTTP 200 and exactly ``{"status": code, "message": text}``; what was wrong, and where (the
JSON path, the data[] index), goes to the ``X-Picky-Error`` header and the journal."""

from __future__ import annotations

import pytest
from pushing import TOKEN, encode, expect_error, expect_success, number, push_body

GOOD = number(0)


def _without(key: str) -> dict[str, object]:
    body = push_body()
    del body[key]
    return body


def _with(**changes: object) -> dict[str, object]:
    return {**push_body(), **changes}


def _recipients(*items: dict[str, object], **top: object) -> dict[str, object]:
    return {"token": TOKEN, "application": 1, **top, "data": list(items)}


# (id, body, code, JSON path named in X-Picky-Error and the journal)
CASES = [
    # 401: token missing, empty, blank, or not a string
    ("401-missing", _without("token"), 401, "$.token"),
    ("401-empty", _with(token=""), 401, "$.token"),
    ("401-blank", _with(token="   "), 401, "$.token"),
    ("401-whitespace", _with(token="\t\r\n "), 401, "$.token"),
    ("401-number", _with(token=12345), 401, "$.token"),
    ("401-null", _with(token=None), 401, "$.token"),
    ("401-list", _with(token=["abc"]), 401, "$.token"),
    ("401-object", _with(token={"value": "abc"}), 401, "$.token"),
    ("401-bool", _with(token=True), 401, "$.token"),
    # 402: data missing or empty
    ("402-missing", _without("data"), 402, "$.data"),
    ("402-empty", _with(data=[]), 402, "$.data"),
    # 406: 7-15 digits, no leading 0, no +
    ("406-6-digits", _with(data=[{"number": "123456"}]), 406, "$.data[0].number"),
    ("406-16-digits", _with(data=[{"number": "1234567890123456"}]), 406, "$.data[0].number"),
    ("406-leading-0", _with(data=[{"number": "05511987000000"}]), 406, "$.data[0].number"),
    ("406-leading-00", _with(data=[{"number": "005511987000000"}]), 406, "$.data[0].number"),
    ("406-plus", _with(data=[{"number": "+5511987000000"}]), 406, "$.data[0].number"),
    ("406-spaces", _with(data=[{"number": "55 11 98700 0000"}]), 406, "$.data[0].number"),
    ("406-dashes", _with(data=[{"number": "5511-98700-0000"}]), 406, "$.data[0].number"),
    ("406-letters", _with(data=[{"number": "55119870000ab"}]), 406, "$.data[0].number"),
    ("406-empty", _with(data=[{"number": ""}]), 406, "$.data[0].number"),
    ("406-newline", _with(data=[{"number": GOOD + "\n"}]), 406, "$.data[0].number"),
    ("406-arabic-digits", _with(data=[{"number": "٥٥١١٩٨٧٠٠٠٠٠٠"}]), 406, "$.data[0].number"),
    ("406-int-6-digits", _with(data=[{"number": 123456}]), 406, "$.data[0].number"),
    ("406-int-16-digits", _with(data=[{"number": 1234567890123456}]), 406, "$.data[0].number"),
    ("406-int-zero", _with(data=[{"number": 0}]), 406, "$.data[0].number"),
    ("406-int-negative", _with(data=[{"number": -5511987000000}]), 406, "$.data[0].number"),
    ("406-float", _with(data=[{"number": 5511987000000.5}]), 406, "$.data[0].number"),
    ("406-bool", _with(data=[{"number": True}]), 406, "$.data[0].number"),
    ("406-null", _with(data=[{"number": None}]), 406, "$.data[0].number"),
    ("406-no-number", _with(data=[{"message": "to whom?"}]), 406, "$.data[0]"),
    (
        "406-index-2",
        _with(data=[{"number": number(1)}, {"number": number(2)}, {"number": "12"}, {"number": number(3)}]),
        406,
        "$.data[2].number",
    ),
    # 407: no text, media or template for a recipient and no global content
    ("407-no-text", _recipients({"number": GOOD}), 407, "$.data[0]"),
    ("407-empty-texts", _recipients({"number": GOOD, "message": ""}, globalmessage=""), 407, "$.data[0]"),
    ("407-empty-media", _recipients({"number": GOOD, "media": ""}, globalmedia=""), 407, "$.data[0]"),
    (
        "407-index-1",
        _recipients(
            {"number": number(1), "message": "hi"}, {"number": number(2)}, {"number": number(3), "message": "x"}
        ),
        407,
        "$.data[1]",
    ),
    # 410: not JSON / not an object / wrong types / application missing (strict)
    ("410-application-missing", _without("application"), 410, "$.application"),
    ("410-application-word", _with(application="whatsapp"), 410, "$.application"),
    ("410-application-zero", _with(application=0), 410, "$.application"),
    ("410-application-negative", _with(application=-1), 410, "$.application"),
    ("410-application-float", _with(application=1.5), 410, "$.application"),
    ("410-application-leading-0", _with(application="01"), 410, "$.application"),
    ("410-application-list", _with(application=[1]), 410, "$.application"),
    ("410-application-bool", _with(application=True), 410, "$.application"),
    ("410-globalmessage-number", _with(globalmessage=5), 410, "$.globalmessage"),
    ("410-globalmedia-list", _with(globalmedia=["u"]), 410, "$.globalmedia"),
    ("410-priority-2", _with(priority=2), 410, "$.priority"),
    ("410-priority-word", _with(priority="high"), 410, "$.priority"),
    ("410-priority-space-key", _with(**{"priority ": "urgent"}), 410, '$["priority "]'),
    ("410-media-name-long", _with(media_name="x" * 21), 410, "$.media_name"),
    ("410-template-values", _with(template_globalmessage="a,b"), 410, "$.template_globalmessage"),
    ("410-voice", _with(voice="yes"), 410, "$.voice"),
    ("410-data-string", _with(data="5511987000000"), 410, "$.data"),
    ("410-data-object", _with(data={"number": GOOD}), 410, "$.data"),
    ("410-data-item-number", _with(data=[5511987000000]), 410, "$.data[0]"),
    ("410-data-item-string", _with(data=[GOOD]), 410, "$.data[0]"),
    ("410-data-item-null", _with(data=[{"number": GOOD}, None]), 410, "$.data[1]"),
    ("410-message-number", _with(data=[{"number": GOOD, "message": 5}]), 410, "$.data[0].message"),
    ("410-reference-float", _with(data=[{"number": GOOD, "reference_number": 1.5}]), 410, "$.data[0].reference_number"),
    (
        "410-template-message",
        _with(data=[{"number": GOOD, "template_message": "a"}]),
        410,
        "$.data[0].template_message",
    ),
    ("410-messenger-id-empty", _with(data=[{"messenger_id": ""}]), 410, "$.data[0].messenger_id"),
    # precedence: authentication, then the recipient list, then the shape, then each recipient
    ("precedence-401-over-402", {"application": 1, "data": []}, 401, "$.token"),
    ("precedence-402-over-410", {"token": TOKEN, "application": "x", "data": []}, 402, "$.data"),
    ("precedence-410-over-406", _with(application="x", data=[{"number": "1"}]), 410, "$.application"),
    ("precedence-406-over-407", _recipients({"number": "+1"}), 406, "$.data[0].number"),
]


@pytest.mark.parametrize(("body", "code", "path"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_body_errors_map_to_their_status(client, picky_server, body, code, path):
    answer = client.post("/api/v2/push", content=encode(body))
    error = expect_error(answer, code)
    assert error.startswith(f"{code} {path}"), error
    (entry,) = picky_server.journal.snapshot()
    assert entry.http_status == 200 and entry.status == code and not entry.accepted
    assert entry.answer == {"status": code, "message": answer.json()["message"]}
    assert entry.error is not None and entry.error.startswith(path), entry.error
    assert entry.violations, "the journal keeps every violation"
    assert (entry.violations[0].path, entry.violations[0].status) == (path, code)
    assert entry.body == body
    assert not entry.messages and entry.push is None
    assert answer.headers["x-picky-request-id"] == str(entry.seq)
    # a rejected push takes no id: the next push gets the start values
    reply = expect_success(client.post("/api/v2/push", json=push_body()))
    assert reply["push_id"] == "7478630" and reply["data"][0]["msg_id"] == "9844217"


def test_every_violation_is_journaled_and_counted_in_the_header(client, picky_server):
    body = _recipients({"number": "+1"}, {"number": GOOD}, {"number": "12"}, {"number": GOOD, "message": 5})
    error = expect_error(client.post("/api/v2/push", json=body), 410)
    (entry,) = picky_server.journal.snapshot()
    paths = {(v.path, v.status) for v in entry.violations}
    assert ("$.data[3].message", 410) in paths
    assert ("$.data[0].number", 406) in paths and ("$.data[2].number", 406) in paths
    assert ("$.data[1]", 407) in paths
    assert f"(+{len(entry.violations) - 1} more" in error
    for violation in entry.violations:
        assert violation.expected and violation.found


@pytest.mark.parametrize(
    ("raw", "what"),
    [
        (b"", "empty"),
        (b"   \r\n", "blank"),
        (b"{", "truncated"),
        (b"token=abc&application=1", "form text"),
        (b"{'token': 'abc'}", "single quotes"),
        (b'{"token": "a",}', "trailing comma"),
        (b'{"token": NaN}', "NaN"),
        (b"\x00\x01\x02\xff", "binary"),
        (b"\xff\xfe{\x00}\x00", "UTF-16"),
    ],
)
def test_a_body_that_is_not_json_is_410(client, picky_server, raw, what):
    error = expect_error(client.post("/api/v2/push", content=raw, headers={"content-type": "application/json"}), 410)
    assert error.startswith("410 $"), error
    (entry,) = picky_server.journal.snapshot()
    assert entry.status == 410 and entry.raw_body == raw and entry.error


@pytest.mark.parametrize("raw", [b"[]", b"1", b'"x"', b"null", b"true", b"[{}]", b'["token"]'])
def test_json_that_is_not_an_object_is_410(client, picky_server, raw):
    error = expect_error(client.post("/api/v2/push", content=raw), 410)
    assert error.startswith("410 $:"), error
    (entry,) = picky_server.journal.snapshot()
    assert entry.violations[0].path == "$"


def test_error_header_is_one_ascii_line(client):
    body = _with(token="", globalmessage="line one\nline two ✓ " + "x" * 3000, data=[{"number": "+55\n11 ü"}])
    answer = client.post("/api/v2/push", json=body)
    error = expect_error(answer, 401)
    assert error.isascii() and "\n" not in error and len(error) <= 1000
