"""The lifecycle end to end over real sockets: receivers in separate processes (``python -m
picky_mock.receiver`` and a Node one), a property that drives random pushes, moves, clock advances and
receiver failures through the real server, and every payload the server POSTs checked against the
schemas the strategies are checked against."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pushing import ROOT, TOKEN, number, push_body

from picky_mock.lifecycle import IllegalTransition, State
from picky_mock.receiver import WebhookReceiver

SCHEMAS = ROOT / "schemas"
NODE = shutil.which("node")


def validator(name: str) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(json.loads((SCHEMAS / f"{name}.schema.json").read_text(encoding="utf-8")))


EVENT = validator("event-webhook")
INCOMING = validator("incoming-webhook")
REPORT = validator("delivery-report-response")


def push(picky_server: Any, *numbers: str, application: int = 1) -> dict[str, Any]:
    answer = httpx.post(picky_server.push_url, json=push_body(*numbers, application=application), timeout=10).json()
    assert answer["status"] == 100, answer
    return dict(answer)


class Process:
    """A receiver in another process: its first line is ``listening URL``, then one JSON line per request."""

    def __init__(self, command: list[str]) -> None:
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=ROOT)
        assert self.process.stdout is not None
        first = self.process.stdout.readline()
        assert first.startswith("listening "), first
        self.url = first.split()[1]

    def lines(self, n: int) -> list[dict[str, Any]]:
        assert self.process.stdout is not None
        return [json.loads(self.process.stdout.readline()) for _ in range(n)]

    def close(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)


@pytest.fixture
def receiver_process(request: pytest.FixtureRequest) -> Iterator[Process]:
    command = request.param
    if command[0] == "node" and NODE is None:
        pytest.skip("node is not installed")
    process = Process([NODE or "node", *command[1:]] if command[0] == "node" else [sys.executable, *command[1:]])
    try:
        yield process
    finally:
        process.close()


@pytest.mark.parametrize(
    ("receiver_process", "answered"),
    [
        (["python", "-m", "picky_mock.receiver", "--down-first", "2"], [None, None, 200, 200]),
        (
            ["node", "tests/clients/webhook_receiver.mjs", "--down-first", "1", "--fail-first", "1"],
            [None, 503, 200, 200],
        ),
    ],
    indirect=["receiver_process"],
    ids=["python", "node"],
)
def test_a_receiver_in_another_process_gets_every_state_after_its_failures(
    picky_server: Any, receiver_process: Process, answered: list[int | None]
) -> None:
    picky_server.set_webhooks(event_url=receiver_process.url + "events?project=7")
    answer = push(picky_server, number(1), application=8)
    msg_id = str(answer["data"][0]["msg_id"])

    picky_server.deliver(msg_id)
    picky_server.advance(minutes=1)
    picky_server.advance(minutes=15)  # the third attempt is answered 200
    picky_server.deliver(msg_id, status="read")

    lines = receiver_process.lines(4)
    assert [line["answered"] for line in lines] == answered
    assert all(line["method"] == "POST" and line["path"].startswith("/events") for line in lines)
    bodies = [json.loads(line["body"]) for line in lines]
    for body in bodies:
        EVENT.validate(body)
    assert [b["data"][0]["status"] for b in bodies] == ["1", "1", "1", "3"]
    attempts = picky_server.webhooks("event")
    assert [(a.attempt, a.outcome) for a in attempts] == [
        (1, "retrying"),
        (2, "retrying"),
        (3, "delivered"),
        (1, "delivered"),
    ]


def test_every_payload_the_server_posts_meets_the_strategies_schemas(
    picky_server: Any, picky_webhook_receiver: WebhookReceiver
) -> None:
    picky_server.set_webhooks(
        event_url=picky_webhook_receiver.url_for("/e"), incoming_url=picky_webhook_receiver.url_for("/i")
    )
    answer = push(picky_server, number(1), number(2), application=8)
    phone = push(picky_server, number(3), application=1)
    first, second = (str(item["msg_id"]) for item in answer["data"])
    picky_server.deliver(first)
    picky_server.deliver(first, status="read")
    picky_server.deliver(second, status="failed", error_message="Not on WhatsApp")
    picky_server.deliver(second, status="refunded")
    picky_server.deliver(str(phone["data"][0]["msg_id"]), status="unknown")
    picky_server.receive(number(4), "hi & bye ✓", name="Ana")
    picky_server.receive(number(5), type=2, media="https://example.com/cat.jpg")
    picky_server.receive(number(6), "Yes", type=9, payload="YES_PAYLOAD")

    picky_webhook_receiver.wait_for(8)
    picky_server.wait_webhooks()
    for received in picky_webhook_receiver.received:
        (EVENT if received.path == "/e" else INCOMING).validate(received.json)
    assert sorted(r.path for r in picky_webhook_receiver.received) == ["/e"] * 5 + ["/i"] * 3
    # and the strategies draw against the very same files
    from picky_mock.strategies import webhooks as strategy_module

    source = Path(strategy_module.__file__).read_text(encoding="utf-8")
    assert "event-webhook.schema.json" in source and "incoming-webhook.schema.json" in source


# -- the property ---------------------------------------------------------------------------------

MOVES = ("delivered", "read", "failed", "refunded", "unknown")
action = st.one_of(
    st.tuples(st.just("push"), st.integers(1, 3), st.sampled_from([1, 8])),
    st.tuples(st.just("move"), st.integers(0, 20), st.sampled_from(MOVES)),
    st.tuples(st.just("advance"), st.sampled_from([0, 30, 60, 900, 7200, 21600])),
    st.tuples(st.just("fail"), st.integers(1, 2), st.sampled_from(["down", "500"])),
    st.tuples(st.just("url"), st.integers(0, 2)),  # the event URL moves to another path
)
#: No policy (moves on demand only), at-once policies (pushes recorded whole, their changes
#: queued whole), and a drawn one (timers on the clock).
POLICIES = (
    None,
    {"deliver_after": 0, "read_after": 0},
    {"deliver_after": 0, "fail_share": 1},
    {"deliver_after": [0, 60], "read_after": [0, 900], "fail_share": 0.2, "seed": 3},
)


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    actions=st.lists(action, min_size=1, max_size=12),
    twice=st.none() | st.integers(0, 4),
    policy=st.sampled_from(POLICIES),
)
def test_every_state_change_is_delivered_once_in_order_and_the_report_agrees(
    picky_server: Any,
    picky_webhook_receiver: WebhookReceiver,
    actions: list[tuple[Any, ...]],
    twice: int | None,
    policy: dict[str, Any] | None,
) -> None:
    """Exactly once, in order, per message, to the URL set when the change happened, whatever the
    receiver's failures and the policy; but twice for the messages to the number a
    ``report_twice`` fault names, when one is drawn."""
    picky_server.reset()
    picky_webhook_receiver.up()
    picky_webhook_receiver.clear()
    picky_server.set_webhooks(event_url=picky_webhook_receiver.url_for("/p0"))
    picky_server.set_lifecycle(policy)
    if twice is not None:
        picky_server.add_fault("report_twice", number=number(twice))
    backend = picky_server.backend
    routed: dict[str, list[str]] = {}  # msg_id -> the path of the URL set at each change
    unsubscribe = backend.ledger.subscribe(
        lambda t, m: routed.setdefault(t.msg_id, []).append(str(backend.event_webhook_url).rsplit("/", 1)[1]),
        accepted=False,
    )
    pushes: list[dict[str, Any]] = []
    messages: list[str] = []
    doubled: set[str] = set()
    failures = 0  # at most 4 failed answers in all: every delivery then succeeds by its 5th attempt
    for step in actions:
        if step[0] == "push":
            answer = push(picky_server, *(number(len(messages) + i) for i in range(step[1])), application=step[2])
            pushes.append(answer)
            messages += [str(item["msg_id"]) for item in answer["data"]]
            doubled |= {
                str(item["msg_id"]) for item in answer["data"] if twice is not None and item["number"] == number(twice)
            }
        elif step[0] == "move" and messages:
            msg_id = messages[step[1] % len(messages)]
            before = picky_server.backend.ledger.get(msg_id).timeline
            try:
                picky_server.deliver(msg_id, status=step[2])
            except IllegalTransition:
                assert picky_server.backend.ledger.get(msg_id).timeline == before  # refused: nothing recorded
        elif step[0] == "advance":
            picky_server.advance(step[1])
        elif step[0] == "fail" and failures + step[1] <= 4:
            failures += step[1]
            if step[2] == "down":
                picky_webhook_receiver.down(times=step[1])
            else:
                picky_webhook_receiver.respond(500, times=step[1])
        elif step[0] == "url":
            picky_server.set_webhooks(event_url=picky_webhook_receiver.url_for(f"/p{step[1]}"))
    picky_server.advance(hours=9)  # past the last retry of anything pending (1 min + 15 min + 2 h + 6 h)
    picky_server.wait_webhooks()
    unsubscribe()

    got: dict[str, list[str]] = {}
    paths: dict[str, list[str]] = {}
    for received in picky_webhook_receiver.received:
        if received.answered == 200:
            EVENT.validate(received.json)
            for item in received.json["data"]:
                got.setdefault(item["msg_id"], []).append(item["status"])
                paths.setdefault(item["msg_id"], []).append(received.path.lstrip("/"))
    for msg_id in messages:
        timeline = picky_server.backend.ledger.get(msg_id).timeline
        expected = [str(int(t.state)) for t in timeline if t.previous is not None]
        where = routed.get(msg_id, [])
        if msg_id in doubled:
            expected = [state for state in expected for _ in range(2)]
            where = [path for path in where for _ in range(2)]
        assert got.get(msg_id, []) == expected, (msg_id, timeline)
        assert paths.get(msg_id, []) == where, (msg_id, timeline)
    assert set(got) <= set(messages)
    assert all(a.outcome != "given up" for a in picky_server.webhooks())

    with httpx.Client(timeout=10) as client:
        for answer in pushes:
            report = client.post(
                picky_server.url + "/api/v2/delivery-report", json={"token": TOKEN, "push_id": answer["push_id"]}
            ).json()
            REPORT.validate(report)
            for item in report["data"]:
                webhook_said = got.get(item["msg_id"], [str(int(State.SUBMITTED))])[-1]
                assert item["status"] == webhook_said, (item, got.get(item["msg_id"]))
