"""End to end over a real socket, with httpx, requests and curl: every transport quirk real clients
send is accepted (docs/contract.md §1 and §2.2), the success answer has the documented shape (section 3),
and no answer is ever a redirect."""

from __future__ import annotations

import json
from decimal import Decimal

import httpx
import pytest
from pushing import (
    CLIENTS,
    TOKEN,
    check_answer,
    curl,
    encode,
    expect_success,
    number,
    push_body,
    send,
    send_json,
)

from picky_mock.app import PUSH_PATHS
from picky_mock.config import Settings
from picky_mock.pricing import PriceTable
from picky_mock.server import ServerThread

HOWS = ("json", "text_plain", "no_content_type", "form", "multipart", "query")


def _send_as(client: str, url: str, how: str, body: dict[str, object]):
    document = encode(body)
    if how == "json":
        return send(client, url, content=document, headers={"Content-Type": "application/json"})
    if how == "text_plain":  # C# StringContent
        return send(client, url, content=document, headers={"Content-Type": "text/plain; charset=utf-8"})
    if how == "no_content_type":
        return send(client, url, content=document)
    if how == "form":
        return send(client, url, form={"data": document.decode()})
    if how == "multipart":
        return send(client, url, multipart={"data": document.decode()})
    assert how == "query"  # /push?data={...}
    return send(client, url, params={"data": document.decode()})


@pytest.mark.parametrize("how", HOWS)
@pytest.mark.parametrize("client", CLIENTS)
def test_every_transport_is_accepted(picky_server, client, how):
    text = f"hello via {client} as {how} · ñ ✓"
    body = push_body(number(1), number(2), text=text)
    answer = _send_as(client, picky_server.push_url, how, body)
    reply = expect_success(answer, recipients=2)
    assert [item["number"] for item in reply["data"]] == [number(1), number(2)]
    (entry,) = picky_server.journal.snapshot()
    assert entry.accepted and entry.push_id == reply["push_id"]
    assert [m.text for m in entry.messages] == [text, text]
    assert entry.body == body
    source_notes = [n for n in entry.notes if "data field" in n]
    if how in ("form", "multipart"):
        assert source_notes == ["quirk: the JSON document came in the 'form' data field"]
    elif how == "query":
        assert source_notes == ["quirk: the JSON document came in the 'query' data field"]
    else:
        assert source_notes == []


@pytest.mark.parametrize("slash", ["", "/"], ids=["bare", "trailing-slash"])
@pytest.mark.parametrize("path", PUSH_PATHS)
@pytest.mark.parametrize("client", CLIENTS)
def test_every_push_path_answers_without_redirect(picky_server, client, path, slash):
    answer = send_json(client, picky_server.url + path + slash, push_body(text=f"{client} {path}{slash}"))
    assert not 300 <= answer.status_code < 400
    assert "location" not in answer.headers
    expect_success(answer, recipients=1)
    (entry,) = picky_server.journal.snapshot()
    assert entry.path == path + slash


def test_priority_key_with_trailing_space(client, picky_server):
    body = push_body(**{"priority ": "1"})
    expect_success(client.post("/api/v2/push", content=encode(body)))
    (entry,) = picky_server.pushes()
    assert entry.push is not None and entry.push.priority == 1
    assert any("'priority '" in note for note in entry.notes)


@pytest.mark.parametrize(
    ("application", "priority", "recipient"),
    [
        (1, 0, 5511987000001),
        ("1", "0", "5511987000001"),
        (3, 1, "5511987000001"),
        ("3", "1", 5511987000001),
        ("101", "", "5511987000001"),
        (2, "0", 551198700000),
    ],
)
def test_numbers_or_numeric_strings(client, picky_server, application, priority, recipient):
    body = {
        "token": TOKEN,
        "application": application,
        "priority": priority,
        "globalmessage": "numbers as numbers or strings",
        "data": [{"number": recipient}],
    }
    reply = expect_success(client.post("/api/v2/push", json=body), recipients=1)
    assert reply["data"][0]["number"] == str(recipient)
    (entry,) = picky_server.pushes()
    assert entry.push is not None
    assert entry.push.application == int(application)
    assert entry.push.priority == int(priority or 0)
    assert entry.messages[0].number == str(recipient)
    assert entry.messages[0].channel == int(application)


