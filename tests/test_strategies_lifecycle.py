"""The strategies of the message's life after the push (delivery reports, webhooks, instant replies),
each against an independent check: jsonschema on the schema files, and plain Python for what a
schema cannot say (the order of messages, a time that is a real date, an encoding that decodes).

The schemas themselves are checked too, so that "validates" means something: each rejects the
values its contract rules out.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path
from urllib.parse import unquote_plus

import jsonschema
import jsonschema_rs
import pytest
from hypothesis import Phase, find, given, settings
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

from picky_mock.contract import schemas_dir
from picky_mock.strategies import (
    INBOUND_TYPES,
    delivery_report_events,
    delivery_report_requests,
    delivery_report_responses,
    inbound_messages,
    instant_replies,
    push_requests,
    push_responses,
)

SCHEMAS = Path(__file__).resolve().parents[1] / "schemas"
LIFECYCLE_SCHEMAS = (
    "delivery-report-request", "delivery-report-response", "event-webhook", "incoming-webhook", "instant-reply",
)
PHONE_AUTOMATION = {"1", "2", "3", "4"}
#: WhatsApp Official channels and the shared numbers: the only ones with an error_message.
EXPLAINED_CHANNELS = {"8", "101", "121", "919737001155", "556140404433"}


def _validator(name: str) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(json.loads((SCHEMAS / f"{name}.schema.json").read_text(encoding="utf-8")))


REPORT_REQUEST = _validator("delivery-report-request")
REPORT_RESPONSE = _validator("delivery-report-response")
EVENT = _validator("event-webhook")
INCOMING = _validator("incoming-webhook")
REPLY = _validator("instant-reply")


def _errors(validator: jsonschema.Draft202012Validator, value: object) -> list[str]:
    # Through JSON and back: what a receiver gets is the serialised value.
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(json.loads(json.dumps(value)))]


def reach(strategy, condition, max_examples=1000):
    return find(
        strategy, condition, settings=settings(max_examples=max_examples, phases=[Phase.generate], database=None)
    )


# -- the schema files ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", LIFECYCLE_SCHEMAS)
def test_schemas_are_valid_2020_12_and_load_where_picky_mock_finds_its_schemas(name):
    path = schemas_dir() / f"{name}.schema.json"
    schema = json.loads(path.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"].endswith(f"/{name}.schema.json")
    assert schema["description"] and schema["title"]
    assert "[ours]" in schema["$comment"]  # the choices that are picky-mock's are marked as such
    jsonschema_rs.validator_for(schema)  # the fast validator of picky_mock.contract compiles it too


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("delivery-report-request", {"push_id": 1}),
        ("delivery-report-request", {"token": " ", "push_id": 1}),
        ("delivery-report-request", {"token": "t", "push_id": "007"}),
        ("delivery-report-request", {"token": "t", "push_id": 0}),
        ("delivery-report-request", {"token": "t", "push_id": 1.5}),
        ("delivery-report-request", {"token": "t", "push_id": "12a"}),
        ("delivery-report-response", {"project_id": "1", "push_id": "7", "application": "1", "message_type": "3",
                                      "time": "04-12-2026 05:16 PM", "data": [], "status": 100, "message": "Success"}),
        ("delivery-report-response", {"project_id": "1", "push_id": 7, "application": "1", "message_type": "3",
                                      "time": "2026-12-04 17:16", "data": [], "status": 100, "message": "Success"}),
        ("delivery-report-response", {"project_id": "1", "push_id": 7, "application": "1", "message_type": "3",
                                      "time": "04-12-2026 05:16 PM", "status": 100, "message": "Success",
                                      "data": [{"number": "1", "msg_id": "2", "status": "3", "error_code": ""}]}),
        ("delivery-report-response", {"project_id": "1", "push_id": 7, "application": "8", "message_type": "3",
                                      "time": "04-12-2026 05:16 PM", "status": 100, "message": "Success",
                                      "data": [{"number": "1", "msg_id": "2", "status": 1, "error_code": ""}]}),
        ("event-webhook", {"project_id": 1, "event_id": 1, "data": [{}]}),
        ("event-webhook", {"project_id": "1", "event_id": "1", "data": []}),
        ("event-webhook", {"project_id": "1", "event_id": 1, "data": [
            {"push_id": "1", "number": "91", "msg_id": "2", "status": "3", "error_code": "", "error_message": "",
             "message": "hi", "message_type": "text", "media": "", "channel_id": "2"}]}),
        ("event-webhook", {"project_id": "1", "event_id": 1, "data": [
            {"push_id": "1", "number": "91", "msg_id": "2", "status": "1", "error_code": "", "error_message": "x",
             "message": "hi", "message_type": "text", "media": "", "channel_id": "8"}]}),
        ("event-webhook", {"project_id": "1", "event_id": 1, "data": [
            {"push_id": "1", "number": "91", "msg_id": "2", "status": "1", "error_code": "", "error_message": "",
             "message": "hi", "message_type": "text", "media": "", "channel_id": "8", "reference_number": 5}]}),
        ("incoming-webhook", {"number": "91", "message-in": "hello world", "application": 1, "type": 1,
                              "unique-id": "1"}),
        ("incoming-webhook", {"number": "91", "message-in": "hi", "application": 1, "type": 8, "unique-id": "1"}),
        ("incoming-webhook", {"number": "", "message-in": "hi", "application": "5", "type": 1, "unique-id": "1"}),
        ("incoming-webhook", {"number": "91", "message-in": "", "application": 1, "type": "2", "unique-id": "1"}),
        ("incoming-webhook", {"number": "91", "message-in": "hi", "application": 8, "type": 1, "unique-id": "1",
                              "direction": 1}),
        ("instant-reply", {"delay": 5}),
        ("instant-reply", {"message-out": "Thanks", "delay": 3601}),
        ("instant-reply", {"message-out": "Thanks", "delay": "3601"}),
        ("instant-reply", {"message-out": "Thanks", "delay": " 5"}),
        ("instant-reply", {"message-out": "Thanks", "delay": 2.5}),
        ("instant-reply", {"message-out": "", "delay": 5}),
        ("instant-reply", {"message-out": " \n", "delay": 5}),
    ],
)
def test_schemas_reject_what_the_contract_rules_out(name, value):
    assert not _validator(name).is_valid(value)


def test_schemas_accept_the_docs_samples():
    assert REPORT_REQUEST.is_valid({"token": "PICKY_API_TOKEN", "push_id": 7478630})
    assert REPORT_REQUEST.is_valid({"token": "PICKY_API_TOKEN", "push_id": "7478630"})
    answer = {"project_id": "1234", "push_id": 7478630, "application": "1", "message_type": "3",
              "time": "04-12-2026 05:16 PM", "data": [{"number": "919876543210", "msg_id": "9844217", "status": "1",
                                                      "error_code": ""}], "status": 100, "message": "Success"}
    assert REPORT_RESPONSE.is_valid(answer)
    seen = {"application": "1", "direction": "0", "message-in": "Hi+there", "message_in_raw": "Hi there",
            "name": "", "number": "919876543210", "project-id": "1234", "type": "1", "unique-id": "abc123"}
    assert INCOMING.is_valid(seen)
    assert REPLY.is_valid({"message-out": "Thanks!", "delay": 0})
    assert REPLY.is_valid({"message-out": "Thanks!", "delay": "3600"})
    assert INCOMING.is_valid({**seen, "project-id": "my-project"})


# -- delivery report requests --------------------------------------------------------------------


@given(delivery_report_requests())
def test_delivery_report_requests_validate_against_the_schema(body):
    assert _errors(REPORT_REQUEST, body) == []
    assert set(body) == {"token", "push_id"}


def test_delivery_report_requests_send_push_ids_as_numbers_and_as_strings():
    reach(delivery_report_requests(), lambda b: type(b["push_id"]) is int)
    reach(delivery_report_requests(), lambda b: type(b["push_id"]) is str)


@given(delivery_report_requests(token="tok-1", push_id="7478630", quirks=False))
def test_delivery_report_requests_options(body):
    assert body == {"token": "tok-1", "push_id": 7478630}


@settings(max_examples=30)
@given(st.data())
def test_delivery_report_requests_for_an_answered_push(data):
    answer = data.draw(push_responses())
    body = data.draw(delivery_report_requests(push_id=answer["push_id"]))
    assert str(body["push_id"]) == answer["push_id"]


# -- delivery report answers ---------------------------------------------------------------------


@settings(max_examples=60)
@given(delivery_report_responses())
def test_delivery_report_responses_validate_against_the_schema(answer):
    assert _errors(REPORT_RESPONSE, answer) == []
    assert type(answer["push_id"]) is int and answer["status"] == 100
    sent = datetime.strptime(answer["time"], "%d-%m-%Y %I:%M %p")  # a real date and time, not only the shape
    assert answer["time"] == sent.strftime("%d-%m-%Y %I:%M ") + ("AM" if sent.hour < 12 else "PM")
    for item in answer["data"]:
        assert all(type(value) is str for value in item.values())
        assert item["error_code"] == "" and item.get("error_message", "") == ""
        if answer["application"] in PHONE_AUTOMATION:
            assert item["status"] != "3"


@settings(max_examples=30)
@given(st.data())
def test_delivery_report_responses_for_a_push_report_every_message_in_order(data):
    answer = data.draw(push_responses(request=data.draw(push_requests(max_recipients=4))))
    report = data.draw(delivery_report_responses(response=answer, statuses=[2, 5], application=[3]))
    assert _errors(REPORT_RESPONSE, report) == []
    assert report["push_id"] == int(answer["push_id"])
    assert [(i["number"], i["msg_id"]) for i in report["data"]] == [(i["number"], i["msg_id"]) for i in answer["data"]]
    assert {i["status"] for i in report["data"]} <= {"2", "5"} and report["application"] == "3"


def test_delivery_report_responses_reach_each_form():
    reach(delivery_report_responses(), lambda a: "error_message" in a["data"][0])
    reach(delivery_report_responses(), lambda a: "error_message" not in a["data"][0])
    reach(delivery_report_responses(), lambda a: a["time"].endswith("PM") and a["time"][11:13] == "12")
    reach(delivery_report_responses(statuses=[3]), lambda a: a["application"] in PHONE_AUTOMATION)  # then Unknown
    for code in "12345":
        reach(delivery_report_responses(), lambda a, c=code: a["message_type"] == c)


@given(delivery_report_responses(message_types=[1], min_size=2, max_size=3))
def test_delivery_report_responses_size_and_type_options(answer):
    assert answer["message_type"] == "1" and 2 <= len(answer["data"]) <= 3


# -- event webhook -------------------------------------------------------------------------------

REPORT_KEYS = {"push_id", "number", "msg_id", "status", "error_code", "error_message", "message", "message_type",
               "media", "channel_id"}


@settings(max_examples=80)
@given(delivery_report_events())
def test_delivery_report_events_validate_against_the_schema(event):
    assert _errors(EVENT, event) == []
    assert set(event) == {"project_id", "event_id", "data"} and type(event["event_id"]) is int
    for report in event["data"]:
        assert set(report) - {"reference_number"} == REPORT_KEYS
        assert report["message_type"] in {"text", "image", "audio", "video", "document"}
        assert (report["media"] == "") == (report["message_type"] == "text")
        if report["error_message"]:
            assert report["channel_id"] in EXPLAINED_CHANNELS and report["status"] in ("2", "5")
        if report["channel_id"] == "5":
            assert report["number"].isdigit()  # the Messenger id


def test_delivery_report_events_reach_each_form():
    reach(delivery_report_events(), lambda e: any("reference_number" in r for r in e["data"]))
    reach(delivery_report_events(statuses=[2], application=[8]), lambda e: e["data"][0]["error_message"] != "")
    for word in ("text", "image", "audio", "video", "document"):
        reach(delivery_report_events(), lambda e, w=word: e["data"][0]["message_type"] == w)


@settings(max_examples=30)
@given(st.data())
def test_delivery_report_events_for_a_response(data):
    answer = data.draw(push_responses())
    event = data.draw(delivery_report_events(response=answer, statuses=[2], application=[8]))
    assert _errors(EVENT, event) == []
    sent = {(item["msg_id"], item["number"]) for item in answer["data"]}
    for report in event["data"]:
        assert report["push_id"] == answer["push_id"]
        assert (report["msg_id"], report["number"]) in sent
        assert report["status"] == "2" and report["channel_id"] == "8"
    msg_ids = [int(r["msg_id"]) for r in event["data"]]
    assert msg_ids == sorted(msg_ids)


# -- incoming-message webhook --------------------------------------------------------------------

MEDIA_TYPES = {2, 3, 4, 6}


@settings(max_examples=80)
@given(inbound_messages())
def test_inbound_messages_validate_against_the_schema(payload):
    assert _errors(INCOMING, payload) == []
    kind = int(payload["type"])
    assert unquote_plus(payload["message-in"]) == payload["message_in_raw"]
    assert not re.search(r"[ &=#?\n]", payload["message-in"])  # URL-encoded, form style ("+" for a space)
    assert ("media-url" in payload) == (kind in MEDIA_TYPES)
    assert ("Location" in payload) == (kind == 5)
    assert ("contact" in payload) == (kind == 7)
    assert ("payload" in payload) == (kind == 9)
    if int(payload["direction"]) == 1:
        assert int(payload["application"]) == 10
    if int(payload["application"]) == 5:
        assert payload["number"] == "" and int(payload["messenger_id"]) > 0


def test_inbound_messages_reach_each_form():
    reach(inbound_messages(), lambda p: type(p["application"]) is str)
    reach(inbound_messages(), lambda p: type(p["type"]) is int)
    reach(inbound_messages(), lambda p: not p["number"].isdigit() and int(p["application"]) != 5)  # a contact name
    reach(inbound_messages(), lambda p: "context-msg-id" in p)
    reach(inbound_messages(application=[10]), lambda p: "@" in p["number"])  # a Web Automation group
    for kind in INBOUND_TYPES:
        reach(inbound_messages(), lambda p, k=kind: int(p["type"]) == k)


@given(inbound_messages(mixed_types=False, application=[5], types=[9]))
def test_inbound_messages_options(payload):
    assert type(payload["application"]) is int and payload["application"] == 5
    assert type(payload["type"]) is int and type(payload["messenger_id"]) is int
    assert payload["payload"] and payload["message_in_raw"]


# -- instant replies -----------------------------------------------------------------------------


@given(instant_replies())
def test_instant_replies_validate_against_the_schema(reply):
    assert _errors(REPLY, reply) == []
    assert 0 <= int(reply.get("delay", 0)) <= 3600


def test_instant_replies_reach_each_form():
    reach(instant_replies(), lambda r: "delay" not in r)
    reach(instant_replies(), lambda r: str(r.get("delay")) == "3600")
    reach(instant_replies(), lambda r: isinstance(r.get("delay"), str))
    reach(instant_replies(), lambda r: "media-url" in r)


@given(instant_replies(min_delay=5, max_delay=10, extras=False, mixed_types=False))
def test_instant_replies_options(reply):
    assert set(reply) == {"message-out", "delay"} and type(reply["delay"]) is int and 5 <= reply["delay"] <= 10


# -- options -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "build",
    [
        lambda: delivery_report_requests(push_id=0),
        lambda: delivery_report_requests(push_id="7a"),
        lambda: delivery_report_requests(push_id=True),
        lambda: delivery_report_requests(token=""),
        lambda: delivery_report_requests(quirks=1),
        lambda: delivery_report_responses(statuses=[6]),
        lambda: delivery_report_responses(message_types=[6]),
        lambda: delivery_report_responses(response={"status": 100, "push_id": "1", "data": []}),
        lambda: delivery_report_responses(response={"status": 100, "push_id": "x", "data": [{"msg_id": "1",
                                                                                              "number": "1"}]}),
        lambda: delivery_report_responses(min_size=0),
        lambda: delivery_report_responses(application=[0]),
        lambda: delivery_report_events(statuses=[6]),
        lambda: delivery_report_events(response={"status": 406, "message": "Invalid Mobile Number"}),
        lambda: delivery_report_events(min_size=0),
        lambda: inbound_messages(types=[8]),
        lambda: inbound_messages(application=[-1]),
        lambda: instant_replies(max_delay=3601),
        lambda: instant_replies(min_delay=-1),
        lambda: instant_replies(min_delay=10, max_delay=5),
        lambda: instant_replies(extras="no"),
        lambda: instant_replies(mixed_types=None),
    ],
)
def test_impossible_options_are_invalid_arguments(build):
    with pytest.raises(InvalidArgument):
        build().validate()


@settings(max_examples=40)
@given(st.data())
def test_delivery_report_events_for_a_request_echo_what_the_push_gave(data):
    body = data.draw(push_requests(max_recipients=4))
    answer = data.draw(push_responses(request=body))
    event = data.draw(delivery_report_events(response=answer, request=body))
    assert _errors(EVENT, event) == []
    numbers = [item["number"] for item in answer["data"]]
    for report in event["data"]:
        item = body["data"][numbers.index(report["number"])] if numbers.count(report["number"]) == 1 else None
        assert report["channel_id"] == str(body["application"])
        if item is None:
            continue  # a number twice in the push: which item is ambiguous here
        if "reference_number" in item:
            assert report["reference_number"] == str(item["reference_number"])
        else:
            assert "reference_number" not in report
        assert report["message"] == (item.get("message") or body.get("globalmessage") or "")
        has_media = any(item.get(k) or body.get(f"global{k}") for k in ("media", "media_code"))
        assert (report["message_type"] != "text") == bool(has_media)


def test_delivery_report_events_request_needs_its_response():
    body = {"token": "t", "application": 1, "globalmessage": "hi", "data": [{"number": "919876543210"}]}
    answer = {"status": 100, "push_id": "1", "message": "Success",
              "data": [{"msg_id": "2", "number": "919876543210", "credit": "0.005"}]}
    for build in (
        lambda: delivery_report_events(request=body),
        lambda: delivery_report_events(request=body, response=answer, application=[1]),
        lambda: delivery_report_events(request={**body, "data": []}, response=answer),
        lambda: delivery_report_events(request={**body, "application": "x"}, response=answer),
    ):
        with pytest.raises(InvalidArgument):
            build().validate()
    event = reach(delivery_report_events(request=body, response=answer), lambda e: True)
    assert event["data"][0]["message"] == "hi" and event["data"][0]["channel_id"] == "1"
