"""Strict and lenient modes (docs/contract.md §2.3): strict, the default, rejects the deviations from the
documented contract with the documented code; lenient accepts and repairs them. Both journal a
``deviation:`` note for each."""

from __future__ import annotations

import httpx
import pytest
from pushing import TOKEN, expect_error, expect_success, number, push_body

from picky_mock.config import Settings
from picky_mock.errors import ConfigError
from picky_mock.server import ServerThread

GOOD = number(7)

# (id, body, code in strict mode, numbers answered in lenient mode)
DEVIATIONS = [
    (
        "plus-spaces-dashes",
        push_body("+55 11-98765 4321"),
        406,
        ["5511987654321"],
    ),
    (
        "double-zero-parentheses",
        push_body("0055 (11) 98765-4321", number(1)),
        406,
        ["5511987654321", number(1)],
    ),
    (
        "plus-only",
        push_body("+5511987654321"),
        406,
        ["5511987654321"],
    ),
    (
        "top-level-number-and-message",
        {"token": TOKEN, "application": 1, "number": "5511987654321", "message": "no data[]"},
        402,
        ["5511987654321"],
    ),
    (
        "application-missing",
        {"token": TOKEN, "globalmessage": "which channel?", "data": [{"number": number(2)}]},
        410,
        [number(2)],
    ),
]


@pytest.mark.parametrize(("body", "code", "numbers"), [d[1:] for d in DEVIATIONS], ids=[d[0] for d in DEVIATIONS])
def test_strict_rejects_each_deviation_and_notes_it(client, picky_server, body, code, numbers):
    assert picky_server.backend.mode == "strict", "strict is the default"
    expect_error(client.post("/api/v2/push", json=body), code)
    (entry,) = picky_server.journal.snapshot()
    deviations = [n for n in entry.notes if n.startswith("deviation:")]
    assert deviations and all("rejected (strict mode)" in n for n in deviations), entry.notes
    assert not picky_server.pushes()


@pytest.mark.parametrize(("body", "code", "numbers"), [d[1:] for d in DEVIATIONS], ids=[d[0] for d in DEVIATIONS])
def test_lenient_repairs_each_deviation_and_notes_it(client, picky_server, body, code, numbers):
    picky_server.set_mode("lenient")
    answer = client.post("/api/v2/push", json=body)
    reply = expect_success(answer, recipients=len(numbers))
    assert [d["number"] for d in reply["data"]] == numbers
    (entry,) = picky_server.pushes()
    deviations = [n for n in entry.notes if n.startswith("deviation:")]
    assert deviations, entry.notes
    assert all("lenient mode" in n for n in deviations)
    assert "deviation:" in answer.headers["x-picky-deviation"]
    assert [m.number for m in entry.messages] == numbers


def test_lenient_defaults_a_missing_application_to_1(client, picky_server):
    picky_server.set_mode("lenient")
    body = {"token": TOKEN, "globalmessage": "hi", "data": [{"number": GOOD}]}
    expect_success(client.post("/api/v2/push", json=body))
    (message,) = picky_server.messages()
    assert message.channel == 1


def test_lenient_wraps_top_level_message_into_data(client, picky_server):
    picky_server.set_mode("lenient")
    body = {"token": TOKEN, "application": 3, "number": GOOD, "message": "wrapped"}
    expect_success(client.post("/api/v2/push", json=body), recipients=1)
    picky_server.assert_pushed(number=GOOD, text="wrapped", channel=3)



@pytest.mark.parametrize(
    ("body", "code"),
    [
        (push_body("abc"), 406),
        (push_body("+1"), 406),
        (push_body("+55 (11)"), 406),
        (push_body("5511987654321", token=""), 401),
        ({"token": TOKEN, "application": 1, "globalmessage": "x", "data": []}, 402),
        ({"token": TOKEN, "application": "x", "globalmessage": "x", "data": [{"number": GOOD}]}, 410),
        ({"token": TOKEN, "application": 1, "data": [{"number": GOOD}]}, 407),
    ],
    ids=["letters", "too-short", "too-short-formatted", "token", "empty-data", "bad-application", "no-text"],
)
def test_lenient_still_rejects_what_it_cannot_repair(client, picky_server, body, code):
    picky_server.set_mode("lenient")
    expect_error(client.post("/api/v2/push", json=body), code)