def test_unknown_keys_are_accepted_and_kept_in_the_journal(client, picky_server):
    body = push_body(
        number(1),
        sleep=2,
        message_type="text",
        interactive_type="button",
        quoted={"id": "abc"},
        createcontact=1,
        payload=["x"],
        reference_number="top-level-ref",
    )
    body["data"][0].update({"template_id": 7, "media_url": "https://example.invalid/a.png", "reference_number": 42})
    reply = expect_success(client.post("/api/v2/push", json=body), recipients=1)
    (entry,) = picky_server.pushes()
    assert entry.body == body, "the journal keeps the body as sent, unknown keys included"
    assert entry.push is not None
    assert set(entry.push.unknown_keys) == {
        "sleep", "message_type", "interactive_type", "quoted", "createcontact", "payload", "reference_number"
    }
    assert any("unknown keys in data[]" in note and "media_url" in note for note in entry.notes)
    assert entry.messages[0].reference_number == "42"
    assert entry.messages[0].msg_id == reply["data"][0]["msg_id"]


@pytest.mark.parametrize("client", CLIENTS)
def test_utf8_bom_is_accepted(picky_server, client):
    body = push_body(text="BOM first · ü")
    answer = send(client, picky_server.push_url, content=b"\xef\xbb\xbf" + encode(body),
                  headers={"Content-Type": "application/json"})
    expect_success(answer, recipients=1)
    picky_server.assert_pushed(number=number(), text="BOM first · ü")


def test_text_resolution_and_empty_media(client, picky_server):
    """``message`` when non-empty, else ``globalmessage``; ``globalmedia: ""`` is no media."""
    body = {
        "token": TOKEN,
        "application": 1,
        "globalmessage": "global text",
        "globalmedia": "",
        "data": [
            {"number": number(1), "message": "own text"},
            {"number": number(2), "message": ""},
            {"number": number(3)},
            {"number": number(4), "message": "global text"},
            {"number": number(5), "media": "https://example.invalid/own.jpg"},
        ],
    }
    expect_success(client.post("/api/v2/push", json=body), recipients=5)
    messages = picky_server.messages()
    assert [m.text for m in messages] == ["own text", "global text", "global text", "global text", "global text"]
    assert [m.media for m in messages] == [None, None, None, None, "https://example.invalid/own.jpg"]
    assert [m.position for m in messages] == [0, 1, 2, 3, 4]


def test_media_only_push_and_messenger_ids(client, picky_server):
    media = {"token": TOKEN, "application": 1, "globalmedia": "https://example.invalid/m.pdf",
             "data": [{"number": number(1)}]}
    expect_success(client.post("/api/v2/push", json=media), recipients=1)
    messenger = {"token": TOKEN, "application": 5, "globalmessage": "hi",
                 "data": [{"messenger_id": "2450001112223334"}, {"messenger_id": 987654321}]}
    reply = expect_success(client.post("/api/v2/push", json=messenger), recipients=2)
    assert [d["number"] for d in reply["data"]] == ["2450001112223334", "987654321"]
    assert [m.number for m in picky_server.messages(channel=5)] == ["2450001112223334", "987654321"]


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH", "OPTIONS"])
@pytest.mark.parametrize("path", [p + s for p in PUSH_PATHS for s in ("", "/")])
def test_other_methods_on_a_push_path_get_405_json(client, picky_server, method, path):
    answer = client.request(method, path, content=encode(push_body()))
    assert answer.status_code == 405
    assert "POST" in [m.strip() for m in answer.headers["allow"].split(",")]
    body = check_answer(answer)
    assert body["status"] != 100
    (entry,) = picky_server.journal.snapshot()
    assert entry.method == method and entry.http_status == 405 and not entry.accepted
    assert not picky_server.pushes()


@pytest.mark.parametrize("client_name", ["requests", "curl"])
def test_405_with_the_other_clients(picky_server, client_name):
    answer = send(client_name, picky_server.push_url, method="GET")
    assert answer.status_code == 405
    assert answer.header("allow") is not None and "POST" in answer.header("allow")
    check_answer(answer)


def test_head_on_a_push_path_is_405_without_body(client):
    answer = client.head("/api/v2/push")
    assert answer.status_code == 405
    assert "POST" in answer.headers["allow"]
    assert answer.content == b""


