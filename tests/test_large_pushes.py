"""Huge pushes: 100,000 recipients answered in full (or refused at the last one) within seconds, and
a text of a million characters priced by its segments."""

from __future__ import annotations

import time

from pushing import encode, expect_error, expect_still_serving, expect_success, number, push_body


def test_100000_recipients(client, picky_server):
    count = 100_000
    raw = encode(push_body(*[number(i) for i in range(count)], text="bulk"))
    started = time.perf_counter()
    answer = client.post("/api/v2/push", content=raw, timeout=60)
    elapsed = time.perf_counter() - started
    reply = expect_success(answer, recipients=count)
    assert elapsed < 10, f"100,000 recipients answered in {elapsed:.1f} s"
    assert reply["data"][0]["number"] == number(0) and reply["data"][-1]["number"] == number(count - 1)
    assert reply["data"][-1]["msg_id"] == str(9844217 + count - 1)
    (entry,) = picky_server.pushes()
    assert len(entry.messages) == count and entry.messages[-1].number == number(count - 1)
    expect_still_serving(client)


def test_100000_recipients_one_bad_number_is_answered_quickly(client, picky_server):
    count = 100_000
    raw = encode(push_body(*[number(i) for i in range(count - 1)], "+5511987"))
    started = time.perf_counter()
    answer = client.post("/api/v2/push", content=raw, timeout=60)
    elapsed = time.perf_counter() - started
    error = expect_error(answer, 406)
    assert error.startswith(f"406 $.data[{count - 1}].number"), error
    assert elapsed < 10, f"answered in {elapsed:.1f} s"
    (entry,) = picky_server.journal.snapshot()
    assert [(v.path, v.status) for v in entry.violations] == [(f"$.data[{count - 1}].number", 406)]




def test_a_large_text(client, picky_server):
    text = "ж" * 1_000_000
    reply = expect_success(client.post("/api/v2/push", json=push_body(number(1), number(2), text=text, application=3)))
    assert [d["credit"] for d in reply["data"]] == ["149.26", "149.26"]  # 14,926 segments at 0.01
    (message, _) = picky_server.messages()
    assert message.segments == 14926  # 1,000,000 UCS-2 units, 67 a part
    assert message.text == text
