"""Tests of the webhook handlers, fed by the webhook strategies (no server needed)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from picky_client import parse_delivery_report, parse_inbound, reply

from picky_mock.strategies import delivery_report_events, inbound_messages, push_responses


@given(event=delivery_report_events())
def test_every_report_becomes_an_update(event):
    updates = parse_delivery_report(event)

    assert len(updates) == len(event["data"])
    for update, report in zip(updates, event["data"], strict=True):
        assert (update.push_id, update.msg_id, update.number) == (report["push_id"], report["msg_id"], report["number"])
        assert update.failed == (report["status"] in ("2", "5"))
        assert update.channel == int(report["channel_id"])
        assert update.reference == (report.get("reference_number") or None)


@given(st.data())
def test_reports_of_a_push_match_what_send_bulk_returned(data):
    answer = data.draw(push_responses())
    event = data.draw(delivery_report_events(response=answer, statuses=[1, 3]))
    sent = {item["msg_id"]: item["number"] for item in answer["data"]}
    for update in parse_delivery_report(event):
        assert sent[update.msg_id] == update.number and not update.failed


def test_other_events_are_ignored():
    assert parse_delivery_report({"project_id": "1", "event_id": 2, "data": [{"number": "1"}]}) == []


@given(payload=inbound_messages())
def test_every_incoming_message_is_read(payload):
    message = parse_inbound(payload)

    assert message.text == payload["message_in_raw"]
    assert message.channel == int(payload["application"])
    assert message.kind == int(payload["type"])
    assert message.outbound == (int(payload["direction"]) == 1)
    expected_sender = str(payload["messenger_id"]) if message.channel == 5 else payload["number"]
    assert message.sender == expected_sender


@given(payload=inbound_messages())
def test_an_old_payload_without_the_raw_text_is_decoded(payload):
    raw = payload.pop("message_in_raw")  # added to the webhook in 2021: older integrations decode message-in
    assert parse_inbound(payload).text == raw


def test_reply_delay_is_bounded():
    assert reply("Thanks!") == {"message-out": "Thanks!", "delay": 0}
    with pytest.raises(ValueError):
        reply("Later", delay=3601)