@pytest.mark.parametrize("method", ["PROPFIND", "PURGE"])  # methods the HTTP parser knows; others get its 400
def test_unusual_methods_on_a_push_path_get_405_json(client, picky_server, method):
    answer = client.request(method, "/api/v2/push")
    assert answer.status_code == 405
    assert answer.headers["allow"] == "POST"
    check_answer(answer)
    assert len(picky_server.journal) == 1


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize("path", ["/", "/nope", "/api/v2", "/api/v2/pushx", "/api/v3/push", "/app/api/v2/push/x"])
def test_unknown_path_is_404_json_naming_the_served_paths(client, picky_server, method, path):
    answer = client.request(method, path, content=encode(push_body()))
    assert answer.status_code == 404
    assert answer.headers["content-type"].startswith("application/json")
    body = answer.json()
    served = " ".join(body["served"])
    for push_path in PUSH_PATHS:
        assert push_path in served
    assert body["path"] == path
    assert not picky_server.pushes()


def test_success_answer_shape_order_and_ids(client, picky_server):
    recipients = [number(i) for i in (5, 3, 9, 1, 7)]
    raw = client.post("/api/v2/push", json=push_body(*recipients))
    assert b'"status":100' in raw.content.replace(b" ", b""), "status is the JSON number 100"
    first = expect_success(raw, recipients=5)
    assert first["message"] == "Success"
    assert [d["number"] for d in first["data"]] == recipients, "one entry per recipient, in request order"
    assert first["push_id"] == "7478630" and first["data"][0]["msg_id"] == "9844217", "the docs' sample values"
    second = expect_success(client.post("/api/v2/push", json=push_body(number(1), number(2))), recipients=2)
    assert int(second["push_id"]) == int(first["push_id"]) + 1
    assert int(second["data"][0]["msg_id"]) == int(first["data"][-1]["msg_id"]) + 1
    messages = picky_server.messages()
    assert [m.msg_id for m in messages] == [d["msg_id"] for d in first["data"] + second["data"]]


def test_configured_start_values():
    settings = Settings(port=0, push_id_start=1, msg_id_start=500_000_000_000, log_level="warning")
    with ServerThread(settings) as server, httpx.Client(base_url=server.url, follow_redirects=False) as client:
        one = expect_success(client.post("/api/v2/push", json=push_body(number(1), number(2), number(3))))
        two = expect_success(client.post("/app/api/v2/push", json=push_body(number(4))))
    assert one["push_id"] == "1" and two["push_id"] == "2"
    assert [d["msg_id"] for d in one["data"] + two["data"]] == [str(500_000_000_000 + i) for i in range(4)]


def test_credits_from_the_default_price_table(client):
    long_sms = "x" * 161
    body = {
        "token": TOKEN,
        "application": 3,
        "data": [
            {"number": number(1), "message": "short"},
            {"number": number(2), "message": long_sms},
            {"number": number(3), "message": "ünïcödé ж"},
            {"number": number(4), "message": "ж" * 71},
        ],
    }
    reply = expect_success(client.post("/api/v2/push", json=body), recipients=4)
    assert [d["credit"] for d in reply["data"]] == ["0.01", "0.02", "0.01", "0.02"]
    whatsapp = expect_success(client.post("/api/v2/push", json=push_body(text=long_sms * 3)))
    assert whatsapp["data"][0]["credit"] == "0.005", "WhatsApp is charged per message, whatever the length"
    messenger = {"token": TOKEN, "application": 5, "globalmessage": "x", "data": [{"messenger_id": "1"}]}
    assert expect_success(client.post("/api/v2/push", json=messenger))["data"][0]["credit"] == "0"


