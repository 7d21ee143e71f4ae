"""The log of ``picky-mock serve``: one short info line per push, and at debug level a line per
message with its number and text."""

from __future__ import annotations

import time

import httpx
from pushing import TIMEOUT, number, push_body
from test_cli import Served


def _lines_with(served: Served, word: str, count: int) -> list[str]:
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        found = [line for line in served.stderr if word in line]
        if len(found) >= count:
            return found
        time.sleep(0.02)
    raise AssertionError(f"{count} line(s) with {word!r} expected; stderr={served.stderr}")


def test_debug_shows_each_message_number_and_text() -> None:
    long_text = "é" * 300
    body = push_body(number(1), number(2), text="first text")
    body["data"][1]["message"] = long_text
    with Served("--log-level", "debug") as served:
        answer = httpx.post(served.url() + "/api/v2/push", json=body, timeout=TIMEOUT).json()
        assert answer["status"] == 100
        lines = _lines_with(served, " message ", 2)
        assert served.stop() == 0
    push_id = answer["push_id"]
    first, second = (item["msg_id"] for item in answer["data"])
    assert f"push {push_id} message 1 msg_id={first} number={number(1)} text='first text'" in lines[0]
    shown = "é" * 200 + "… (300 characters)"
    assert f"push {push_id} message 2 msg_id={second} number={number(2)} text='{shown}'" in lines[1]
    [info] = [line for line in served.stderr if f"push {push_id} channel=" in line]
    assert "first text" not in info and len(info) < 160, info


def test_info_has_no_message_lines() -> None:
    with Served() as served:
        answer = httpx.post(served.url() + "/api/v2/push", json=push_body(text="secret-ish"), timeout=TIMEOUT).json()
        _lines_with(served, f"push {answer['push_id']} channel=", 1)
        assert served.stop() == 0
    assert not [line for line in served.stderr if "secret-ish" in line], served.stderr