def test_valid_pushes_carry_no_deviation_in_either_mode(client, picky_server):
    for mode in ("strict", "lenient"):
        picky_server.set_mode(mode)
        answer = client.post("/api/v2/push", json=push_body(GOOD))
        expect_success(answer)
        assert "x-picky-deviation" not in answer.headers
    assert all(not [n for n in e.notes if n.startswith("deviation")] for e in picky_server.journal.snapshot())


def test_mode_switched_over_http(client, picky_server):
    deviant = push_body("+55 11 98765-4321")
    expect_error(client.post("/api/v2/push", json=deviant), 406)
    state = client.put("/_picky/state", json={"mode": "lenient"})
    assert state.status_code == 200 and state.json()["mode"] == "lenient"
    assert client.get("/_picky/health").json()["mode"] == "lenient"
    expect_success(client.post("/api/v2/push", json=deviant))
    assert client.put("/_picky/state", json={"mode": "strict"}).json()["mode"] == "strict"
    expect_error(client.post("/api/v2/push", json=deviant), 406)


@pytest.mark.parametrize("change", [b'{"mode": "loose"}', b'{"mode": 1}', b"[]", b"not json", b"{}"])
def test_mode_switch_refuses_bad_values(client, picky_server, change):
    answer = client.put("/_picky/state", content=change)
    assert answer.status_code == 400 and "error" in answer.json()
    assert picky_server.backend.mode == "strict"


def test_set_mode_refuses_bad_values(picky_server):
    with pytest.raises(ConfigError, match="mode must be one of strict, lenient, not 'loose'"):
        picky_server.set_mode("loose")


def test_reset_restores_the_configured_mode(client, picky_server):
    picky_server.set_mode("lenient")
    assert client.post("/_picky/reset").status_code == 200
    assert client.get("/_picky/state").json()["mode"] == "strict"


def test_a_server_configured_lenient():
    with ServerThread(Settings(port=0, mode="lenient", log_level="warning")) as server:
        with httpx.Client(base_url=server.url, follow_redirects=False) as client:
            assert client.get("/_picky/health").json() == {"status": "ok", "mode": "lenient"}
            expect_success(client.post("/api/v2/push", json=push_body("+55 11 98765-4321")))
            client.post("/_picky/reset")
            assert client.get("/_picky/state").json()["mode"] == "lenient", "reset goes back to the configured mode"


def test_mode_is_back_to_strict_in_the_next_test(picky_server):
    """Runs after tests that switched to lenient (on this worker): the fixture's reset restored it."""
    assert picky_server.backend.mode == "strict"


def test_lenient_shows_the_number_as_sent_when_its_repair_is_still_wrong(client, picky_server):
    """"+0 11" repairs to "011", which is still wrong (a leading 0): the error names what the client
    sent, so that the developer can find it in their own data, and what it was read as."""
    picky_server.set_mode("lenient")
    answer = client.post("/api/v2/push", json=push_body("+0 11"))
    assert answer.json()["status"] == 406
    assert answer.headers["x-picky-error"].endswith('found "+0 11", read as "011" (lenient mode)')
    assert picky_server.requests[0].violations[0].found == '"+0 11", read as "011" (lenient mode)'
    picky_server.set_mode("strict")
    found = client.post("/api/v2/push", json=push_body("+0 11")).headers["x-picky-error"]
    assert found.endswith('found "+0 11"'), "strict mode judges the number as sent"


@pytest.mark.parametrize("mode", ["strict", "lenient"])
def test_a_long_deviating_number_is_noted_shortened(client, picky_server, mode):
    """A 5,000-character "+111…" is noted as the first 60 characters and its length: the journal,
    the log and `validate` do not carry it whole."""
    picky_server.set_mode(mode)
    number = "+" + "1" * 4999
    assert client.post("/api/v2/push", json=push_body(number)).json()["status"] == 406
    [note] = [n for n in picky_server.requests[0].notes if n.startswith("deviation")]
    assert note.startswith("deviation: data[0].number '+" + "1" * 59 + "'… (5000 characters) is not bare digits")
    assert len(note) < 200