def test_credits_from_a_configured_price_table():
    prices = {"default": "0.25", "3": "0.07", "2": "1.5"}
    table = PriceTable(prices)
    texts = ["short", "y" * 160, "y" * 161, "€" * 80, "€" * 81, "emoji 😀", "😀" * 36]
    with ServerThread(Settings(port=0, prices=prices, log_level="warning")) as server:
        with httpx.Client(base_url=server.url, follow_redirects=False) as client:
            sms = {"token": TOKEN, "application": "3",
                   "data": [{"number": number(i), "message": t} for i, t in enumerate(texts)]}
            reply = expect_success(client.post("/api/v2/push", json=sms), recipients=len(texts))
            whatsapp = expect_success(client.post("/api/v2/push", json=push_body(application=1)))
            business = expect_success(client.post("/api/v2/push", json=push_body(application=2)))
            state = client.get("/_picky/state").json()
        messages = server.backend.journal.messages(channel=3)
    expected = [table.charge(3, t)[2] for t in texts]
    assert [d["credit"] for d in reply["data"]] == expected
    assert expected == ["0.07", "0.07", "0.14", "0.07", "0.14", "0.07", "0.14"]
    assert [m.segments for m in messages] == [1, 1, 2, 1, 2, 1, 2]
    assert sum(Decimal(d["credit"]) for d in reply["data"]) == Decimal("0.70")
    assert whatsapp["data"][0]["credit"] == "0.25"
    assert business["data"][0]["credit"] == "1.5"
    assert state["prices"]["3"] == "0.07" and state["prices"]["default"] == "0.25"


def test_keep_alive_connection_serves_many_pushes(picky_server):
    with httpx.Client(base_url=picky_server.url, follow_redirects=False) as client:
        replies = [expect_success(client.post(PUSH_PATHS[i % 3], json=push_body(number(i)))) for i in range(30)]
    assert [int(r["push_id"]) for r in replies] == list(range(7478630, 7478660))
    assert len(picky_server.pushes()) == 30


def test_json_body_labelled_as_form_is_still_read_as_json(picky_server):
    body = push_body(text="see https://example.invalid/?a=1&data=2")
    answer = send("curl", picky_server.push_url, content=encode(body),
                  headers={"Content-Type": "application/x-www-form-urlencoded"})
    expect_success(answer, recipients=1)


def test_json_body_labelled_as_form_without_a_data_field(picky_server):
    """``curl -d @push.json`` labels JSON as a urlencoded form: with no ``data`` field, the body is
    read as the JSON document."""
    body = push_body(text="plain text, no form fields")
    answer = send("curl", picky_server.push_url, content=encode(body),
                  headers={"Content-Type": "application/x-www-form-urlencoded"})
    expect_success(answer, recipients=1)


def test_unescaped_utf8_in_a_form_field_is_read_as_sent(picky_server):
    """``curl -d 'data={...}'`` sends the UTF-8 bytes of non-ASCII text as they are, unescaped:
    the text is read as the client wrote it, and priced on it (an SMS with a non-GSM character is
    UCS-2: 70 characters a segment). (A query string cannot carry raw UTF-8: the HTTP parser
    refuses the request line; escaped, it is read as sent, as every test of ``?data=`` shows.)"""
    text = "Olá, é você? ç 😀" + "x" * 60  # 77 characters, UCS-2: 2 segments
    document = json.dumps(push_body(text=text, application=3), ensure_ascii=False).encode("utf-8")
    # curl's default type for --data-binary: application/x-www-form-urlencoded
    answer = curl(["--data-binary", "@-", picky_server.push_url], stdin=b"data=" + document)
    expect_success(answer, recipients=1)
    message = picky_server.messages()[0]
    assert message.text == text and message.segments == 2


def test_answers_are_compact_json_with_the_right_content_type(client):
    answer = client.post("/api/v2/push", json=push_body())
    assert answer.headers["content-type"].startswith("application/json")
    assert json.loads(answer.content) == answer.json()
    assert answer.headers.get("x-picky-request-id", "").isdigit()


def test_messenger_id_stands_for_number_only_on_messenger(client):
    """docs/contract.md §2: ``messenger_id`` when ``application`` is 5; elsewhere a recipient needs a number."""
    body = {"token": TOKEN, "application": 1, "globalmessage": "x", "data": [{"messenger_id": "2415"}]}
    answer = client.post("/api/v2/push", json=body)
    assert answer.json() == {"status": 406, "message": "Invalid Mobile Number"}
    assert answer.headers["x-picky-error"].startswith('406 $.data[0].number: expected a "number" ("messenger_id"')
    answer = client.post("/api/v2/push", json={**body, "application": "5"})
    assert answer.json()["status"] == 100 and answer.json()["data"][0]["number"] == "2415"
